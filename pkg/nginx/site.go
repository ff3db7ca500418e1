// Package nginx installs homelab's Nginx site safely: the new site is tested
// with `nginx -t` before a reload, and the previous one is put back if the
// test fails, so Nginx keeps serving what it served. It owns the site's
// whole life: Step installs it, SiteWatch records it, RemoveStep takes it
// back on uninstall the same careful way.
package nginx

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"

	"github.com/aymanbagabas/go-udiff"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/systemd"
)

// Site is the site file, its sites-enabled link, and where the digest of the
// last site Nginx accepted and reloaded is kept.
type Site struct {
	Path       string
	Data       []byte
	Link       string
	LinkTarget string
	// Stamp records the sha256 of the site after a successful reload, so a
	// run interrupted between writing and reloading reloads on re-run.
	Stamp string
}

// Step writes, tests and reloads the site.
func Step(h host.Host, s Site) plan.Step {
	return plan.Step{
		Name:  "Nginx site",
		Check: func(ctx context.Context) (plan.Status, error) { return check(h, s) },
		Apply: func(ctx context.Context) error { return apply(ctx, h, s) },
	}
}

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func check(h host.Host, s Site) (plan.Status, error) {
	have, err := h.ReadFile(s.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return plan.Status{}, err
	}
	if !bytes.Equal(have, s.Data) {
		from := s.Path
		if have == nil {
			from = "/dev/null"
		}
		return plan.Status{Pending: true, Summary: "write " + s.Path + ", nginx -t, reload (the previous site is restored if the test fails)",
			Diff: udiff.Unified(from, s.Path, string(have), string(s.Data))}, nil
	}
	if target, err := h.Readlink(s.Link); err != nil || target != s.LinkTarget {
		return plan.Status{Pending: true, Summary: "enable the site: link " + s.Link + " -> " + s.LinkTarget + ", nginx -t, reload"}, nil
	}
	stamp, _ := h.ReadFile(s.Stamp)
	if string(bytes.TrimSpace(stamp)) != digest(s.Data) {
		return plan.Status{Pending: true, Summary: "nginx -t and reload: the site on disk has not been loaded by Nginx yet"}, nil
	}
	return plan.Status{Summary: s.Path + " is enabled and loaded"}, nil
}

func apply(ctx context.Context, h host.Host, s Site) error {
	old, err := h.ReadFile(s.Path)
	hadOld := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	oldTarget, linkErr := h.Readlink(s.Link)
	hadLink := linkErr == nil
	if _, err := h.WriteFile(s.Path, s.Data, 0o644); err != nil {
		return err
	}
	if _, err := h.Symlink(s.LinkTarget, s.Link); err != nil {
		return err
	}
	if out, err := h.Run(ctx, host.Cmd{Name: "nginx", Args: []string{"-t"}}); err != nil {
		restoreErr := restore(h, s, old, hadOld, oldTarget, hadLink)
		msg := fmt.Sprintf("nginx -t rejected the new site, so the previous one was put back and Nginx was not reloaded:\n%s", bytes.TrimSpace(out))
		if restoreErr != nil {
			msg += "\nrestoring the previous site also failed: " + restoreErr.Error()
		}
		return errors.New(msg)
	}
	if err := systemd.Systemctl(ctx, h, "reload-or-restart", "nginx"); err != nil {
		return fmt.Errorf("reload nginx: %w", err)
	}
	_, err = h.WriteFile(s.Stamp, []byte(digest(s.Data)+"\n"), 0o644)
	return err
}

func restore(h host.Host, s Site, old []byte, hadOld bool, oldTarget string, hadLink bool) error {
	var errs []error
	if hadOld {
		_, err := h.WriteFile(s.Path, old, 0o644)
		errs = append(errs, err)
	} else {
		errs = append(errs, h.Remove(s.Path))
	}
	if hadLink {
		_, err := h.Symlink(oldTarget, s.Link)
		errs = append(errs, err)
	} else {
		errs = append(errs, h.Remove(s.Link))
	}
	return errors.Join(errs...)
}
