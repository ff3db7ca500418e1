package bundle

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/renameio/v2"
	"helm.sh/helm/v3/pkg/chart"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/helm"
	"github.com/homelab-dev/homelab/pkg/k3s"
)

// Options say what to gather for a bundle and from where.
type Options struct {
	Config *config.Config
	// Arch is amd64 or arm64.
	Arch string
	// HTTP downloads the k3s release assets and the charts' repository;
	// a new client when nil.
	HTTP *http.Client
	// K3sBaseURL is the k3s release download URL (k3s.DefaultBaseURL when
	// empty).
	K3sBaseURL string
	// Mirrors maps a registry host (quay.io, docker.io, ...) to another
	// host that serves the same repositories, like a pull-through mirror:
	// images are pulled from the mirror and keep their original names in
	// the bundle. A mirror on a loopback address is spoken to over plain
	// HTTP. The tests point every registry at an in-process one.
	Mirrors map[string]string
	// Transport is the registries' HTTP transport; remote.DefaultTransport
	// when nil. Credentials come from the Docker config (~/.docker/config.json,
	// docker login), else anonymous.
	Transport http.RoundTripper
	// Version is homelab's version, for the manifest.
	Version string
	// Progress receives one line per thing gathered; nil discards them.
	Progress func(string)
	// Now stamps the manifest; time.Now when nil.
	Now func() time.Time
}

// Write gathers everything `init --bundle` needs for o.Config and writes the
// bundle to file atomically: the file appears complete or not at all. The
// parts are staged in a temporary directory beside file first.
func Write(ctx context.Context, file string, o Options) (*Manifest, error) {
	if !slices.Contains(Arches, o.Arch) {
		return nil, fmt.Errorf("bundle: architecture %q is not one of %s", o.Arch, strings.Join(Arches, ", "))
	}
	if o.Config == nil {
		return nil, fmt.Errorf("bundle: no configuration")
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			o.Progress(fmt.Sprintf(format, args...))
		}
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp(filepath.Dir(abs), ".homelab-bundle-")
	if err != nil {
		return nil, fmt.Errorf("bundle: staging directory beside %s: %w", file, err)
	}
	defer os.RemoveAll(stage)
	s := &stager{dir: stage}
	cfg := o.Config
	m := &Manifest{Format: FormatVersion, Created: o.Now().UTC(), HomelabVersion: o.Version, Arch: o.Arch,
		KubernetesVersion: KubeVersion(cfg.K3s.Version)}

	// k3s: the checksum list first; the binary and the airgap images are
	// verified against it as they stream in.
	inst := k3s.Installer{HTTP: o.HTTP, BaseURL: o.K3sBaseURL, Arch: o.Arch, Version: cfg.K3s.Version}
	m.K3s.Version = cfg.K3s.Version
	sums, err := inst.Sums(ctx)
	if err != nil {
		return nil, fmt.Errorf("k3s %s checksum list: %w", cfg.K3s.Version, err)
	}
	m.K3s.Sums = path.Join(k3sDir, inst.SumsAsset())
	if err := s.write(m.K3s.Sums, 0o644, func(w io.Writer) error { _, err := w.Write(sums); return err }); err != nil {
		return nil, err
	}
	inst.SumsFile = s.local(m.K3s.Sums)
	for _, a := range []struct {
		asset string
		dest  *string
		mode  os.FileMode
	}{
		{inst.BinaryAsset(), &m.K3s.Binary, 0o755},
		{inst.AirgapImagesAsset(), &m.K3s.AirgapImages, 0o644},
	} {
		progress("k3s %s: %s", cfg.K3s.Version, a.asset)
		*a.dest = path.Join(k3sDir, a.asset)
		if err := s.write(*a.dest, a.mode, func(w io.Writer) error {
			_, err := inst.Download(ctx, a.asset, w)
			return err
		}); err != nil {
			return nil, fmt.Errorf("k3s %s %s: %w", cfg.K3s.Version, a.asset, err)
		}
	}

	// The charts, fetched as init would fetch them.
	helmHome := filepath.Join(stage, ".helm")
	defer os.RemoveAll(helmHome)
	engine := &helm.Engine{Home: helmHome}
	var charts Charts
	mon := cfg.Monitoring
	for _, c := range []struct {
		name, version string
		loaded        **chart.Chart
	}{
		{StackChart, mon.ChartVersion, &charts.Stack},
		{BlackboxChart, mon.Blackbox.ChartVersion, &charts.Blackbox},
	} {
		src := helm.Source{RepoURL: mon.ChartRepo, Name: c.name, Version: c.version}
		progress("chart %s", src)
		data, ch, err := engine.FetchArchive(src)
		if err != nil {
			return nil, fmt.Errorf("chart %s %s: %w", c.name, c.version, err)
		}
		*c.loaded = ch
		cf := ChartFile{Name: c.name, Version: c.version, File: path.Join(chartsDir, c.name+"-"+c.version+".tgz")}
		if err := s.write(cf.File, 0o644, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
			return nil, err
		}
		m.Charts = append(m.Charts, cf)
	}
	os.RemoveAll(helmHome)

	// Every image the charts run, for the bundle's platform.
	refs, err := ConfigImages(ctx, cfg, charts)
	if err != nil {
		return nil, err
	}
	m.ImagesFile = path.Join(imagesDir, "homelab-chart-images-"+o.Arch+".tar")
	images, err := pullAll(ctx, refs, o, progress)
	if err != nil {
		return nil, err
	}
	progress("writing %d images to %s", len(images.byRef), m.ImagesFile)
	if err := s.write(m.ImagesFile, 0o644, func(w io.Writer) error {
		return tarball.MultiRefWrite(images.byRef, w)
	}); err != nil {
		return nil, fmt.Errorf("bundle: write the images: %w", err)
	}
	m.Images = images.list
	m.Files = s.files
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	if probs := m.check(); len(probs) > 0 {
		return nil, fmt.Errorf("bundle: internal error: %s", strings.Join(probs, "; "))
	}
	if err := s.archive(abs, m); err != nil {
		return nil, err
	}
	return m, nil
}

