package host

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveRootRefusesTheMachinesOwnRoot(t *testing.T) {
	dir := t.TempDir()
	linkToSlash := filepath.Join(dir, "slash")
	if err := os.Symlink("/", linkToSlash); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "  ", "/tmp/..", "//", "/.", dir + "/../../../..", linkToSlash, linkToSlash + "/.", file} {
		got, err := ResolveRoot(bad)
		if err == nil || !strings.Contains(err.Error(), "--root") {
			t.Errorf("ResolveRoot(%q) = %q, %v; want an error naming --root", bad, got, err)
		}
	}
	if got, err := ResolveRoot("/"); err != nil || got != "/" {
		t.Errorf(`ResolveRoot("/") = %q, %v; "/" written out means the machine`, got, err)
	}
	// A root that does not exist yet (render creates it) is made absolute,
	// with the symlinks of its existing part resolved.
	viaLink := filepath.Join(dir, "via")
	if err := os.Symlink(dir, viaLink); err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	if got, err := ResolveRoot(viaLink + "/out/tree"); err != nil || got != filepath.Join(real, "out/tree") {
		t.Errorf("ResolveRoot(new dir via a link) = %q, %v; want %q", got, err, filepath.Join(real, "out/tree"))
	}
	t.Chdir(dir)
	if got, err := ResolveRoot("out"); err != nil || got != filepath.Join(real, "out") {
		t.Errorf(`ResolveRoot("out") = %q, %v; want it absolute`, got, err)
	}
}

// A symlink inside the root never takes a write, a read or a removal out of
// it: links are resolved as the machine built from the tree would see them.
func TestSymlinksInsideRootStayInside(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{root, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	// ROOT/etc -> the outside directory (absolute), ROOT/var -> ../outside
	// (relative, climbing out), ROOT/etc/... reads through an absolute link.
	if err := os.Symlink(outside, filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside", filepath.Join(root, "var")); err != nil {
		t.Fatal(err)
	}
	l := &Local{Root: root, BackupDir: "/var/backups/homelab"}

	for _, p := range []string{"/etc/victim", "/var/victim"} {
		if _, err := l.WriteFile(p, []byte("written"), 0o644); err != nil {
			t.Fatalf("write %s: %v", p, err)
		}
		if err := l.Remove(p); err != nil {
			t.Fatalf("remove %s: %v", p, err)
		}
	}
	if _, err := l.WriteFile("/etc/new", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Symlink("target", "/var/link"); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(victim); err != nil || string(got) != "keep me" {
		t.Fatalf("the file outside the root holds %q, %v: a write or removal left the root", got, err)
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Fatalf("the outside directory holds %d entries, want only the victim", len(entries))
	}
	// Where the writes went: the absolute link read as ROOT/<outside>.
	if got, err := os.ReadFile(filepath.Join(root, outside, "new")); err != nil || string(got) != "x" {
		t.Errorf("the write through ROOT/etc should land at ROOT%s/new: %q, %v", outside, got, err)
	}

	// A read through a final link with an absolute target stays inside too.
	if err := os.Symlink(victim, filepath.Join(root, "secret")); err != nil {
		t.Fatal(err)
	}
	if got, err := l.ReadFile("/secret"); err == nil || bytes.Contains(got, []byte("keep me")) {
		t.Errorf("reading a link to %s under --root read %q, %v; want the root's own (missing) file", victim, got, err)
	}
}

// Temporary files are made beside their target, never in $TMPDIR: an
// interrupted run leaves nothing in /tmp, a --root run nothing outside it.
func TestWritesMakeNoTemporaryFilesElsewhere(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	l, root := newLocal(t)
	if _, err := l.WriteFile("/etc/homelab/a.yaml", []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WriteFile("/etc/homelab/a.yaml", []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The check runs while the pending file exists: it must be beside the target.
	pendingBeside := func() error {
		if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
			t.Errorf("$TMPDIR holds %v while writing under %s", entries, root)
		}
		if entries, _ := os.ReadDir(filepath.Join(root, "/var/lib")); len(entries) != 1 {
			t.Errorf("the target's directory holds %v while writing, want the pending file", entries)
		}
		return nil
	}
	if _, err := l.WriteFileFrom("/var/lib/x.tar", strings.NewReader("tar"), 0o644, pendingBeside); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("$TMPDIR holds %v after writes under %s", entries, root)
	}
}
