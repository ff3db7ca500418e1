package render

// Helpers for scrapeprofile_test.go: render the real kube-prometheus-stack
// archive with given values, read the rules, dashboards and scrape
// relabelings out of it, and apply them with Prometheus's own packages.

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/promql/parser"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// stackArchive is the real chart homelab installs, committed as test data.
const stackArchive = "e2e/charts/kube-prometheus-stack-88.5.3.tgz"

// loadStack loads the archive afresh: rendering processes its
// dependencies in place (drops disabled subcharts), so a chart is not
// reused for other values.
func loadStack(t *testing.T) *chart.Chart { return loadArchive(t, stackArchive) }

// loadArchive loads a chart archive (path relative to the repository).
func loadArchive(t *testing.T, archive string) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(filepath.Join(testutil.RepoRoot(t), archive))
	if err != nil {
		t.Fatalf("load %s: %v", archive, err)
	}
	return ch
}

// defaultConfig is the embedded default configuration.
func defaultConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse("default.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// ourStackValues are the kube-prometheus-stack values homelab renders for
// the default configuration.
func ourStackValues(t *testing.T) []byte {
	t.Helper()
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.Named(defaultConfig(t), layout.ValuesStack)
	if err != nil {
		t.Fatal(err)
	}
	return f.Data
}

// object is one rendered Kubernetes object.
type object map[string]any

func (o object) kind() string { s, _ := o["kind"].(string); return s }
func (o object) name() string { return str(o, "metadata", "name") }

// renderStack renders the chart as `helm template` would for Kubernetes
// v1.37.2 with the monitoring CRDs present, with values (YAML) over the
// chart's own.
func renderStack(t *testing.T, values []byte) []object {
	t.Helper()
	return renderChart(t, loadStack(t), defaultConfig(t).Monitoring.Release, values)
}

// renderChart renders ch as release (in the monitoring namespace) like
// renderStack.
func renderChart(t *testing.T, ch *chart.Chart, release string, values []byte) []object {
	t.Helper()
	vals, err := chartutil.ReadValues(values)
	if err != nil {
		t.Fatalf("values: %v", err)
	}
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		t.Fatalf("dependencies: %v", err)
	}
	caps := *chartutil.DefaultCapabilities
	caps.KubeVersion = chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}
	caps.APIVersions = append(append(chartutil.VersionSet{}, caps.APIVersions...),
		"monitoring.coreos.com/v1", "monitoring.coreos.com/v1alpha1")
	opts := chartutil.ReleaseOptions{Name: release, Namespace: defaultConfig(t).Monitoring.Namespace, IsInstall: true, Revision: 1}
	rv, err := chartutil.ToRenderValues(ch, vals, opts, &caps)
	if err != nil {
		t.Fatalf("render values: %v", err)
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		t.Fatalf("render %s: %v", ch.Name(), err)
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
		for _, doc := range splitYAML(out[n]) {
			var o object
			if err := sigsyaml.Unmarshal([]byte(doc), &o); err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			if o != nil {
				objs = append(objs, o)
			}
		}
	}
	return objs
}

