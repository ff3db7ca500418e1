// Package selfinstall puts the running homelab binary where the systemd units
// homelab writes run it. The Grafana port-forward unit runs `homelab
// port-forward`; a unit naming a binary that is not there fails with
// 203/EXEC, so init installs itself before it writes any such unit, and the
// unit names the path this package chose.
package selfinstall

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/Masterminds/semver/v3"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// StampPath records the version and digest of the binary init installed, so
// that a later run knows whether the installed one is newer than itself.
const StampPath = layout.StateDir + "/binary.json"

// packagedPaths are where a package manager puts homelab (the .deb and .rpm
// install /usr/bin/homelab). A binary running from one of them is used in
// place: copying it elsewhere would leave two copies that drift apart.
var packagedPaths = []string{"/usr/bin/homelab", layout.Binary}

// Targets are every path Target can name.
func Targets() []string { return slices.Clone(packagedPaths) }

// Self is the running homelab.
type Self struct {
	// Executable is the running binary's path on the real filesystem
	// (os.Executable with symlinks resolved).
	Executable string
	// Version is this build's version ("dev" for an unstamped build).
	Version string
	// OnRealRoot is false under --root: the running binary is then not on
	// the machine being set up, so it is always copied to layout.Binary.
	OnRealRoot bool
}

// Target is the host path the units run homelab from: the running binary
// itself when a package put it at a system path, else layout.Binary.
func (s Self) Target() string {
	if s.OnRealRoot && slices.Contains(packagedPaths, filepath.Clean(s.Executable)) {
		return filepath.Clean(s.Executable)
	}
	return layout.Binary
}

type stamp struct {
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
}

// Step installs the running binary at s.Target(): atomically (host.WriteFile
// writes a temporary file and renames it), verified by reading the result
// back against the running binary's sha256, a no-op when the same binary is
// there, an upgrade when it differs, and never a downgrade of a newer
// release that an earlier init installed.
func Step(h host.Host, s Self) plan.Step {
	target := s.Target()

	read := func() ([]byte, error) {
		data, err := os.ReadFile(s.Executable)
		if err != nil {
			return nil, fmt.Errorf("read the running homelab binary %s: %w", s.Executable, err)
		}
		return data, nil
	}
	// The running binary does not change during a run: hash it once,
	// however often the runner checks (it is tens of MiB), and keep only
	// the digest.
	runningDigest := sync.OnceValues(func() (string, error) {
		data, err := read()
		return digest(data), err
	})
	return plan.Step{
		Name: "homelab binary",
		Check: func(context.Context) (plan.Status, error) {
			if s.OnRealRoot && target == filepath.Clean(s.Executable) {
				return plan.Status{Summary: "the units run this binary where it is: " + target}, nil
			}
			want, err := runningDigest()
			if err != nil {
				return plan.Status{}, err
			}
			have, err := h.ReadFile(target)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return plan.Status{Pending: true, Summary: fmt.Sprintf("install homelab %s to %s (the Grafana unit runs it)", s.Version, target)}, nil
			case err != nil:
				return plan.Status{}, err
			}
			if digest(have) == want {
				if info, err := h.Lstat(target); err == nil && info.Mode().Perm()&0o111 == 0 {
					return plan.Status{Pending: true, Summary: target + " is not executable; make it 0755"}, nil
				}
				return plan.Status{Summary: fmt.Sprintf("homelab %s is installed at %s", s.Version, target)}, nil
			}
			if newer, v := installedIsNewer(h, digest(have), s.Version); newer {
				return plan.Status{Summary: fmt.Sprintf("kept homelab %s at %s: it is newer than this one (%s)", v, target, s.Version)}, nil
			}
			return plan.Status{Pending: true, Summary: fmt.Sprintf("replace the homelab at %s with this one (%s)", target, s.Version)}, nil
		},
		Apply: func(context.Context) error {
			data, err := read()
			if err != nil {
				return err
			}
			if _, err := h.WriteFile(target, data, 0o755); err != nil {
				return fmt.Errorf("install homelab to %s: %w", target, err)
			}
			back, err := h.ReadFile(target)
			if err != nil {
				return err
			}
			want := digest(data)
			if got := digest(back); got != want {
				return fmt.Errorf("installed %s has sha256 %s, want %s (disk full or a concurrent write?)", target, got, want)
			}
			st, err := json.Marshal(stamp{Version: s.Version, SHA256: want})
			if err != nil {
				return err
			}
			_, err = h.WriteFile(StampPath, append(st, '\n'), 0o644)
			return err
		},
	}
}

// installedIsNewer reports whether the installed binary (by its digest) is a
// release newer than ours, as recorded in the stamp of the run that put it
// there. An unknown binary or an unstamped build is not newer: replacing it
// is what the user asked for by running this one.
func installedIsNewer(h host.Host, installedDigest, ours string) (bool, string) {
	data, err := h.ReadFile(StampPath)
	if err != nil {
		return false, ""
	}
	var st stamp
	if json.Unmarshal(data, &st) != nil || st.SHA256 != installedDigest {
		return false, ""
	}
	theirs, err1 := semver.NewVersion(st.Version)
	mine, err2 := semver.NewVersion(ours)
	if err1 != nil || err2 != nil {
		return false, ""
	}
	return theirs.GreaterThan(mine), st.Version
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
