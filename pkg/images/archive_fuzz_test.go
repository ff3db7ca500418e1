package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/content/local"
	"github.com/containerd/platforms"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	// fuzzDeadline is how long reading one fuzz input may take: inputs are
	// at most a few hundred KiB, read in milliseconds.
	fuzzDeadline = 20 * time.Second
	// maxErrorLen bounds an error's message: it names what is wrong, it
	// does not repeat the archive.
	maxErrorLen = 1024
)

var hostPlatform = platforms.Normalize(ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH})

type rawEntry struct {
	hdr  tar.Header
	body string
}

// rawTar writes entries as given, names and sizes unchecked; a body shorter
// than the header's size makes a truncated archive.
func rawTar(t testing.TB, entries ...rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil && int64(len(e.body)) <= h.Size {
			t.Fatal(err)
		}
	}
	tw.Flush()
	if err := tw.Close(); err != nil && !strings.Contains(err.Error(), "missed writing") {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	if _, err := gz.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// archiveSeeds are valid archives of every form deploy-app reads and the
// hostile ones issue 12 names: names leaving the archive, symbolic links,
// declared sizes far beyond the data, cut-off streams, long names.
func archiveSeeds(t testing.TB) map[string][]byte {
	mine, other := randomImage(t, runtime.GOARCH, 64, 1), randomImage(t, "s390x", 64, 1)
	docker := dockerArchive(t, mine, "app:v1")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}},
		mutate.IndexAddendum{Add: mine, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	manifest := func(config string, layers ...string) string {
		b, _ := json.Marshal([]map[string]any{{"Config": config, "RepoTags": []string{"app:v1"}, "Layers": layers}})
		return string(b)
	}
	cfg := `{"os":"linux","architecture":"` + runtime.GOARCH + `","rootfs":{"type":"layers","diff_ids":[]}}`
	return map[string][]byte{
		"docker save":           docker,
		"docker save untagged":  dockerArchive(t, mine),
		"docker save two":       multiArchive(t, map[string]v1.Image{"app:v1": mine, "other:v1": other}),
		"oci layout":            ociArchive(t, mine, map[string]string{ocispec.AnnotationRefName: "app:v1"}),
		"oci index":             ociArchive(t, idx, map[string]string{ocispec.AnnotationRefName: "docker.io/library/app:v1"}),
		"gzip":                  gzipped(t, docker),
		"truncated":             docker[:len(docker)/2],
		"no end marker":         docker[:len(docker)-1024],
		"empty":                 {},
		"zeros":                 make([]byte, 1024),
		"not a tar":             []byte("hello\n"),
		"wrong platform":        dockerArchive(t, other, "app:v1"),
		"minimal docker":        rawTar(t, rawEntry{tar.Header{Name: "c.json"}, cfg}, rawEntry{tar.Header{Name: "manifest.json"}, manifest("c.json")}),
		"dot-dot names":         rawTar(t, rawEntry{tar.Header{Name: "../../outside/c.json"}, cfg}, rawEntry{tar.Header{Name: "manifest.json"}, manifest("../../outside/c.json")}),
		"absolute names":        rawTar(t, rawEntry{tar.Header{Name: "/etc/c.json"}, cfg}, rawEntry{tar.Header{Name: "manifest.json"}, manifest("/etc/c.json")}),
		"symlink out":           rawTar(t, rawEntry{tar.Header{Name: "c.json", Typeflag: tar.TypeSymlink, Linkname: "../../../etc/passwd"}, ""}, rawEntry{tar.Header{Name: "manifest.json"}, manifest("c.json")}),
		"symlink layer":         rawTar(t, rawEntry{tar.Header{Name: "c.json"}, cfg}, rawEntry{tar.Header{Name: "l.tar", Typeflag: tar.TypeSymlink, Linkname: "/l.tar"}, ""}, rawEntry{tar.Header{Name: "manifest.json"}, manifest("c.json", "l.tar")}),
		"hard link":             rawTar(t, rawEntry{tar.Header{Name: "c.json", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}, ""}, rawEntry{tar.Header{Name: "manifest.json"}, manifest("c.json")}),
		"huge declared size":    rawTar(t, rawEntry{tar.Header{Name: "c.json", Size: 1 << 40}, cfg}),
		"huge manifest.json":    rawTar(t, rawEntry{tar.Header{Name: "manifest.json", Size: 1 << 40}, "[{"}),
		"long config name":      rawTar(t, rawEntry{tar.Header{Name: "manifest.json"}, manifest(strings.Repeat("c", 5000))}),
		"long entry name":       rawTar(t, rawEntry{tar.Header{Name: strings.Repeat("n/", 3000) + "c.json"}, cfg}, rawEntry{tar.Header{Name: "manifest.json"}, manifest("c.json")}),
		"oci layout no index":   rawTar(t, rawEntry{tar.Header{Name: "oci-layout"}, `{"imageLayoutVersion":"1.0.0"}`}),
		"oci index of nothing":  rawTar(t, rawEntry{tar.Header{Name: "oci-layout"}, `{"imageLayoutVersion":"1.0.0"}`}, rawEntry{tar.Header{Name: "index.json"}, `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}]}`}),
		"manifest of no config": rawTar(t, rawEntry{tar.Header{Name: "manifest.json"}, `[{"Config":"","Layers":[]}]`}),
	}
}

