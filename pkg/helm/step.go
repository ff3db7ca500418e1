package helm

import (
	"context"
	"fmt"

	"github.com/homelab-dev/homelab/pkg/plan"
)

// Step is a plan step that installs or upgrades a release. Both the engine
// and the release are resolved when the step runs, not when the plan is
// built: the cluster and the values file may only exist by then.
func Step(name string, engine func() (*Engine, error), release func() (Release, error)) plan.Step {
	return plan.Step{
		Name: name,
		Check: func(ctx context.Context) (plan.Status, error) {
			r, err := release()
			if err != nil {
				return plan.Status{}, err
			}
			e, err := engine()
			if err != nil {
				// A dry run on a fresh machine: no cluster to ask yet.
				return plan.Status{Pending: true, Summary: fmt.Sprintf("install %s (%s %s) into namespace %s (%v)", r.Name, r.Chart.Name, r.Chart.Version, r.Namespace, err)}, nil
			}
			st, err := e.State(ctx, r)
			if err != nil {
				return plan.Status{}, err
			}
			return plan.Status{Pending: !st.UpToDate, Summary: st.Summary, Diff: st.ValuesDiff}, nil
		},
		Apply: func(ctx context.Context) error {
			r, err := release()
			if err != nil {
				return err
			}
			e, err := engine()
			if err != nil {
				return err
			}
			_, err = e.Apply(ctx, r)
			return err
		},
	}
}