func splitYAML(s string) []string {
	var docs []string
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(s, -1) {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

func str(m map[string]any, path ...string) string {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[p]
	}
	s, _ := v.(string)
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

// query is one PromQL expression a rule or a dashboard panel evaluates.
type query struct {
	// Where: "PrometheusRule NAME / group / AlertOrRecord", or
	// "dashboard TITLE / panel TITLE".
	Where string
	Expr  string
}

// ruleQueries are the expressions of every rule the rendered objects hold
// (the chart leaves out disabled groups and alerts).
func ruleQueries(objs []object) []query {
	var qs []query
	for _, o := range objs {
		if o.kind() != "PrometheusRule" {
			continue
		}
		spec, _ := o["spec"].(map[string]any)
		for _, g := range list(spec, "groups") {
			for _, r := range list(g, "rules") {
				name := str(r, "alert")
				if name == "" {
					name = str(r, "record")
				}
				qs = append(qs, query{Where: fmt.Sprintf("PrometheusRule %s / %s / %s", o.name(), str(g, "name"), name), Expr: str(r, "expr")})
			}
		}
	}
	return qs
}

// dashboardQueries are the panel expressions of every Grafana dashboard
// ConfigMap in the rendered objects.
func dashboardQueries(t *testing.T, objs []object) []query {
	t.Helper()
	var qs []query
	for _, o := range objs {
		if o.kind() != "ConfigMap" {
			continue
		}
		data, _ := o["data"].(map[string]any)
		for key, v := range data {
			if !strings.HasSuffix(key, ".json") {
				continue
			}
			var d struct {
				Title  string           `json:"title"`
				Panels []map[string]any `json:"panels"`
				Rows   []map[string]any `json:"rows"`
			}
			if err := json.Unmarshal([]byte(v.(string)), &d); err != nil {
				t.Fatalf("dashboard %s: %v", key, err)
			}
			var walk func(ps []map[string]any)
			walk = func(ps []map[string]any) {
				for _, p := range ps {
					for _, tg := range list(p, "targets") {
						if e := str(tg, "expr"); e != "" {
							qs = append(qs, query{Where: fmt.Sprintf("dashboard %q / panel %q", d.Title, str(p, "title")), Expr: e})
						}
					}
					walk(list(p, "panels"))
				}
			}
			walk(d.Panels)
			for _, r := range d.Rows {
				walk(list(r, "panels"))
			}
		}
	}
	return qs
}

// appRuleQueries are homelab's own alert rules for the app: from the app
// chart (charts/app) when it exists, else from templates/app.yaml.tmpl.
func appRuleQueries(t *testing.T) []query {
	t.Helper()
	root := testutil.RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "charts/app/Chart.yaml")); err == nil {
		ch, err := loader.LoadDir(filepath.Join(root, "charts/app"))
		if err != nil {
			t.Fatal(err)
		}
		cfg := defaultConfig(t)
		// What deploy-app sets that the chart requires; the rule's
		// expression takes the probe's name.
		vals := map[string]any{
			"image": map[string]any{"reference": cfg.App.Image, "digest": "sha256:" + strings.Repeat("0", 64)},
			"probe": map[string]any{"name": cfg.Monitoring.Probe.Name, "target": cfg.AppTarget(), "prober": cfg.BlackboxURL()},
		}
		rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "app", Namespace: "default", IsInstall: true}, chartutil.DefaultCapabilities)
		if err != nil {
			t.Fatal(err)
		}
		out, err := engine.Render(ch, rv)
		if err != nil {
			t.Fatal(err)
		}
		var objs []object
		for n, body := range out {
			if !strings.HasSuffix(n, ".yaml") {
				continue
			}
			for _, doc := range splitYAML(body) {
				var o object
				if err := sigsyaml.Unmarshal([]byte(doc), &o); err == nil && o != nil {
					objs = append(objs, o)
				}
			}
		}
		qs := ruleQueries(objs)
		if len(qs) == 0 {
			t.Fatal("charts/app renders no PrometheusRule")
		}
		return qs
	}
	data, err := os.ReadFile(filepath.Join(root, "templates/app.yaml.tmpl"))
	if err != nil {
		t.Fatalf("no app alert rules found (charts/app or templates/app.yaml.tmpl): %v", err)
	}
	// The template's expressions with each template action as a label value.
	var qs []query
	action := regexp.MustCompile(`\{\{[^}]*\}\}`)
	for _, m := range regexp.MustCompile(`(?m)^\s*expr:\s*(.+)$`).FindAllStringSubmatch(string(data), -1) {
		qs = append(qs, query{Where: "templates/app.yaml.tmpl", Expr: action.ReplaceAllString(m[1], "x")})
	}
	return qs
}

// selector is one series selector in a query.
type selector struct {
	Name     string
	Matchers []*labels.Matcher
}

var grafanaVar = strings.NewReplacer(
	"$__rate_interval", "5m", "${__rate_interval}", "5m", "$__interval", "1m", "${__interval}", "1m",
	"$__range", "1h", "${__range}", "1h", "$__range_s", "3600",
)

