package dashboard_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	sdk "github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/dashboard"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// configs are the configurations the dashboard is checked over.
var configs = map[string]string{
	"default": "",
	"custom": `
app:
  name: blog
  namespace: web
  serviceName: blog
monitoring:
  namespace: observability
  release: mon
  probe: {name: blog-up}
alerts:
  slowAfter: 500ms
  certificateDays: 21
  restarts: {count: 5, window: 1h}
`,
}

func load(t *testing.T, name string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(name+".yaml", []byte(configs[name]))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// board is the part of Grafana's dashboard JSON the tests read.
type board struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID          int         `json:"id"`
	Type        string      `json:"type"`
	Title       string      `json:"title"`
	Description string      `json:"description"`
	Datasource  *dataSource `json:"datasource"`
	GridPos     struct{ H, W, X, Y int }
	Targets     []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *dataSource `json:"datasource"`
	} `json:"targets"`
}

type dataSource struct{ Type, UID string }

func build(t *testing.T, cfg *config.Config) ([]byte, board) {
	t.Helper()
	data, err := dashboard.JSON(dashboard.For(cfg))
	if err != nil {
		t.Fatal(err)
	}
	var b board
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	return data, b
}

// TestDashboardGolden: the JSON is the reviewed one, and the same config
// gives the same bytes (deploy-app compares values with the stored release:
// a dashboard that changed on every build would make every re-run a change).
func TestDashboardGolden(t *testing.T) {
	for name := range configs {
		t.Run(name, func(t *testing.T) {
			cfg := load(t, name)
			first, _ := build(t, cfg)
			for range 5 {
				if again, _ := build(t, cfg); string(again) != string(first) {
					t.Fatal("two builds of the same dashboard differ")
				}
			}
			// Indented, for review; Grafana reads the compact form.
			var indented bytes.Buffer
			if err := json.Indent(&indented, first, "", "  "); err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, filepath.Join("dashboard", name+".json"), indented.Bytes())
		})
	}
}

// TestDashboardDecodesStrictly: the JSON reads back into Grafana's
// dashboard schema (as the foundation SDK generates it from Grafana's own
// schema) with no unknown field and passes its validation.
func TestDashboardDecodesStrictly(t *testing.T) {
	// The SDK decodes panel options and queries by the plugins it knows
	// (registered globally by the SDK; Grafana's built-in panels).
	plugins.RegisterDefaultPlugins()
	for name := range configs {
		t.Run(name, func(t *testing.T) {
			cfg := load(t, name)
			data, _ := build(t, cfg)
			var back sdk.Dashboard
			if err := strictErr(back.UnmarshalJSONStrict(data)); err != nil {
				t.Fatalf("the dashboard does not decode strictly into Grafana's schema: %v", err)
			}
			if err := back.Validate(); err != nil {
				t.Fatalf("the dashboard fails the schema's validation: %v", err)
			}
			if back.Uid == nil || *back.Uid != dashboard.UID(cfg.App.Name) || len(back.Panels) != 7 {
				t.Errorf("decoded uid %v, %d panels", back.Uid, len(back.Panels))
			}
		})
	}
}

// strictErr is err unless it is an empty cog.BuildErrors: the SDK's
// UnmarshalJSONStrict (v0.0.22) returns its error list as an error even
// when the list is empty (a typed nil).
func strictErr(err error) error {
	var list cog.BuildErrors
	if errors.As(err, &list) && len(list) == 0 {
		return nil
	}
	return err
}

// TestDashboardPanels: every panel the issue asks for is there, reads the
// chart's Prometheus data source, and sits inside Grafana's 24-column grid
// without overlapping another.
func TestDashboardPanels(t *testing.T) {
	cfg := load(t, "default")
	_, b := build(t, cfg)
	if b.UID != dashboard.UID(cfg.App.Name) || b.Title != dashboard.Title(cfg.App.Name) {
		t.Errorf("uid %q title %q", b.UID, b.Title)
	}
	want := []string{"Up or down", "Response time", "HTTP status", "Certificate days left", "Container restarts", "Memory", "CPU"}
	var got []string
	ids := map[int]bool{}
	cells := map[[2]int]string{}
	for _, p := range b.Panels {
		got = append(got, p.Title)
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("panel %q: id %d is zero or taken", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Description == "" {
			t.Errorf("panel %q has no description", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != dashboard.DataSourceUID || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q data source %+v, want the chart's Prometheus (uid %s)", p.Title, p.Datasource, dashboard.DataSourceUID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != dashboard.DataSourceUID {
				t.Errorf("panel %q query %s data source %+v", p.Title, tg.RefID, tg.Datasource)
			}
		}
		g := p.GridPos
		if g.W == 0 || g.H == 0 || g.X+g.W > 24 {
			t.Errorf("panel %q at %+v: outside the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, taken := cells[[2]int{x, y}]; taken {
					t.Fatalf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
				}
				cells[[2]int{x, y}] = p.Title
			}
		}
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("panels %v, want %v", got, want)
	}
	for _, p := range b.Panels {
		if p.Title == "Certificate days left" && !strings.Contains(p.Description, "No data when TLS is off") {
			t.Errorf("the certificate panel does not say it is empty without TLS: %q", p.Description)
		}
	}
}

