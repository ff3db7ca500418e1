package plan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/aymanbagabas/go-udiff"

	"github.com/homelab-dev/homelab/pkg/host"
)

// WriteFile is a step that makes path hold exactly data with mode. Its Check
// shows a unified diff against what is there now.
func WriteFile(h host.Host, path string, data []byte, mode fs.FileMode) Step {
	return Step{
		Name: "write " + path,
		Check: func(ctx context.Context) (Status, error) {
			return checkFile(h, path, data, mode)
		},
		Apply: func(ctx context.Context) error {
			_, err := h.WriteFile(path, data, mode)
			return err
		},
	}
}

// Symlink is a step that makes link a symbolic link to target.
func Symlink(h host.Host, target, link string) Step {
	return Step{
		Name: "link " + link,
		Check: func(ctx context.Context) (Status, error) {
			cur, err := h.Readlink(link)
			switch {
			case err == nil && cur == target:
				return Status{Summary: "up to date (-> " + target + ")"}, nil
			case err == nil:
				return Status{Pending: true, Summary: fmt.Sprintf("repoint from %s to %s", cur, target)}, nil
			}
			if _, statErr := h.Lstat(link); statErr == nil {
				return Status{Pending: true, Summary: fmt.Sprintf("replace the file there with a link to %s (the file is backed up)", target)}, nil
			} else if !errors.Is(statErr, fs.ErrNotExist) {
				return Status{}, statErr
			}
			return Status{Pending: true, Summary: fmt.Sprintf("create link -> %s", target)}, nil
		},
		Apply: func(ctx context.Context) error {
			_, err := h.Symlink(target, link)
			return err
		},
	}
}

func checkFile(h host.Host, path string, want []byte, mode fs.FileMode) (Status, error) {
	info, err := h.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Status{Pending: true, Summary: fmt.Sprintf("create (%d bytes, mode %04o)", len(want), mode.Perm()),
			Diff: diff("/dev/null", path, "", string(want), mode)}, nil
	}
	if err != nil {
		return Status{}, err
	}
	if !info.Mode().IsRegular() {
		return Status{Pending: true, Summary: fmt.Sprintf("replace the %s there with a file (backed up)", info.Mode().Type())}, nil
	}
	have, err := h.ReadFile(path)
	if err != nil {
		return Status{}, err
	}
	sameData := bytes.Equal(have, want)
	sameMode := info.Mode().Perm() == mode.Perm()
	switch {
	case sameData && sameMode:
		return Status{Summary: "up to date"}, nil
	case sameData:
		return Status{Pending: true, Summary: fmt.Sprintf("change mode from %04o to %04o", info.Mode().Perm(), mode.Perm())}, nil
	}
	return Status{Pending: true, Summary: "update (the old version is backed up)",
		Diff: diff(path, path, string(have), string(want), mode)}, nil
}

// diff is a unified diff, except for private files (no group or other
// permissions), whose content may be secret and is never shown.
func diff(from, to, have, want string, mode fs.FileMode) string {
	if mode.Perm()&0o077 == 0 {
		return ""
	}
	return udiff.Unified(from, to, have, want)
}
