package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/homelab-dev/homelab/pkg/apt"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/record"
	"github.com/homelab-dev/homelab/pkg/systemd"
)

// Binary is where Debian's nginx package puts Nginx.
const Binary = "/usr/sbin/nginx"

// Package is the Debian package init installs when Nginx is missing.
var Package = apt.Package{Name: "nginx", Binary: Binary}

// RemoveStep takes homelab's site away, as the record item the site's
// install left says: it disables and removes the site (or puts back the
// site homelab replaced), tests the configuration and reloads a running
// Nginx. If nginx -t rejects what is left, the site is put back and Nginx
// keeps serving what it served.
func RemoveStep(h host.Host, it record.Item) plan.Step {
	return plan.Step{
		Name:  "Nginx site",
		Check: func(context.Context) (plan.Status, error) { return checkRemove(h, it) },
		Apply: func(ctx context.Context) error { return remove(ctx, h, it) },
	}
}

func checkRemove(h host.Host, it record.Item) (plan.Status, error) {
	site, err := record.CheckUndoFile(h, it)
	if err != nil {
		return plan.Status{}, err
	}
	var todo []string
	if it.Link != "" {
		if target, err := h.Readlink(it.Link); err == nil && target == it.Target {
			todo = append(todo, "disable the site (remove "+it.Link+")")
		}
	}
	if site.Pending {
		todo = append(todo, site.Summary)
	}
	if len(todo) > 0 {
		todo = append(todo, "nginx -t, reload (put back if nginx -t fails)")
	}
	if it.Stamp != "" {
		if ok, err := record.Exists(h, it.Stamp); err != nil {
			return plan.Status{}, err
		} else if ok {
			todo = append(todo, "remove "+it.Stamp)
		}
	}
	if len(todo) == 0 {
		if it.Modified {
			return plan.Status{Summary: it.Path + ": " + site.Summary}, nil
		}
		return plan.Status{Summary: "already removed"}, nil
	}
	return plan.Status{Pending: true, Summary: strings.Join(todo, "; ")}, nil
}

func remove(ctx context.Context, h host.Host, it record.Item) error {
	// What to put back if nginx -t fails.
	oldSite, readErr := h.ReadFile(it.Path)
	hadSite := readErr == nil
	if readErr != nil && !errors.Is(readErr, fs.ErrNotExist) {
		return readErr
	}
	siteMode := fs.FileMode(0o644)
	if info, err := h.Lstat(it.Path); err == nil {
		siteMode = info.Mode().Perm()
	}
	oldTarget, linkErr := h.Readlink(it.Link)
	hadLink := it.Link != "" && linkErr == nil && oldTarget == it.Target

	changed := hadLink
	if hadLink {
		if err := h.Remove(it.Link); err != nil {
			return err
		}
	}
	if st, err := record.CheckUndoFile(h, it); err != nil {
		return err
	} else if st.Pending {
		changed = true
		if it.Modified {
			err = record.UndoFile(h, it) // put the original back
		} else {
			err = h.Remove(it.Path)
		}
		if err != nil {
			return err
		}
	}
	if changed {
		if ok, err := record.Exists(h, Binary); err != nil {
			return err
		} else if ok {
			if out, err := h.Run(ctx, host.Cmd{Name: "nginx", Args: []string{"-t"}}); err != nil {
				var errs []error
				if hadSite {
					_, err := h.WriteFile(it.Path, oldSite, siteMode)
					errs = append(errs, err)
				}
				if hadLink {
					_, err := h.Symlink(it.Target, it.Link)
					errs = append(errs, err)
				}
				msg := fmt.Sprintf("nginx -t rejected the configuration without homelab's site, so the site was put back and Nginx was not reloaded; fix the rest of the Nginx configuration, then run uninstall again:\n%s",
					bytes.TrimSpace(out))
				if err := errors.Join(errs...); err != nil {
					msg += "\nputting the site back also failed: " + err.Error()
				}
				return errors.New(msg)
			}
			// Reload only a running Nginx: uninstall starts nothing.
			if err := systemd.Systemctl(ctx, h, "try-reload-or-restart", "nginx"); err != nil {
				return fmt.Errorf("reload nginx: %w", err)
			}
		}
	}
	if it.Stamp != "" {
		if err := h.Remove(it.Stamp); err != nil {
			return err
		}
	}
	record.RemoveDirs(h, it.Dirs)
	return nil
}
