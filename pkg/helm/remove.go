package helm

import (
	"context"
	"fmt"
	"time"

	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// UninstallStep uninstalls release namespace/name and waits up to timeout
// for its resources to go.
func UninstallStep(engine func() (*Engine, error), namespace, name string, timeout time.Duration) plan.Step {
	return plan.Step{
		Name: "Helm release " + namespace + "/" + name,
		Check: func(ctx context.Context) (plan.Status, error) {
			e, err := engine()
			if err != nil {
				return plan.Status{Pending: true, Summary: fmt.Sprintf("helm uninstall %s (the cluster could not be asked: %v)", name, err)}, nil
			}
			last, ok, err := e.Last(ctx, name, namespace)
			if err != nil {
				return plan.Status{}, err
			}
			if !ok {
				return plan.Status{Summary: "already uninstalled"}, nil
			}
			return plan.Status{Pending: true, Summary: fmt.Sprintf("helm uninstall %s from namespace %s (revision %d, %s) and wait until its resources are gone",
				name, namespace, last.Number, last.Status)}, nil
		},
		Apply: func(ctx context.Context) error {
			e, err := engine()
			if err != nil {
				return err
			}
			return e.Uninstall(ctx, name, namespace, timeout)
		},
	}
}

// RemoveCRDsStep deletes the CRDs (names) a chart install of
// namespace/release created, and so every object of their kinds, waiting up
// to timeout until they are gone.
func RemoveCRDsStep(client func() (*kube.Client, error), namespace, release string, names []string, timeout time.Duration) plan.Step {
	refs := make([]kube.Ref, len(names))
	for i, n := range names {
		refs[i] = kube.Ref{GVK: kube.CRDKind, Name: n}
	}
	return kube.DeleteStep(client, kube.Deletion{
		Name: "CRDs of " + namespace + "/" + release, Refs: refs, Wait: timeout,
		Noun: "CRDs", Consequence: ": this deletes every object of their kinds in every namespace (every Probe, PrometheusRule, ServiceMonitor, ...)",
	})
}