// TestUID: one uid per app name, always the same, within Grafana's rules
// (at most 40 characters of letters, digits, '-' and '_').
func TestUID(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9_-]{1,40}$`)
	long := strings.Repeat("a", 63)
	longer := strings.Repeat("a", 62) + "b"
	seen := map[string]string{}
	for _, name := range []string{"nextjs-app", "blog", "a", long, longer, strings.Repeat("x", 32)} {
		uid := dashboard.UID(name)
		if !valid.MatchString(uid) {
			t.Errorf("UID(%q) = %q: not a valid Grafana uid", name, uid)
		}
		if uid != dashboard.UID(name) {
			t.Errorf("UID(%q) is not stable", name)
		}
		if other, ok := seen[uid]; ok {
			t.Errorf("UID(%q) = UID(%q) = %q", name, other, uid)
		}
		seen[uid] = name
	}
	if got := dashboard.UID("nextjs-app"); got != "homelab-nextjs-app" {
		t.Errorf("UID(nextjs-app) = %q: a short name should read as itself", got)
	}
	cfg := load(t, "default")
	if got, want := dashboard.URL(cfg.GrafanaURL(), "nextjs-app"), cfg.GrafanaURL()+"d/homelab-nextjs-app"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
}

// grafanaVars are the Grafana variables the queries may use, with a value
// Prometheus would see.
var grafanaVars = strings.NewReplacer("$__rate_interval", "2m")

// expressions are every query of every panel of the JSON, keyed by panel
// and query.
func expressions(b board) map[string]string {
	out := map[string]string{}
	for _, p := range b.Panels {
		for _, tg := range p.Targets {
			out[fmt.Sprintf("panel %q query %s", p.Title, tg.RefID)] = tg.Expr
		}
	}
	return out
}

// selectorsOf parses expr with Prometheus's own parser and returns its
// series selectors.
func selectorsOf(expr string) ([]*parser.VectorSelector, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		return nil, err
	}
	var sels []*parser.VectorSelector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			sels = append(sels, vs)
		}
		return nil
	})
	return sels, nil
}

// source says which scrape produces a metric the dashboard reads: the
// blackbox probe of the app (or of the public URL), kube-state-metrics, or
// cAdvisor on the kubelet.
type source int

const (
	probeJob source = iota
	kubeStateMetrics
	cadvisor
)

// metricSources are the only metric names the dashboard may read, each
// with the scrape that produces it (scrape_test.go proves each one is
// produced and kept).
var metricSources = map[string]source{
	"probe_success":                            probeJob,
	"probe_duration_seconds":                   probeJob,
	"probe_http_duration_seconds":              probeJob,
	"probe_http_status_code":                   probeJob,
	"probe_ssl_earliest_cert_expiry":           probeJob,
	"kube_pod_container_status_restarts_total": kubeStateMetrics,
	"kube_pod_container_resource_limits":       kubeStateMetrics,
	"container_memory_working_set_bytes":       cadvisor,
	"container_cpu_usage_seconds_total":        cadvisor,
}

// TestQueriesParseAndReadKnownSeries: every panel query parses with
// Prometheus's parser, reads only the metrics listed in metricSources, and
// pins each selector to the scrape that produces it (job, and the
// cAdvisor path on the kubelet), the app's namespace and its Deployment's
// pods.
func TestQueriesParseAndReadKnownSeries(t *testing.T) {
	for name := range configs {
		t.Run(name, func(t *testing.T) {
			cfg := load(t, name)
			_, b := build(t, cfg)
			exprs := expressions(b)
			if len(exprs) < 9 {
				t.Fatalf("only %d queries found in the JSON: the check would prove little", len(exprs))
			}
			read := map[string]bool{}
			for where, expr := range exprs {
				for _, f := range checkQuery(cfg, expr) {
					t.Errorf("%s: %s\n  %s", where, f, expr)
				}
				sels, _ := selectorsOf(expr)
				for _, s := range sels {
					read[s.Name] = true
				}
			}
			for m := range metricSources {
				if !read[m] {
					t.Errorf("%s is listed as read but no panel reads it", m)
				}
			}
		})
	}
}

// checkQuery returns what is wrong with one query.
func checkQuery(cfg *config.Config, expr string) []string {
	sels, err := selectorsOf(expr)
	if err != nil {
		return []string{"does not parse: " + err.Error()}
	}
	if len(sels) == 0 {
		return []string{"reads no series"}
	}
	var found []string
	for _, s := range sels {
		src, known := metricSources[s.Name]
		if !known {
			found = append(found, fmt.Sprintf("reads %q, which no scrape homelab sets up is known to produce", s.Name))
			continue
		}
		eq := map[string]string{}
		var podRe *labels.Matcher
		for _, m := range s.LabelMatchers {
			switch {
			case m.Type == labels.MatchEqual:
				eq[m.Name] = m.Value
			case m.Type == labels.MatchRegexp && m.Name == "pod":
				podRe = m
			}
		}
		switch src {
		case probeJob:
			if j := eq["job"]; j != cfg.Monitoring.Probe.Name && j != dashboard.PublicProbeJob(cfg) {
				found = append(found, fmt.Sprintf("%s: job %q is neither the app's probe %q nor the public one %q", s.Name, j, cfg.Monitoring.Probe.Name, dashboard.PublicProbeJob(cfg)))
			}
		case kubeStateMetrics, cadvisor:
			wantJob := "kube-state-metrics"
			if src == cadvisor {
				wantJob = "kubelet"
				if eq["metrics_path"] != "/metrics/cadvisor" {
					found = append(found, fmt.Sprintf("%s: not pinned to the kubelet's cAdvisor endpoint (metrics_path %q)", s.Name, eq["metrics_path"]))
				}
			}
			if eq["job"] != wantJob {
				found = append(found, fmt.Sprintf("%s: job %q, want %q", s.Name, eq["job"], wantJob))
			}
			if eq["namespace"] != cfg.App.Namespace || eq["container"] != cfg.App.Name {
				found = append(found, fmt.Sprintf("%s: namespace %q container %q, want the app's %q %q", s.Name, eq["namespace"], eq["container"], cfg.App.Namespace, cfg.App.Name))
			}
			if podRe == nil {
				found = append(found, fmt.Sprintf("%s: no pod matcher", s.Name))
				continue
			}
			// The Deployment's pods match, another Deployment's whose name
			// starts the same do not.
			dep := cfg.App.DeploymentName()
			for podName, want := range map[string]bool{
				dep + "-7d9f8b6c5d-x2x9z":        true,
				dep + "-5b7c9d-abcde":            true,
				dep + "-canary-7d9f8b6c5d-x2x9z": false,
				"other-" + dep + "-7d9f8b-x2x9z": false,
				dep:                              false,
			} {
				if podRe.Matches(podName) != want {
					found = append(found, fmt.Sprintf("%s: pod matcher %s matches %q: %v, want %v", s.Name, podRe, podName, !want, want))
				}
			}
		}
	}
	sort.Strings(found)
	return found
}

// TestQueryCheckCanFail: the check above reports a query on an unknown
// metric, on the wrong job, without the cAdvisor path, and one that does
// not parse.
func TestQueryCheckCanFail(t *testing.T) {
	cfg := load(t, "default")
	for expr, want := range map[string]string{
		`probe_success{job="other"}`: "is neither the app's probe",
		`container_memory_usage_bytes{job="kubelet", metrics_path="/metrics/cadvisor", namespace="default", container="nextjs-app", pod=~"nextjs-app-deployment-[a-z0-9]+-[a-z0-9]{5}"}`: "no scrape homelab sets up",
		`container_memory_working_set_bytes{job="kubelet", namespace="default", container="nextjs-app", pod=~"nextjs-app-deployment-[a-z0-9]+-[a-z0-9]{5}"}`:                             "not pinned to the kubelet's cAdvisor endpoint",
		`container_memory_working_set_bytes{job="kubelet", metrics_path="/metrics/cadvisor", namespace="default", container="nextjs-app", pod=~"nextjs-app-deployment.*"}`:               "pod matcher",
		`sum(rate(probe_success{job="nextjs-http"}[5m])`: "does not parse",
	} {
		found := strings.Join(checkQuery(cfg, expr), "; ")
		if !strings.Contains(found, want) {
			t.Errorf("%s: findings %q, want one saying %q", expr, found, want)
		}
	}
}
