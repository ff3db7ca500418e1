package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distribution/reference"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// reachTimeout bounds each connection check: the API server and containerd
// are on this machine and answer in milliseconds when they are up.
const reachTimeout = 10 * time.Second

// apiServerNeed is the Kubernetes API server, asked the first thing a deploy
// or rollback asks it: the app's Helm release records (Secrets owned by
// Helm in the app's namespace). A dry run checks it too, so that a preview
// against a cluster that is down fails as the real run would instead of
// saying it would create everything.
func apiServerNeed(cfg *config.Config, d Deps) plan.Need {
	return plan.Need{
		Name: "the Kubernetes API server",
		Check: func(ctx context.Context) error {
			e, err := d.Helm()
			if err != nil {
				return err
			}
			if e.Kube == nil {
				return errors.New("no Kubernetes client (Helm engine without Kube)")
			}
			ctx, cancel := context.WithTimeout(ctx, reachTimeout)
			defer cancel()
			err = e.Kube.CanReadReleases(ctx, cfg.App.Namespace)
			if err != nil {
				where := "the cluster"
				if rc := e.Kube.RESTConfig(); rc != nil && rc.Host != "" {
					where = rc.Host
				}
				return fmt.Errorf("cannot reach %s: %w (is k3s running? sudo systemctl status k3s; sudo homelab doctor)", where, err)
			}
			return nil
		},
	}
}

// containerdNeed is k3s's containerd, which the import and the removal of
// old builds use. Listing the app's build tags is what the old-builds step
// asks in a dry run, and it connects as an import does: a missing socket
// is said up front, with the same error in a preview and a real run.
func containerdNeed(d Deps, name string, nameErr error) plan.Need {
	return plan.Need{
		Name: "k3s's containerd",
		Check: func(ctx context.Context) error {
			if nameErr != nil {
				return nameErr
			}
			ctx, cancel := context.WithTimeout(ctx, reachTimeout)
			defer cancel()
			named, err := reference.ParseNormalizedNamed(name)
			if err != nil {
				return err
			}
			_, err = d.Images.Tags(ctx, named.Name(), BuildTagPrefix)
			return err
		},
	}
}
