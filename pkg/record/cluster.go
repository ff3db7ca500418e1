package record

import (
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"

	"github.com/homelab-dev/homelab/pkg/helm"
	"github.com/homelab-dev/homelab/pkg/kube"
)

// NamespaceWatch records namespace name when a step creates it.
func NamespaceWatch(client func() (*kube.Client, error), name string) Watch {
	return createdWatch(client, Item{Kind: Namespace, Name: name}, kube.Ref{GVK: kube.NamespaceKind, Name: name})
}

// SecretWatch records namespace/name when a step creates that Secret.
func SecretWatch(client func() (*kube.Client, error), namespace, name string) Watch {
	return secretWatch(client, Secret, namespace, name)
}

// ConfigSecretWatch records namespace/name when a step creates that
// Secret, as one uninstall removes without --delete-data.
func ConfigSecretWatch(client func() (*kube.Client, error), namespace, name string) Watch {
	return secretWatch(client, ConfigSecret, namespace, name)
}

func secretWatch(client func() (*kube.Client, error), kind Kind, namespace, name string) Watch {
	return createdWatch(client, Item{Kind: kind, Namespace: namespace, Name: name}, kube.Ref{GVK: kube.SecretKind, Namespace: namespace, Name: name})
}

// createdWatch records it when the object ref did not exist before the step
// and does after it.
func createdWatch(client func() (*kube.Client, error), it Item, ref kube.Ref) Watch {
	return func(ctx context.Context, rec *Record) (After, error) {
		if rec.Has(it) {
			return nothing, nil
		}
		c, err := client()
		if err != nil {
			return nil, err
		}
		exists := func(ctx context.Context) (bool, error) {
			p, err := c.Lookup(ctx, ref)
			return p != kube.Absent, err
		}
		if had, err := exists(ctx); err != nil || had {
			return nothing, err
		}
		return func(ctx context.Context, _ error) ([]Item, error) {
			if ok, err := exists(ctx); err != nil || !ok {
				return nil, err
			}
			return []Item{it}, nil
		}, nil
	}
}

// HelmReleaseWatch records the release namespace/name when a step installs
// it, and the CRDs the step created (homelab applies a chart's CRDs
// server-side as field manager kube.FieldManager before installing it; a
// CRD that existed before is not listed, so uninstall --crds never deletes
// one that someone else installed).
func HelmReleaseWatch(engine func() (*helm.Engine, error), namespace, name string) Watch {
	return func(ctx context.Context, rec *Record) (After, error) {
		rel := Item{Kind: HelmRelease, Namespace: namespace, Name: name}
		e, err := engine()
		if err != nil {
			return nil, err
		}
		installed := func() (bool, error) {
			_, ok, err := e.Last(ctx, name, namespace)
			return ok, err
		}
		had := rec.Has(rel)
		if !had {
			if had, err = installed(); err != nil {
				return nil, err
			}
		}
		before, _, err := listCRDs(ctx, e.Kube)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, _ error) ([]Item, error) {
			var items []Item
			_, ours, err := listCRDs(ctx, e.Kube)
			if err != nil {
				return nil, err
			}
			var created []string
			for _, n := range ours {
				if !slices.Contains(before, n) {
					created = append(created, n)
				}
			}
			if len(created) > 0 {
				// Before the release: uninstall, going backwards, removes
				// the release first and its CRDs after.
				items = append(items, Item{Kind: CRDs, Namespace: namespace, Name: name, Names: created})
			}
			if !had {
				ok, err := installed()
				if err != nil {
					return nil, err
				}
				if ok {
					items = append(items, rel)
				}
			}
			return items, nil
		}, nil
	}
}

// listCRDs lists every CRD, and those whose fields homelab manages (it
// applies chart CRDs server-side), sorted. It reads metadata only: CRD
// schemas are large.
func listCRDs(ctx context.Context, c *kube.Client) (all, ours []string, err error) {
	if c == nil {
		return nil, nil, nil
	}
	mc, err := metadata.NewForConfig(c.RESTConfig())
	if err != nil {
		return nil, nil, err
	}
	list, err := mc.Resource(kube.CRDResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list CRDs: %w", err)
	}
	for _, crd := range list.Items {
		all = append(all, crd.Name)
		for _, mf := range crd.ManagedFields {
			if mf.Manager == kube.FieldManager {
				ours = append(ours, crd.Name)
				break
			}
		}
	}
	slices.Sort(all)
	slices.Sort(ours)
	return all, ours, nil
}
