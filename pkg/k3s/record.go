package k3s

import (
	"context"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/record"
)

// Watch records k3s when the step it wraps installs the binary where there
// was none, and the new version when it upgrades a k3s homelab installed. A
// k3s that was there before homelab is never recorded, so RemoveStep never
// removes it.
func Watch(h host.Host, version string) record.Watch {
	return func(ctx context.Context, rec *record.Record) (record.After, error) {
		it := record.Item{Kind: record.K3s, Version: version, Path: BinaryPath, Unit: UnitPath}
		if !rec.Has(it) {
			if had, err := record.Exists(h, BinaryPath); err != nil || had {
				return record.Nothing, err // a k3s homelab did not install: never listed
			}
		}
		return func(_ context.Context, applyErr error) ([]record.Item, error) {
			if applyErr != nil {
				return nil, nil // the binary was not (or not entirely) replaced: no new version
			}
			if ok, err := record.Exists(h, BinaryPath); err != nil || !ok {
				return nil, err
			}
			return []record.Item{it}, nil
		}, nil
	}
}

// LinkWatch records a link to k3s (kubectl, crictl, ctr) the step it wraps
// makes at link, only when nothing was there before: a kubectl the user had
// is never listed, so uninstall never removes it.
func LinkWatch(h host.Host, link string) record.Watch {
	return func(ctx context.Context, rec *record.Record) (record.After, error) {
		it := record.Item{Kind: record.K3sLink, Path: link}
		if rec.Has(it) {
			return record.Nothing, nil
		}
		if had, err := record.Exists(h, link); err != nil || had {
			return record.Nothing, err
		}
		dirs, err := record.MissingDirs(h, link)
		if err != nil {
			return nil, err
		}
		it.Dirs = dirs
		return func(context.Context, error) ([]record.Item, error) {
			if _, err := h.Readlink(link); err != nil {
				return nil, nil // not made (or not a link): nothing of ours there
			}
			return []record.Item{it}, nil
		}, nil
	}
}
