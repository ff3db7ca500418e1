package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --root that really means this machine's "/" is bad input: exit 2, before
// anything is read or written (issue 12, class 2).
func TestRootThatIsTheMachineIsRefused(t *testing.T) {
	dir := t.TempDir()
	slash := filepath.Join(dir, "slash")
	if err := os.Symlink("/", slash); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{"", "/tmp/..", slash} {
		for _, cmd := range [][]string{{"render"}, {"init", "--dry-run"}, {"uninstall", "--dry-run"}, {"doctor"}} {
			args := append(append([]string{}, cmd...), "--root", root)
			code, _, errOut := run(t, args...)
			if code != 2 || !strings.Contains(errOut, "--root") {
				t.Errorf("homelab %s: exit %d, want 2 with a message naming --root:\n%s", strings.Join(args, " "), code, errOut)
			}
		}
	}
}

// A symlink inside the root pointing out of it does not take render's
// writes out: they land where the machine built from the tree would see them.
func TestRenderThroughALinkStaysUnderRoot(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{root, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run(t, "render", "--root", root); code != 0 {
		t.Fatalf("render: exit %d\n%s", code, errOut)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("render wrote %v outside --root through ROOT/etc -> %s", entries, outside)
	}
	if _, err := os.Stat(filepath.Join(root, outside, "nginx/sites-available/homelab.conf")); err != nil {
		t.Errorf("the site should be at ROOT%s/nginx/...: %v", outside, err)
	}
}
