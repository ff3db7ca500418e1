package init

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/bundle/bundletest"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/host/hosttest"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/k3s"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/render"
	"github.com/homelab-dev/homelab/pkg/selfinstall"
)

// The bundle's files go through init's existing offline steps for real:
// the k3s binary (pinned digest), the airgap images (the release's sums)
// and the chart images, each in place afterwards and up to date on a re-check.
func TestBundleFeedsTheOfflineSteps(t *testing.T) {
	file, src := bundletest.Make(t, runtime.GOARCH)
	src.Close()
	h := hosttest.New(t)
	h.Expect(k3s.BinaryPath, "--version").Returns("k3s version "+bundletest.K3sVersion+" (0123abcd)\n", nil).AnyTimes()
	ios, _, _, _ := iostreams.Test()
	opts := &Options{IO: ios, Bundle: file, Deps: Deps{Host: h, Self: selfinstall.Self{Executable: os.Args[0], Version: "test"}}}
	l, err := config.Load(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := useBundle(opts, l.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r, err := render.New()
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.plan(l.Config, r, opts.Deps)
	if err != nil {
		t.Fatal(err)
	}
	step := func(name string) plan.Step {
		for _, s := range p.Steps {
			if s.Name == name {
				return s
			}
		}
		t.Fatalf("no step %q", name)
		return plan.Step{}
	}
	m := b.b.Manifest
	ctx := context.Background()
	for _, c := range []struct{ step, dst, src string }{
		{"k3s binary", k3s.BinaryPath, m.K3s.Binary},
		{"k3s airgap images", k3s.ImagesDir + "/k3s-airgap-images-" + runtime.GOARCH + ".tar.zst", m.K3s.AirgapImages},
		{ChartImagesStepName, k3s.ImagesDir + "/homelab-chart-images-" + runtime.GOARCH + ".tar", m.ImagesFile},
	} {
		s := step(c.step)
		if st, err := s.Check(ctx); err != nil || !st.Pending {
			t.Fatalf("%s before: %+v %v", c.step, st, err)
		}
		if err := s.Apply(ctx); err != nil {
			t.Fatalf("%s: %v", c.step, err)
		}
		got, _ := os.ReadFile(h.Path(c.dst))
		want, _ := os.ReadFile(b.b.Path(c.src))
		if len(want) == 0 || !bytes.Equal(got, want) {
			t.Errorf("%s: %s is not the bundle's %s", c.step, c.dst, c.src)
		}
		if st, err := s.Check(ctx); err != nil || st.Pending {
			t.Errorf("%s after: %+v %v", c.step, st, err)
		}
	}
	// An extracted file changed after the bundle was verified is refused
	// and leaves the placed one as it was.
	dst := k3s.ImagesDir + "/homelab-chart-images-" + runtime.GOARCH + ".tar"
	before, _ := os.ReadFile(h.Path(dst))
	os.Remove(h.Path(dst))
	os.WriteFile(h.Path(dst), before[:10], 0o644)
	data, _ := os.ReadFile(b.b.Path(m.ImagesFile))
	data[len(data)-2000] ^= 1
	os.Chmod(b.b.Path(m.ImagesFile), 0o644)
	if err := os.WriteFile(b.b.Path(m.ImagesFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	err = step(ChartImagesStepName).Apply(ctx)
	if err == nil || !strings.Contains(err.Error(), "changed since the bundle was verified") {
		t.Fatalf("err = %v", err)
	}
	if got, _ := os.ReadFile(h.Path(dst)); !bytes.Equal(got, before[:10]) {
		t.Error("the refused tarball replaced the placed file")
	}
}
