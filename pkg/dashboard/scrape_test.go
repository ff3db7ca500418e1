package dashboard_test

// The dashboard's series exist: the real exporters produce them, and the
// scrapes homelab configures keep them. kube-prometheus-stack is rendered
// from the real chart archive (e2e/charts) with the values homelab writes,
// and its scrape relabelings are applied with Prometheus's own relabel
// package; the blackbox exporter is run for real.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/dashboard"
	"github.com/homelab-dev/homelab/pkg/deploy"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/render"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// stackArchive is the chart homelab installs, committed as test data.
const stackArchive = "e2e/charts/kube-prometheus-stack-88.5.3.tgz"

type object map[string]any

func (o object) kind() string { return str(o, "kind") }
func (o object) name() string { return str(o, "metadata", "name") }

func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}

func list(m map[string]any, key string) []map[string]any {
	raw, _ := m[key].([]any)
	var out []map[string]any
	for _, r := range raw {
		if mm, ok := r.(map[string]any); ok {
			out = append(out, mm)
		}
	}
	return out
}

// renderStack renders kube-prometheus-stack as `helm template` would, with
// the values homelab writes for cfg over the chart's own.
func renderStack(t *testing.T, cfg *config.Config) []object {
	t.Helper()
	r, err := render.New()
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.Named(cfg, layout.ValuesStack)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load(filepath.Join(testutil.RepoRoot(t), stackArchive))
	if err != nil {
		t.Fatalf("load %s: %v", stackArchive, err)
	}
	vals, err := chartutil.ReadValues(f.Data)
	if err != nil {
		t.Fatalf("our values: %v", err)
	}
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		t.Fatal(err)
	}
	caps := *chartutil.DefaultCapabilities
	caps.APIVersions = append(append(chartutil.VersionSet{}, caps.APIVersions...), "monitoring.coreos.com/v1")
	opts := chartutil.ReleaseOptions{Name: cfg.Monitoring.Release, Namespace: cfg.Monitoring.Namespace, IsInstall: true, Revision: 1}
	rv, err := chartutil.ToRenderValues(ch, vals, opts, &caps)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		t.Fatalf("render %s: %v", stackArchive, err)
	}
	names := make([]string, 0, len(out))
	for n := range out {
		if strings.HasSuffix(n, ".yaml") && !strings.Contains(n, "/crds/") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var objs []object
	for _, n := range names {
		objs = append(objs, decodeAll(t, n, out[n])...)
	}
	return objs
}

