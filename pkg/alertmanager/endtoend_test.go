package alertmanager_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/homelab-dev/homelab/pkg/alertmanager"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/deploy"
	"github.com/homelab-dev/homelab/pkg/testutil"
	"github.com/homelab-dev/homelab/pkg/testutil/alerting"
)

// kubePrometheusStackEvaluationInterval is the rule evaluation interval of
// the chart's Prometheus: kube-prometheus-stack leaves evaluationInterval
// empty and prometheus-operator then uses 30s.
const kubePrometheusStackEvaluationInterval = 30 * time.Second

// The whole path with real programs: a real Prometheus (Debian's 2.42, as the
// testenv has it) probes a live target through the testenv's real blackbox
// exporter with the app chart's Probe settings and evaluates the app chart's
// own AppDown rule; it alerts a real Alertmanager running the configuration
// Render writes, which posts to a webhook destination. The target dies; the
// notification must arrive within 2 × alerts.appDownFor + one probe interval.
//
// It uses the shipped defaults: appDownFor 1m, the Probe's 30s interval, the
// chart's 30s evaluation interval and Render's 10s group_wait, so it takes
// about two minutes. The worst case is one probe interval to see the failure,
// one evaluation interval to make AppDown pending, appDownFor, then
// group_wait: 2m10s, inside the 2m30s budget. The target dies right after a
// scrape that saw it up, so the measurement sits near that worst case.
func TestTargetDiesAppDownReachesTheWebhookInTime(t *testing.T) {
	t.Parallel() // it mostly waits, for Alertmanager and Prometheus intervals
	prometheusBin := testutil.NeedProgram(t, "prometheus", "/usr/bin/prometheus")
	blackbox := testutil.TestEnv(t, "HOMELAB_TEST_BLACKBOX_URL")
	blackboxURL, err := url.Parse(blackbox)
	if err != nil {
		t.Fatal(err)
	}
	hook := alerting.StartWebhookReceiver(t)
	target := startTarget(t)

	cfg, err := config.Parse("homelab.yaml", []byte(fmt.Sprintf("alerts:\n  notify:\n    - webhook: {url: %q}\n", hook.URL())))
	if err != nil {
		t.Fatal(err)
	}
	appDownFor := time.Duration(mustDuration(t, cfg.Alerts.AppDownFor))
	rule, probe := chartAppDown(t, cfg)
	if got := rule.Groups[0].Rules[0].For; got == nil || time.Duration(mustDuration(t, string(*got))) != appDownFor {
		t.Fatalf("the chart's AppDown waits %v, not alerts.appDownFor %s", got, appDownFor)
	}
	probeInterval := time.Duration(mustDuration(t, string(probe.Spec.Interval)))

	rendered, err := alertmanager.Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	am := alerting.StartAlertmanager(t, rendered)
	prom := startPrometheus(t, prometheusBin, prometheusConfig{
		probe: probe, target: target.url, blackbox: blackboxURL.Host, alertmanager: strings.TrimPrefix(am.URL, "http://"),
		rules: rule,
	})

	// The app answers: probe_success is 1 before it dies, so the alert
	// measures a death and not a target that never came up.
	waitQuery(t, prom, fmt.Sprintf(`probe_success{job=%q} == 1`, probe.Spec.JobName), 2*probeInterval+30*time.Second)
	if got := hook.Deliveries(); len(got) != 0 {
		t.Fatalf("a notification before the target died: %+v", got[0].Message)
	}

	target.kill()
	killed := time.Now()
	timeline := watchAppDown(t, prom, probe.Spec.JobName, killed)
	budget := 2*appDownFor + probeInterval
	got := hook.WaitStatus("firing", budget+30*time.Second)
	took := got.ReceivedAt.Sub(killed)
	t.Logf("timeline after the kill: %s, notified +%s", timeline(), took.Round(time.Second))
	if name := got.Message.CommonLabels["alertname"]; name != "AppDown" {
		t.Fatalf("first notification is %s, not AppDown: %+v", name, got.Message)
	}
	t.Logf("measured: %s from the target dying to the AppDown notification at the webhook "+
		"(appDownFor %s, probe interval %s, evaluation interval %s, group_wait 10s; budget %s)",
		took.Round(100*time.Millisecond), appDownFor, probeInterval, kubePrometheusStackEvaluationInterval, budget)
	if took < appDownFor {
		t.Errorf("AppDown arrived %s after the target died, before alerts.appDownFor (%s): the rule does not wait", took, appDownFor)
	}
	if took > budget {
		t.Errorf("AppDown arrived %s after the target died, over 2 × appDownFor + one probe interval = %s", took, budget)
	}
	if got.Message.Alerts[0].Annotations["summary"] == "" || !strings.Contains(got.Message.Alerts[0].Annotations["description"], "homelab doctor") {
		t.Errorf("AppDown annotations: %v", got.Message.Alerts[0].Annotations)
	}
}

