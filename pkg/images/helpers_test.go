package images

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	digest "github.com/opencontainers/go-digest"

	"github.com/homelab-dev/homelab/pkg/testutil"
)

// env is the containerd of the test environment, with a client of its own
// for checking what the importer did.
type env struct {
	imp    *Importer
	client *containerd.Client
}

func newEnv(t testing.TB) *env {
	t.Helper()
	sock := testutil.TestEnv(t, "HOMELAB_TEST_CONTAINERD_SOCK")
	snap := testutil.TestEnv(t, "HOMELAB_TEST_CONTAINERD_SNAPSHOTTER")
	client, err := containerd.New(sock, containerd.WithDefaultNamespace(DefaultNamespace))
	if err != nil {
		t.Fatalf("test environment's containerd: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return &env{imp: &Importer{Socket: sock, Snapshotter: snap}, client: client}
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// uniqueName is a fresh image name for one test, so that runs never see
// each other's images; images under it are deleted when the test ends.
func (e *env) uniqueName(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	base := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	n := "homelab-test/" + base + "-" + hex.EncodeToString(b) + ":v1"
	full, err := NormalizeName(n)
	if err != nil {
		t.Fatal(err)
	}
	e.deleteAtCleanup(t, full)
	return full
}

func (e *env) deleteAtCleanup(t testing.TB, names ...string) {
	t.Cleanup(func() {
		for _, n := range names {
			err := e.client.ImageService().Delete(context.Background(), n, images.SynchronousDelete())
			if err != nil && !errdefs.IsNotFound(err) {
				t.Errorf("cleanup: delete image %s: %v", n, err)
			}
		}
	})
}

// assertImported checks that name is in namespace k8s.io, pointing at dgst,
// pinned and unpacked.
func (e *env) assertImported(t *testing.T, name string, dgst digest.Digest) {
	t.Helper()
	ctx := context.Background()
	list, err := e.client.ImageService().List(ctx, "name=="+name)
	if err != nil || len(list) != 1 {
		t.Fatalf("image %s in namespace %s: %v %v", name, DefaultNamespace, list, err)
	}
	rec := list[0]
	if rec.Target.Digest != dgst {
		t.Errorf("%s points at %s, want %s", name, rec.Target.Digest, dgst)
	}
	if rec.Labels[PinnedLabel] != PinnedValue {
		t.Errorf("%s labels %v, want %s=%s", name, rec.Labels, PinnedLabel, PinnedValue)
	}
	img, err := e.client.GetImage(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := img.IsUnpacked(ctx, e.imp.Snapshotter); err != nil || !ok {
		t.Errorf("%s unpacked for %s: %v %v", name, e.imp.Snapshotter, ok, err)
	}
	got, err := e.imp.Lookup(ctx, name)
	if err != nil || got.Digest != dgst || !got.Pinned || !got.Unpacked || got.Name != name {
		t.Errorf("Lookup(%s) = %+v, %v", name, got, err)
	}
}

// assertNothingLeft checks that a failed import left no image under names
// and none of the image's blobs or ingests in containerd.
func (e *env) assertNothingLeft(t *testing.T, img v1.Image, names ...string) {
	t.Helper()
	ctx := context.Background()
	for _, n := range names {
		if _, err := e.client.ImageService().Get(ctx, n); !errdefs.IsNotFound(err) {
			t.Errorf("image %s exists after a failed import (err %v)", n, err)
		}
	}
	cs := e.client.ContentStore()
	for _, d := range blobDigests(t, img) {
		if info, err := cs.Info(ctx, d); !errdefs.IsNotFound(err) {
			t.Errorf("blob %s left in the content store: %+v %v", d, info, err)
		}
		statuses, err := cs.ListStatuses(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range statuses {
			if strings.Contains(s.Ref, d.Encoded()) {
				t.Errorf("ingest %s left behind", s.Ref)
			}
		}
	}
}

func blobDigests(t testing.TB, img v1.Image) []digest.Digest {
	t.Helper()
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	out := []digest.Digest{digest.Digest(cfg.String())}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, digest.Digest(d.String()))
	}
	return out
}

func otherArch() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

// testImage is a small random image for linux/arch.
func testImage(t testing.TB, arch string) v1.Image { return randomImage(t, arch, 2048, 2) }

// randomImage is a random image for linux/arch with layers layers of size bytes.
func randomImage(t testing.TB, arch string, size int64, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// dockerArchive is `docker save` of img tagged with each tag (none: an
// untagged save).
func dockerArchive(t testing.TB, img v1.Image, tags ...string) []byte {
	t.Helper()
	refs := map[name.Reference]v1.Image{}
	for _, tag := range tags {
		ref, err := name.NewTag(tag)
		if err != nil {
			t.Fatal(err)
		}
		refs[ref] = img
	}
	if len(tags) == 0 {
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.NewDigest("untagged/image@" + d.String())
		if err != nil {
			t.Fatal(err)
		}
		refs[ref] = img
	}
	var buf bytes.Buffer
	if err := tarball.MultiRefWrite(refs, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// multiArchive is `docker save` of several images, each under its tag.
func multiArchive(t testing.TB, tagged map[string]v1.Image) []byte {
	t.Helper()
	refs := map[name.Reference]v1.Image{}
	for tag, img := range tagged {
		ref, err := name.NewTag(tag)
		if err != nil {
			t.Fatal(err)
		}
		refs[ref] = img
	}
	var buf bytes.Buffer
	if err := tarball.MultiRefWrite(refs, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ociArchive is an OCI image layout holding img (a v1.Image or
// v1.ImageIndex) with the given index annotations, as a tar.
func ociArchive(t testing.TB, img any, annotations map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	switch x := img.(type) {
	case v1.Image:
		err = p.AppendImage(x, layout.WithAnnotations(annotations))
	case v1.ImageIndex:
		err = p.AppendIndex(x, layout.WithAnnotations(annotations))
	}
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarEntry is where one file sits in a tar archive.
type tarEntry struct {
	name       string
	header     int64 // offset of its header block
	data, size int64
}

func tarEntries(t testing.TB, archive []byte) []tarEntry {
	t.Helper()
	r := bytes.NewReader(archive)
	tr := tar.NewReader(r)
	var out []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data := int64(len(archive)) - int64(r.Len())
		out = append(out, tarEntry{name: h.Name, header: data - 512, data: data, size: h.Size})
	}
}

func findEntry(t testing.TB, archive []byte, suffix string) tarEntry {
	t.Helper()
	for _, e := range tarEntries(t, archive) {
		if strings.HasSuffix(e.name, suffix) {
			return e
		}
	}
	t.Fatalf("no tar entry *%s", suffix)
	return tarEntry{}
}

func tarOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
