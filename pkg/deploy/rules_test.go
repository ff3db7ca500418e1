package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/deploy"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/render"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// ruleConfigs are the configurations the alert rules are proven over, by
// the promtool unit tests in testdata/rules/<dir>/ for each dir of
// ruleTests: tests written for those thresholds and names.
var ruleConfigs = map[string]string{
	// Every default; TLS is off, so there is no public probe.
	"default": "",
	// The defaults with HTTPS: the public probe and CertificateExpiring.
	"tls": `
domain: blog.example.org
tls: {mode: files, certFile: /etc/ssl/blog/fullchain.pem, keyFile: /etc/ssl/blog/privkey.pem}
`,
	// Every threshold changed, and other names, so that a value the chart
	// ignores shows.
	"custom": `
domain: shop.example.net
email: me@example.net
tls: {mode: certbot}
app:
  name: shop
  serviceName: shop
  namespace: web
  port: 8080
monitoring:
  namespace: observability
  release: mon
  probe: {name: shop-up, interval: 1m}
alerts:
  appDownFor: 3m
  restarts: {count: 5, window: 10m}
  slowAfter: 500ms
  certificateDays: 30
  diskFreePercent: 20
`,
}

var ruleTests = map[string][]string{
	"default": {"default"},
	"tls":     {"default", "tls"},
	"custom":  {"custom"},
}

// renderedRules is the app chart's PrometheusRule and Probes for a
// configuration of ruleConfigs.
func renderedRules(t *testing.T, name string) (*config.Config, *monitoringv1.PrometheusRule, []monitoringv1.Probe) {
	t.Helper()
	cfg, err := config.Parse(name+".yaml", []byte(ruleConfigs[name]))
	if err != nil {
		t.Fatal(err)
	}
	data, err := deploy.Manifests(cfg, build)
	if err != nil {
		t.Fatal(err)
	}
	if name != "default" { // chart_test keeps the default render
		testutil.Golden(t, filepath.Join("app-chart", "alerts-"+name+".yaml"), data)
	}
	var rule *monitoringv1.PrometheusRule
	var probes []monitoringv1.Probe
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		var meta struct{ Kind string }
		if err := sigsyaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case monitoringv1.PrometheusRuleKind:
			if rule != nil {
				t.Fatal("the app chart renders more than one PrometheusRule")
			}
			rule = &monitoringv1.PrometheusRule{}
			if err := sigsyaml.UnmarshalStrict(doc, rule); err != nil {
				t.Fatalf("PrometheusRule does not decode strictly: %v\n%s", err, doc)
			}
		case monitoringv1.ProbesKind:
			var p monitoringv1.Probe
			if err := sigsyaml.UnmarshalStrict(doc, &p); err != nil {
				t.Fatalf("Probe does not decode strictly: %v\n%s", err, doc)
			}
			probes = append(probes, p)
		}
	}
	if rule == nil {
		t.Fatalf("the app chart renders no PrometheusRule:\n%s", data)
	}
	return cfg, rule, probes
}

// promtool is Debian's promtool (Prometheus 2.42), as the test environment
// names it, else from PATH.
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HOMELAB_TEST_PROMTOOL"); p != "" {
		return p
	}
	return testutil.NeedProgram(t, "promtool", "/usr/bin/promtool")
}

// TestAlertRulesBehave runs the real `promtool test rules` over the rules
// the chart renders: each alert fires at the time its threshold says,
// resolves when the condition ends, and stays quiet just below it. Every
// rendered alert must be exercised by some test.
func TestAlertRulesBehave(t *testing.T) {
	tool := promtool(t)
	for name := range ruleConfigs {
		t.Run(name, func(t *testing.T) {
			_, rule, _ := renderedRules(t, name)
			dir := t.TempDir()
			rules, err := sigsyaml.Marshal(rule.Spec)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(tool, "check", "rules", filepath.Join(dir, "rules.yaml")).CombinedOutput(); err != nil {
				t.Fatalf("promtool check rules: %v\n%s", err, out)
			}

			var tests []string
			for _, d := range ruleTests[name] {
				found, err := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "testdata", "rules", d, "*.yaml"))
				if err != nil || len(found) == 0 {
					t.Fatalf("no promtool tests in testdata/rules/%s (%v)", d, err)
				}
				tests = append(tests, found...)
			}
			tested := map[string]bool{}
			var args []string
			for _, src := range tests {
				data, err := os.ReadFile(src)
				if err != nil {
					t.Fatal(err)
				}
				for _, alert := range testedAlerts(t, src, data) {
					tested[alert] = true
				}
				// promtool reads rule_files relative to the test file.
				dst := filepath.Join(dir, filepath.Base(filepath.Dir(src))+"-"+filepath.Base(src))
				if err := os.WriteFile(dst, data, 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, dst)
			}
			out, err := exec.Command(tool, append([]string{"test", "rules"}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool test rules (rules as rendered for %q):\n%s\n%v\nrendered rules:\n%s", name, out, err, rules)
			}
			t.Logf("promtool test rules:\n%s", out)

			for _, g := range rule.Spec.Groups {
				for _, r := range g.Rules {
					if r.Alert != "" && !tested[r.Alert] {
						t.Errorf("alert %s is rendered but no test in testdata/rules/%v exercises it", r.Alert, ruleTests[name])
					}
				}
			}
		})
	}
}