func mustDuration(t *testing.T, s string) model.Duration {
	t.Helper()
	d, err := model.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// chartAppDown renders the app chart for cfg and returns its PrometheusRule
// cut down to the AppDown rule (the others need kube-state-metrics and node
// metrics this Prometheus does not have), and the app's Probe.
func chartAppDown(t *testing.T, cfg *config.Config) (monitoringv1.PrometheusRuleSpec, monitoringv1.Probe) {
	t.Helper()
	build := deploy.Build{Reference: "docker.io/library/app:homelab-0123456789ab", Digest: "sha256:0123456789ab" + strings.Repeat("0", 52)}
	data, err := deploy.Manifests(cfg, build)
	if err != nil {
		t.Fatal(err)
	}
	var spec monitoringv1.PrometheusRuleSpec
	var probe *monitoringv1.Probe
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		var meta struct{ Kind string }
		if err := sigsyaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case monitoringv1.PrometheusRuleKind:
			var r monitoringv1.PrometheusRule
			if err := sigsyaml.Unmarshal(doc, &r); err != nil {
				t.Fatal(err)
			}
			for _, g := range r.Spec.Groups {
				for _, rule := range g.Rules {
					if rule.Alert == "AppDown" {
						g.Rules = []monitoringv1.Rule{rule}
						spec.Groups = append(spec.Groups, g)
					}
				}
			}
		case monitoringv1.ProbesKind:
			var p monitoringv1.Probe
			if err := sigsyaml.Unmarshal(doc, &p); err != nil {
				t.Fatal(err)
			}
			if p.Name == cfg.Monitoring.Probe.Name {
				probe = &p
			}
		}
	}
	if len(spec.Groups) != 1 || probe == nil {
		t.Fatalf("the app chart renders no AppDown rule or no Probe %q:\n%s", cfg.Monitoring.Probe.Name, data)
	}
	return spec, *probe
}

// target is an HTTP server standing in for the app, on 127.0.0.1.
type target struct {
	url    string
	server *http.Server
}

func startTarget(t *testing.T) *target {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &target{url: "http://" + l.Addr().String() + "/", server: srv}
}

// kill closes the listener and every connection: the app is gone.
func (tg *target) kill() { _ = tg.server.Close() }

type prometheusConfig struct {
	probe                  monitoringv1.Probe
	target                 string
	blackbox, alertmanager string // host:port
	rules                  monitoringv1.PrometheusRuleSpec
}

// startPrometheus runs its own Prometheus process with a scrape job built
// like prometheus-operator builds one for the Probe (job = jobName,
// /probe?module=...&target=..., instance = target, the target's labels and
// namespace), the rules, and the
// Alertmanager. It is stopped by its PID when the test ends.
func startPrometheus(t *testing.T, bin string, c prometheusConfig) string {
	t.Helper()
	dir := t.TempDir()
	rules, err := sigsyaml.Marshal(c.rules)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`global:
  scrape_interval: %s
  evaluation_interval: %s
rule_files: [rules.yaml]
alerting:
  alertmanagers:
    - api_version: v2
      static_configs: [{targets: [%q]}]
scrape_configs:
  - job_name: %q
    metrics_path: /probe
    params: {module: [%q]}
    static_configs: [{targets: [%q], labels: %s}]
    relabel_configs:
      - {source_labels: [__address__], target_label: __param_target}
      - {source_labels: [__param_target], target_label: instance}
      - {target_label: __address__, replacement: %q}
`, c.probe.Spec.Interval, model.Duration(kubePrometheusStackEvaluationInterval), c.alertmanager,
		c.probe.Spec.JobName, c.probe.Spec.Module, c.target, targetLabels(t, c.probe), c.blackbox)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("prometheus log (%s):\n%s", logPath, log)
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("prometheus exited before it was ready:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus at %s not ready after 30s; log %s", base, logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// targetLabels are the labels prometheus-operator gives the Probe's static
// targets: its own (app) and the Probe's namespace, as a YAML flow mapping.
func targetLabels(t *testing.T, p monitoringv1.Probe) string {
	t.Helper()
	labels := map[string]string{"namespace": p.Namespace}
	if p.Spec.Targets.StaticConfig != nil {
		for k, v := range p.Spec.Targets.StaticConfig.Labels {
			labels[k] = v
		}
	}
	out, err := json.Marshal(labels)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// watchAppDown polls Prometheus every second from since on and returns a
// function that says when the probe first failed and when AppDown became
// pending and firing, so a slow notification shows where the time went.
func watchAppDown(t *testing.T, prom, job string, since time.Time) func() string {
	t.Helper()
	queries := []struct{ name, query string }{
		{"probe failed", fmt.Sprintf(`probe_success{job=%q} == 0`, job)},
		{"pending", `ALERTS{alertname="AppDown",alertstate="pending"}`},
		{"firing", `ALERTS{alertname="AppDown",alertstate="firing"}`},
	}
	var mu sync.Mutex
	seen := map[string]time.Duration{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			for _, q := range queries {
				mu.Lock()
				_, ok := seen[q.name]
				mu.Unlock()
				if !ok && queryHas(prom, q.query) {
					mu.Lock()
					seen[q.name] = time.Since(since).Round(time.Second)
					mu.Unlock()
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		var parts []string
		for _, q := range queries {
			if d, ok := seen[q.name]; ok {
				parts = append(parts, fmt.Sprintf("%s +%s", q.name, d))
			} else {
				parts = append(parts, q.name+" not seen")
			}
		}
		return strings.Join(parts, ", ")
	}
}

// queryHas says whether an instant query returns at least one sample.
func queryHas(prom, query string) bool {
	resp, err := http.Get(prom + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	return json.NewDecoder(resp.Body).Decode(&body) == nil && len(body.Data.Result) > 0
}

// waitQuery polls an instant query until it returns a sample.
func waitQuery(t *testing.T, prom, query string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !queryHas(prom, query) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for Prometheus at %s to return %s", timeout, prom, query)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
