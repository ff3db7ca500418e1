package bundle_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/homelab-dev/homelab/pkg/bundle"
	"github.com/homelab-dev/homelab/pkg/bundle/bundletest"
)

// TestNothingInTMPDIR: writing, listing and opening a bundle keep their
// temporary files beside their targets (the bundle, homelab's chart cache),
// so an interrupted run leaves nothing in /tmp; after success nothing is
// left beside the bundle but the bundle.
func TestNothingInTMPDIR(t *testing.T) {
	src := bundletest.Serve(t)
	cfg := src.Config(t)
	out := t.TempDir()
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	check := bundletest.EmptyTempDir(t)

	file := filepath.Join(out, "homelab-bundle.tar")
	if _, err := bundle.Write(context.Background(), file, src.Options(cfg, runtime.GOARCH)); err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.ListImages(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cache, "homelab", "helm")); err != nil {
		t.Errorf("the chart cache of list-images is not homelab's own: %v", err)
	}
	b, err := bundle.Open(file, bundle.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(b.Dir) != out {
		t.Errorf("extracted to %s, want a directory beside the bundle in %s", b.Dir, out)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(out); len(left) != 1 || left[0].Name() != filepath.Base(file) {
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Errorf("beside the bundle after success: %q, want only the bundle", names)
	}
	check()
}
