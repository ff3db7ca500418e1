package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// ResolveRoot checks a --root value once, before anything reads or writes,
// and returns the directory every host path is then taken under: absolute,
// with symlinks resolved. A root that is really this machine's "/" (an
// empty value from an unset variable, "/tmp/..", a symlink to /) is refused:
// --root promises that the machine itself is not touched, and only "/"
// written out means the machine. The directory need not exist yet (render
// creates it).
func ResolveRoot(root string) (string, error) {
	if strings.TrimSpace(root) == "" {
		return "", errors.New("--root is empty (an unset variable?); leave --root out to act on this machine, or name a directory")
	}
	if root == "/" {
		return "/", nil
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("--root %s: %w", root, err)
	}
	resolved, err := resolveExisting(abs)
	if err != nil {
		return "", fmt.Errorf("--root %s: %w", root, err)
	}
	if resolved == "/" {
		return "", fmt.Errorf("--root %s is this machine's own root directory /; leave --root out (or write exactly --root /) to act on this machine", root)
	}
	if info, err := os.Stat(resolved); err == nil && !info.IsDir() {
		return "", fmt.Errorf("--root %s is not a directory", root)
	}
	return resolved, nil
}

// resolveExisting resolves the symlinks of the longest part of p that
// exists and appends the rest as it is.
func resolveExisting(p string) (string, error) {
	rest := ""
	for {
		resolved, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(resolved, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(p, rest), nil
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// underRoot reports whether root means another directory than the machine's own.
func underRoot(root string) bool { return root != "" && root != "/" }

// ResolveUnder maps host path p to the local path under root without letting
// a symlink inside root lead out of it: links in the directories above p are
// resolved as if root were "/", the way the machine built from that tree
// would see them (securejoin). The last element of p is not followed, so a
// link there is itself replaced, read or removed. On the real root ("" or
// "/") p is only cleaned: the machine's own links are the machine's.
func ResolveUnder(root, p string) (string, error) {
	clean := filepath.Clean("/" + p)
	if !underRoot(root) {
		return clean, nil
	}
	if clean == "/" {
		return root, nil
	}
	dir, err := securejoin.SecureJoin(root, filepath.Dir(clean))
	if err != nil {
		return "", fmt.Errorf("%s under --root %s: %w", p, root, err)
	}
	return filepath.Join(dir, filepath.Base(clean)), nil
}
