package images

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var host = "linux/" + runtime.GOARCH

func TestImportDockerArchive(t *testing.T) {
	e := newEnv(t)
	name := e.uniqueName(t)
	img := testImage(t, runtime.GOARCH)

	res, err := e.imp.Import(context.Background(), bytes.NewReader(dockerArchive(t, img, name)), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || len(res.Names) != 1 || res.Names[0] != name || res.Platform != host || res.Digest.Validate() != nil {
		t.Fatalf("result %+v, want %s imported for %s with a digest", res, name, host)
	}
	e.assertImported(t, name, res.Digest)
}

func TestImportUnderGivenNameOnly(t *testing.T) {
	e := newEnv(t)
	archiveTag, want := e.uniqueName(t), e.uniqueName(t)
	img := testImage(t, runtime.GOARCH)

	res, err := e.imp.Import(context.Background(), bytes.NewReader(dockerArchive(t, img, archiveTag)), ImportOptions{Name: want})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Names) != 1 || res.Names[0] != want {
		t.Fatalf("names %v, want only %s", res.Names, want)
	}
	e.assertImported(t, want, res.Digest)
	if _, err := e.imp.Lookup(context.Background(), archiveTag); !errors.Is(err, ErrImageNotFound) {
		t.Errorf("the archive's own tag %s was stored too (err %v): it would stay pinned forever", archiveTag, err)
	}
}

func TestReimportIsNoop(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	name := e.uniqueName(t)
	archive := dockerArchive(t, testImage(t, runtime.GOARCH), name)

	first, err := e.imp.Import(ctx, bytes.NewReader(archive), ImportOptions{})
	if err != nil || !first.Changed {
		t.Fatalf("first import: %+v %v", first, err)
	}
	before, _ := e.client.ImageService().Get(ctx, name)
	again, err := e.imp.Import(ctx, bytes.NewReader(archive), ImportOptions{})
	if err != nil || again.Changed || again.Digest != first.Digest {
		t.Fatalf("second import: %+v %v, want unchanged %s", again, err, first.Digest)
	}
	after, _ := e.client.ImageService().Get(ctx, name)
	if !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("a no-op import rewrote the image record (updated %v -> %v)", before.UpdatedAt, after.UpdatedAt)
	}

	// Someone removed the pin: the same import puts it back.
	after.Labels = nil
	if _, err := e.client.ImageService().Update(ctx, after, "labels"); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.imp.Lookup(ctx, name); got.Pinned {
		t.Fatal("label removal did not take")
	}
	repaired, err := e.imp.Import(ctx, bytes.NewReader(archive), ImportOptions{})
	if err != nil || !repaired.Changed {
		t.Fatalf("import after unpinning: %+v %v, want a change", repaired, err)
	}
	e.assertImported(t, name, first.Digest)

	// A new image under the same tag moves the tag.
	next, err := e.imp.Import(ctx, bytes.NewReader(dockerArchive(t, testImage(t, runtime.GOARCH), name)), ImportOptions{})
	if err != nil || !next.Changed || next.Digest == first.Digest {
		t.Fatalf("new image under the same tag: %+v %v", next, err)
	}
	e.assertImported(t, name, next.Digest)
}

