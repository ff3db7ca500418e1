package helm

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// maxHistory bounds the revisions kept per release: what a rollback can
// still reach.
const maxHistory = 10

// Failed is a revision whose Verify failed.
type Failed struct {
	Release  string
	Revision int
	// Err is why the revision did not work (Verify's error).
	Err error
	// RolledBackTo is the revision the release went back to and that
	// passed Verify again; 0 when there was none to go back to.
	RolledBackTo int
	// RollbackErr is why going back did not work either, if it did not.
	RollbackErr error
}

func (f *Failed) Error() string {
	msg := fmt.Sprintf("revision %d of %s failed: %v", f.Revision, f.Release, f.Err)
	switch {
	case f.RollbackErr != nil:
		msg += fmt.Sprintf("; going back failed too: %v", f.RollbackErr)
	case f.RolledBackTo > 0:
		msg += fmt.Sprintf("; rolled back to revision %d", f.RolledBackTo)
	}
	return msg
}

func (f *Failed) Unwrap() error { return f.Err }

// Revision is one entry of a release's history.
type Revision struct {
	Number      int
	Updated     time.Time
	Status      string // deployed, superseded, failed, pending-upgrade, ...
	Description string
	// Values are the values the revision was made with.
	Values       map[string]any
	ChartVersion string
}

// History lists the release's revisions, newest first; none when the
// release is not installed.
func (e *Engine) History(ctx context.Context, name, namespace string) ([]Revision, error) {
	cfg, err := e.actionConfig(namespace)
	if err != nil {
		return nil, err
	}
	hist, err := cfg.Releases.History(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", name, err)
	}
	out := make([]Revision, 0, len(hist))
	for _, rel := range hist {
		r := Revision{Number: rel.Version, Values: rel.Config}
		if rel.Info != nil {
			r.Updated, r.Status, r.Description = rel.Info.LastDeployed.Time, rel.Info.Status.String(), rel.Info.Description
		}
		if rel.Chart != nil && rel.Chart.Metadata != nil {
			r.ChartVersion = rel.Chart.Metadata.Version
		}
		out = append(out, r)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Number > out[b].Number })
	return out, nil
}

// Rollback makes the release run what revision ran, as a new revision,
// and verifies it with r.Verify; a failed Verify goes back to what ran
// before, as Apply does. It returns the new revision's number. Choosing the
// revision is the caller's (deploy.RollbackPlan picks the last working one).
func (e *Engine) Rollback(ctx context.Context, r Release, revision int) (int, error) {
	cfg, err := e.actionConfig(r.Namespace)
	if err != nil {
		return 0, err
	}
	hist, err := e.History(ctx, r.Name, r.Namespace)
	if err != nil {
		return 0, err
	}
	if !hasRevision(hist, revision) {
		return 0, fmt.Errorf("%s in namespace %s has no revision %d", r.Name, r.Namespace, revision)
	}
	before := deployedOf(hist)
	rel, err := e.rollbackTo(cfg, r, revision)
	if err != nil {
		return 0, err
	}
	if r.Verify == nil {
		return rel, nil
	}
	return rel, e.verify(ctx, cfg, r, rel, before)
}

// installVerified installs without Helm's wait and runs r.Verify. A failed
// first install has nothing to go back to: it stays, marked failed, and the
// next Apply starts over (see recover).
func (e *Engine) installVerified(ctx context.Context, cfg *action.Configuration, ch *chart.Chart, r Release) (Outcome, error) {
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace, in.CreateNamespace = r.Name, r.Namespace, true
	in.Timeout = timeoutOr(r.Timeout)
	in.SkipCRDs = true
	rel, err := in.RunWithContext(ctx, ch, r.Values)
	if err != nil {
		return Outcome{}, fmt.Errorf("install %s (%s %s): %w", r.Name, ch.Metadata.Name, ch.Metadata.Version, err)
	}
	if err := e.verify(ctx, cfg, r, rel.Version, 0); err != nil {
		return Outcome{}, err
	}
	return Outcome{Action: "installed", Revision: rel.Version}, nil
}

