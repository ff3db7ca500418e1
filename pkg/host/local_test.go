package host

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/testutil"
)

func newLocal(t *testing.T) (*Local, string) {
	t.Helper()
	root := t.TempDir()
	n := 0
	return &Local{Root: root, BackupDir: "/var/backups/homelab", Now: func() time.Time {
		n++
		return time.Date(2026, 11, 24, 12, 0, n, 0, time.UTC)
	}}, root
}

func TestWriteFileIsIdempotentAndBacksUp(t *testing.T) {
	l, root := newLocal(t)
	const p = "/etc/nginx/sites-available/homelab.conf"
	res, err := l.WriteFile(p, []byte("one\n"), 0o644)
	if err != nil || !res.Changed || res.Backup != "" {
		t.Fatalf("first write: %+v %v", res, err)
	}
	if res, err := l.WriteFile(p, []byte("one\n"), 0o644); err != nil || res.Changed {
		t.Fatalf("same content again: %+v %v, want no change", res, err)
	}
	res, err = l.WriteFile(p, []byte("two\n"), 0o644)
	if err != nil || !res.Changed || !strings.HasPrefix(res.Backup, "/var/backups/homelab/etc/nginx/sites-available/homelab.conf.") {
		t.Fatalf("overwrite: %+v %v, want a backup", res, err)
	}
	old, err := os.ReadFile(filepath.Join(root, res.Backup))
	if err != nil || string(old) != "one\n" {
		t.Fatalf("backup holds %q, %v", old, err)
	}
	if info, _ := os.Stat(filepath.Join(root, res.Backup)); info.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600 (it may hold secrets)", info.Mode())
	}
	cur, _ := os.ReadFile(filepath.Join(root, p))
	if string(cur) != "two\n" {
		t.Fatalf("file holds %q", cur)
	}
	// No temporary files are left beside the target.
	entries, _ := os.ReadDir(filepath.Join(root, "/etc/nginx/sites-available"))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(entries))
	}
}

func TestWriteFileModeChangeAndPrivateMode(t *testing.T) {
	l, root := newLocal(t)
	if _, err := l.WriteFile("/etc/homelab/homelab.yaml", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := l.WriteFile("/etc/homelab/homelab.yaml", []byte("x"), 0o600)
	if err != nil || !res.Changed {
		t.Fatalf("mode change: %+v %v", res, err)
	}
	info, _ := os.Stat(filepath.Join(root, "/etc/homelab/homelab.yaml"))
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 regardless of umask", info.Mode())
	}
}

func TestSymlinkReplacesAndIsIdempotent(t *testing.T) {
	l, root := newLocal(t)
	const link = "/etc/nginx/sites-enabled/homelab.conf"
	if res, err := l.Symlink("../sites-available/homelab.conf", link); err != nil || !res.Changed {
		t.Fatalf("create: %+v %v", res, err)
	}
	if res, err := l.Symlink("../sites-available/homelab.conf", link); err != nil || res.Changed {
		t.Fatalf("again: %+v %v, want no change", res, err)
	}
	// A regular file where the link belongs is backed up, then replaced.
	local := filepath.Join(root, link)
	_ = os.Remove(local)
	if err := os.WriteFile(local, []byte("hand-made site"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := l.Symlink("../sites-available/homelab.conf", link)
	if err != nil || res.Backup == "" {
		t.Fatalf("replace file: %+v %v", res, err)
	}
	if target, _ := os.Readlink(local); target != "../sites-available/homelab.conf" {
		t.Errorf("link points at %q", target)
	}
}

func TestPathStaysUnderRoot(t *testing.T) {
	l := &Local{Root: "/srv/r"}
	for in, want := range map[string]string{"/etc/x": "/srv/r/etc/x", "../../etc/x": "/srv/r/etc/x", "/a/../../b": "/srv/r/b"} {
		if got := l.Path(in); got != want {
			t.Errorf("Path(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (&Local{}).Path("/etc/x"); got != "/etc/x" {
		t.Errorf("no root: %q", got)
	}
}

func TestRunReportsOutputOnFailure(t *testing.T) {
	sh := testutil.NeedProgram(t, "sh")
	l := &Local{}
	out, err := l.Run(context.Background(), Cmd{Name: sh, Args: []string{"-c", "echo hello; echo broken >&2; exit 3"}})
	var cmdErr *CmdError
	if !errors.As(err, &cmdErr) || !strings.Contains(err.Error(), "broken") || !strings.Contains(string(out), "hello") {
		t.Fatalf("out %q err %v", out, err)
	}
	if out, err := l.Run(context.Background(), Cmd{Name: sh, Args: []string{"-c", "cat"}, Stdin: []byte("in")}); err != nil || string(out) != "in" {
		t.Fatalf("stdin: %q %v", out, err)
	}
}

func TestLockRefusesASecondHolder(t *testing.T) {
	l, _ := newLocal(t)
	unlock, err := l.Lock("/var/lib/homelab/lock")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Lock("/var/lib/homelab/lock"); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second lock: %v, want ErrLocked naming the holder's pid", err)
	}
	unlock()
	unlock2, err := l.Lock("/var/lib/homelab/lock")
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestRunRefusesCommandsUnderRoot(t *testing.T) {
	l, _ := newLocal(t)
	if _, err := l.Run(context.Background(), Cmd{Name: "true"}); !errors.Is(err, ErrCommandUnderRoot) {
		t.Fatalf("err %v", err)
	}
}

func TestStreamReportsFailureInsteadOfEOF(t *testing.T) {
	sh := testutil.NeedProgram(t, "sh")
	l := &Local{}
	r, err := l.Stream(context.Background(), Cmd{Name: sh, Args: []string{"-c", "printf partial; echo 'no such image' >&2; exit 1"}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(r)
	if string(data) != "partial" || err == nil || !strings.Contains(err.Error(), "no such image") {
		t.Fatalf("data %q err %v: want the partial output and the command's error", data, err)
	}
	r.Close()
	r, _ = l.Stream(context.Background(), Cmd{Name: sh, Args: []string{"-c", "printf whole"}})
	if data, err := io.ReadAll(r); string(data) != "whole" || err != nil {
		t.Fatalf("%q %v", data, err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStateFilesAreNotBackedUp(t *testing.T) {
	l, root := newLocal(t)
	l.NoBackupUnder = []string{"/var/lib/homelab"}
	for _, data := range []string{"1", "2"} {
		if res, err := l.WriteFile("/var/lib/homelab/installed.json", []byte(data), 0o600); err != nil || res.Backup != "" {
			t.Fatalf("%+v %v", res, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "/var/backups/homelab")); !os.IsNotExist(err) {
		t.Errorf("a state file was backed up: %v", err)
	}
}
