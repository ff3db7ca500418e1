package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/google/renameio/v2"
)

// Local is this machine, with every path taken under Root ("/" or "" for the
// real root). Under another Root no command runs: the files there are not a
// running system, and apt-get or systemctl would act on the real one.
type Local struct {
	Root string
	// BackupDir is the host path under which replaced files are kept, as
	// BackupDir/<original path>.<timestamp>.
	BackupDir string
	// Now stamps backups; time.Now when nil.
	Now func() time.Time
	// NoBackupUnder lists host directories whose files are homelab's own
	// state (the install record, stamps), rewritten often and never backed up.
	NoBackupUnder []string
}

var _ Host = (*Local)(nil)

// Path maps a host path to the local file system path under Root lexically,
// for tests and messages. Every read and write goes through Resolve instead.
func (l *Local) Path(p string) string {
	if !underRoot(l.Root) {
		return filepath.Clean(p)
	}
	return filepath.Join(l.Root, filepath.Clean("/"+p))
}

// Resolve is the local path of host path p under Root, with no symlink
// inside Root leading out of it (see ResolveUnder).
func (l *Local) Resolve(p string) (string, error) { return ResolveUnder(l.Root, p) }

// ErrCommandUnderRoot is returned by Run when Root is set.
var ErrCommandUnderRoot = errors.New("commands are not run with --root")

func (l *Local) Run(ctx context.Context, c Cmd) ([]byte, error) {
	if underRoot(l.Root) {
		return nil, fmt.Errorf("%s: %w (%s is not a running system)", c.Name, ErrCommandUnderRoot, l.Root)
	}
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	if c.Stdin != nil {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, &CmdError{Cmd: c, Err: err, Output: out}
	}
	return out, nil
}

// ReadFile follows a link at p only when it stays under Root: an absolute
// link target is taken under Root too, as on the machine Root holds.
func (l *Local) ReadFile(p string) ([]byte, error) {
	if !underRoot(l.Root) {
		return os.ReadFile(filepath.Clean("/" + p))
	}
	local, err := securejoin.SecureJoin(l.Root, filepath.Clean("/"+p))
	if err != nil {
		return nil, err
	}
	return os.ReadFile(local)
}

func (l *Local) Readlink(p string) (string, error) {
	local, err := l.Resolve(p)
	if err != nil {
		return "", err
	}
	return os.Readlink(local)
}

func (l *Local) Lstat(p string) (fs.FileInfo, error) {
	local, err := l.Resolve(p)
	if err != nil {
		return nil, err
	}
	return os.Lstat(local)
}

func (l *Local) Remove(p string) error {
	local, err := l.Resolve(p)
	if err != nil {
		return err
	}
	err = os.Remove(local)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (l *Local) WriteFile(p string, data []byte, mode fs.FileMode) (WriteResult, error) {
	local, err := l.Resolve(p)
	if err != nil {
		return WriteResult{}, err
	}
	info, err := os.Lstat(local)
	switch {
	case err == nil && info.Mode().IsRegular():
		old, err := os.ReadFile(local)
		if err != nil {
			return WriteResult{}, err
		}
		if bytes.Equal(old, data) && info.Mode().Perm() == mode.Perm() {
			return WriteResult{}, nil
		}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return WriteResult{}, err
	}
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return WriteResult{}, err
	}
	backup, err := l.backup(p, info)
	if err != nil {
		return WriteResult{}, err
	}
	// renameio writes a temporary file in the same directory, syncs it and
	// renames it over the target: readers see the old or the new file, never
	// half of one, even if homelab is killed mid-write.
	if err := atomicWrite(local, data, mode.Perm()); err != nil {
		return WriteResult{}, fmt.Errorf("write %s: %w", p, err)
	}
	return WriteResult{Changed: true, Backup: backup}, nil
}

func (l *Local) Symlink(target, link string) (WriteResult, error) {
	local, err := l.Resolve(link)
	if err != nil {
		return WriteResult{}, err
	}
	info, err := os.Lstat(local)
	if err == nil && info.Mode()&fs.ModeSymlink != 0 {
		if cur, err := os.Readlink(local); err == nil && cur == target {
			return WriteResult{}, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return WriteResult{}, err
	}
	backup, err := l.backup(link, info)
	if err != nil {
		return WriteResult{}, err
	}
	if err := renameio.Symlink(target, local); err != nil {
		return WriteResult{}, fmt.Errorf("link %s: %w", link, err)
	}
	return WriteResult{Changed: true, Backup: backup}, nil
}

// backup copies an existing regular file at host path p into BackupDir.
// Symlinks are not backed up: the link target survives on its own.
func (l *Local) backup(p string, info fs.FileInfo) (string, error) {
	if info == nil || !info.Mode().IsRegular() || l.BackupDir == "" {
		return "", nil
	}
	for _, dir := range l.NoBackupUnder {
		if strings.HasPrefix(filepath.Clean(p), filepath.Clean(dir)+"/") {
			return "", nil
		}
	}
	data, err := l.ReadFile(p)
	if err != nil {
		return "", err
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	dest := filepath.Join(l.BackupDir, p) + "." + now().UTC().Format("20060102T150405.000000000Z")
	local, err := l.Resolve(dest)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
		return "", err
	}
	if err := atomicWrite(local, data, 0o600); err != nil {
		return "", fmt.Errorf("back up %s: %w", p, err)
	}
	return dest, nil
}

// CmdError is a command that failed; its message carries the tail of the
// command's output, which is usually the reason.
type CmdError struct {
	Cmd    Cmd
	Err    error
	Output []byte
}

func (e *CmdError) Error() string {
	msg := fmt.Sprintf("%s %s: %v", e.Cmd.Name, strings.Join(e.Cmd.Args, " "), e.Err)
	if tail := lastLines(string(e.Output), 10); tail != "" {
		msg += "\n" + tail
	}
	return msg
}

func (e *CmdError) Unwrap() error { return e.Err }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// atomicWrite replaces path with data and exactly perm (not the old file's
// mode, not masked by the umask): a temporary file in the same directory,
// synced, then renamed over the target.
func atomicWrite(path string, data []byte, perm fs.FileMode) error {
	f, err := renameio.NewPendingFile(path, besideTarget(path), renameio.WithStaticPermissions(perm))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
}

// besideTarget keeps renameio's temporary file in the target's own
// directory. Left to itself renameio picks $TMPDIR whenever it is on the same
// file system, so an interrupted run would leave its debris in /tmp, and a
// --root run would write outside the root.
func besideTarget(path string) renameio.Option { return renameio.WithTempDir(filepath.Dir(path)) }
