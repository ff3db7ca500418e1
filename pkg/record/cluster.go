package record

import (
	"context"

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
			return Nothing, nil
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
			return Nothing, err
		}
		return func(ctx context.Context, _ error) ([]Item, error) {
			if ok, err := exists(ctx); err != nil || !ok {
				return nil, err
			}
			return []Item{it}, nil
		}, nil
	}
}
