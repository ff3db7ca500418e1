package app

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/bundle/bundletest"
)

// TestCommandsWriteNothingToTMPDIR: render, a dry run of init (with and
// without a bundle) and a render to stdout create nothing in $TMPDIR, not
// even for a moment, so an interrupted run leaves nothing in /tmp and a
// --root run writes nowhere but under its root; after success no temporary
// file is left beside the files written.
func TestCommandsWriteNothingToTMPDIR(t *testing.T) {
	file, src := bundletest.Make(t, runtime.GOARCH)
	src.Close() // the dry run reads the bundle only
	renderRoot, initRoot, bundleRoot := t.TempDir(), t.TempDir(), t.TempDir()
	check := bundletest.EmptyTempDir(t)
	besideBundle := bundletest.WatchCreations(t, filepath.Dir(file))

	for _, args := range [][]string{
		{"render", "--root", renderRoot},
		{"render", "--root", renderRoot, "--domain", "blog.example.com"}, // replaces files, with backups
		{"render"},
		{"init", "--dry-run", "--no-tui", "--root", initRoot},
		{"init", "--dry-run", "--no-tui", "--root", bundleRoot, "--bundle", file},
	} {
		if code, _, stderr := run(t, args...); code != 0 {
			t.Fatalf("%s: exit %d:\n%s", strings.Join(args, " "), code, stderr)
		}
	}
	check()
	// Under --root the bundle is extracted in the root's state directory,
	// not beside the bundle, which is outside the root.
	if created := besideBundle(); len(created) > 0 {
		t.Errorf("init --root --bundle created %q beside the bundle, outside the root", created)
	}
	for _, root := range []string{renderRoot, initRoot, bundleRoot, filepath.Dir(file)} {
		_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			// renameio's pending files and homelab's extraction
			// directories are dot files; nothing homelab writes is.
			if err == nil && strings.HasPrefix(info.Name(), ".") {
				t.Errorf("left behind: %s", p)
			}
			return nil
		})
	}
}
