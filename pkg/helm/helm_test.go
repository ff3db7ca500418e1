package helm_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/homelab-dev/homelab/pkg/helm"
	"github.com/homelab-dev/homelab/pkg/helm/helmtest"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/kube/kubetest"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

const stack = "kube-prometheus-stack"

// env is one test's engine, namespace and kubelet stand-in.
type env struct {
	engine *helm.Engine
	kube   *kube.Client
	ns     string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	c := kubetest.Client(t)
	ns := kubetest.Namespace(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go kubetest.KeepPodsReady(ctx, c, ns, helmtest.ReadySelector)
	return &env{
		engine: &helm.Engine{Kubeconfig: testutil.TestEnv(t, "HOMELAB_TEST_KUBECONFIG"), Kube: c, Home: t.TempDir()},
		kube:   c, ns: ns,
	}
}

func (e *env) release(src helm.Source, values map[string]any) helm.Release {
	return helm.Release{Name: "mon", Namespace: e.ns, Chart: src, Values: values, Timeout: 30 * time.Second}
}

func homeValues(rootURL string) map[string]any {
	return map[string]any{"grafana": map[string]any{"grafana.ini": map[string]any{"server": map[string]any{"root_url": rootURL, "serve_from_sub_path": true}}}}
}

// upgradeCRD gives a chart a CRD only the upgrade test uses (the fixture
// chart's own CRD is shared with other packages' tests, running at the same
// time against the same cluster), widened with a color field when wide.
func upgradeCRD(wide bool) func(*chart.Chart) {
	return func(ch *chart.Chart) {
		color := ""
		if wide {
			color = "\n                color: {type: string}"
		}
		ch.Files = append(ch.Files, &chart.File{Name: "crds/crd-upgradewidgets.yaml", Data: []byte(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: upgradewidgets.helmtest.homelab.dev
spec:
  group: helmtest.homelab.dev
  scope: Namespaced
  names: {plural: upgradewidgets, singular: upgradewidget, kind: UpgradeWidget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer}` + color + "\n")})
	}
}

func TestInstallNoopUpgradeFromHTTPRepo(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	defer func() {
		// client-go's discovery cache goes under the engine's Home (under
		// --root too), not ~/.kube/cache (client-go's default, fixed when
		// the process starts).
		if _, err := os.Stat(filepath.Join(e.engine.Home, "kube-cache")); err != nil {
			t.Errorf("no discovery cache under the engine's Home: %v", err)
		}
	}()
	charts := helmtest.Package(t, helmtest.Variant{Name: stack, Mutate: upgradeCRD(false)}, helmtest.Variant{Name: stack, Version: "88.5.4", Mutate: upgradeCRD(true)})
	url := charts.ServeRepo(t)
	rel := e.release(helm.Source{RepoURL: url, Name: stack, Version: "88.5.3"}, homeValues("https://a.example.com/grafana/"))

	st, err := e.engine.State(ctx, rel)
	if err != nil || st.Installed || st.UpToDate || !strings.HasPrefix(st.Summary, "install mon") {
		t.Fatalf("state before install: %+v %v", st, err)
	}
	out, err := e.engine.Apply(ctx, rel)
	if err != nil || out.Action != "installed" || out.Revision != 1 {
		t.Fatalf("install: %+v %v", out, err)
	}
	if _, err := kubetest.Typed(e.kube).AppsV1().Deployments(e.ns).Get(ctx, "mon-grafana", metav1.GetOptions{}); err != nil {
		t.Fatalf("grafana deployment: %v", err)
	}
	// The chart's CRD was applied server-side by homelab.
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	crd, err := kubetest.Dynamic(e.kube).Resource(crds).Get(ctx, "fixturewidgets.fixtures.homelab.dev", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !managedBy(crd.GetManagedFields(), kube.FieldManager) {
		t.Errorf("CRD not applied by homelab: %v", crd.GetManagedFields())
	}

	// Same chart and values: up to date, no new revision.
	if st, err = e.engine.State(ctx, rel); err != nil || !st.UpToDate || st.ValuesDiff != "" {
		t.Fatalf("state after install: %+v %v", st, err)
	}
	if out, err = e.engine.Apply(ctx, rel); err != nil || out.Action != "up to date" || out.Revision != 1 {
		t.Fatalf("no-op re-run: %+v %v", out, err)
	}

	// A changed value: an upgrade whose values diff a dry run can show.
	rel.Values = homeValues("https://b.example.com/grafana/")
	st, err = e.engine.State(ctx, rel)
	if err != nil || st.UpToDate || !strings.Contains(st.ValuesDiff, "-      root_url: https://a.example.com/grafana/") || !strings.Contains(st.ValuesDiff, "+      root_url: https://b.example.com/grafana/") {
		t.Fatalf("state with changed value: %+v %v", st, err)
	}
	if out, err = e.engine.Apply(ctx, rel); err != nil || out.Action != "upgraded" || out.Revision != 2 {
		t.Fatalf("upgrade on changed value: %+v %v", out, err)
	}

	// A new chart version with a changed CRD: the CRD is upgraded too.
	rel.Chart.Version = "88.5.4"
	if out, err = e.engine.Apply(ctx, rel); err != nil || out.Action != "upgraded" || out.Revision != 3 {
		t.Fatalf("chart upgrade: %+v %v", out, err)
	}
	crd, err = kubetest.Dynamic(e.kube).Resource(crds).Get(ctx, "upgradewidgets.helmtest.homelab.dev", metav1.GetOptions{})
	if err != nil || !strings.Contains(mustJSON(t, crd.Object), `"color"`) {
		t.Fatalf("CRD was not upgraded with the chart: %v", err)
	}
	t.Cleanup(func() {
		_ = kubetest.Dynamic(e.kube).Resource(crds).Delete(context.Background(), "upgradewidgets.helmtest.homelab.dev", metav1.DeleteOptions{})
	})
}

func managedBy(fields []metav1.ManagedFieldsEntry, manager string) bool {
	for _, f := range fields {
		if f.Manager == manager {
			return true
		}
	}
	return false
}

func mustJSON(t *testing.T, v map[string]any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestFailedUpgradeIsRolledBack(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	charts := helmtest.Package(t, helmtest.Variant{Name: stack})
	rel := e.release(helm.Source{Archive: charts.Archive(t, stack, "88.5.3"), Name: stack, Version: "88.5.3"}, homeValues("https://a.example.com/grafana/"))
	if _, err := e.engine.Apply(ctx, rel); err != nil {
		t.Fatal(err)
	}
	bad := rel
	bad.Values = map[string]any{"fixture": map[string]any{"neverReady": true}}
	bad.Timeout = 3 * time.Second
	_, err := e.engine.Apply(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), "rolled back to revision 1") {
		t.Fatalf("err %v, want an upgrade failure rolled back to revision 1", err)
	}
	st, err := e.engine.State(ctx, rel)
	if err != nil || !st.UpToDate || st.Status != "deployed" {
		t.Fatalf("after rollback the release should hold revision 1's chart and values again: %+v %v", st, err)
	}
	// A re-run with good values converges without trouble.
	if out, err := e.engine.Apply(ctx, rel); err != nil || out.Action != "up to date" {
		t.Fatalf("re-run after rollback: %+v %v", out, err)
	}
}

func TestFailedFirstInstallLeavesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	charts := helmtest.Package(t, helmtest.Variant{Name: "prometheus-blackbox-exporter"})
	rel := helm.Release{Name: "blackbox", Namespace: e.ns, Timeout: 3 * time.Second,
		Chart:  helm.Source{Archive: charts.Archive(t, "prometheus-blackbox-exporter", "11.17.2"), Name: "prometheus-blackbox-exporter", Version: "11.17.2"},
		Values: map[string]any{"fixture": map[string]any{"neverReady": true}}}
	_, err := e.engine.Apply(ctx, rel)
	if err == nil || !strings.Contains(err.Error(), "removed again") {
		t.Fatalf("err %v", err)
	}
	st, err := e.engine.State(ctx, rel)
	if err != nil || st.Installed {
		t.Fatalf("release left behind: %+v %v", st, err)
	}
	ref := kube.Ref{GVK: schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, Namespace: e.ns, Name: "blackbox-prometheus-blackbox-exporter"}
	if err := e.kube.WaitDeleted(ctx, []kube.Ref{ref}, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	// And the same install with good values then succeeds.
	rel.Values, rel.Timeout = nil, 30*time.Second
	if out, err := e.engine.Apply(ctx, rel); err != nil || out.Action != "installed" {
		t.Fatalf("install after a failed one: %+v %v", out, err)
	}
}

func TestInstallFromOCIRegistry(t *testing.T) {
	e := newEnv(t)
	charts := helmtest.Package(t, helmtest.Variant{Name: "prometheus-blackbox-exporter"})
	rel := helm.Release{Name: "blackbox", Namespace: e.ns, Timeout: 30 * time.Second,
		Chart: helm.Source{RepoURL: charts.ServeOCI(t), Name: "prometheus-blackbox-exporter", Version: "11.17.2"}}
	if out, err := e.engine.Apply(context.Background(), rel); err != nil || out.Action != "installed" {
		t.Fatalf("%+v %v", out, err)
	}
}

func TestTamperedChartIsRefused(t *testing.T) {
	e := newEnv(t)
	charts := helmtest.Package(t, helmtest.Variant{Name: "prometheus-blackbox-exporter"})
	url := charts.ServeRepo(t)
	// Replace the archive after the index recorded its digest.
	path := charts.Archive(t, "prometheus-blackbox-exporter", "11.17.2")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	rel := helm.Release{Name: "blackbox", Namespace: e.ns, Chart: helm.Source{RepoURL: url, Name: "prometheus-blackbox-exporter", Version: "11.17.2"}}
	_, err = e.engine.Apply(context.Background(), rel)
	if err == nil || !strings.Contains(err.Error(), "does not match the repository index") {
		t.Fatalf("err %v", err)
	}
	if st, _ := e.engine.State(context.Background(), rel); st.Installed {
		t.Fatal("a tampered chart was installed")
	}
}

func TestMissingVersionAndUnreachableRepo(t *testing.T) {
	e := newEnv(t)
	charts := helmtest.Package(t, helmtest.Variant{Name: "prometheus-blackbox-exporter"})
	url := charts.ServeRepo(t)
	_, err := e.engine.Apply(context.Background(), helm.Release{Name: "bb", Namespace: e.ns, Chart: helm.Source{RepoURL: url, Name: "prometheus-blackbox-exporter", Version: "99.0.0"}})
	if err == nil || !strings.Contains(err.Error(), "version 99.0.0 is not in") {
		t.Fatalf("missing version: %v", err)
	}
	_, err = e.engine.Apply(context.Background(), helm.Release{Name: "bb", Namespace: e.ns, Chart: helm.Source{RepoURL: "http://127.0.0.1:1", Name: "x", Version: "1.0.0"}})
	if err == nil || !strings.Contains(err.Error(), "cannot be reached") {
		t.Fatalf("unreachable repo: %v", err)
	}
}

// TestInterruptedUpgradeIsFinished: a run killed mid-upgrade leaves the
// release pending-upgrade, which Helm refuses to touch; a re-run recovers it.
func TestInterruptedUpgradeIsFinished(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	charts := helmtest.Package(t, helmtest.Variant{Name: stack})
	rel := e.release(helm.Source{Archive: charts.Archive(t, stack, "88.5.3"), Name: stack, Version: "88.5.3"}, homeValues("https://a.example.com/grafana/"))
	if _, err := e.engine.Apply(ctx, rel); err != nil {
		t.Fatal(err)
	}
	cfg, err := e.engine.ActionConfig(e.ns)
	if err != nil {
		t.Fatal(err)
	}
	last, err := cfg.Releases.Last("mon")
	if err != nil {
		t.Fatal(err)
	}
	stuck := *last
	info := *last.Info
	stuck.Info, stuck.Version = &info, 2
	stuck.Info.Status = release.StatusPendingUpgrade
	if err := cfg.Releases.Create(&stuck); err != nil {
		t.Fatal(err)
	}
	rel.Values = homeValues("https://b.example.com/grafana/")
	out, err := e.engine.Apply(ctx, rel)
	if err != nil || out.Action != "upgraded" {
		t.Fatalf("re-run after an interrupted upgrade: %+v %v", out, err)
	}
	if st, err := e.engine.State(ctx, rel); err != nil || !st.UpToDate {
		t.Fatalf("state: %+v %v", st, err)
	}
}

// BenchmarkNoopRerun measures a no-op re-run of both installs against the
// first install in the same run (target: under 10%).
func BenchmarkNoopRerun(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	charts := helmtest.Package(b, helmtest.Variant{Name: stack}, helmtest.Variant{Name: "prometheus-blackbox-exporter"})
	url := charts.ServeRepo(b)
	releases := []helm.Release{
		e.release(helm.Source{RepoURL: url, Name: stack, Version: "88.5.3"}, homeValues("https://a.example.com/grafana/")),
		{Name: "blackbox", Namespace: e.ns, Timeout: 30 * time.Second, Chart: helm.Source{RepoURL: url, Name: "prometheus-blackbox-exporter", Version: "11.17.2"}},
	}
	start := time.Now()
	for _, r := range releases {
		if out, err := e.engine.Apply(ctx, r); err != nil || out.Action != "installed" {
			b.Fatalf("first install: %+v %v", out, err)
		}
	}
	install := time.Since(start)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, r := range releases {
			if out, err := e.engine.Apply(ctx, r); err != nil || out.Action != "up to date" {
				b.Fatalf("re-run: %+v %v", out, err)
			}
		}
	}
	b.StopTimer()
	noop := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(install.Milliseconds()), "install-ms")
	b.ReportMetric(float64(noop.Microseconds())/1000, "noop-ms")
	b.ReportMetric(float64(noop)/float64(install), "noop/install")
}
