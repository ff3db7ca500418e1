package helm

import (
	"context"
	"slices"

	"github.com/homelab-dev/homelab/pkg/record"
)

// ReleaseWatch records the release namespace/name when the step it wraps
// installs it, and the CRDs that step created (homelab applies a chart's
// CRDs server-side as field manager kube.FieldManager before installing
// it; a CRD that existed before is not listed, so uninstall --crds never
// deletes one that someone else installed). UninstallStep takes the release
// back.
func ReleaseWatch(engine func() (*Engine, error), namespace, name string) record.Watch {
	return func(ctx context.Context, rec *record.Record) (record.After, error) {
		rel := record.Item{Kind: record.HelmRelease, Namespace: namespace, Name: name}
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
		before, _, err := e.Kube.CRDNames(ctx)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, _ error) ([]record.Item, error) {
			var items []record.Item
			_, ours, err := e.Kube.CRDNames(ctx)
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
				items = append(items, record.Item{Kind: record.CRDs, Namespace: namespace, Name: name, Names: created})
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
