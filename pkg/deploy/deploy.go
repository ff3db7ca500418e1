// Package deploy owns the app on the cluster: a release of homelab's own
// app chart (Deployment, Service, blackbox Probe, alert rules), one revision
// per build; the builds imported into k3s's containerd; the rollout that
// decides whether a build works, and the rollback when it does not.
// deploy-app runs its Plan; uninstall removes the release from the record
// the plan writes.
package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/helm"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/images"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/record"
)

// DigestAnnotation on the pod template records which image build runs. It
// changes with every build, so a reused tag like latest still rolls out.
const DigestAnnotation = "homelab.dev/image-digest"

// Images is what a deploy needs of k3s's containerd (*images.Importer).
type Images interface {
	ImportFrom(ctx context.Context, src images.Source, opts images.ImportOptions) (images.Result, error)
	Tag(ctx context.Context, from, to string) error
	Tags(ctx context.Context, repo, prefix string) ([]images.Image, error)
	Remove(ctx context.Context, name string) error
}

// Deps are what the app's steps act through.
type Deps struct {
	Host   host.Host
	Kube   func() (*kube.Client, error)
	Helm   func() (*helm.Engine, error)
	Images Images
	// Timeout bounds the wait for the new pods to be Ready.
	Timeout time.Duration
}

// Plan deploys src as a new build of cfg's app: import it, roll out a new
// revision of the app's release (back to the previous one if the build does
// not become Ready), and drop builds no revision can return to.
func Plan(cfg *config.Config, src images.Source, d Deps) plan.Plan {
	name, nameErr := images.NormalizeName(cfg.App.Image)
	var build *Build // set by the import step, read by the release step
	imp := plan.Step{
		Name: "import " + src.Name(),
		Check: func(context.Context) (plan.Status, error) {
			if nameErr != nil {
				return plan.Status{}, nameErr
			}
			if build != nil {
				return plan.Status{Summary: "imported as " + build.Reference}, nil
			}
			return plan.Status{Pending: true, Summary: fmt.Sprintf("import %s into k3s's containerd as a new build of %s", src.Name(), cfg.App.Image)}, nil
		},
		Apply: func(ctx context.Context) error {
			b, err := importBuild(ctx, d.Images, src, name)
			if err != nil {
				return err
			}
			build = &b
			return nil
		},
	}
	rec := &record.Recorder{Host: d.Host}
	rel := rec.Wrap(releaseStep(cfg, d, func() *Build { return build }),
		helm.ReleaseWatch(d.Helm, cfg.App.Namespace, ReleaseName(cfg)))
	return plan.Plan{Name: "deploy-app",
		Needs: []plan.Need{apiServerNeed(cfg, d), containerdNeed(d, name, nameErr)},
		Steps: []plan.Step{imp, rel, pruneStep(cfg, d, name)}}
}

// releaseStep rolls out the imported build as a new revision. Before the
// import (a dry run) it compares with the build that runs now, so that the
// diff shows what else would change.
func releaseStep(cfg *config.Config, d Deps, imported func() *Build) plan.Step {
	wanted := func(ctx context.Context, e *helm.Engine) (helm.Release, error) {
		if b := imported(); b != nil {
			return release(cfg, *b, d.Timeout, rollout(cfg, d)), nil
		}
		cur, err := Current(ctx, cfg, e)
		if err != nil {
			return helm.Release{}, err
		}
		return release(cfg, cur, d.Timeout, nil), nil
	}
	return plan.Step{
		Name: ReleaseStepName(cfg),
		Check: func(ctx context.Context) (plan.Status, error) {
			e, err := d.Helm()
			if err != nil {
				return plan.Status{}, err
			}
			r, err := wanted(ctx, e)
			if err != nil {
				return plan.Status{}, err
			}
			st, err := e.State(ctx, r)
			if err != nil {
				return plan.Status{}, err
			}
			if imported() == nil {
				return plan.Status{Pending: true, Summary: "roll out the new build of " + cfg.App.Image + rest(st), Diff: st.ValuesDiff}, nil
			}
			return plan.Status{Pending: !st.UpToDate, Summary: st.Summary, Diff: st.ValuesDiff}, nil
		},
		Apply: func(ctx context.Context) error {
			e, err := d.Helm()
			if err != nil {
				return err
			}
			r, err := wanted(ctx, e)
			if err != nil {
				return err
			}
			_, err = e.Apply(ctx, r)
			return explainFailure(err)
		},
	}
}

func rest(st helm.State) string {
	switch {
	case !st.Installed:
		return " (first install of the app's release)"
	case st.UpToDate:
		return " (nothing else changes)"
	}
	return "; and: " + st.Summary
}

// ReleaseStepName names the step that rolls out a new revision: whether it
// changed tells a deploy from a re-run of the same build.
func ReleaseStepName(cfg *config.Config) string {
	return "release " + cfg.App.Namespace + "/" + ReleaseName(cfg)
}

// Current is the build the app's release runs now; empty before the first
// deploy.
func Current(ctx context.Context, cfg *config.Config, e *helm.Engine) (Build, error) {
	hist, err := e.History(ctx, ReleaseName(cfg), cfg.App.Namespace)
	if err != nil {
		return Build{}, err
	}
	for _, h := range hist {
		if h.Status == "deployed" {
			return buildOf(h.Values), nil
		}
	}
	return Build{}, nil
}