func decodeAll(t *testing.T, where, body string) []object {
	t.Helper()
	var objs []object
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(body, -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var o object
		if err := sigsyaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
	return objs
}

// endpoint is one scrape endpoint: the labels its target relabelings put on
// every series (job, metrics_path) and its metric relabelings.
type endpoint struct {
	Where   string
	Labels  labels.Labels
	Metric  []*relabel.Config
	Honored bool
}

func toRelabel(t *testing.T, raw []map[string]any) []*relabel.Config {
	t.Helper()
	var out []*relabel.Config
	for _, r := range raw {
		// The operator's camelCase fields, Prometheus's defaults.
		c := relabel.DefaultRelabelConfig
		if v, ok := r["sourceLabels"].([]any); ok {
			for _, l := range v {
				c.SourceLabels = append(c.SourceLabels, model.LabelName(fmt.Sprint(l)))
			}
		}
		if v := str(r, "separator"); v != "" {
			c.Separator = v
		}
		if v, ok := r["regex"]; ok {
			re, err := relabel.NewRegexp(fmt.Sprint(v))
			if err != nil {
				t.Fatalf("relabel regex %v: %v", v, err)
			}
			c.Regex = re
		}
		if v, ok := r["replacement"]; ok {
			c.Replacement = fmt.Sprint(v)
		}
		if v := str(r, "targetLabel"); v != "" {
			c.TargetLabel = v
		}
		if v := str(r, "action"); v != "" {
			c.Action = relabel.Action(strings.ToLower(v))
		}
		if v, ok := r["modulus"].(float64); ok {
			c.Modulus = uint64(v)
		}
		if err := c.Validate(model.UTF8Validation); err != nil {
			t.Fatalf("relabel config %v: %v", r, err)
		}
		out = append(out, &c)
	}
	return out
}

// serviceMonitorEndpoints are the endpoints of every ServiceMonitor; the
// job is the value of the monitor's jobLabel on the Services it selects
// (its matchLabels), as the operator names it.
func serviceMonitorEndpoints(t *testing.T, objs []object) []endpoint {
	t.Helper()
	var out []endpoint
	for _, o := range objs {
		if o.kind() != "ServiceMonitor" {
			continue
		}
		spec, _ := o["spec"].(map[string]any)
		match, _ := spec["selector"].(map[string]any)["matchLabels"].(map[string]any)
		job, _ := match[str(spec, "jobLabel")].(string)
		for _, ep := range list(spec, "endpoints") {
			path := str(ep, "path")
			if path == "" {
				path = "/metrics"
			}
			lb := labels.NewBuilder(labels.FromStrings("__metrics_path__", path, "job", job))
			if !relabel.ProcessBuilder(lb, toRelabel(t, list(ep, "relabelings"))...) {
				continue
			}
			var keep []labels.Label
			lb.Labels().Range(func(l labels.Label) {
				if !strings.HasPrefix(l.Name, "__") {
					keep = append(keep, l)
				}
			})
			out = append(out, endpoint{Where: "ServiceMonitor " + o.name() + " " + path, Labels: labels.New(keep...), Metric: toRelabel(t, list(ep, "metricRelabelings"))})
		}
	}
	return out
}

// probeEndpoints are the app chart's Probes: job is the Probe's jobName.
func probeEndpoints(t *testing.T, objs []object) []endpoint {
	t.Helper()
	var out []endpoint
	for _, o := range objs {
		if o.kind() != "Probe" {
			continue
		}
		spec, _ := o["spec"].(map[string]any)
		job := str(spec, "jobName")
		if job == "" {
			job = "probe/" + str(o, "metadata", "namespace") + "/" + o.name()
		}
		out = append(out, endpoint{Where: "Probe " + o.name(), Labels: labels.FromStrings("job", job), Metric: toRelabel(t, list(spec, "metricRelabelings"))})
	}
	return out
}

// kept applies the endpoint's metric relabelings to a series as the query
// selects it (its name and every label it matches exactly).
func (ep endpoint) kept(series labels.Labels) bool {
	lb := labels.NewBuilder(series)
	ep.Labels.Range(func(l labels.Label) { lb.Set(l.Name, l.Value) })
	for _, c := range ep.Metric {
		if !relabel.ProcessBuilder(lb, c) {
			return false
		}
	}
	return true
}

// scraping returns the endpoints a selector's job and metrics_path
// matchers accept (absent is empty, as in Prometheus).
func scraping(eps []endpoint, ms []*labels.Matcher) []endpoint {
	var out []endpoint
	for _, ep := range eps {
		ok := true
		for _, m := range ms {
			if (m.Name == "job" || m.Name == "metrics_path") && !m.Matches(ep.Labels.Get(m.Name)) {
				ok = false
			}
		}
		if ok {
			out = append(out, ep)
		}
	}
	return out
}

// appObjects renders the app chart as deploy-app installs it.
func appObjects(t *testing.T, cfg *config.Config) []object {
	t.Helper()
	data, err := deploy.Manifests(cfg, deploy.Build{Reference: "nextjs-app:homelab-0123456789ab", Digest: "sha256:" + strings.Repeat("0", 64)})
	if err != nil {
		t.Fatal(err)
	}
	return decodeAll(t, "app chart", string(data))
}

// TestScrapesKeepWhatTheDashboardReads: each selector of each panel is
// answered by at least one scrape homelab sets up (the kubelet's cAdvisor
// endpoint, kube-state-metrics, the app's Probes), and no relabeling of
// that scrape drops the series. TLS on, so that the public probe exists.
func TestScrapesKeepWhatTheDashboardReads(t *testing.T) {
	cfg, err := config.Parse("tls.yaml", []byte("domain: blog.example.com\ntls: {mode: certbot}\nemail: me@example.com\n"))
	if err != nil {
		t.Fatal(err)
	}
	stack := renderStack(t, cfg)
	eps := append(serviceMonitorEndpoints(t, stack), probeEndpoints(t, appObjects(t, cfg))...)
	_, b := build(t, cfg)
	checked := 0
	for where, expr := range expressions(b) {
		sels, err := selectorsOf(expr)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		for _, s := range sels {
			src := scraping(eps, s.LabelMatchers)
			if len(src) == 0 {
				t.Errorf("%s: no scrape homelab sets up answers %s", where, s)
				continue
			}
			series := []string{model.MetricNameLabel, s.Name}
			for _, m := range s.LabelMatchers {
				if m.Type == labels.MatchEqual && m.Name != model.MetricNameLabel {
					series = append(series, m.Name, m.Value)
				}
			}
			for _, ep := range src {
				checked++
				if !ep.kept(labels.FromStrings(series...)) {
					t.Errorf("%s: %s drops %s", where, ep.Where, s)
				}
			}
		}
	}
	if checked < 8 {
		t.Errorf("only %d selector/scrape pairs checked: the check would prove little", checked)
	}
}

// TestScrapeCheckCanFail: a relabeling that drops a metric the dashboard
// reads is caught (the chart's own cAdvisor drops container_memory_swap).
func TestScrapeCheckCanFail(t *testing.T) {
	cfg := load(t, "default")
	eps := serviceMonitorEndpoints(t, renderStack(t, cfg))
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "job", "kubelet"), labels.MustNewMatcher(labels.MatchEqual, "metrics_path", "/metrics/cadvisor")}
	src := scraping(eps, ms)
	if len(src) != 1 {
		t.Fatalf("%d endpoints serve the kubelet's /metrics/cadvisor, want 1", len(src))
	}
	swap := labels.FromStrings(model.MetricNameLabel, "container_memory_swap", "namespace", "default", "pod", "p", "container", "c")
	if src[0].kept(swap) {
		t.Error("container_memory_swap, which the chart's cAdvisor relabeling drops, counts as kept: the check cannot fail")
	}
}

