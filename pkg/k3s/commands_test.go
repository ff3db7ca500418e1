package k3s_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/host/hosttest"
	"github.com/homelab-dev/homelab/pkg/k3s"
)

func TestCommandLinksLikeGetK3sIo(t *testing.T) {
	h := hosttest.New(t)
	// The user has a kubectl of their own in /usr/bin: it is neither
	// replaced nor shadowed by a link in /usr/local/bin.
	own := h.Path("/usr/bin/kubectl")
	if err := os.MkdirAll(filepath.Dir(own), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(own, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	step := k3s.CommandLinksStep(h)
	ctx := context.Background()
	st, err := step.Check(ctx)
	if err != nil || !st.Pending || st.Summary != "link crictl, ctr to /usr/local/bin/k3s; have /usr/bin/kubectl" {
		t.Fatalf("check: %+v %v", st, err)
	}
	if err := step.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"crictl", "ctr"} {
		if target, err := os.Readlink(h.Path("/usr/local/bin/" + name)); err != nil || target != k3s.BinaryPath {
			t.Errorf("%s -> %q, %v", name, target, err)
		}
	}
	if _, err := os.Lstat(h.Path("/usr/local/bin/kubectl")); err == nil {
		t.Error("kubectl was linked although /usr/bin/kubectl exists")
	}
	st, err = step.Check(ctx)
	if err != nil || st.Pending || !strings.Contains(st.Summary, "crictl -> k3s, ctr -> k3s") {
		t.Fatalf("after apply: %+v %v", st, err)
	}
}
