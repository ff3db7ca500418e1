package record

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sync"
	"time"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// A Watch looks at one thing a step may create: before the step applies, and
// (through the function it returns) after. The after function returns the
// items the step created or modified; nothing for what was there before.
// applyErr is the step's own outcome.
type Watch func(ctx context.Context, rec *Record) (after After, err error)

// After returns what a step created; applyErr is the step's outcome.
type After func(ctx context.Context, applyErr error) ([]Item, error)

// Recorder adds what steps create to the record on Host. The record is read
// when the first watched step applies (after init took its lock), and saved
// after every step that added to it, so an interrupted run still has a
// record of what it did.
type Recorder struct {
	Host host.Host

	mu  sync.Mutex
	rec *Record
}

func (r *Recorder) load() (*Record, error) {
	if r.rec != nil {
		return r.rec, nil
	}
	rec, err := Load(r.Host)
	switch {
	case errors.Is(err, ErrNoRecord):
		rec = New()
	case err != nil:
		return nil, err
	}
	r.rec = rec
	return rec, nil
}

// afterTimeout bounds the look after a step, which must happen even when the
// step was interrupted.
const afterTimeout = 30 * time.Second

// Wrap returns s whose Apply records what the watches see it create. They
// look after a failed or interrupted Apply too: what the step created before
// it failed (CRDs of a chart whose install then timed out, say) is recorded.
// A step that changes nothing on a re-run writes nothing.
func (r *Recorder) Wrap(s plan.Step, watches ...Watch) plan.Step {
	apply := s.Apply
	if apply == nil || len(watches) == 0 {
		return s
	}
	s.Apply = func(ctx context.Context) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		rec, err := r.load()
		if err != nil {
			return err
		}
		afters := make([]After, 0, len(watches))
		for _, w := range watches {
			after, err := w(ctx, rec)
			if err != nil {
				return fmt.Errorf("before recording what this step creates: %w", err)
			}
			afters = append(afters, after)
		}
		applyErr := apply(ctx)

		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), afterTimeout)
		defer cancel()
		var items []Item
		var errs []error
		for _, after := range afters {
			found, err := after(actx, applyErr)
			errs = append(errs, err)
			items = append(items, found...)
		}
		if rec.Add(items...) {
			errs = append(errs, rec.Save(r.Host))
		}
		if err := errors.Join(errs...); err != nil {
			err = fmt.Errorf("record what this step created in %s: %w", layout.Record, err)
			return errors.Join(applyErr, err)
		}
		return applyErr
	}
	return s
}

// OriginalSuffix names the copy of a file's content from before homelab first
// wrote it: layout.BackupDir + path + OriginalSuffix.
const OriginalSuffix = ".before-homelab"

// OriginalPath is where the original content of path is kept.
func OriginalPath(p string) string { return path.Join(layout.BackupDir, p) + OriginalSuffix }

// fileBefore looks at a file homelab is about to write. An existing file is
// marked modified and its content copied to OriginalPath (once: a copy from
// an earlier, interrupted run is the original); for a missing one, the
// parent directories that are missing too are returned.
func fileBefore(h host.Host, p string, it *Item) error {
	info, err := h.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		dirs, err := missingDirs(h, p)
		it.Dirs = appendNew(it.Dirs, dirs...)
		return err
	}
	if err != nil {
		return err
	}
	it.Modified = true
	if !info.Mode().IsRegular() {
		return nil // a link or directory: nothing to copy, uninstall leaves it
	}
	it.Mode = fmt.Sprintf("%04o", info.Mode().Perm())
	orig := OriginalPath(p)
	if _, err := h.Lstat(orig); err == nil {
		it.Backup = orig
		return nil
	}
	data, err := h.ReadFile(p)
	if err != nil {
		return err
	}
	if _, err := h.WriteFile(orig, data, 0o600); err != nil {
		return fmt.Errorf("keep the original %s: %w", p, err)
	}
	it.Backup = orig
	return nil
}

// missingDirs are p's parent directories that do not exist, deepest first.
func missingDirs(h host.Host, p string) ([]string, error) {
	var dirs []string
	for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
		_, err := h.Lstat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}

func appendNew(list []string, add ...string) []string {
	for _, a := range add {
		found := false
		for _, l := range list {
			found = found || l == a
		}
		if !found {
			list = append(list, a)
		}
	}
	return list
}

