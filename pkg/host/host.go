// Package host is the seam for every side effect on the machine homelab runs
// on: running commands and reading or writing files. Code above it never calls
// os/exec or writes files itself, so tests swap in a recorder and --root
// redirects every path.
package host

import (
	"context"
	"io/fs"
)

// Cmd is a command to run on the host.
type Cmd struct {
	Name  string
	Args  []string
	Stdin []byte
	// Env entries are added to the command's inherited environment.
	Env []string
}

// Host is the machine homelab acts on. Paths are absolute host paths.
type Host interface {
	// Run runs a command and returns its combined output. A non-zero exit is
	// an error that includes the output's last lines.
	Run(ctx context.Context, cmd Cmd) ([]byte, error)
	ReadFile(path string) ([]byte, error)
	// WriteFile replaces path atomically with data and mode, creating parent
	// directories. When an existing file with other content is replaced, its
	// previous version is kept as a backup first. Writing identical content
	// with the same mode changes nothing.
	WriteFile(path string, data []byte, mode fs.FileMode) (WriteResult, error)
	// Symlink points link at target atomically (replacing a link or, after a
	// backup, a file).
	Symlink(target, link string) (WriteResult, error)
	Readlink(path string) (string, error)
	Lstat(path string) (fs.FileInfo, error)
	Remove(path string) error
}

// WriteResult says what a write did.
type WriteResult struct {
	Changed bool
	// Backup is the host path of the previous version, when one was kept.
	Backup string
}
