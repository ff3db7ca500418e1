package render

// The scrape profile in templates/kube-prometheus-stack.yaml.tmpl, proven
// against the real chart (e2e/charts) and a recorded k3s-shaped scrape
// (testdata/scrapeprofile, see its README.md).

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/homelab-dev/homelab/pkg/testutil"
)

// The endpoints k3s serves its combined registry on: the kubelet's
// /metrics and the API server's.
const (
	kubeletMonitor   = "-kubelet"
	apiserverMonitor = "-apiserver"
)

// k3sScrape is the recorded scrape: every component's series merged as
// k3s's single registry serves them, and which metric families each
// component serves on its own.
type k3sScrape struct {
	Combined []labels.Labels
	Own      map[string]map[string]bool // component -> families
	// Types maps histogram and summary families to their type, to tell
	// X_bucket, X_sum and X_count apart from a family named so.
	Types map[string]string
}

func loadK3sScrape(t *testing.T) k3sScrape {
	t.Helper()
	dir := filepath.Join(testutil.RepoRoot(t), "testdata/scrapeprofile")
	sc := k3sScrape{Own: map[string]map[string]bool{}, Types: map[string]string{}}
	var parts [][]labels.Labels
	names := map[string]map[string]bool{}
	for _, c := range []string{"kubelet", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		s, types := readExposition(t, filepath.Join(dir, c+".prom.gz"))
		if len(s) == 0 {
			t.Fatalf("%s: no series", c)
		}
		for f, ty := range types {
			if ty == "histogram" || ty == "summary" {
				sc.Types[f] = ty
			}
		}
		names[c] = nameSet(s)
		parts = append(parts, s)
	}
	for c, ns := range names {
		sc.Own[c] = map[string]bool{}
		for n := range ns {
			sc.Own[c][sc.family(n)] = true
		}
	}
	sc.Combined = mergeAsK3s(parts...)
	return sc
}

// family is the metric family a series name belongs to.
func (sc k3sScrape) family(name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && sc.Types[base] != "" {
			return base
		}
	}
	return name
}

// owns says whether a family is the component's own. The API server owns
// the apiserver_* and aggregator_* families whoever registers them: the
// upstream kubelet registers some (API server libraries are linked into
// it) but never fills them, and on k3s their series are the API server's.
func (sc k3sScrape) owns(component, family string) bool {
	apiserverLib := strings.HasPrefix(family, "apiserver_") || strings.HasPrefix(family, "aggregator_")
	switch {
	case component == "kube-apiserver" && apiserverLib:
		return true
	case component != "kube-apiserver" && apiserverLib:
		return false
	}
	return sc.Own[component][family]
}

// recording says which names the two k3s endpoints serve: the whole
// combined registry, both.
func (sc k3sScrape) recording(tgs []target, t *testing.T) recorded {
	all := nameSet(sc.Combined)
	return recorded{
		findTarget(t, tgs, kubeletMonitor, "/metrics").String():   all,
		findTarget(t, tgs, apiserverMonitor, "/metrics").String(): all,
	}
}

// foreign are the families in the combined registry that the component
// does not serve on its own: on its endpoint they are k3s's duplicates.
func (sc k3sScrape) foreign(component string) map[string]bool {
	out := map[string]bool{}
	for _, s := range sc.Combined {
		if f := sc.family(s.Get(model.MetricNameLabel)); !sc.owns(component, f) {
			out[f] = true
		}
	}
	return out
}

// seriesCount is what Prometheus would store from the two k3s endpoints.
type seriesCount struct {
	Kubelet, APIServer int
	KubeletKept        []labels.Labels
	APIServerKept      []labels.Labels
}

func (c seriesCount) total() int { return c.Kubelet + c.APIServer }

func countK3s(t *testing.T, sc k3sScrape, tgs []target) seriesCount {
	t.Helper()
	k := findTarget(t, tgs, kubeletMonitor, "/metrics").count(sc.Combined)
	a := findTarget(t, tgs, apiserverMonitor, "/metrics").count(sc.Combined)
	return seriesCount{Kubelet: len(k), APIServer: len(a), KubeletKept: k, APIServerKept: a}
}

// topFamilies lists the biggest metric families in series.
func topFamilies(series []labels.Labels, n int) string {
	count := map[string]int{}
	for _, s := range series {
		count[s.Get(model.MetricNameLabel)]++
	}
	names := make([]string, 0, len(count))
	for k := range count {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if count[names[i]] != count[names[j]] {
			return count[names[i]] > count[names[j]]
		}
		return names[i] < names[j]
	})
	if len(names) > n {
		names = names[:n]
	}
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, " %s %d,", k, count[k])
	}
	return strings.TrimSuffix(b.String(), ",")
}