func nothing(context.Context, error) ([]Item, error) { return nil, nil }

// pathWatch records the file at p as kind (File or SystemdUnit).
func pathWatch(h host.Host, kind Kind, p string) Watch {
	return func(ctx context.Context, rec *Record) (After, error) {
		it := Item{Kind: kind, Path: p}
		if kind == SystemdUnit {
			it.Name = path.Base(p)
		}
		if rec.Has(it) {
			return nothing, nil
		}
		if err := fileBefore(h, p, &it); err != nil {
			return nil, err
		}
		return func(context.Context, error) ([]Item, error) {
			if ok, err := Exists(h, p); err != nil || (!ok && !it.Modified) {
				return nil, err
			}
			return []Item{it}, nil
		}, nil
	}
}

// FileWatch records the file a step writes at p.
func FileWatch(h host.Host, p string) Watch { return pathWatch(h, File, p) }

// UnitWatch records the systemd unit file a step writes at p.
func UnitWatch(h host.Host, p string) Watch { return pathWatch(h, SystemdUnit, p) }

// NginxSiteWatch records the Nginx site file, its sites-enabled link to
// target and the stamp file a step writes. Uninstall removes the link only
// when homelab made it or made the site it points to.
func NginxSiteWatch(h host.Host, site, link, target, stamp string) Watch {
	return func(ctx context.Context, rec *Record) (After, error) {
		it := Item{Kind: NginxSite, Path: site, Target: target, Stamp: stamp}
		if rec.Has(it) {
			return nothing, nil
		}
		if err := fileBefore(h, site, &it); err != nil {
			return nil, err
		}
		cur, err := h.Readlink(link)
		if err != nil || cur != target || !it.Modified {
			it.Link = link
			dirs, err := missingDirs(h, link)
			if err != nil {
				return nil, err
			}
			it.Dirs = appendNew(it.Dirs, dirs...)
		}
		return func(context.Context, error) ([]Item, error) {
			if ok, err := Exists(h, site); err != nil || (!ok && !it.Modified) {
				return nil, err
			}
			return []Item{it}, nil
		}, nil
	}
}

// AptPackageWatch records a package a step installs when its binary was
// missing before.
func AptPackageWatch(h host.Host, name, binary string) Watch {
	return func(ctx context.Context, rec *Record) (After, error) {
		it := Item{Kind: AptPackage, Name: name}
		if rec.Has(it) {
			return nothing, nil
		}
		if had, err := Exists(h, binary); err != nil || had {
			return nothing, err
		}
		return func(context.Context, error) ([]Item, error) {
			if ok, err := Exists(h, binary); err != nil || !ok {
				return nil, err
			}
			return []Item{it}, nil
		}, nil
	}
}

// K3sWatch records k3s when a step installs its binary where there was none,
// and the new version when it upgrades a k3s homelab installed.
func K3sWatch(h host.Host, binary, unit, version string) Watch {
	return func(ctx context.Context, rec *Record) (After, error) {
		it := Item{Kind: K3s, Version: version, Path: binary, Unit: unit}
		if !rec.Has(it) {
			if had, err := Exists(h, binary); err != nil || had {
				return nothing, err // a k3s homelab did not install: never listed
			}
		}
		return func(_ context.Context, applyErr error) ([]Item, error) {
			if applyErr != nil {
				return nil, nil // the binary was not (or not entirely) replaced: no new version
			}
			if ok, err := Exists(h, binary); err != nil || !ok {
				return nil, err
			}
			return []Item{it}, nil
		}, nil
	}
}

// K3sLinkWatch records a link to k3s a step makes at link, only when
// nothing was there before: a kubectl the user had is never listed, so
// uninstall never removes it.
func K3sLinkWatch(h host.Host, link string) Watch {
	return func(ctx context.Context, rec *Record) (After, error) {
		it := Item{Kind: K3sLink, Path: link}
		if rec.Has(it) {
			return nothing, nil
		}
		if had, err := Exists(h, link); err != nil || had {
			return nothing, err
		}
		dirs, err := missingDirs(h, link)
		if err != nil {
			return nil, err
		}
		it.Dirs = dirs
		return func(context.Context, error) ([]Item, error) {
			if _, err := h.Readlink(link); err != nil {
				return nil, nil // not made (or not a link): nothing of ours there
			}
			return []Item{it}, nil
		}, nil
	}
}
