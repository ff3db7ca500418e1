package doctor

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/doctor/doctortest"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

func monitoringEnv(t *testing.T, probe, promURL, amURL string) (Env, *config.Config) {
	t.Helper()
	cfg := parseConfig(t, "monitoring:\n  probe: {name: "+probe+"}\n")
	h := doctortest.NewHost(t).Healthy(cfg, 4)
	return Env{Config: cfg, Host: h, Dial: refuseAll0(), PrometheusURL: promURL, AlertmanagerURL: amURL}, cfg
}

// refuseAll0 dials loopback for real (Prometheus is there) but refuses the
// addresses of the production set-up that tests do not run (80, 3100).
func refuseAll0() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == "127.0.0.1:80" || addr == "127.0.0.1:443" || addr == "127.0.0.1:3100" {
			return refuseAll(ctx, network, addr)
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
}

// TestPrometheusFromTestEnv uses the test environment's Prometheus, whose
// one job "blackbox" probes a live target (probe_success 1) and a dead one (0).
func TestPrometheusFromTestEnv(t *testing.T) {
	prom := testutil.TestEnv(t, "HOMELAB_TEST_PROMETHEUS_URL")
	dead := testutil.TestEnv(t, "HOMELAB_TEST_DEAD_TARGET_URL")

	env, _ := monitoringEnv(t, "nextjs-http", prom, "")
	res, _ := runChecks(t, env, 2*time.Second)
	expect(t, res, "monitoring.prometheus", StatusOK, "Prometheus at "+prom+" is ready")
	expect(t, res, "monitoring.probe-selected", StatusFail, `Prometheus does not select Probe monitoring/nextjs-http: no active target has job="nextjs-http"`,
		"kubectl -n monitoring label probe nextjs-http release=lightweight-monitoring --overwrite", "probeSelectorNilUsesHelmValues=false")
	expect(t, res, "monitoring.probe-success", StatusSkipped, "needs monitoring.probe-selected, which failed")

	env, _ = monitoringEnv(t, "blackbox", prom, "")
	res, _ = runChecks(t, env, 2*time.Second)
	expect(t, res, "monitoring.probe-selected", StatusOK, "Prometheus scrapes Probe monitoring/blackbox (2 target(s))")
	expect(t, res, "monitoring.probe-success", StatusFail, "probe_success is 0 for "+dead+": the app does not answer its health check",
		"sudo kubectl -n default logs deploy/nextjs-app-deployment")
}

// TestPrometheusLiveAndDeadJobs runs its own Prometheus with one job per
// target, against the test environment's blackbox exporter.
func TestPrometheusLiveAndDeadJobs(t *testing.T) {
	prom := startPrometheus(t)
	live := testutil.TestEnv(t, "HOMELAB_TEST_LIVE_TARGET_URL")
	dead := testutil.TestEnv(t, "HOMELAB_TEST_DEAD_TARGET_URL")

	env, _ := monitoringEnv(t, "nextjs-http", prom, "")
	res, _ := runChecks(t, env, 2*time.Second)
	expect(t, res, "monitoring.probe-selected", StatusOK, "Prometheus scrapes Probe monitoring/nextjs-http (1 target(s))")
	expect(t, res, "monitoring.probe-success", StatusOK, "probe_success is 1 for "+live)

	env, _ = monitoringEnv(t, "dead-http", prom, "")
	res, _ = runChecks(t, env, 2*time.Second)
	expect(t, res, "monitoring.probe-success", StatusFail, "probe_success is 0 for "+dead)

	// A Probe whose blackbox exporter is unreachable: the target is down.
	env, _ = monitoringEnv(t, "no-exporter", prom, "")
	res, _ = runChecks(t, env, 2*time.Second)
	expect(t, res, "monitoring.probe-selected", StatusFail, "Prometheus cannot scrape the blackbox exporter for Probe monitoring/no-exporter", "blackbox")
}

func TestPrometheusAndAlertmanagerUnreachable(t *testing.T) {
	am := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/-/healthy" {
			fmt.Fprint(w, "OK")
			return
		}
		http.NotFound(w, r)
	}))
	closed := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	env, _ := monitoringEnv(t, "nextjs-http", closed, am.URL+"/")
	res, _ := runChecks(t, env, time.Second)
	expect(t, res, "monitoring.prometheus", StatusFail, "Prometheus is not ready: "+closed+": connection refused", "--prometheus-url")
	expect(t, res, "monitoring.probe-selected", StatusSkipped, "needs monitoring.prometheus, which failed")
	expect(t, res, "monitoring.alertmanager", StatusOK, "Alertmanager at "+am.URL+" is healthy")

	env, _ = monitoringEnv(t, "nextjs-http", "", closed)
	res, _ = runChecks(t, env, time.Second)
	expect(t, res, "monitoring.prometheus", StatusSkipped, "no Prometheus URL: pass --prometheus-url")
	expect(t, res, "monitoring.probe-success", StatusSkipped, "needs monitoring.probe-selected, which was skipped")
	expect(t, res, "monitoring.alertmanager", StatusFail, "Alertmanager is not healthy: "+closed+": connection refused", "--alertmanager-url")
}

// startPrometheus runs Prometheus on a loopback port with jobs nextjs-http
// (the live target), dead-http (the dead one) and no-exporter (a blackbox
// address nothing listens on), and waits until each has a sample.
func startPrometheus(t *testing.T) string {
	t.Helper()
	bin := testutil.NeedProgram(t, "prometheus")
	blackbox := testutil.TestEnv(t, "HOMELAB_TEST_BLACKBOX_URL")
	live := testutil.TestEnv(t, "HOMELAB_TEST_LIVE_TARGET_URL")
	dead := testutil.TestEnv(t, "HOMELAB_TEST_DEAD_TARGET_URL")
	bb, err := url.Parse(blackbox)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	job := func(name, target, exporter string) string {
		return fmt.Sprintf(`  - job_name: %s
    metrics_path: /probe
    params: {module: [http_2xx]}
    static_configs: [{targets: [%q]}]
    relabel_configs:
      - {source_labels: [__address__], target_label: __param_target}
      - {source_labels: [__param_target], target_label: instance}
      - {target_label: __address__, replacement: %q}
`, name, target, exporter)
	}
	conf := "global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:\n" +
		job("nextjs-http", live, bb.Host) + job("dead-http", dead, bb.Host) + job("no-exporter", live, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	testutil.StartDaemon(t, cmd, addr)
	base := "http://" + addr
	q := url.QueryEscape(`count(probe_success{job=~"nextjs-http|dead-http"}) + count(up{job="no-exporter"} == 0)`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/api/v1/query?query=" + q)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), `,"3"]`) {
				return base
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
	t.Fatalf("prometheus did not get its samples in time:\n%s", log)
	return ""
}