// TestChartFacts: the sidecar label the app chart puts on the ConfigMap and
// the data source uid every panel uses are what kube-prometheus-stack,
// rendered with homelab's values, really configures.
func TestChartFacts(t *testing.T) {
	stack := renderStack(t, load(t, "default"))
	var env map[string]string
	var datasources string
	for _, o := range stack {
		switch {
		case o.kind() == "Deployment" && strings.HasSuffix(o.name(), "-grafana"):
			spec, _ := o["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
			for _, c := range list(spec, "containers") {
				if str(c, "name") == "grafana-sc-dashboard" {
					env = map[string]string{}
					for _, e := range list(c, "env") {
						env[str(e, "name")] = str(e, "value")
					}
				}
			}
		case o.kind() == "ConfigMap" && strings.HasSuffix(o.name(), "-grafana-datasource"):
			data, _ := o["data"].(map[string]any)
			datasources, _ = data["datasource.yaml"].(string)
		}
	}
	if env == nil {
		t.Fatal("no grafana-sc-dashboard sidecar in the rendered Grafana Deployment")
	}
	if env["LABEL"] != dashboard.SidecarLabel || env["LABEL_VALUE"] != dashboard.SidecarLabelValue {
		t.Errorf("the dashboard sidecar watches %s=%q, the app chart labels %s=%q", env["LABEL"], env["LABEL_VALUE"], dashboard.SidecarLabel, dashboard.SidecarLabelValue)
	}
	if env["NAMESPACE"] != "ALL" {
		t.Errorf("the dashboard sidecar searches namespace %q: the app chart's ConfigMap is in the monitoring namespace", env["NAMESPACE"])
	}
	var ds struct {
		Datasources []struct {
			Name, Type, UID string
			IsDefault       bool `json:"isDefault"`
		} `json:"datasources"`
	}
	if err := sigsyaml.Unmarshal([]byte(datasources), &ds); err != nil || len(ds.Datasources) == 0 {
		t.Fatalf("datasource.yaml of the chart: %v\n%s", err, datasources)
	}
	found := false
	for _, d := range ds.Datasources {
		if d.UID == dashboard.DataSourceUID && d.Type == "prometheus" && d.IsDefault {
			found = true
		}
	}
	if !found {
		t.Errorf("no default prometheus data source with uid %q in the chart's datasource.yaml:\n%s", dashboard.DataSourceUID, datasources)
	}
}

// TestBlackboxProducesProbeMetrics runs the real blackbox exporter against
// a local HTTPS server: every probe_* metric the dashboard reads is in what
// it returns, probe_http_duration_seconds with its phases.
func TestBlackboxProducesProbeMetrics(t *testing.T) {
	bin := testutil.NeedProgram(t, "prometheus-blackbox-exporter", "/usr/bin/prometheus-blackbox-exporter")
	app := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }))
	defer app.Close()
	dir := t.TempDir()
	// The in-cluster probe's module is http_2xx; the public one also
	// checks TLS. The test server's certificate is self-signed.
	conf := "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      tls_config: {insecure_skip_verify: true}\n"
	if err := os.WriteFile(filepath.Join(dir, "blackbox.yml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	testutil.StartDaemon(t, exec.Command(bin, "--config.file="+filepath.Join(dir, "blackbox.yml"), "--web.listen-address="+addr), addr)

	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/probe?module=http_2xx&target=" + url.QueryEscape(app.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the blackbox exporter's answer: %v", err)
	}
	if f := families["probe_success"]; f == nil || f.Metric[0].GetGauge().GetValue() != 1 {
		t.Fatalf("the probe of %s did not succeed: %v", app.URL, f)
	}
	for name, src := range metricSources {
		if src != probeJob {
			continue
		}
		if families[name] == nil {
			t.Errorf("the blackbox exporter does not produce %s", name)
		}
	}
	phases := map[string]bool{}
	for _, m := range families["probe_http_duration_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "phase" {
				phases[l.GetValue()] = true
			}
		}
	}
	for _, p := range []string{"resolve", "connect", "tls", "processing", "transfer"} {
		if !phases[p] {
			t.Errorf("probe_http_duration_seconds has no phase %q (has %v)", p, phases)
		}
	}
	expiry := families["probe_ssl_earliest_cert_expiry"].GetMetric()
	if len(expiry) == 0 || expiry[0].GetGauge().GetValue() < float64(time.Now().Unix()) {
		t.Errorf("probe_ssl_earliest_cert_expiry %v is not a future Unix time: the days-left panel would be wrong", expiry)
	}
}