// Every alerting and recording rule the chart keeps with our values, and
// homelab's own app alert, reads only series the profile keeps.
func TestScrapeProfileKeepsWhatRulesRead(t *testing.T) {
	objs := renderStack(t, ourStackValues(t))
	tgs := targets(t, objs)
	sc := loadK3sScrape(t)
	rules := ruleQueries(objs)
	app := appRuleQueries(t)
	found, unparsed := checkQueries(t, append(rules, app...), tgs, sc.recording(tgs, t))
	for _, q := range unparsed {
		t.Errorf("%s: cannot parse %q", q.Where, q.Expr)
	}
	for _, f := range found {
		t.Errorf("%s", f)
	}
	if len(found) == 0 {
		t.Logf("%d chart rules and %d homelab rules kept, none reads a dropped series", len(rules), len(app))
	}
	if len(rules) < 150 {
		t.Errorf("only %d chart rules rendered: the check would prove little", len(rules))
	}
}

// The profile removes k3s's duplicates from both endpoints, keeps every
// metric the component serves itself, and cuts the series well below the
// chart's defaults on the same recorded scrape.
func TestScrapeProfileDropsK3sDuplicates(t *testing.T) {
	sc := loadK3sScrape(t)
	ours := targets(t, renderStack(t, ourStackValues(t)))
	defaults := targets(t, renderStack(t, nil))
	o, d := countK3s(t, sc, ours), countK3s(t, sc, defaults)
	t.Logf("recorded k3s-shaped scrape: %d series in the combined registry (%d kubelet, %d kube-apiserver, %d kube-controller-manager, %d kube-scheduler names)",
		len(sc.Combined), len(sc.Own["kubelet"]), len(sc.Own["kube-apiserver"]), len(sc.Own["kube-controller-manager"]), len(sc.Own["kube-scheduler"]))
	t.Logf("chart defaults: kubelet /metrics %d + apiserver %d = %d series", d.Kubelet, d.APIServer, d.total())
	t.Logf("our profile:    kubelet /metrics %d + apiserver %d = %d series", o.Kubelet, o.APIServer, o.total())
	t.Logf("largest families kept, kubelet /metrics:%s", topFamilies(o.KubeletKept, 8))
	t.Logf("largest families kept, apiserver:%s", topFamilies(o.APIServerKept, 8))

	// Neither endpoint keeps what another component serves.
	for _, c := range []struct {
		component string
		kept      []labels.Labels
	}{{"kubelet", o.KubeletKept}, {"kube-apiserver", o.APIServerKept}} {
		foreign := sc.foreign(c.component)
		leaked := map[string]int{}
		for _, s := range c.kept {
			if f := sc.family(s.Get(model.MetricNameLabel)); foreign[f] {
				leaked[f]++
			}
		}
		if len(leaked) > 0 {
			t.Errorf("%s endpoint keeps %d families it does not serve itself (k3s's duplicates):%s", c.component, len(leaked), firstKeys(leaked, 10))
		}
	}
	// The kubelet keeps every family it serves itself (histograms may lose
	// their buckets, never _sum and _count), but the feature gates.
	kept := map[string]bool{}
	for _, s := range o.KubeletKept {
		kept[sc.family(s.Get(model.MetricNameLabel))] = true
	}
	lost := map[string]int{}
	for f := range sc.Own["kubelet"] {
		if sc.owns("kubelet", f) && !kept[f] && f != "kubernetes_feature_enabled" {
			lost[f]++
		}
	}
	if len(lost) > 0 {
		t.Errorf("kubelet endpoint drops %d of its own families:%s", len(lost), firstKeys(lost, 10))
	}
	// The API server job keeps only what a kept rule or a dashboard reads
	// from it: each name it keeps is read by one.
	objs := renderStack(t, ourStackValues(t))
	apiserver := findTarget(t, ours, apiserverMonitor, "/metrics")
	read := map[string]bool{}
	for _, q := range append(append(ruleQueries(objs), dashboardQueries(t, objs)...), appRuleQueries(t)...) {
		sels, err := selectors(q.Expr)
		if err != nil {
			continue
		}
		for _, sel := range sels {
			if sel.matches(apiserver) {
				read[sel.Name] = true
			}
		}
	}
	unread := map[string]int{}
	for _, s := range o.APIServerKept {
		if n := s.Get(model.MetricNameLabel); !read[n] {
			unread[n]++
		}
	}
	if len(unread) > 0 {
		t.Errorf("the API server job keeps %d names that no kept rule or dashboard reads:%s", len(unread), firstKeys(unread, 10))
	}

	// The goal is 12,000 head series for the whole Prometheus; these two
	// endpoints are the bulk of what the chart's defaults store.
	if o.total() > 6000 {
		t.Errorf("our profile keeps %d series from the two k3s endpoints, want at most 6000", o.total())
	}
	if o.total()*4 > d.total() {
		t.Errorf("our profile keeps %d series, not under a quarter of the chart defaults' %d", o.total(), d.total())
	}
}

