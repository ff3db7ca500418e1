package alertmanager

import (
	"bytes"
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// SecretKey is the key the operator reads a configSecret's configuration from.
const SecretKey = "alertmanager.yaml"

// Source gives the configuration a step writes, when the step runs.
type Source func() ([]byte, error)

// Rendered is a configuration rendered before the plan was made.
func Rendered(data []byte) Source { return func() ([]byte, error) { return data, nil } }

// FromFile reads the configuration the last init wrote: what a re-run from
// the applied copy of homelab.yaml (which holds no secrets) keeps.
func FromFile(h host.Host, path string) Source {
	return func() ([]byte, error) {
		data, err := h.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("the applied configuration holds no secrets and %s cannot be read (%w): pass your homelab.yaml with --config", path, err)
		}
		return data, nil
	}
}

// SecretStep makes namespace/name hold the configuration under SecretKey,
// for the chart's Alertmanager (alertmanagerSpec.configSecret). The
// operator reloads Alertmanager when it changes. Its content is never
// shown: the status says only whether it changes.
func SecretStep(client func() (*kube.Client, error), namespace, name string, source Source, destinations int) plan.Step {
	ref := namespace + "/" + name
	what := fmt.Sprintf("Alertmanager's configuration, %s (content not shown: it holds secrets)", describeDestinations(destinations))
	return plan.Step{
		Name: "Alertmanager configuration secret",
		Check: func(ctx context.Context) (plan.Status, error) {
			data, err := source()
			if err != nil {
				return plan.Status{}, err
			}
			c, err := client()
			if err != nil {
				return plan.Status{Pending: true, Summary: fmt.Sprintf("create Secret %s with %s", ref, what)}, nil
			}
			s, err := c.Secret(ctx, namespace, name)
			switch {
			case apierrors.IsNotFound(err):
				return plan.Status{Pending: true, Summary: fmt.Sprintf("create Secret %s with %s", ref, what)}, nil
			case err != nil:
				return plan.Status{}, fmt.Errorf("read Secret %s: %w", ref, err)
			case !bytes.Equal(s.Data[SecretKey], data):
				return plan.Status{Pending: true, Summary: fmt.Sprintf("update Secret %s with %s", ref, what)}, nil
			}
			return plan.Status{Summary: "Secret " + ref + " is up to date: " + describeDestinations(destinations)}, nil
		},
		Apply: func(ctx context.Context) error {
			data, err := source()
			if err != nil {
				return err
			}
			c, err := client()
			if err != nil {
				return err
			}
			if err := c.EnsureNamespace(ctx, namespace); err != nil {
				return err
			}
			s, err := c.Secret(ctx, namespace, name)
			if apierrors.IsNotFound(err) {
				s = &corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "homelab"}},
					Type:       corev1.SecretTypeOpaque,
					Data:       map[string][]byte{SecretKey: data},
				}
				if err := c.CreateSecret(ctx, s); err != nil {
					return fmt.Errorf("create Secret %s: %w", ref, err)
				}
				return nil
			}
			if err != nil {
				return fmt.Errorf("read Secret %s: %w", ref, err)
			}
			// Update with the resourceVersion just read: a concurrent change
			// fails instead of being overwritten.
			s.Data = map[string][]byte{SecretKey: data}
			if err := c.UpdateSecret(ctx, s); err != nil {
				return fmt.Errorf("update Secret %s: %w", ref, err)
			}
			return nil
		},
	}
}

func describeDestinations(n int) string {
	switch n {
	case 0:
		return "no destinations (alerts only in Grafana and Alertmanager; add alerts.notify)"
	case 1:
		return "1 destination"
	}
	return fmt.Sprintf("%d destinations", n)
}

// RemoveSecretStep deletes the configuration Secret SecretStep wrote: it
// holds the destinations' tokens, and init writes it again from
// homelab.yaml.
func RemoveSecretStep(client func() (*kube.Client, error), namespace, name string) plan.Step {
	return kube.DeleteStep(client, kube.Deletion{Name: "Secret " + namespace + "/" + name,
		Refs: []kube.Ref{{GVK: kube.SecretKind, Namespace: namespace, Name: name}},
		Noun: "Secret", Consequence: " (Alertmanager's configuration, with the alert destinations' tokens)"})
}
