// mkimage writes one linux/amd64 container image as a docker-archive tarball
// (the `docker save` format, made with go-containerregistry's tarball
// package), which `ctr images import`, k3s's airgap loader and homelab's own
// importer accept.
//
//	mkimage -spec SPEC.json -o OUT.tar
//
// The image has two layers: a distroless-like base (/etc/passwd, /etc/group,
// /etc/nsswitch.conf, CA certificates, /tmp) that every image built here
// shares, so containerd stores it once, and the image's own files. Every
// entry has a fixed time and owner, so the same inputs give the same digest.
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Spec describes one image.
type Spec struct {
	Ref          string            `json:"ref"`
	Files        []File            `json:"files"`
	Dirs         []Dir             `json:"dirs"`
	Symlinks     map[string]string `json:"symlinks"` // link path -> target
	Entrypoint   []string          `json:"entrypoint"`
	Cmd          []string          `json:"cmd"`
	User         string            `json:"user"`
	WorkingDir   string            `json:"workdir"`
	ExposedPorts []string          `json:"exposed"`
	Volumes      []string          `json:"volumes"`
	Env          []string          `json:"env"`
	Labels       map[string]string `json:"labels"`
	// NoBase leaves the shared base layer out (the pause image has none).
	NoBase bool `json:"noBase"`
}

type File struct {
	Src  string `json:"src"`
	Data string `json:"data"` // inline content instead of Src
	Dst  string `json:"dst"`
	Mode int64  `json:"mode"`
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
}

type Dir struct {
	Path string `json:"path"`
	Mode int64  `json:"mode"`
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
}

var epoch = time.Unix(0, 0).UTC()

const passwd = `root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
`

const group = `root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
`

// layerBuilder collects entries and adds the parent directories a tar needs.
type layerBuilder struct {
	buf  bytes.Buffer
	tw   *tar.Writer
	dirs map[string]bool
}

func newLayer() *layerBuilder {
	l := &layerBuilder{dirs: map[string]bool{}}
	l.tw = tar.NewWriter(&l.buf)
	return l
}

func (l *layerBuilder) parents(p string) error {
	dir := path.Dir(p)
	if dir == "/" || dir == "." || l.dirs[dir] {
		return nil
	}
	if err := l.parents(dir); err != nil {
		return err
	}
	return l.dir(Dir{Path: dir, Mode: 0o755})
}

func (l *layerBuilder) dir(d Dir) error {
	p := path.Clean(d.Path)
	if l.dirs[p] {
		return nil
	}
	if err := l.parents(p); err != nil {
		return err
	}
	l.dirs[p] = true
	mode := d.Mode
	if mode == 0 {
		mode = 0o755
	}
	return l.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(p, "/") + "/", Mode: mode,
		Uid: d.UID, Gid: d.GID, ModTime: epoch, Format: tar.FormatPAX})
}

func (l *layerBuilder) file(f File) error {
	data := []byte(f.Data)
	if f.Src != "" {
		var err error
		if data, err = os.ReadFile(f.Src); err != nil {
			return err
		}
	}
	p := path.Clean(f.Dst)
	if err := l.parents(p); err != nil {
		return err
	}
	mode := f.Mode
	if mode == 0 {
		mode = 0o644
	}
	if err := l.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p, "/"), Mode: mode,
		Size: int64(len(data)), Uid: f.UID, Gid: f.GID, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := l.tw.Write(data)
	return err
}

func (l *layerBuilder) symlink(p, target string) error {
	p = path.Clean(p)
	if err := l.parents(p); err != nil {
		return err
	}
	return l.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(p, "/"), Linkname: target,
		Mode: 0o777, ModTime: epoch, Format: tar.FormatPAX})
}

