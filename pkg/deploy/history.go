package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/helm"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// Revision is one deploy in the app's history.
type Revision struct {
	Number  int
	Updated time.Time
	// Status is deployed (runs now), superseded (ran before), failed, ...
	Status      string
	Build       Build
	Description string
}

// History lists the app's deploys, newest first.
func History(ctx context.Context, cfg *config.Config, e *helm.Engine) ([]Revision, error) {
	hist, err := e.History(ctx, ReleaseName(cfg), cfg.App.Namespace)
	if err != nil {
		return nil, err
	}
	out := make([]Revision, 0, len(hist))
	for _, h := range hist {
		out = append(out, Revision{Number: h.Number, Updated: h.Updated, Status: h.Status, Build: buildOf(h.Values), Description: h.Description})
	}
	return out, nil
}

// RollbackPlan makes the app run the build of revision (0: the last one
// that worked before the current one) again, as a new revision, and waits
// for its rollout; if it does not come up, the app goes back to what ran.
func RollbackPlan(cfg *config.Config, d Deps, revision int) plan.Plan {
	var done, from int // the revision the rollback made, and the one it copied
	target := func(ctx context.Context, e *helm.Engine) (Revision, Revision, error) {
		hist, err := History(ctx, cfg, e)
		if err != nil {
			return Revision{}, Revision{}, err
		}
		if len(hist) == 0 {
			return Revision{}, Revision{}, fmt.Errorf("the app %s has never been deployed in namespace %s: nothing to roll back", ReleaseName(cfg), cfg.App.Namespace)
		}
		cur := hist[0]
		for _, h := range hist[1:] {
			if (revision == 0 && (h.Status == "superseded" || h.Status == "deployed")) || h.Number == revision {
				return cur, h, nil
			}
		}
		if revision == 0 {
			return Revision{}, Revision{}, fmt.Errorf("the app has no earlier build that ran to roll back to (revision %d is the only one)", cur.Number)
		}
		if revision == cur.Number {
			return cur, cur, nil
		}
		return Revision{}, Revision{}, fmt.Errorf("the app has no revision %d; homelab deploy-app --history lists those it keeps", revision)
	}
	step := plan.Step{
		Name: "rollback",
		Check: func(ctx context.Context) (plan.Status, error) {
			e, err := d.Helm()
			if err != nil {
				return plan.Status{}, err
			}
			cur, to, err := target(ctx, e)
			if err != nil {
				return plan.Status{}, err
			}
			if done != 0 && cur.Number == done {
				return plan.Status{Summary: fmt.Sprintf("revision %d runs %s again (the build of revision %d)", done, cur.Build.Reference, from)}, nil
			}
			if cur.Number == to.Number {
				return plan.Status{Summary: fmt.Sprintf("revision %d is the current one; it runs %s", cur.Number, cur.Build.Reference)}, nil
			}
			return plan.Status{Pending: true, Summary: fmt.Sprintf("run %s again (revision %d) instead of %s (revision %d)",
				to.Build.Reference, to.Number, cur.Build.Reference, cur.Number)}, nil
		},
		Apply: func(ctx context.Context) error {
			e, err := d.Helm()
			if err != nil {
				return err
			}
			_, to, err := target(ctx, e)
			if err != nil {
				return err
			}
			n, err := e.Rollback(ctx, release(cfg, Build{}, d.Timeout, rollout(cfg, d)), to.Number)
			if err != nil {
				return explainFailure(err)
			}
			done, from = n, to.Number
			return nil
		},
	}
	return plan.Plan{Name: "deploy-app --rollback", Needs: []plan.Need{apiServerNeed(cfg, d)}, Steps: []plan.Step{step}}
}