// pulled are the images of a bundle.
type pulled struct {
	byRef map[name.Reference]v1.Image
	list  []Image
}

// pullAll resolves every reference for linux/<arch>. Layers are streamed
// later, when the tarball is written.
func pullAll(ctx context.Context, refs []string, o Options, progress func(string, ...any)) (pulled, error) {
	out := pulled{byRef: map[name.Reference]v1.Image{}}
	want := v1.Platform{OS: "linux", Architecture: o.Arch}
	transport := o.Transport
	if transport == nil {
		transport = remote.DefaultTransport
	}
	for _, ref := range refs {
		tag, err := name.NewTag(ref, name.StrictValidation)
		if err != nil {
			return pulled{}, fmt.Errorf("image %s: only tagged references can be bundled: %w", ref, err)
		}
		from, err := mirrored(tag, o.Mirrors)
		if err != nil {
			return pulled{}, fmt.Errorf("image %s: %w", ref, err)
		}
		progress("image %s", ref)
		img, err := remote.Image(from, remote.WithContext(ctx), remote.WithPlatform(want),
			remote.WithTransport(transport), remote.WithAuthFromKeychain(authn.DefaultKeychain))
		if err != nil {
			return pulled{}, fmt.Errorf("pull image %s (from %s): %w", ref, from.Context().RegistryStr(), err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return pulled{}, fmt.Errorf("pull image %s: its config: %w", ref, err)
		}
		if cf.OS != want.OS || cf.Architecture != want.Architecture {
			return pulled{}, fmt.Errorf("image %s is built for %s/%s only, the bundle is for %s", ref, cf.OS, cf.Architecture, want)
		}
		d, err := img.Digest()
		if err != nil {
			return pulled{}, fmt.Errorf("pull image %s: %w", ref, err)
		}
		// Named as the charts name it (the tag keeps its original string).
		out.byRef[tag] = img
		out.list = append(out.list, Image{Ref: ref, Digest: d.String()})
	}
	return out, nil
}

// mirrored is tag at its mirror, when its registry has one.
func mirrored(tag name.Tag, mirrors map[string]string) (name.Tag, error) {
	reg := tag.Context().RegistryStr()
	mirror, ok := mirrors[reg]
	if !ok && reg == name.DefaultRegistry {
		mirror, ok = mirrors["docker.io"]
	}
	if !ok {
		return tag, nil
	}
	var opts []name.Option
	if h, _, err := net.SplitHostPort(mirror); err == nil && isLoopback(h) {
		opts = append(opts, name.Insecure)
	}
	return name.NewTag(mirror+"/"+tag.Context().RepositoryStr()+":"+tag.TagStr(), opts...)
}

func isLoopback(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// stager writes the parts into a directory, hashing them.
type stager struct {
	dir   string
	files []File
}

func (s *stager) local(p string) string { return filepath.Join(s.dir, filepath.FromSlash(p)) }

func (s *stager) write(p string, mode os.FileMode, fill func(io.Writer) error) error {
	local := s.local(p)
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(local, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	sum := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, sum)}
	err = fill(cw)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(local)
		return err
	}
	s.files = append(s.files, File{Path: p, Size: cw.n, SHA256: hex.EncodeToString(sum.Sum(nil))})
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// archive writes the manifest and the staged files as one tar, atomically.
func (s *stager) archive(file string, m *Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	// The pending file beside the bundle, never in $TMPDIR (renameio's
	// choice when both are on one filesystem): an interrupted write leaves
	// nothing in /tmp, and one on another filesystem could not be renamed.
	out, err := renameio.NewPendingFile(file, renameio.WithTempDir(filepath.Dir(file)), renameio.WithPermissions(0o644))
	if err != nil {
		return fmt.Errorf("bundle: write %s: %w", file, err)
	}
	defer out.Cleanup()
	tw := tar.NewWriter(out)
	mtime := m.Created
	if err := tw.WriteHeader(&tar.Header{Name: ManifestName, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("bundle: write %s: %w", file, err)
	}
	for _, f := range m.Files {
		if err := s.add(tw, f, mtime); err != nil {
			return fmt.Errorf("bundle: write %s: %s: %w", file, f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("bundle: write %s: %w", file, err)
	}
	if err := out.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("bundle: write %s: %w", file, err)
	}
	return nil
}

func (s *stager) add(tw *tar.Writer, f File, mtime time.Time) error {
	in, err := os.Open(s.local(f.Path))
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	if info.Size() != f.Size {
		return fmt.Errorf("changed while the bundle was written (%d bytes, was %d)", info.Size(), f.Size)
	}
	if err := tw.WriteHeader(&tar.Header{Name: f.Path, Mode: int64(info.Mode().Perm()), Size: f.Size, ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, in)
	return err
}