// The checks above can fail: with a dropping relabeling removed (or one
// added that drops what a rule reads) they report it.
func TestScrapeProfileChecksCanFail(t *testing.T) {
	sc := loadK3sScrape(t)
	objs := renderStack(t, ourStackValues(t))
	ours := targets(t, objs)

	// 1. Without the relabeling that keeps only the kubelet's own families,
	// the other components' families are back on the kubelet endpoint.
	kubelet := findTarget(t, ours, kubeletMonitor, "/metrics")
	without := kubelet
	without.Relabel, without.Raw = nil, nil
	removed := 0
	for i, raw := range kubelet.Raw {
		if raw["action"] == "keep" {
			removed++
			continue
		}
		without.Relabel = append(without.Relabel, kubelet.Relabel[i])
		without.Raw = append(without.Raw, raw)
	}
	if removed != 1 {
		t.Fatalf("found %d keep relabelings on the kubelet endpoint, want 1", removed)
	}
	foreign := sc.foreign("kubelet")
	count := func(tg target) (n int) {
		for _, s := range tg.count(sc.Combined) {
			if foreign[sc.family(s.Get(model.MetricNameLabel))] {
				n++
			}
		}
		return n
	}
	if got := count(kubelet); got != 0 {
		t.Errorf("our kubelet endpoint keeps %d duplicated series", got)
	}
	if got := count(without); got == 0 {
		t.Error("without its keep relabeling, the kubelet endpoint still keeps no duplicated series: the check cannot fail")
	} else {
		t.Logf("without its keep relabeling, the kubelet endpoint keeps %d duplicated series", got)
	}

	// 2. A relabeling that drops a bucket the SLO rules read is caught, and
	// named with the rule and the relabeling.
	mutated := append([]target{}, ours...)
	for i, tg := range mutated {
		if tg.String() == findTarget(t, ours, apiserverMonitor, "/metrics").String() {
			c := relabel.DefaultRelabelConfig
			c.Action = relabel.Drop
			c.SourceLabels = model.LabelNames{model.MetricNameLabel}
			c.Regex = relabel.MustNewRegexp("apiserver_request_sli_duration_seconds_bucket")
			tg.Relabel = append(append([]*relabel.Config{}, tg.Relabel...), &c)
			tg.Raw = append(append([]map[string]any{}, tg.Raw...), map[string]any{"action": "drop", "regex": c.Regex.String()})
			mutated[i] = tg
		}
	}
	found, _ := checkQueries(t, ruleQueries(objs), mutated, sc.recording(ours, t))
	viaAPIServer := 0
	for _, f := range found {
		if f.Metric != "apiserver_request_sli_duration_seconds_bucket" {
			t.Errorf("unexpected finding: %s", f)
		}
		if strings.Contains(f.Target, apiserverMonitor) && strings.Contains(f.Relabel, "apiserver_request_sli_duration_seconds_bucket") {
			viaAPIServer++
		}
	}
	if viaAPIServer == 0 {
		t.Fatal("dropping apiserver_request_sli_duration_seconds_bucket on the API server job went unnoticed")
	}
	t.Logf("a relabeling dropping apiserver_request_sli_duration_seconds_bucket is caught in %d rules, e.g. %s", viaAPIServer, found[0])

	// 3. The chart's defaults store k3s's duplicates twice.
	d := countK3s(t, sc, targets(t, renderStack(t, nil)))
	if d.total() < 3*len(sc.Combined)/2 {
		t.Errorf("chart defaults keep %d series of %d recorded on each of two endpoints: expected the duplicates twice", d.total(), len(sc.Combined))
	}
}

