package init

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"slices"

	"github.com/homelab-dev/homelab/pkg/bundle"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/k3s"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/render"
)

// ChartImagesStepName names the step that places the bundle's image tarball.
const ChartImagesStepName = "chart images"

// openedBundle is the --bundle of a run, verified and extracted; nil
// without --bundle (its methods then do what init does without one).
type openedBundle struct {
	b *bundle.Bundle
}

// useBundle verifies the --bundle file (bad bundle: exit 2, nothing
// changed) and points init's offline inputs at its files: the k3s binary
// with the digest pinned in the manifest, the release's checksum list, the
// airgap images and both charts. The offline flags it replaces may not be
// given with it (validate refuses them).
func useBundle(opts *Options, cfg *config.Config) (*openedBundle, error) {
	file := opts.Bundle
	if file == "" {
		return nil, nil
	}
	// validate made sure no offline flag came with --bundle.
	d := &opts.Deps
	arch := d.K3s.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	fmt.Fprintf(opts.IO.ErrOut, "Verifying bundle %s ...\n", file)
	b, err := bundle.Open(file, bundle.OpenOptions{Arch: arch, TempDir: opts.BundleTempDir})
	if err != nil {
		return nil, err
	}
	m := &b.Manifest
	if err := m.CheckConfig(file, cfg); err != nil {
		b.Close()
		return nil, err
	}
	bin, _ := m.File(m.K3s.Binary)
	stack, _ := m.Chart(bundle.StackChart)
	blackbox, _ := m.Chart(bundle.BlackboxChart)
	d.K3s.BinaryFile, d.K3s.PinnedSHA256 = b.Path(m.K3s.Binary), bin.SHA256
	d.K3s.SumsFile, d.K3s.ImagesFile = b.Path(m.K3s.Sums), b.Path(m.K3s.AirgapImages)
	d.StackChart, d.BlackboxChart = b.Path(stack.File), b.Path(blackbox.File)
	fmt.Fprintf(opts.IO.ErrOut, "Bundle verified: k3s %s, %d images for linux/%s; nothing will be downloaded.\n", m.K3s.Version, len(m.Images), m.Arch)
	return &openedBundle{b: b}, nil
}

// Close removes the extracted files.
func (o *openedBundle) Close() {
	if o != nil {
		o.b.Close()
	}
}

// plan is init's plan, with the bundle's image tarball placed where k3s
// imports it, right after the airgap images and before k3s starts.
func (o *openedBundle) plan(cfg *config.Config, r *render.Renderer, d Deps) (plan.Plan, error) {
	p, err := Plan(cfg, r, d)
	if err != nil || o == nil {
		return p, err
	}
	at := slices.IndexFunc(p.Steps, func(s plan.Step) bool { return s.Name == "k3s service" })
	if at < 0 {
		return plan.Plan{}, errors.New("init --bundle: the plan has no k3s service step to place the chart images before")
	}
	step := o.imagesStep(d.Host)
	p.Steps = append(p.Steps[:at], append([]plan.Step{step}, p.Steps[at:]...)...)
	return p, nil
}

// imagesStep places the bundle's image tarball in k3s's agent images
// directory: k3s imports every tarball there when it starts, so the
// charts' pods find their images without a registry. Check compares sizes,
// as the airgap images step does; Apply streams the file and commits it
// only when its sha256 is the manifest's.
func (o *openedBundle) imagesStep(h host.Host) plan.Step {
	m := &o.b.Manifest
	src := o.b.Path(m.ImagesFile)
	want, _ := m.File(m.ImagesFile)
	dst := path.Join(k3s.ImagesDir, path.Base(m.ImagesFile))
	todo := fmt.Sprintf("copy %d images for linux/%s from the bundle to %s (%d bytes), imported by k3s at start", len(m.Images), m.Arch, dst, want.Size)
	return plan.Step{
		Name: ChartImagesStepName,
		Check: func(context.Context) (plan.Status, error) {
			info, err := h.Lstat(dst)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return plan.Status{Pending: true, Summary: todo}, nil
			case err != nil:
				return plan.Status{}, err
			case info.Mode().IsRegular() && info.Size() == want.Size:
				return plan.Status{Summary: fmt.Sprintf("%s is in place (%d images)", dst, len(m.Images))}, nil
			}
			return plan.Status{Pending: true, Summary: "replace: " + todo}, nil
		},
		Apply: func(ctx context.Context) error {
			f, err := os.Open(src)
			if err != nil {
				return fmt.Errorf("bundle images: %w", err)
			}
			defer f.Close()
			sum := sha256.New()
			r := io.TeeReader(f, sum)
			check := func() error {
				if got := hex.EncodeToString(sum.Sum(nil)); got != want.SHA256 {
					return fmt.Errorf("bundle images %s changed since the bundle was verified: sha256 %s, the manifest says %s; nothing was written", src, got, want.SHA256)
				}
				return nil
			}
			if sw, ok := h.(host.StreamWriter); ok {
				_, err = sw.WriteFileFrom(dst, r, 0o644, check)
				return err
			}
			data, err := io.ReadAll(r)
			if err != nil {
				return fmt.Errorf("bundle images: %w", err)
			}
			if err := check(); err != nil {
				return err
			}
			_, err = h.WriteFile(dst, data, 0o644)
			return err
		},
	}
}
