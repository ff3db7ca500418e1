package nginx

import (
	"context"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/record"
)

// SiteWatch records the site file, its sites-enabled link and the stamp
// file the step it wraps (Step) writes. The link is recorded only when
// homelab makes it or made the site it points to, so RemoveStep never takes
// away a link the user made to a site of their own.
func SiteWatch(h host.Host, s Site) record.Watch {
	return func(ctx context.Context, rec *record.Record) (record.After, error) {
		it := record.Item{Kind: record.NginxSite, Path: s.Path, Target: s.LinkTarget, Stamp: s.Stamp}
		if rec.Has(it) {
			return record.Nothing, nil
		}
		if err := record.BeforeWrite(h, s.Path, &it); err != nil {
			return nil, err
		}
		cur, err := h.Readlink(s.Link)
		if err != nil || cur != s.LinkTarget || !it.Modified {
			it.Link = s.Link
			dirs, err := record.MissingDirs(h, s.Link)
			if err != nil {
				return nil, err
			}
			it.AddDirs(dirs...)
		}
		return func(context.Context, error) ([]record.Item, error) {
			if ok, err := record.Exists(h, s.Path); err != nil || (!ok && !it.Modified) {
				return nil, err
			}
			return []record.Item{it}, nil
		}, nil
	}
}
