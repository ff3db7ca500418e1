package record

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strconv"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// This file takes back what a file item records: a file homelab created is
// removed with the directories it made, a file it modified gets its original
// back from the backup. The packages that own a kind of file (systemd's
// units, Nginx's site, k3s's links) build their removal on these.

// Exists reports whether p is there (a dangling link counts).
func Exists(h host.Host, p string) (bool, error) {
	_, err := h.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// RemoveDirs removes the directories homelab created, deepest first, when
// they are empty; a directory with something in it is kept.
func RemoveDirs(h host.Host, dirs []string) {
	for _, d := range dirs {
		_ = h.Remove(d)
	}
}

// original is the content and mode a modified file had before homelab.
type original struct {
	data []byte
	mode fs.FileMode
}

// readOriginal reads a modified item's backup; nil when there is none.
func readOriginal(h host.Host, it Item) (*original, error) {
	if !it.Modified || it.Backup == "" {
		return nil, nil
	}
	data, err := h.ReadFile(it.Backup)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	mode := fs.FileMode(0o644)
	if m, err := strconv.ParseUint(it.Mode, 8, 32); err == nil {
		mode = fs.FileMode(m)
	}
	return &original{data: data, mode: mode}, nil
}

// restored reports whether p holds o.
func restored(h host.Host, p string, o *original) (bool, error) {
	info, err := h.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil || !info.Mode().IsRegular() {
		return false, err
	}
	have, err := h.ReadFile(p)
	if err != nil {
		return false, err
	}
	return bytes.Equal(have, o.data) && info.Mode().Perm() == o.mode.Perm(), nil
}

const noOriginal = "left as it is: it existed before homelab and no copy of the original was kept"

// CheckUndoFile says what UndoFile would do to it.
func CheckUndoFile(h host.Host, it Item) (plan.Status, error) {
	if it.Modified {
		o, err := readOriginal(h, it)
		if err != nil || o == nil {
			return plan.Status{Summary: noOriginal}, err
		}
		same, err := restored(h, it.Path, o)
		if err != nil || same {
			return plan.Status{Summary: "as it was before homelab"}, err
		}
		return plan.Status{Pending: true, Summary: "put back the original from " + it.Backup}, nil
	}
	ok, err := Exists(h, it.Path)
	if err != nil || !ok {
		return plan.Status{Summary: "already gone"}, err
	}
	return plan.Status{Pending: true, Summary: "remove " + it.Path}, nil
}

// UndoFile removes a file homelab created (and its empty directories) or
// puts a modified one's original back.
func UndoFile(h host.Host, it Item) error {
	if it.Modified {
		o, err := readOriginal(h, it)
		if err != nil || o == nil {
			return err
		}
		_, err = h.WriteFile(it.Path, o.data, o.mode)
		return err
	}
	if err := h.Remove(it.Path); err != nil {
		return err
	}
	RemoveDirs(h, it.Dirs)
	return nil
}

// UndoFileStep is uninstall's step for a plain file item.
func UndoFileStep(h host.Host, it Item) plan.Step {
	return plan.Step{
		Name:  it.Path,
		Check: func(context.Context) (plan.Status, error) { return CheckUndoFile(h, it) },
		Apply: func(context.Context) error { return UndoFile(h, it) },
	}
}