// Dashboards whose panels lose data with the profile: the list the README
// gives. A change of the profile or the chart that changes it fails here.
func TestScrapeProfileDashboards(t *testing.T) {
	objs := renderStack(t, ourStackValues(t))
	tgs := targets(t, objs)
	sc := loadK3sScrape(t)
	qs := dashboardQueries(t, objs)
	found, unparsed := checkQueries(t, qs, tgs, sc.recording(tgs, t))
	t.Logf("%d dashboard queries, %d not parsed (Grafana template syntax)", len(qs), len(unparsed))
	for _, q := range unparsed {
		t.Logf("not parsed: %s: %s", q.Where, q.Expr)
	}
	lose := map[string]bool{}
	for _, f := range found {
		t.Logf("%s", f)
		lose[f.Where+" ("+f.Metric+")"] = true
	}
	got := make([]string, 0, len(lose))
	for k := range lose {
		got = append(got, k)
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(dashboardsLosingData, "\n") {
		t.Errorf("panels that lose data:\n%s\nwant (README.md, \"Prometheus on a small box\"):\n%s", strings.Join(got, "\n"), strings.Join(dashboardsLosingData, "\n"))
	}
}

// dashboardsLosingData is README.md's list. Both lose data to the chart's
// own cAdvisor relabeling (container_memory_swap), not to this profile.
var dashboardsLosingData = []string{
	`dashboard "Kubernetes / Compute Resources / Namespace (Pods)" / panel "Memory Quota" (container_memory_swap)`,
	`dashboard "Kubernetes / Compute Resources / Pod" / panel "Memory Quota" (container_memory_swap)`,
}

func firstKeys(m map[string]int, n int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > n {
		keys = append(keys[:n], "...")
	}
	return " " + strings.Join(keys, ", ")
}

// Prometheus's memory target, retention and intervals are consistent with
// its limit, its volume and the profile.
func TestScrapeProfilePrometheusSizing(t *testing.T) {
	cfg := defaultConfig(t)
	objs := renderStack(t, ourStackValues(t))
	var spec map[string]any
	for _, o := range objs {
		if o.kind() == "Prometheus" {
			spec, _ = o["spec"].(map[string]any)
		}
	}
	if spec == nil {
		t.Fatal("no Prometheus object rendered")
	}
	limit := resource.MustParse(str(spec, "resources", "limits", "memory"))
	request := resource.MustParse(str(spec, "resources", "requests", "memory"))
	ratio := ""
	for _, a := range list(spec, "additionalArgs") {
		if str(a, "name") == "auto-gomemlimit.ratio" {
			ratio = str(a, "value")
		}
	}
	r, err := strconv.ParseFloat(ratio, 64)
	if err != nil || r <= 0.5 || r >= 0.9 {
		t.Fatalf("auto-gomemlimit.ratio %q: want a ratio between 0.5 and 0.9 (Prometheus's default is 0.9)", ratio)
	}
	gomemlimit := float64(limit.Value()) * r
	if gomemlimit <= float64(request.Value()) {
		t.Errorf("GOMEMLIMIT %.0f MiB is not above the request %s", gomemlimit/(1<<20), request.String())
	}
	// Measured (issue 17) with the profile's kind: 140 MiB RSS after 10
	// minutes. The goal is under half the limit.
	if measured := int64(140 << 20); measured*2 > limit.Value() {
		t.Errorf("limit %s: the measured 140 MiB is not under half of it", limit.String())
	}
	t.Logf("memory: request %s, limit %s, GOMEMLIMIT %.0f MiB (ratio %s)", request.String(), limit.String(), gomemlimit/(1<<20), ratio)

	// The size cap (blocks, WAL and head chunks) leaves a quarter of the
	// volume for compaction, which writes a block before deleting its sources.
	size, err := prometheusBytes(str(spec, "retentionSize"))
	if err != nil {
		t.Fatal(err)
	}
	volume := resource.MustParse(cfg.Monitoring.Prometheus.StorageSize)
	if int64(size)*4 > volume.Value()*3 {
		t.Errorf("retentionSize %s is more than 3/4 of the volume %s", str(spec, "retentionSize"), volume.String())
	}
	if got := str(spec, "retention"); got != cfg.Monitoring.Prometheus.Retention {
		t.Errorf("retention %q, want the configuration's %q", got, cfg.Monitoring.Prometheus.Retention)
	}

	// Every job at 30 s, cAdvisor included.
	if got := str(spec, "scrapeInterval"); got != "30s" {
		t.Errorf("scrapeInterval %q, want 30s", got)
	}
	for _, o := range objs {
		if o.kind() != "ServiceMonitor" {
			continue
		}
		sm, _ := o["spec"].(map[string]any)
		for _, ep := range list(sm, "endpoints") {
			if iv := str(ep, "interval"); iv != "" && iv != "30s" {
				t.Errorf("%s %s: interval %s, want the global 30s", o.name(), str(ep, "path"), iv)
			}
		}
	}
}

// prometheusBytes reads a Prometheus size such as 2GB or 512MB, whose units
// are powers of 1024.
func prometheusBytes(s string) (int64, error) {
	m := regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)([KMGTPE]?)i?B$`).FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("size %q: want a Prometheus size like 2GB", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, err
	}
	for i := strings.Index("KMGTPE", m[2]); m[2] != "" && i >= 0; i-- {
		v *= 1024
	}
	return int64(v), nil
}
