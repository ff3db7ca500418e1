package record

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// A Watch looks at one thing a step may create: before the step applies, and
// (through the function it returns) after. The after function returns the
// items the step created or modified; Nothing for what was there before.
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
// A step that changes Nothing on a re-run writes Nothing.
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

// BeforeWrite looks at a file homelab is about to write, for its item. An
// existing file is marked modified and its content copied to OriginalPath
// (once: a copy from an earlier, interrupted run is the original); for a
// missing one, the parent directories that are missing too are added.
func BeforeWrite(h host.Host, p string, it *Item) error {
	info, err := h.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		dirs, err := MissingDirs(h, p)
		it.AddDirs(dirs...)
		return err
	}
	if err != nil {
		return err
	}
	it.Modified = true
	if !info.Mode().IsRegular() {
		return nil // a link or directory: Nothing to copy, uninstall leaves it
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

// MissingDirs are p's parent directories that do not exist, deepest first.
func MissingDirs(h host.Host, p string) ([]string, error) {
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

// AddDirs adds directories homelab created for the item, each once.
func (i *Item) AddDirs(dirs ...string) {
	for _, d := range dirs {
		if !slices.Contains(i.Dirs, d) {
			i.Dirs = append(i.Dirs, d)
		}
	}
}

// Nothing is the After of a watch with Nothing to record.
func Nothing(context.Context, error) ([]Item, error) { return nil, nil }

// PathWatch records it, a file a step writes at it.Path (a plain file, a
// systemd unit, ...), as BeforeWrite finds it.
func PathWatch(h host.Host, it Item) Watch {
	return func(ctx context.Context, rec *Record) (After, error) {
		if rec.Has(it) {
			return Nothing, nil
		}
		if err := BeforeWrite(h, it.Path, &it); err != nil {
			return nil, err
		}
		return func(context.Context, error) ([]Item, error) {
			if ok, err := Exists(h, it.Path); err != nil || (!ok && !it.Modified) {
				return nil, err
			}
			return []Item{it}, nil
		}, nil
	}
}

// FileWatch records the file a step writes at p.
func FileWatch(h host.Host, p string) Watch { return PathWatch(h, Item{Kind: File, Path: p}) }
