package bundle_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/bundle"
)

const (
	// openDeadline is how long opening one fuzz input may take: inputs
	// are a few KiB, read in milliseconds.
	openDeadline = 20 * time.Second
	// maxErrorLen bounds an error's message: it names the problems, it
	// does not repeat the bundle.
	maxErrorLen = 4096
)

// bundleFiles are the parts of a small valid amd64 bundle.
var bundleFiles = map[string]string{
	"k3s/k3s":                      "k3s binary\n",
	"k3s/sha256sum-amd64.txt":      "sums\n",
	"k3s/k3s-airgap-images.tar":    "airgap\n",
	"images/images-amd64.tar":      "images\n",
	"charts/kube-prometheus-stack": "stack chart\n",
	"charts/blackbox":              "blackbox chart\n",
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// manifestFor lists files as a bundle's manifest does.
func manifestFor(files map[string]string) bundle.Manifest {
	m := bundle.Manifest{Format: bundle.FormatVersion, Arch: "amd64", K3s: bundle.K3sFiles{Version: "v1.37.2+k3s1",
		Binary: "k3s/k3s", Sums: "k3s/sha256sum-amd64.txt", AirgapImages: "k3s/k3s-airgap-images.tar"},
		Charts: []bundle.ChartFile{{Name: bundle.StackChart, Version: "88.5.3", File: "charts/kube-prometheus-stack"},
			{Name: bundle.BlackboxChart, Version: "11.17.2", File: "charts/blackbox"}},
		ImagesFile: "images/images-amd64.tar"}
	for _, p := range sortedKeys(files) {
		m.Files = append(m.Files, bundle.File{Path: p, Size: int64(len(files[p])), SHA256: sha(files[p])})
	}
	return m
}

func sortedKeys(files map[string]string) []string {
	var keys []string
	for k := range files {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

type entry struct {
	hdr  tar.Header
	body string
}

// tarBundle writes the manifest first, then entries as given (names and
// sizes unchecked: a body shorter than its header's size truncates).
func tarBundle(t testing.TB, m bundle.Manifest, entries ...entry) []byte {
	t.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	all := append([]entry{{tar.Header{Name: bundle.ManifestName}, string(data)}}, entries...)
	for _, e := range all {
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
		if int64(len(e.body)) < h.Size {
			return buf.Bytes() // cut off inside this entry
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// validEntries are the files of bundleFiles, as tar entries.
func validEntries(files map[string]string) []entry {
	var out []entry
	for _, p := range sortedKeys(files) {
		out = append(out, entry{tar.Header{Name: p}, files[p]})
	}
	return out
}

// bundleSeeds are a valid bundle and the hostile ones: paths leaving the
// extraction directory, links, a file that is another's directory, sizes
// far beyond the data, cut-off archives, long names, many problems.
func bundleSeeds(t testing.TB) map[string][]byte {
	valid := tarBundle(t, manifestFor(bundleFiles), validEntries(bundleFiles)...)
	with := func(extra map[string]string) map[string]string {
		files := map[string]string{}
		for k, v := range bundleFiles {
			files[k] = v
		}
		for k, v := range extra {
			files[k] = v
		}
		return files
	}
	escaping := with(map[string]string{"../outside": "x"})
	absolute := with(map[string]string{"/etc/cron.d/x": "x"})
	conflict := with(map[string]string{"k3s/k3s/inner": "x"})
	long := with(map[string]string{strings.Repeat("d/", 200) + "f": "x"})
	many := map[string]string{}
	for i := 0; i < 200; i++ {
		many[strings.Repeat("x", 40)+string(rune('a'+i%26))+strings.Repeat("y", i)] = "z"
	}
	manyFiles := with(many)
	huge := manifestFor(bundleFiles)
	for i := range huge.Files {
		if huge.Files[i].Path == "k3s/k3s" {
			huge.Files[i].Size = 1 << 40
		}
	}
	hugeEntries := validEntries(bundleFiles)
	for i := range hugeEntries {
		if hugeEntries[i].hdr.Name == "k3s/k3s" {
			hugeEntries[i].hdr.Size = 1 << 40
		}
	}
	return map[string][]byte{
		"valid":              valid,
		"truncated":          valid[:len(valid)/2],
		"no end marker":      valid[:len(valid)-1024],
		"empty":              {},
		"not a tar":          []byte("hello\n"),
		"manifest only":      tarBundle(t, manifestFor(bundleFiles)),
		"dot-dot path":       tarBundle(t, manifestFor(escaping), validEntries(escaping)...),
		"absolute path":      tarBundle(t, manifestFor(absolute), validEntries(absolute)...),
		"file and directory": tarBundle(t, manifestFor(conflict), validEntries(conflict)...),
		"long path":          tarBundle(t, manifestFor(long), validEntries(long)...),
		"many problems":      tarBundle(t, manifestFor(manyFiles)),
		"unlisted dot-dot":   tarBundle(t, manifestFor(bundleFiles), append(validEntries(bundleFiles), entry{tar.Header{Name: "../../x"}, "x"})...),
		"symlink":            tarBundle(t, manifestFor(bundleFiles), entry{tar.Header{Name: "k3s/k3s", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, ""}),
		"hard link":          tarBundle(t, manifestFor(bundleFiles), entry{tar.Header{Name: "k3s/k3s", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}, ""}),
		"huge declared size": tarBundle(t, huge, hugeEntries...),
		"twice":              tarBundle(t, manifestFor(bundleFiles), append(validEntries(bundleFiles), validEntries(bundleFiles)[0])...),
		"long entry name":    tarBundle(t, manifestFor(bundleFiles), entry{tar.Header{Name: strings.Repeat("n", 70000)}, "x"}),
	}
}

// FuzzOpenBundle: any file given to init --bundle either opens, with
// exactly its manifest's files extracted inside the extraction directory,
// or is refused as a bad bundle (exit 2) with a short message and nothing
// left on disk; never a panic or a hang, and nothing is written outside
// the extraction directory.
func FuzzOpenBundle(f *testing.F) {
	for _, seed := range bundleSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		file := filepath.Join(dir, "bundle.tar")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		extract := filepath.Join(dir, "extract")
		if err := os.Mkdir(extract, 0o755); err != nil {
			t.Fatal(err)
		}
		type result struct {
			b   *bundle.Bundle
			err error
		}
		done := make(chan result, 1)
		go func() {
			b, err := bundle.Open(file, bundle.OpenOptions{Arch: "amd64", TempDir: extract})
			done <- result{b, err}
		}()
		var res result
		select {
		case res = <-done:
		case <-time.After(openDeadline):
			t.Fatalf("opening a %d-byte bundle did not end within %s", len(data), openDeadline)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 2 {
			t.Errorf("written beside the bundle: %d entries", len(entries))
		}
		if err := res.err; err != nil {
			var bad *bundle.Error
			if !errors.As(err, &bad) {
				t.Errorf("not reported as a bad bundle (exit 2): %v", err)
			}
			if len(err.Error()) > maxErrorLen {
				t.Errorf("a %d-byte error message: %.300s...", len(err.Error()), err)
			}
			if left, _ := os.ReadDir(extract); len(left) != 0 {
				t.Errorf("a refused bundle left %d entries", len(left))
			}
			return
		}
		b := res.b
		want := map[string]bool{}
		for _, f := range b.Manifest.Files {
			want[filepath.Join(b.Dir, filepath.FromSlash(f.Path))] = true
		}
		err := filepath.Walk(extract, func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return err
			}
			if !info.Mode().IsRegular() || !want[p] {
				t.Errorf("extracted %s (%v), not a file of the manifest", p, info.Mode())
			}
			delete(want, p)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(want) > 0 {
			t.Errorf("not extracted: %v", want)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestOpenRefusesHostileBundles names what is wrong with each hostile
// bundle, briefly.
func TestOpenRefusesHostileBundles(t *testing.T) {
	seeds := bundleSeeds(t)
	for name, want := range map[string]string{
		"dot-dot path":       `file path "../outside" is not a plain relative path`,
		"absolute path":      `file path "/etc/cron.d/x" is not a plain relative path`,
		"file and directory": "file k3s/k3s is also the directory of k3s/k3s/inner",
		"long path":          "is not a plain relative path",
		"many problems":      "and 196 more problems",
		"unlisted dot-dot":   "../../x is in the archive but not in its manifest",
		"symlink":            "k3s/k3s is not a regular file",
		"huge declared size": "k3s/k3s claims 1099511627776 bytes, more than the whole bundle",
		"long entry name":    "more bytes)",
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "bundle.tar")
			if err := os.WriteFile(file, seeds[name], 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := bundle.Open(file, bundle.OpenOptions{Arch: "amd64", TempDir: t.TempDir()})
			var bad *bundle.Error
			if !errors.As(err, &bad) || !strings.Contains(err.Error(), want) {
				t.Fatalf("got %v, want a bad bundle saying %q", err, want)
			}
			if len(err.Error()) > maxErrorLen {
				t.Errorf("a %d-byte message", len(err.Error()))
			}
		})
	}
}

// TestOpenRefusesAFIFOAtOnce: a named pipe given as the bundle is refused
// without waiting for a writer.
func TestOpenRefusesAFIFOAtOnce(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "bundle.tar")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := bundle.Verify(fifo, "amd64")
		done <- err
	}()
	select {
	case err := <-done:
		var bad *bundle.Error
		if !errors.As(err, &bad) || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("got %v, want a bad bundle: not a regular file", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Verify of a FIFO did not return within 10s")
	}
}
