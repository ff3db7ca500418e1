// Package helm installs and upgrades charts with the Helm v3 SDK: pinned
// versions, idempotent (an unchanged release is left alone without a single
// write), CRDs applied server-side first, failed changes rolled back.
// ReleaseWatch records a release homelab installed (and the CRDs it
// created); UninstallStep takes it back.
package helm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/aymanbagabas/go-udiff"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/yaml"

	"github.com/homelab-dev/homelab/pkg/kube"
)

// Engine runs Helm actions against one cluster.
type Engine struct {
	// Kubeconfig is the cluster's kubeconfig file (k3s: /etc/rancher/k3s/k3s.yaml).
	Kubeconfig string
	// Kube applies chart CRDs server-side.
	Kube *kube.Client
	// Home holds Helm's repository cache and registry config, apart from
	// the user's own helm setup (/var/lib/homelab/helm).
	Home string
	// Log receives Helm's debug lines; nil discards them.
	Log func(format string, args ...any)
}

// Release is the wanted state of one Helm release.
type Release struct {
	Name      string
	Namespace string
	Chart     Source
	Values    map[string]any
	// Timeout bounds waiting for the release's resources to be ready.
	Timeout time.Duration
	// Verify, when set, replaces Helm's own wait: it runs once the objects
	// are applied and says whether the new revision works (for the app: its
	// rollout, with the reason when it fails). A failed Verify marks the
	// revision failed with that reason and rolls the release back to the
	// revision deployed before it, verified in turn (see Failed). Without
	// Verify, Helm waits for every resource and rolls back atomically.
	Verify func(ctx context.Context) error
}

// State is what the cluster holds for a release compared with the wanted one.
type State struct {
	Installed    bool
	Revision     int
	Status       string
	ChartName    string
	ChartVersion string
	// UpToDate is true when the deployed release has the wanted chart
	// version and values: nothing needs to be sent to the cluster.
	UpToDate bool
	// Summary says in one line what Apply would do, or that nothing is needed.
	Summary string
	// ValuesDiff is a unified diff of the deployed values against the wanted ones.
	ValuesDiff string
}

// Outcome is what Apply did.
type Outcome struct {
	Action   string // "up to date", "installed", "upgraded"
	Revision int
}

// ValuesFromYAML parses a values file.
func ValuesFromYAML(data []byte) (map[string]any, error) {
	var v map[string]any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	if v == nil {
		v = map[string]any{}
	}
	return v, nil
}

// actionConfig is a Helm action configuration for namespace (release
// storage in Secrets).
func (e *Engine) actionConfig(namespace string) (*action.Configuration, error) {
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig, ns := e.Kubeconfig, namespace
	flags.KubeConfig, flags.Namespace = &kubeconfig, &ns
	if e.Home != "" {
		// client-go's discovery cache, ~/.kube/cache by default, goes with
		// Helm's own under homelab's state directory (under --root too).
		cache := filepath.Join(e.Home, "kube-cache")
		flags.CacheDir = &cache
	}
	cfg := new(action.Configuration)
	logf := func(format string, v ...any) {
		if e.Log != nil {
			e.Log(format, v...)
		}
	}
	if err := cfg.Init(flags, namespace, "secret", logf); err != nil {
		return nil, fmt.Errorf("helm: %w", err)
	}
	return cfg, nil
}