func TestImportOCILayout(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	img := testImage(t, runtime.GOARCH)
	manifest, _ := img.Digest()

	t.Run("named", func(t *testing.T) {
		name := e.uniqueName(t)
		archive := ociArchive(t, img, map[string]string{ocispec.AnnotationRefName: name})
		res, err := e.imp.Import(ctx, bytes.NewReader(archive), ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Digest.String() != manifest.String() || len(res.Names) != 1 || res.Names[0] != name {
			t.Fatalf("result %+v, want %s as %s", res, manifest, name)
		}
		e.assertImported(t, name, res.Digest)
	})
	t.Run("tag only", func(t *testing.T) {
		// OCI layouts often carry just a tag; the name must come from us.
		archive := ociArchive(t, img, map[string]string{ocispec.AnnotationRefName: "latest"})
		_, err := e.imp.Import(ctx, bytes.NewReader(archive), ImportOptions{})
		if !errors.Is(err, ErrNoImage) || !IsBadInput(err) {
			t.Fatalf("err %v, want ErrNoImage", err)
		}
		name := e.uniqueName(t)
		res, err := e.imp.Import(ctx, bytes.NewReader(archive), ImportOptions{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		e.assertImported(t, name, res.Digest)
	})
}

func TestImportMultiPlatformIndex(t *testing.T) {
	e := newEnv(t)
	name := e.uniqueName(t)
	mine, other := testImage(t, runtime.GOARCH), testImage(t, otherArch())
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: otherArch()}}},
		mutate.IndexAddendum{Add: mine, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	idxDigest, _ := idx.Digest()

	res, err := e.imp.Import(context.Background(), bytes.NewReader(ociArchive(t, idx, map[string]string{ocispec.AnnotationRefName: name})), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest.String() != idxDigest.String() || res.Platform != host {
		t.Fatalf("result %+v, want the index %s unpacked for %s", res, idxDigest, host)
	}
	e.assertImported(t, name, res.Digest)
}

func TestImportGzipArchive(t *testing.T) {
	e := newEnv(t)
	name := e.uniqueName(t)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	_, _ = gz.Write(dockerArchive(t, testImage(t, runtime.GOARCH), name))
	_ = gz.Close()
	res, err := e.imp.Import(context.Background(), &buf, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.assertImported(t, name, res.Digest)
}

func TestImportWrongPlatform(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	name := e.uniqueName(t)
	wrong := testImage(t, otherArch())

	_, err := e.imp.Import(ctx, bytes.NewReader(dockerArchive(t, wrong, name)), ImportOptions{})
	var pe *PlatformError
	if !errors.Is(err, ErrWrongPlatform) || !errors.As(err, &pe) || !IsBadInput(err) {
		t.Fatalf("err %v, want a PlatformError", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "linux/"+otherArch()) || !strings.Contains(msg, host) || !strings.Contains(msg, name) {
		t.Errorf("message %q should name the image, its platform and %s", msg, host)
	}
	e.assertNothingLeft(t, wrong, name)

	// A good image under the name stays as it is when a wrong one comes.
	good, err := e.imp.Import(ctx, bytes.NewReader(dockerArchive(t, testImage(t, runtime.GOARCH), name)), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.imp.Import(ctx, bytes.NewReader(dockerArchive(t, wrong, name)), ImportOptions{}); !errors.Is(err, ErrWrongPlatform) {
		t.Fatalf("err %v", err)
	}
	e.assertImported(t, name, good.Digest)

	// No platform at all in the config is refused too.
	cfg, _ := wrong.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "", ""
	bare, _ := mutate.ConfigFile(wrong, cfg)
	_, err = e.imp.Import(ctx, bytes.NewReader(dockerArchive(t, bare, e.uniqueName(t))), ImportOptions{})
	if !errors.Is(err, ErrWrongPlatform) || !strings.Contains(err.Error(), "no platform") {
		t.Fatalf("image without platform: %v", err)
	}
}

func TestImportCorruptArchive(t *testing.T) {
	e := newEnv(t)
	img := testImage(t, runtime.GOARCH)
	layers, _ := img.Layers()
	layerDigest, _ := layers[0].Digest()

	flip := func(b []byte, at int64) []byte {
		out := bytes.Clone(b)
		for i := at; i < at+16; i++ {
			out[i] ^= 0xff
		}
		return out
	}
	cases := map[string]func(docker []byte) []byte{
		"truncated mid-layer": func(b []byte) []byte {
			l := findEntry(t, b, layerDigest.Hex+".tar.gz")
			return b[:l.data+l.size/2]
		},
		"truncated between entries": func(b []byte) []byte {
			return b[:findEntry(t, b, "manifest.json").header]
		},
		"end-of-archive marker missing": func(b []byte) []byte {
			m := findEntry(t, b, "manifest.json")
			return b[:m.data+(m.size+511)/512*512]
		},
		"flipped bytes in a layer": func(b []byte) []byte {
			l := findEntry(t, b, layerDigest.Hex+".tar.gz")
			return flip(b, l.data+l.size/2)
		},
		"flipped bytes in a tar header": func(b []byte) []byte {
			return flip(b, findEntry(t, b, layerDigest.Hex+".tar.gz").header+100)
		},
		"flipped bytes in gzip stream": func(b []byte) []byte {
			var buf bytes.Buffer
			gz := gzip.NewWriter(&buf)
			_, _ = gz.Write(b)
			_ = gz.Close()
			return flip(buf.Bytes(), int64(buf.Len()/2))
		},
	}
	for what, damage := range cases {
		t.Run(what, func(t *testing.T) {
			name := e.uniqueName(t)
			archive := damage(dockerArchive(t, img, name))
			_, err := e.imp.Import(context.Background(), bytes.NewReader(archive), ImportOptions{})
			if !errors.Is(err, ErrCorruptArchive) || !IsBadInput(err) {
				t.Fatalf("err %v, want ErrCorruptArchive", err)
			}
			t.Logf("%s: %v", what, err)
			e.assertNothingLeft(t, img, name)
		})
	}

	t.Run("OCI blob damaged", func(t *testing.T) {
		name := e.uniqueName(t)
		b := ociArchive(t, img, map[string]string{ocispec.AnnotationRefName: name})
		l := findEntry(t, b, layerDigest.Hex)
		_, err := e.imp.Import(context.Background(), bytes.NewReader(flip(b, l.data+l.size/2)), ImportOptions{})
		if !errors.Is(err, ErrCorruptArchive) {
			t.Fatalf("err %v, want ErrCorruptArchive", err)
		}
		t.Logf("%v", err)
		e.assertNothingLeft(t, img, name)
	})
}

// A damaged layer is only noticed when unpacking, after the content is
// stored: the image already under the name must survive it.
func TestFailedImportKeepsPreviousImage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	name := e.uniqueName(t)
	good, err := e.imp.Import(ctx, bytes.NewReader(dockerArchive(t, testImage(t, runtime.GOARCH), name)), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad := testImage(t, runtime.GOARCH)
	layers, _ := bad.Layers()
	ld, _ := layers[1].Digest()
	archive := dockerArchive(t, bad, name)
	l := findEntry(t, archive, ld.Hex+".tar.gz")
	archive[l.data+l.size/2] ^= 0xff
	if _, err := e.imp.Import(ctx, bytes.NewReader(archive), ImportOptions{}); !errors.Is(err, ErrCorruptArchive) {
		t.Fatalf("err %v, want ErrCorruptArchive", err)
	}
	e.assertImported(t, name, good.Digest)
	e.assertNothingLeft(t, bad)
}

// cancelAfter cancels the import's context once half the stream is read,
// as Ctrl-C would.
type cancelAfter struct {
	r      io.Reader
	left   int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.left -= n; c.left <= 0 {
		c.cancel()
	}
	return n, err
}

func TestInterruptedImportLeavesNothing(t *testing.T) {
	e := newEnv(t)
	name := e.uniqueName(t)
	img := testImage(t, runtime.GOARCH)
	archive := dockerArchive(t, img, name)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := e.imp.Import(ctx, &cancelAfter{r: bytes.NewReader(archive), left: len(archive) / 2, cancel: cancel}, ImportOptions{})
	if !errors.Is(err, context.Canceled) || IsBadInput(err) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	e.assertNothingLeft(t, img, name)
}

func TestImportNotAnImage(t *testing.T) {
	e := newEnv(t)
	noise := make([]byte, 4096)
	_, _ = rand.Read(noise)
	cases := []struct {
		what    string
		archive []byte
		want    error
	}{
		{"empty stream", nil, ErrEmptyArchive},
		{"tar without files", tarOf(t, nil), ErrEmptyArchive},
		{"docker save of nothing", tarOf(t, map[string]string{"manifest.json": "[]"}), ErrEmptyArchive},
		{"plain tar", tarOf(t, map[string]string{"README.md": "hello", "src/main.go": "package main"}), ErrNotImageArchive},
		{"text file", []byte("FROM node:20\nRUN pnpm build\n"), ErrNotImageArchive},
		{"random bytes", noise, ErrNotImageArchive},
		{"manifest.json of another shape", tarOf(t, map[string]string{"manifest.json": `{"not": "a list"}`}), ErrCorruptArchive},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			_, err := e.imp.Import(context.Background(), bytes.NewReader(c.archive), ImportOptions{Name: "homelab-test/none:v1"})
			if !errors.Is(err, c.want) || !IsBadInput(err) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			t.Logf("%v", err)
		})
	}
}

func TestImportChoosesAmongImages(t *testing.T) {
	e := newEnv(t)
	a, b := e.uniqueName(t), e.uniqueName(t)
	// docker save a b: two images in one archive.
	archive := multiArchive(t, map[string]v1.Image{a: testImage(t, runtime.GOARCH), b: testImage(t, runtime.GOARCH)})
	_, err := e.imp.Import(context.Background(), bytes.NewReader(archive), ImportOptions{})
	if !errors.Is(err, ErrNoImage) || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) {
		t.Fatalf("err %v, want ErrNoImage listing both images", err)
	}
	res, err := e.imp.Import(context.Background(), bytes.NewReader(archive), ImportOptions{Name: b})
	if err != nil || len(res.Names) != 1 || res.Names[0] != b {
		t.Fatalf("import %s: %+v %v", b, res, err)
	}
	e.assertImported(t, b, res.Digest)
	if _, err := e.imp.Lookup(context.Background(), a); !errors.Is(err, ErrImageNotFound) {
		t.Errorf("image %s imported too: %v", a, err)
	}
}

func TestImportUntaggedNeedsName(t *testing.T) {
	e := newEnv(t)
	archive := dockerArchive(t, testImage(t, runtime.GOARCH))
	if _, err := e.imp.Import(context.Background(), bytes.NewReader(archive), ImportOptions{}); !errors.Is(err, ErrNoImage) {
		t.Fatalf("err %v, want ErrNoImage", err)
	}
	name := e.uniqueName(t)
	res, err := e.imp.Import(context.Background(), bytes.NewReader(archive), ImportOptions{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	e.assertImported(t, name, res.Digest)
}

func TestImportFromArchiveSource(t *testing.T) {
	e := newEnv(t)
	name := e.uniqueName(t)
	path := filepath.Join(t.TempDir(), "app.tar")
	if err := os.WriteFile(path, dockerArchive(t, testImage(t, runtime.GOARCH), name), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := e.imp.ImportFrom(context.Background(), ArchiveSource{Path: path}, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.assertImported(t, name, res.Digest)

	_, err = e.imp.ImportFrom(context.Background(), ArchiveSource{Path: path + ".missing"}, ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), path+".missing") {
		t.Errorf("missing file: %v", err)
	}
}

// failingSource stands in for `docker save` dying halfway: the stream
// breaks and Close reports why.
type failingSource struct{ data []byte }

func (f failingSource) Name() string { return "docker save nextjs-app:latest" }
func (f failingSource) Open(context.Context) (io.ReadCloser, error) {
	return &failingStream{r: bytes.NewReader(f.data[:len(f.data)/2])}, nil
}

type failingStream struct{ r io.Reader }

func (s *failingStream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		err = errors.New("docker save: exit status 1")
	}
	return n, err
}
func (s *failingStream) Close() error {
	return errors.New("docker save: exit status 1: Error response from daemon: no space left")
}

func TestSourceFailureIsNotBadInput(t *testing.T) {
	e := newEnv(t)
	img := testImage(t, runtime.GOARCH)
	name := e.uniqueName(t)
	_, err := e.imp.ImportFrom(context.Background(), failingSource{data: dockerArchive(t, img, name)}, ImportOptions{})
	if err == nil || IsBadInput(err) || !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), "docker save nextjs-app") {
		t.Fatalf("err %v, want the source's failure, not a bad archive", err)
	}
	e.assertNothingLeft(t, img, name)
}

func TestContainerdUnavailable(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	silent := filepath.Join(dir, "silent.sock")
	sl, err := net.Listen("unix", silent)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	go func() {
		// Accept, then say nothing, like a wedged daemon.
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := sl.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()

	for what, sock := range map[string]string{
		"does not exist":       filepath.Join(dir, "missing.sock"),
		"nothing is listening": stale,
		"no answer within":     silent,
	} {
		t.Run(what, func(t *testing.T) {
			imp := &Importer{Socket: sock}
			start := time.Now()
			_, err := imp.Import(context.Background(), strings.NewReader("never read"), ImportOptions{Name: "nextjs-app:latest"})
			took := time.Since(start)
			if !errors.Is(err, ErrUnavailable) || IsBadInput(err) {
				t.Fatalf("err %v, want ErrUnavailable", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, sock) || !strings.Contains(msg, "k3s") || !strings.Contains(msg, what) {
				t.Errorf("message %q should name the socket, k3s and %q", msg, what)
			}
			if took > 5*time.Second {
				t.Errorf("took %v to give up", took)
			}
			if sock == silent {
				return // another 3 s to learn the same
			}
			if _, err := imp.Lookup(context.Background(), "nextjs-app"); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Lookup: %v", err)
			}
		})
	}
}

func TestLookupMissingImage(t *testing.T) {
	e := newEnv(t)
	if _, err := e.imp.Lookup(context.Background(), e.uniqueName(t)); !errors.Is(err, ErrImageNotFound) {
		t.Fatalf("err %v, want ErrImageNotFound", err)
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"nextjs-app":                 "docker.io/library/nextjs-app:latest",
		"nextjs-app:latest":          "docker.io/library/nextjs-app:latest",
		"me/app:v2":                  "docker.io/me/app:v2",
		"registry.local:5000/app:v1": "registry.local:5000/app:v1",
	} {
		if got, err := NormalizeName(in); err != nil || got != want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "UPPER:case", "app@sha256:" + strings.Repeat("a", 64), "a b"} {
		if _, err := NormalizeName(bad); !errors.Is(err, ErrBadName) || !IsBadInput(err) {
			t.Errorf("NormalizeName(%q): %v, want ErrBadName", bad, err)
		}
	}
	if _, err := (&Importer{Platform: "linux"}).platform(); err != nil {
		t.Errorf("platform linux: %v", err)
	}
	if _, err := (&Importer{Platform: "not/a/valid/platform"}).platform(); err == nil {
		t.Error("invalid platform accepted")
	}
}