// memDir is a new directory in memory (/dev/shm) when there is one, else
// the test's temporary directory: the local content store syncs every blob
// it commits, which on a disk busy with other work bounds the fuzzer to a
// few inputs a second.
func memDir(t *testing.T) string {
	if info, err := os.Stat("/dev/shm"); err == nil && info.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "homelab-fuzz-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// FuzzReadArchive: any bytes given to deploy-app as an image archive are
// either read as one image for this platform or refused as bad input (exit
// 2) with a short message; never a panic, a hang or unbounded memory, and
// nothing is written anywhere but the content store. The store is
// containerd's own local content store, the code the daemon runs behind
// its gRPC API; the rest of an import (unpack, image records) reads only
// what this step accepted.
func FuzzReadArchive(f *testing.F) {
	for _, seed := range archiveSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := memDir(t)
		storeDir := filepath.Join(dir, "content")
		cs, err := local.NewStore(storeDir)
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			img archiveImage
			err error
		}
		done := make(chan result, 1)
		go func() {
			img, err := readArchive(context.Background(), cs, bytes.NewReader(data), "", hostPlatform)
			done <- result{img, err}
		}()
		var res result
		select {
		case res = <-done:
		case <-time.After(fuzzDeadline):
			t.Fatalf("reading a %d-byte archive did not end within %s", len(data), fuzzDeadline)
		}
		if err := res.err; err != nil {
			if !IsBadInput(err) {
				t.Errorf("not reported as bad input (exit 2): %v", err)
			}
			if len(err.Error()) > maxErrorLen {
				t.Errorf("a %d-byte error message: %.200s...", len(err.Error()), err)
			}
		} else {
			img := res.img
			if len(img.names) == 0 {
				t.Errorf("accepted an image without a name")
			}
			if _, err := cs.Info(context.Background(), img.target.Digest); err != nil {
				t.Errorf("accepted image %s is not in the store: %v", img.target.Digest, err)
			}
			if !platforms.Only(hostPlatform).Match(img.match.platform) {
				t.Errorf("accepted %s for %s", platforms.Format(img.match.platform), platforms.Format(hostPlatform))
			}
		}
		// The store makes its directory when it first writes.
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) > 1 || (len(entries) == 1 && entries[0].Name() != "content") {
			t.Errorf("written beside the content store: %v %v", entries, err)
		}
	})
}

// TestImageMetadataIsCapped: an archive whose image config is larger than
// any real one (here 17 MiB of JSON that a 20 KiB gzip expands to) is
// refused as corrupt before it is read into memory, by containerd's
// importer as by homelab's own reads.
func TestImageMetadataIsCapped(t *testing.T) {
	big := `{"os":"linux","architecture":"` + runtime.GOARCH + `","rootfs":{"type":"layers","diff_ids":[]},"comment":"` + strings.Repeat("x", maxJSONBlob+1<<20) + `"}`
	for name, archive := range map[string][]byte{
		"docker save": rawTar(t, rawEntry{tar.Header{Name: "c.json"}, big},
			rawEntry{tar.Header{Name: "manifest.json"}, `[{"Config":"c.json","RepoTags":["app:v1"],"Layers":[]}]`}),
	} {
		t.Run(name, func(t *testing.T) {
			cs, err := local.NewStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			compressed := gzipped(t, archive)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err = readArchive(context.Background(), cs, bytes.NewReader(compressed), "", hostPlatform)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrCorruptArchive) || !strings.Contains(err.Error(), "more than the") {
				t.Fatalf("a %d-byte archive with a %d-byte config: %v, want it refused as too large", len(compressed), len(big), err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > maxJSONBlob {
				t.Errorf("refusing it allocated %d bytes: the config was read into memory", alloc)
			}
		})
	}
}

// TestRepeatedManifestsAreBounded: a manifest.json that lists one image
// 50,000 times (2.5 MB) is refused after a bounded number of blob reads
// instead of making containerd's importer write and read every copy.
func TestRepeatedManifestsAreBounded(t *testing.T) {
	cfg := `{"os":"linux","architecture":"` + runtime.GOARCH + `","rootfs":{"type":"layers","diff_ids":[]}}`
	const copies = 50000
	manifest := "[" + strings.TrimSuffix(strings.Repeat(`{"Config":"c.json","RepoTags":["app:v1"],"Layers":[]},`, copies), ",") + "]"
	archive := rawTar(t, rawEntry{tar.Header{Name: "c.json"}, cfg}, rawEntry{tar.Header{Name: "manifest.json"}, manifest})
	cs, err := local.NewStore(memDir(t))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = readArchive(context.Background(), cs, bytes.NewReader(archive), "", hostPlatform)
	if !errors.Is(err, ErrCorruptArchive) || !strings.Contains(err.Error(), "blob reads") {
		t.Fatalf("%d copies of one image: %v, want it refused for its blob reads", copies, err)
	}
	t.Logf("refused in %s", time.Since(start))
}