// State compares the deployed release with r. It only reads from the cluster
// and never downloads the chart.
func (e *Engine) State(ctx context.Context, r Release) (State, error) {
	cfg, err := e.actionConfig(r.Namespace)
	if err != nil {
		return State{}, err
	}
	last, err := cfg.Releases.Last(r.Name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return State{Summary: fmt.Sprintf("install %s (%s %s) into namespace %s", r.Name, r.Chart.Name, r.Chart.Version, r.Namespace),
			ValuesDiff: valuesDiff(r.Name, nil, r.Values)}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read release %s: %w", r.Name, err)
	}
	st := State{Installed: last.Info.Status != release.StatusUninstalled, Revision: last.Version, Status: last.Info.Status.String()}
	if last.Chart != nil && last.Chart.Metadata != nil {
		st.ChartName, st.ChartVersion = last.Chart.Metadata.Name, last.Chart.Metadata.Version
	}
	same := sameValues(last.Config, r.Values)
	switch {
	case last.Info.Status != release.StatusDeployed:
		st.Summary = fmt.Sprintf("repair %s: its last revision %d is %s", r.Name, last.Version, last.Info.Status)
	case st.ChartName != r.Chart.Name && r.Chart.Name != "":
		st.Summary = fmt.Sprintf("upgrade %s from chart %s to %s", r.Name, st.ChartName, r.Chart.Name)
	case st.ChartVersion != r.Chart.Version:
		st.Summary = fmt.Sprintf("upgrade %s from %s %s to %s", r.Name, st.ChartName, st.ChartVersion, r.Chart.Version)
	case !same:
		st.Summary = fmt.Sprintf("upgrade %s (%s %s): values changed", r.Name, st.ChartName, st.ChartVersion)
	default:
		st.UpToDate = true
		st.Summary = fmt.Sprintf("%s (%s %s) revision %d is up to date", r.Name, st.ChartName, st.ChartVersion, last.Version)
	}
	if !same {
		st.ValuesDiff = valuesDiff(r.Name, last.Config, r.Values)
	}
	return st, nil
}

// Apply installs or upgrades the release so that it matches r, and does
// nothing when it already does. A failed first install is removed again; a
// failed upgrade is rolled back to the previous revision. Both return an
// error saying so.
func (e *Engine) Apply(ctx context.Context, r Release) (Outcome, error) {
	st, err := e.State(ctx, r)
	if err != nil {
		return Outcome{}, err
	}
	if st.UpToDate {
		return Outcome{Action: "up to date", Revision: st.Revision}, nil
	}
	cfg, err := e.actionConfig(r.Namespace)
	if err != nil {
		return Outcome{}, err
	}
	ch, err := e.loadChart(r.Chart)
	if err != nil {
		return Outcome{}, err
	}
	if err := e.applyCRDs(ctx, ch, r.Timeout); err != nil {
		return Outcome{}, err
	}
	installed, err := e.recover(ctx, cfg, r)
	if err != nil {
		return Outcome{}, err
	}
	switch {
	case r.Verify != nil && !installed:
		return e.installVerified(ctx, cfg, ch, r)
	case r.Verify != nil:
		return e.upgradeVerified(ctx, cfg, ch, r)
	case !installed:
		return e.install(ctx, cfg, ch, r)
	}
	return e.upgrade(ctx, cfg, ch, r)
}

// recover clears what an interrupted earlier run left behind, so that this
// run can finish the job: a release stuck pending-install (or failed on its
// first install) is removed, one stuck pending-upgrade or pending-rollback is
// rolled back to its last deployed revision. It reports whether a deployed
// release exists afterwards.
func (e *Engine) recover(ctx context.Context, cfg *action.Configuration, r Release) (bool, error) {
	hist, err := cfg.Releases.History(r.Name)
	if errors.Is(err, driver.ErrReleaseNotFound) || (err == nil && len(hist) == 0) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read history of %s: %w", r.Name, err)
	}
	var last, deployed *release.Release
	for _, rel := range hist {
		if last == nil || rel.Version > last.Version {
			last = rel
		}
		if rel.Info.Status == release.StatusDeployed && (deployed == nil || rel.Version > deployed.Version) {
			deployed = rel
		}
	}
	switch {
	case last.Info.Status == release.StatusDeployed:
		return true, nil
	case deployed == nil && last.Info.Status != release.StatusSuperseded:
		// Never successfully installed: start over.
		un := action.NewUninstall(cfg)
		un.Wait, un.Timeout = true, timeoutOr(r.Timeout)
		if _, err := un.Run(r.Name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
			return false, fmt.Errorf("remove the unfinished install of %s (revision %d, %s): %w", r.Name, last.Version, last.Info.Status, err)
		}
		return false, nil
	case last.Info.Status.IsPending() && deployed != nil:
		// An upgrade or rollback was interrupted: mark it failed, then roll
		// back to what last worked, so the upgrade can run again.
		last.SetStatus(release.StatusFailed, "interrupted; homelab rolled back")
		if err := cfg.Releases.Update(last); err != nil {
			return false, fmt.Errorf("mark interrupted revision %d of %s failed: %w", last.Version, r.Name, err)
		}
		rb := action.NewRollback(cfg)
		rb.Version, rb.Wait, rb.Timeout = deployed.Version, true, timeoutOr(r.Timeout)
		if err := rb.Run(r.Name); err != nil {
			return false, fmt.Errorf("roll %s back to revision %d after an interrupted change: %w", r.Name, deployed.Version, err)
		}
	}
	return true, nil
}