// testedAlerts are the alert names a promtool test file checks; it must
// read the rendered rules.
func testedAlerts(t *testing.T, path string, data []byte) []string {
	t.Helper()
	var file struct {
		RuleFiles []string `json:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := sigsyaml.Unmarshal(data, &file); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !slices.Equal(file.RuleFiles, []string{"rules.yaml"}) {
		t.Fatalf("%s: rule_files %v, want [rules.yaml] (the rules the chart renders)", path, file.RuleFiles)
	}
	var names []string
	for _, tc := range file.Tests {
		for _, a := range tc.AlertRuleTest {
			names = append(names, a.Alertname)
		}
	}
	return names
}

// TestAlertRulesSayWhatHappened: every alert reaches the user's
// destinations (homelab_alert), has a severity, a summary, and a
// description that ends with the doctor hint.
func TestAlertRulesSayWhatHappened(t *testing.T) {
	want := []string{"AppDown", "AppRestarting", "AppSlow", "HostDiskFilling"}
	for name := range ruleConfigs {
		t.Run(name, func(t *testing.T) {
			cfg, rule, _ := renderedRules(t, name)
			var got []string
			for _, g := range rule.Spec.Groups {
				for _, r := range g.Rules {
					got = append(got, r.Alert)
					if r.Labels["homelab_alert"] != "true" {
						t.Errorf("%s: labels %v, want homelab_alert=true (Alertmanager routes these to the user)", r.Alert, r.Labels)
					}
					if s := r.Labels["severity"]; s != "critical" && s != "warning" {
						t.Errorf("%s: severity %q", r.Alert, s)
					}
					if r.Annotations["summary"] == "" || !strings.HasSuffix(r.Annotations["description"], "Run: homelab doctor") {
						t.Errorf("%s: annotations %v, want a summary and a description ending with the doctor hint", r.Alert, r.Annotations)
					}
				}
			}
			wantHere := want
			if cfg.TLS.Enabled() {
				wantHere = append(slices.Clone(want), "CertificateExpiring")
			}
			slices.Sort(got)
			slices.Sort(wantHere)
			if !slices.Equal(got, wantHere) {
				t.Errorf("alerts %v, want %v (CertificateExpiring only with TLS)", got, wantHere)
			}
		})
	}
}

// TestPublicProbeReachesNginx: with TLS on, a second Probe asks the blackbox
// exporter for https://DOMAIN/ with a module the exporter has, and the
// exporter resolves DOMAIN to the host (not through public DNS, which a
// home router may not loop back); with TLS off there is no such probe.
func TestPublicProbeReachesNginx(t *testing.T) {
	r, err := render.New()
	if err != nil {
		t.Fatal(err)
	}
	for name := range ruleConfigs {
		t.Run(name, func(t *testing.T) {
			cfg, _, probes := renderedRules(t, name)
			if !cfg.TLS.Enabled() {
				if len(probes) != 1 {
					t.Errorf("%d Probes with TLS off, want only the app's", len(probes))
				}
				return
			}
			if len(probes) != 2 {
				t.Fatalf("%d Probes with TLS on, want the app's and the public one", len(probes))
			}
			public := probes[1]
			if public.Name != cfg.Monitoring.Probe.Name+"-public" || public.Spec.JobName != public.Name ||
				public.Namespace != cfg.Monitoring.Namespace || public.Labels["release"] != cfg.Monitoring.Release {
				t.Errorf("public probe %s/%s job %s labels %v", public.Namespace, public.Name, public.Spec.JobName, public.Labels)
			}
			if got := public.Spec.Targets.StaticConfig.Targets; !slices.Equal(got, []string{"https://" + cfg.Domain + "/"}) {
				t.Errorf("public probe targets %v, want https://%s/", got, cfg.Domain)
			}

			f, err := r.Named(cfg, layout.ValuesBlackbox)
			if err != nil {
				t.Fatal(err)
			}
			var values struct {
				HostAliases []struct {
					IP        string   `json:"ip"`
					HostNames []string `json:"hostNames"`
				} `json:"hostAliases"`
				Config struct {
					Modules map[string]struct {
						Prober string `json:"prober"`
						HTTP   struct {
							FailIfNotSSL bool `json:"fail_if_not_ssl"`
							TLSConfig    struct {
								InsecureSkipVerify bool `json:"insecure_skip_verify"`
							} `json:"tls_config"`
						} `json:"http"`
					} `json:"modules"`
				} `json:"config"`
			}
			if err := sigsyaml.Unmarshal(f.Data, &values); err != nil {
				t.Fatal(err)
			}
			m, ok := values.Config.Modules[public.Spec.Module]
			if !ok || m.Prober != "http" || !m.HTTP.FailIfNotSSL || !m.HTTP.TLSConfig.InsecureSkipVerify {
				t.Errorf("blackbox module %q: %+v (found %v), want an http module that insists on TLS and reads even an expired certificate",
					public.Spec.Module, m, ok)
			}
			if len(values.HostAliases) != 1 || !slices.Equal(values.HostAliases[0].HostNames, []string{cfg.Domain}) || values.HostAliases[0].IP == "" {
				t.Errorf("blackbox hostAliases %+v, want %s mapped to the host", values.HostAliases, cfg.Domain)
			}
		})
	}
}