func (l *layerBuilder) layer() (v1.Layer, error) {
	if err := l.tw.Close(); err != nil {
		return nil, err
	}
	b := l.buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

func baseLayer() (v1.Layer, error) {
	l := newLayer()
	for _, d := range []Dir{{Path: "/etc", Mode: 0o755}, {Path: "/tmp", Mode: 0o1777}, {Path: "/root", Mode: 0o700},
		{Path: "/home/nonroot", Mode: 0o700, UID: 65532, GID: 65532}, {Path: "/var/run", Mode: 0o755}} {
		if err := l.dir(d); err != nil {
			return nil, err
		}
	}
	files := []File{
		{Dst: "/etc/passwd", Data: passwd},
		{Dst: "/etc/group", Data: group},
		{Dst: "/etc/nsswitch.conf", Data: "hosts: files dns\n"},
	}
	// CA certificates, as distroless/static has them (from the build host's
	// Debian ca-certificates package).
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		files = append(files, File{Dst: "/etc/ssl/certs/ca-certificates.crt", Src: "/etc/ssl/certs/ca-certificates.crt"})
	}
	for _, f := range files {
		if err := l.file(f); err != nil {
			return nil, err
		}
	}
	return l.layer()
}

func build(spec Spec) (v1.Image, error) {
	img := empty.Image
	if !spec.NoBase {
		base, err := baseLayer()
		if err != nil {
			return nil, fmt.Errorf("base layer: %w", err)
		}
		if img, err = mutate.AppendLayers(img, base); err != nil {
			return nil, err
		}
	}
	l := newLayer()
	for _, d := range spec.Dirs {
		if err := l.dir(d); err != nil {
			return nil, err
		}
	}
	for _, f := range spec.Files {
		if err := l.file(f); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Dst, err)
		}
	}
	links := make([]string, 0, len(spec.Symlinks))
	for k := range spec.Symlinks {
		links = append(links, k)
	}
	sort.Strings(links)
	for _, k := range links {
		if err := l.symlink(k, spec.Symlinks[k]); err != nil {
			return nil, err
		}
	}
	own, err := l.layer()
	if err != nil {
		return nil, err
	}
	if img, err = mutate.AppendLayers(img, own); err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: epoch}
	c := &cf.Config
	c.Entrypoint, c.Cmd, c.User, c.WorkingDir, c.Labels = spec.Entrypoint, spec.Cmd, spec.User, spec.WorkingDir, spec.Labels
	c.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}, spec.Env...)
	if len(spec.ExposedPorts) > 0 {
		c.ExposedPorts = map[string]struct{}{}
		for _, p := range spec.ExposedPorts {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			c.ExposedPorts[p] = struct{}{}
		}
	}
	if len(spec.Volumes) > 0 {
		c.Volumes = map[string]struct{}{}
		for _, v := range spec.Volumes {
			c.Volumes[v] = struct{}{}
		}
	}
	return mutate.ConfigFile(img, cf)
}

func main() {
	specPath := flag.String("spec", "", "image spec (JSON)")
	out := flag.String("o", "", "output docker-archive tarball")
	combine := flag.Bool("combine", false, "write the images of the docker-archive tarballs given as arguments into one (-o)")
	flag.Parse()
	var err error
	if *combine {
		err = combineArchives(*out, flag.Args())
	} else {
		err = run(*specPath, *out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(specPath, out string) error {
	raw, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	var spec Spec
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return fmt.Errorf("%s: %w", specPath, err)
	}
	tag, err := name.NewTag(spec.Ref)
	if err != nil {
		return fmt.Errorf("ref %q: %w", spec.Ref, err)
	}
	img, err := build(spec)
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	id, err := img.ConfigName()
	if err != nil {
		return err
	}
	st, err := os.Stat(out)
	if err != nil {
		return err
	}
	// One line for the build script's index: ref, image ID (config digest:
	// the same in containerd after an import), the manifest digest as
	// go-containerregistry computes it (containerd writes its own manifest
	// when it imports a docker archive), size.
	fmt.Printf("%s\t%s\t%s\t%d\n", tag.String(), id, d, st.Size())
	return nil
}

// combineArchives writes every image of the given single-image archives,
// under their tags, into one docker-archive (for k3s's airgap folder or
// `homelab init --k3s-images`).
func combineArchives(out string, ins []string) error {
	refs := map[name.Reference]v1.Image{}
	for _, in := range ins {
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(in) })
		if err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
		for _, d := range m {
			for _, t := range d.RepoTags {
				tag, err := name.NewTag(t)
				if err != nil {
					return fmt.Errorf("%s: %w", in, err)
				}
				img, err := tarball.ImageFromPath(in, &tag)
				if err != nil {
					return fmt.Errorf("%s: %w", in, err)
				}
				refs[tag] = img
			}
		}
	}
	tmp := out + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