func (e *Engine) install(ctx context.Context, cfg *action.Configuration, ch *chart.Chart, r Release) (Outcome, error) {
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace, in.CreateNamespace = r.Name, r.Namespace, true
	in.Wait, in.Atomic, in.Timeout = true, true, timeoutOr(r.Timeout)
	in.SkipCRDs = true // applied server-side by applyCRDs
	rel, err := in.RunWithContext(ctx, ch, r.Values)
	if err != nil {
		return Outcome{}, fmt.Errorf("install %s (%s %s) failed and was removed again, nothing is left half-installed: %w",
			r.Name, ch.Metadata.Name, ch.Metadata.Version, cleanHelmError(err))
	}
	return Outcome{Action: "installed", Revision: rel.Version}, nil
}

func (e *Engine) upgrade(ctx context.Context, cfg *action.Configuration, ch *chart.Chart, r Release) (Outcome, error) {
	prev, _ := cfg.Releases.Deployed(r.Name)
	up := action.NewUpgrade(cfg)
	up.Namespace = r.Namespace
	up.Wait, up.Atomic, up.Timeout = true, true, timeoutOr(r.Timeout)
	up.SkipCRDs, up.ResetValues, up.MaxHistory = true, true, 10
	rel, err := up.RunWithContext(ctx, r.Name, ch, r.Values)
	if err != nil {
		back := "the previous revision"
		if prev != nil {
			back = fmt.Sprintf("revision %d", prev.Version)
		}
		return Outcome{}, fmt.Errorf("upgrade of %s to %s %s failed and was rolled back to %s: %w",
			r.Name, ch.Metadata.Name, ch.Metadata.Version, back, cleanHelmError(err))
	}
	return Outcome{Action: "upgraded", Revision: rel.Version}, nil
}

// applyCRDs applies the chart's CRDs server-side before install or upgrade:
// Helm installs crds/ only on first install and never upgrades them.
func (e *Engine) applyCRDs(ctx context.Context, ch *chart.Chart, timeout time.Duration) error {
	var objs []*unstructured.Unstructured
	for _, f := range ch.CRDObjects() {
		decoded, err := kube.Decode(f.File.Data)
		if err != nil {
			return fmt.Errorf("chart %s: CRD %s: %w", ch.Metadata.Name, f.Filename, err)
		}
		objs = append(objs, decoded...)
	}
	if len(objs) == 0 {
		return nil
	}
	if e.Kube == nil {
		return fmt.Errorf("chart %s has CRDs but the engine has no cluster client to apply them", ch.Metadata.Name)
	}
	// CRDs first created by Helm itself are owned by its manager: take them over.
	if _, err := e.Kube.Apply(ctx, objs, kube.ApplyOptions{Force: true, Timeout: timeoutOr(timeout)}); err != nil {
		return fmt.Errorf("apply CRDs of %s: %w", ch.Metadata.Name, err)
	}
	return nil
}

func timeoutOr(d time.Duration) time.Duration {
	if d <= 0 {
		return 5 * time.Minute
	}
	return d
}

// cleanHelmError drops Helm's repetitive wrapping ("release X failed, and
// has been uninstalled due to atomic being set:") since our message says it.
func cleanHelmError(err error) error {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, "due to atomic being set: "); ok {
		return errors.New(after)
	}
	return err
}

// sameValues compares values as Helm stores them (JSON), so that 1 and 1.0
// or a nil and an empty map are equal.
func sameValues(a, b map[string]any) bool {
	return reflect.DeepEqual(normalize(a), normalize(b))
}

func normalize(v map[string]any) any {
	if len(v) == 0 {
		return map[string]any{}
	}
	data, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(data, &out)
	return out
}

func valuesDiff(name string, have, want map[string]any) string {
	a, b := "", ""
	if len(have) > 0 {
		data, _ := yaml.Marshal(have)
		a = string(data)
	}
	if len(want) > 0 {
		data, _ := yaml.Marshal(want)
		b = string(data)
	}
	if a == b {
		return ""
	}
	return udiff.Unified(name+" (deployed values)", name+" (wanted values)", a, b)
}