// upgradeVerified upgrades without Helm's wait and runs r.Verify.
func (e *Engine) upgradeVerified(ctx context.Context, cfg *action.Configuration, ch *chart.Chart, r Release) (Outcome, error) {
	before := 0
	if prev, err := cfg.Releases.Deployed(r.Name); err == nil {
		before = prev.Version
	}
	up := action.NewUpgrade(cfg)
	up.Namespace = r.Namespace
	up.Timeout = timeoutOr(r.Timeout)
	up.SkipCRDs, up.ResetValues, up.MaxHistory = true, true, maxHistory
	rel, err := up.RunWithContext(ctx, r.Name, ch, r.Values)
	if err != nil {
		return Outcome{}, fmt.Errorf("upgrade %s (%s %s): %w", r.Name, ch.Metadata.Name, ch.Metadata.Version, err)
	}
	if err := e.verify(ctx, cfg, r, rel.Version, before); err != nil {
		return Outcome{}, err
	}
	return Outcome{Action: "upgraded", Revision: rel.Version}, nil
}

// verify runs r.Verify on revision; when it fails, the revision is marked
// failed with the reason and the release goes back to revision before.
func (e *Engine) verify(ctx context.Context, cfg *action.Configuration, r Release, revision, before int) error {
	verr := r.Verify(ctx)
	if verr == nil {
		return nil
	}
	failed := &Failed{Release: r.Name, Revision: revision, Err: verr}
	if ctx.Err() != nil {
		// Interrupted: the next run repairs the release (see recover).
		return failed
	}
	if rel, err := cfg.Releases.Get(r.Name, revision); err == nil {
		rel.SetStatus(release.StatusFailed, "homelab: "+firstLine(verr.Error()))
		if err := cfg.Releases.Update(rel); err != nil {
			return errors.Join(failed, fmt.Errorf("mark revision %d failed: %w", revision, err))
		}
	}
	if before == 0 {
		return failed
	}
	back, err := e.rollbackTo(cfg, r, before)
	if err != nil {
		failed.RollbackErr = err
		return failed
	}
	if err := r.Verify(ctx); err != nil {
		failed.RollbackErr = fmt.Errorf("revision %d (a copy of %d) did not come back either: %w", back, before, err)
		return failed
	}
	failed.RolledBackTo = before
	return failed
}

func (e *Engine) rollbackTo(cfg *action.Configuration, r Release, revision int) (int, error) {
	rb := action.NewRollback(cfg)
	rb.Version, rb.Timeout, rb.MaxHistory = revision, timeoutOr(r.Timeout), maxHistory
	if err := rb.Run(r.Name); err != nil {
		return 0, fmt.Errorf("roll %s back to revision %d: %w", r.Name, revision, err)
	}
	last, err := cfg.Releases.Last(r.Name)
	if err != nil {
		return 0, err
	}
	return last.Version, nil
}

func deployedOf(hist []Revision) int {
	for _, h := range hist {
		if h.Status == release.StatusDeployed.String() {
			return h.Number
		}
	}
	return 0
}

func hasRevision(hist []Revision, n int) bool {
	for _, h := range hist {
		if h.Number == n {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}

// Last is the release's newest revision; ok is false when the release does
// not exist or was uninstalled.
func (e *Engine) Last(ctx context.Context, name, namespace string) (rev Revision, ok bool, err error) {
	hist, err := e.History(ctx, name, namespace)
	if err != nil || len(hist) == 0 {
		return Revision{}, false, err
	}
	return hist[0], hist[0].Status != release.StatusUninstalled.String(), nil
}

// Uninstall removes the release and waits until its resources are gone. A
// release that is not there is not an error.
func (e *Engine) Uninstall(ctx context.Context, name, namespace string, timeout time.Duration) error {
	cfg, err := e.actionConfig(namespace)
	if err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.Wait, un.Timeout, un.IgnoreNotFound = true, timeoutOr(timeout), true
	if _, err := un.Run(name); err != nil {
		return fmt.Errorf("helm uninstall %s: %w", name, err)
	}
	return nil
}