var (
	// label="$var" and label=~"$var": any value.
	varMatcher = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|=|!=|!~)\s*"[^"]*\$[^"]*"`)
	// A bare variable elsewhere (by ($var), topk($n, ...)).
	bareVar = regexp.MustCompile(`\$\{?[a-zA-Z_][a-zA-Z0-9_:]*\}?`)
)

var promql = parser.NewParser(parser.Options{EnableExperimentalFunctions: true, ExperimentalDurationExpr: true})

// selectors parses expr (Grafana variables stand for any value) and returns
// every series selector in it.
func selectors(expr string) ([]selector, error) {
	e := grafanaVar.Replace(expr)
	e = varMatcher.ReplaceAllStringFunc(e, func(m string) string {
		l := varMatcher.FindStringSubmatch(m)[1]
		return l + `=~".*"`
	})
	e = bareVar.ReplaceAllString(e, "1")
	ast, err := promql.ParseExpr(e)
	if err != nil {
		return nil, err
	}
	var out []selector
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := selector{Name: vs.Name}
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel {
				if m.Type == labels.MatchEqual {
					s.Name = m.Value
				}
				continue
			}
			s.Matchers = append(s.Matchers, m)
		}
		out = append(out, s)
		return nil
	})
	return out, nil
}

// target is one scrape endpoint of a ServiceMonitor or PodMonitor: the
// labels every series from it carries (job, metrics_path, ...) and its
// metricRelabelings.
type target struct {
	Monitor string
	Path    string
	Labels  labels.Labels
	Relabel []*relabel.Config
	// Raw are the metricRelabelings as rendered, for messages.
	Raw []map[string]any
}

func (tg target) String() string { return tg.Monitor + " " + tg.Path }
func (tg target) job() string    { return tg.Labels.Get("job") }

// Services the chart selects but does not render: the kubelet Service the
// operator creates (label k8s-app=kubelet) and the API server's
// "kubernetes" Service (component=apiserver).
var unrenderedServices = []object{
	{"kind": "Service", "metadata": map[string]any{"name": "kubelet", "namespace": "kube-system",
		"labels": map[string]any{"k8s-app": "kubelet", "app.kubernetes.io/name": "kubelet"}}},
	{"kind": "Service", "metadata": map[string]any{"name": "kubernetes", "namespace": "default",
		"labels": map[string]any{"component": "apiserver", "provider": "kubernetes"}}},
}

// targets returns every endpoint of every ServiceMonitor and PodMonitor.
func targets(t *testing.T, objs []object) []target {
	t.Helper()
	services := append(append([]object{}, unrenderedServices...), objs...)
	var out []target
	for _, o := range objs {
		var eps []map[string]any
		spec, _ := o["spec"].(map[string]any)
		switch o.kind() {
		case "ServiceMonitor":
			eps = list(spec, "endpoints")
		case "PodMonitor":
			eps = list(spec, "podMetricsEndpoints")
		default:
			continue
		}
		job := jobOf(t, o, spec, services)
		for _, ep := range eps {
			path := str(ep, "path")
			if path == "" {
				path = "/metrics"
			}
			// The endpoint's target relabelings run on the discovered
			// labels; what survives without the __ prefix is on every series.
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
			out = append(out, target{
				Monitor: o.kind() + " " + o.name(), Path: path, Labels: labels.New(keep...),
				Relabel: toRelabel(t, list(ep, "metricRelabelings")), Raw: list(ep, "metricRelabelings"),
			})
		}
	}
	return out
}

// jobOf is the job label the operator gives a monitor's series: the value
// of the selected Service's jobLabel, else the Service's name.
func jobOf(t *testing.T, o object, spec map[string]any, services []object) string {
	t.Helper()
	jobLabel := str(spec, "jobLabel")
	sel, _ := spec["selector"].(map[string]any)
	match, _ := sel["matchLabels"].(map[string]any)
	if o.kind() == "PodMonitor" {
		if v, ok := match[jobLabel].(string); ok && jobLabel != "" {
			return v
		}
		return strings.TrimPrefix(str(o, "metadata", "namespace")+"/"+o.name(), "/")
	}
	for _, s := range services {
		if s.kind() != "Service" {
			continue
		}
		meta, _ := s["metadata"].(map[string]any)
		ls, _ := meta["labels"].(map[string]any)
		ok := len(match) > 0
		for k, v := range match {
			if ls[k] != v {
				ok = false
			}
		}
		if !ok {
			continue
		}
		if v, ok := ls[jobLabel].(string); ok && jobLabel != "" {
			return v
		}
		return s.name()
	}
	t.Fatalf("%s %s: no Service matches its selector %v", o.kind(), o.name(), match)
	return ""
}

// toRelabel turns the operator's relabel configs (camelCase) into
// Prometheus's, with Prometheus's defaults.
func toRelabel(t *testing.T, raw []map[string]any) []*relabel.Config {
	t.Helper()
	var out []*relabel.Config
	for _, r := range raw {
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
		cc := c
		out = append(out, &cc)
	}
	return out
}

// dropper applies a target's metricRelabelings to one series: whether it is
// kept, and if not, which relabeling (index) dropped it.
func (tg target) apply(series labels.Labels) (keep bool, by int) {
	lb := labels.NewBuilder(series)
	tg.Labels.Range(func(l labels.Label) { lb.Set(l.Name, l.Value) })
	for i, c := range tg.Relabel {
		if !relabel.ProcessBuilder(lb, c) {
			return false, i
		}
	}
	return true, -1
}

// matches reports whether a selector can select series of this target: each
// of its matchers on a label the target relabelings set (job, and
// metrics_path on the kubelet's endpoints; absent is empty) accepts the
// target's value. Matchers on other labels are taken to match some series.
func (s selector) matches(tg target) bool {
	for _, m := range s.Matchers {
		if m.Name == "job" || m.Name == "metrics_path" || tg.Labels.Has(m.Name) {
			if !m.Matches(tg.Labels.Get(m.Name)) {
				return false
			}
		}
	}
	return true
}

// pinsJob reports whether the selector names the job explicitly.
func (s selector) pinsJob() bool {
	for _, m := range s.Matchers {
		if m.Name == "job" && m.Type == labels.MatchEqual {
			return true
		}
	}
	return false
}

// Bucket boundaries tried for a selector on X_bucket: a profile that drops
// every one of them has dropped the histogram.
var probeLE = []string{"0.005", "0.025", "0.1", "0.5", "1", "2.5", "5", "10", "60", "+Inf"}

// droppedBy applies the target's metricRelabelings to a series as the
// selector would read it; -1 if it is kept.
func (s selector) droppedBy(tg target) int {
	base := []string{model.MetricNameLabel, s.Name}
	for _, m := range s.Matchers {
		if m.Type == labels.MatchEqual && m.Name != "le" && tg.Labels.Get(m.Name) == "" {
			base = append(base, m.Name, m.Value)
		}
	}
	les := []string{""}
	if strings.HasSuffix(s.Name, "_bucket") {
		les = probeLE
	}
	by := -1
	for _, le := range les {
		ls := base
		if le != "" {
			ls = append(append([]string{}, base...), "le", le)
		}
		keep, i := tg.apply(labels.FromStrings(ls...))
		if keep {
			return -1
		}
		by = i
	}
	return by
}

// finding is a query that reads a series the profile drops.
type finding struct {
	Where, Metric, Target, Relabel string
}

func (f finding) String() string {
	return fmt.Sprintf("%s reads %s, which %s drops (metricRelabelings: %s)", f.Where, f.Metric, f.Target, f.Relabel)
}

// recorded is a recorded scrape of some targets: target key (monitor +
// path) -> metric names the target serves.
type recorded map[string]map[string]bool

// checkQueries returns every query that reads a metric some target drops:
// the selector matches the target (job, metrics_path), the target serves
// the metric (it is in the target's recording; a target without a recording
// is taken to serve whatever a selector pinned to its job asks for) and the
// target's metricRelabelings drop it, while no other matching target with
// a recording keeps it (that is a duplicate dropped on purpose).
func checkQueries(t *testing.T, qs []query, tgs []target, rec recorded) (found []finding, unparsed []query) {
	t.Helper()
	seen := map[string]bool{}
	for _, q := range qs {
		sels, err := selectors(q.Expr)
		if err != nil {
			unparsed = append(unparsed, q)
			continue
		}
		for _, s := range sels {
			if s.Name == "" || s.Name == "up" || strings.HasPrefix(s.Name, "scrape_") || strings.Contains(s.Name, ":") {
				continue // synthetic or recorded series: not scraped
			}
			var drops []finding
			keptElsewhere := false
			for _, tg := range tgs {
				if !s.matches(tg) {
					continue
				}
				names, hasRec := rec[tg.String()]
				serves := (hasRec && names[s.Name]) || (!hasRec && (s.pinsJob() || !hasJobMatcher(s)))
				if !serves {
					if hasRec && s.pinsJob() && !names[s.Name] {
						// Pinned to this job but not in the recording: check
						// it anyway, the recording may have missed it.
						serves = true
					} else {
						continue
					}
				}
				if i := s.droppedBy(tg); i >= 0 {
					raw, _ := json.Marshal(tg.Raw[i])
					drops = append(drops, finding{Where: q.Where, Metric: s.Name, Target: tg.String() + " (job " + tg.job() + ")", Relabel: fmt.Sprintf("#%d %s", i, raw)})
				} else if hasRec && names[s.Name] {
					keptElsewhere = true
				}
			}
			if keptElsewhere {
				continue
			}
			for _, f := range drops {
				if k := f.String(); !seen[k] {
					seen[k] = true
					found = append(found, f)
				}
			}
		}
	}
	return found, unparsed
}

func hasJobMatcher(s selector) bool {
	for _, m := range s.Matchers {
		if m.Name == "job" {
			return true
		}
	}
	return false
}

// readExposition reads a gzip'd Prometheus text exposition: every series (name and
// labels; values are ignored) and each family's type.
func readExposition(t *testing.T, path string) (series []labels.Labels, types map[string]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	types = map[string]string{}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# TYPE ") {
			fs := strings.Fields(line)
			if len(fs) == 4 {
				types[fs[2]] = fs[3]
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// name{labels} value [timestamp]: the parser reads the metric part.
		end := strings.LastIndex(line, "}")
		if end < 0 {
			end = strings.IndexByte(line, ' ') - 1
		}
		ls, err := promql.ParseMetric(line[:end+1])
		if err != nil {
			t.Fatalf("%s: %q: %v", path, line, err)
		}
		series = append(series, ls)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return series, types
}

// mergeAsK3s merges the scrapes of separate components into what one
// registry shared by all of them serves (k3s runs them in one process):
// the union of the series, a series present in several (go_*, process_*,
// rest_client_*, ...) once.
func mergeAsK3s(parts ...[]labels.Labels) []labels.Labels {
	seen := map[string]bool{}
	var out []labels.Labels
	for _, p := range parts {
		for _, s := range p {
			k := s.String()
			if !seen[k] {
				seen[k] = true
				out = append(out, s)
			}
		}
	}
	return out
}

func nameSet(series []labels.Labels) map[string]bool {
	m := map[string]bool{}
	for _, s := range series {
		m[s.Get(model.MetricNameLabel)] = true
	}
	return m
}

// count applies the target's metricRelabelings to each series: how many
// are kept, and the kept series.
func (tg target) count(series []labels.Labels) (kept []labels.Labels) {
	for _, s := range series {
		if ok, _ := tg.apply(s); ok {
			kept = append(kept, s)
		}
	}
	return kept
}

// findTarget returns the target of a monitor whose name ends in suffix and
// whose path is path.
func findTarget(t *testing.T, tgs []target, suffix, path string) target {
	t.Helper()
	for _, tg := range tgs {
		if strings.HasSuffix(tg.Monitor, suffix) && tg.Path == path {
			return tg
		}
	}
	var have []string
	for _, tg := range tgs {
		have = append(have, tg.String())
	}
	t.Fatalf("no scrape target %s%s among %v", suffix, path, have)
	return target{}
}
