//go:build release

package release_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/selfinstall"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// Where Debian's shells look for completions of a command named homelab.
var completions = []string{
	"/usr/share/bash-completion/completions/homelab",
	"/usr/share/zsh/vendor-completions/_homelab",
	"/usr/share/fish/vendor_completions.d/homelab.fish",
}

// snapshot is what goreleaser says it built (dist/metadata.json).
type snapshot struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

// artifact is one entry of dist/artifacts.json.
type artifact struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Goarch string `json:"goarch"`
	Type   string `json:"type"`
}

type dist struct {
	dir       string
	snapshot  snapshot
	artifacts []artifact
}

func openDist(t *testing.T) dist {
	t.Helper()
	d := dist{dir: filepath.Join(testutil.RepoRoot(t), "dist")}
	readJSON(t, filepath.Join(d.dir, "metadata.json"), &d.snapshot)
	readJSON(t, filepath.Join(d.dir, "artifacts.json"), &d.artifacts)
	if d.snapshot.Version == "" || d.snapshot.Commit == "" {
		t.Fatalf("dist/metadata.json names no version or commit: %+v", d.snapshot)
	}
	return d
}

// readJSON fails (never skips) when dist/ is missing: these tests only run
// after make release-snapshot, which must have made it.
func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run make release-snapshot first)", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// find returns the one artifact of typ for goarch whose name ends in suffix.
func (d dist) find(t *testing.T, typ, goarch, suffix string) string {
	t.Helper()
	var found []string
	for _, a := range d.artifacts {
		if a.Type == typ && a.Goarch == goarch && strings.HasSuffix(a.Name, suffix) {
			found = append(found, filepath.Join(filepath.Dir(d.dir), a.Path))
		}
	}
	if len(found) != 1 {
		t.Fatalf("dist/artifacts.json lists %d %q artifacts for %s ending in %s, want 1: %v", len(found), typ, goarch, suffix, found)
	}
	return found[0]
}

// TestPackages: a .deb and an .rpm per architecture, and a checksum list
// that matches every archive and package it names.
func TestPackages(t *testing.T) {
	d := openDist(t)
	for _, arch := range []string{"amd64", "arm64"} {
		d.find(t, "Linux Package", arch, ".deb")
		d.find(t, "Linux Package", arch, ".rpm")
		d.find(t, "Archive", arch, ".tar.gz")
	}
	sums, err := os.ReadFile(filepath.Join(d.dir, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(sums)), "\n")
	if len(lines) < 6 {
		t.Errorf("checksums.txt names %d files, want the 2 archives and 4 packages:\n%s", len(lines), sums)
	}
	for _, line := range lines {
		want, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("checksums.txt: bad line %q", line)
		}
		data, err := os.ReadFile(filepath.Join(d.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != want {
			t.Errorf("checksums.txt: %s does not match its sha256", name)
		}
	}
}

// TestDeb inspects this machine's architecture's .deb, then installs it
// with dpkg into a throwaway root and runs the installed binary.
func TestDeb(t *testing.T) {
	dpkg := testutil.NeedProgram(t, "dpkg")
	dpkgDeb := testutil.NeedProgram(t, "dpkg-deb")
	d := openDist(t)
	deb := d.find(t, "Linux Package", runtime.GOARCH, ".deb")

	control := run(t, dpkgDeb, "--field", deb, "Package", "Architecture")
	if want := "Package: homelab\nArchitecture: " + runtime.GOARCH + "\n"; control != want {
		t.Errorf("control fields:\n%s\nwant\n%s", control, want)
	}

	files := debFiles(t, dpkgDeb, deb)
	binary := ""
	for name, h := range files {
		if strings.HasSuffix(name, "/bin/homelab") {
			binary = name
			if h.Typeflag != tar.TypeReg || h.FileInfo().Mode().Perm() != 0o755 {
				t.Errorf("%s: type %c mode %v, want a 0755 file", name, h.Typeflag, h.FileInfo().Mode().Perm())
			}
		}
	}
	// The units run the packaged binary in place only from a path
	// pkg/selfinstall knows (else init copies it to /usr/local/bin).
	if !slices.Contains(selfinstall.Targets(), binary) {
		t.Errorf("the .deb puts homelab at %q, which is not one of selfinstall.Targets() %v", binary, selfinstall.Targets())
	}
	for _, p := range completions {
		wantFile(t, files, p)
	}
	pages := 0
	for name := range files {
		if strings.HasPrefix(name, "/usr/share/man/man1/homelab") && strings.HasSuffix(name, ".1.gz") {
			pages++
			wantFile(t, files, name)
		}
	}
	if _, ok := files["/usr/share/man/man1/homelab.1.gz"]; !ok || pages < 5 {
		t.Errorf("%d man pages, want homelab.1.gz and one per command:\n%v", pages, slices.Sorted(maps.Keys(files)))
	}

	root := dpkgRoot(t)
	run(t, dpkg, "--root="+root, "--log=/dev/null", "--install", deb)
	// nfpm writes a semver pre-release the Debian way (1.0.1~snapshot...),
	// so the installed version is compared with the package's own field.
	status := run(t, dpkg, "--root="+root, "--status", "homelab")
	version := run(t, dpkgDeb, "--field", deb, "Version")
	if !strings.Contains(status, "Status: install ok installed\n") || !strings.Contains(status, "Version: "+version) {
		t.Errorf("dpkg --status after install:\n%s\nwant it installed at version %s", status, version)
	}
	for _, p := range append(slices.Clone(completions), binary, "/usr/share/man/man1/homelab.1.gz") {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("after dpkg --install: %v", err)
		}
	}
	// The pages and completions are the ones the build generated
	// (cmd/homelab-docs, tested there), unchanged by packaging.
	for name := range files {
		if strings.HasPrefix(name, "/usr/share/man/man1/") {
			sameFile(t, filepath.Join(root, name), filepath.Join(d.dir, "..", "build/docs/man", filepath.Base(name)))
		}
	}
	sameFile(t, filepath.Join(root, completions[0]), filepath.Join(d.dir, "..", "build/docs/completions/homelab.bash"))

	// Static, so it runs from a root that holds nothing else; stamped with
	// the snapshot's version and commit.
	out := run(t, filepath.Join(root, binary), "--version")
	for _, want := range []string{"homelab " + d.snapshot.Version + " (", "commit:   " + d.snapshot.Commit + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("%s --version lacks %q:\n%s", binary, want, out)
		}
	}
	if cmd := run(t, filepath.Join(root, binary), "version"); cmd != out {
		t.Errorf("version and --version differ:\n%s\n%s", cmd, out)
	}
}

func wantFile(t *testing.T, files map[string]*tar.Header, name string) {
	t.Helper()
	h, ok := files[name]
	switch {
	case !ok:
		t.Errorf("the .deb has no %s", name)
	case h.Typeflag != tar.TypeReg || h.FileInfo().Mode().Perm() != 0o644 || h.Size == 0:
		t.Errorf("%s: type %c mode %v size %d, want a non-empty 0644 file", name, h.Typeflag, h.FileInfo().Mode().Perm(), h.Size)
	}
}

// debFiles lists the .deb's data by absolute path, read with dpkg-deb
// itself so the test sees what dpkg will install.
func debFiles(t *testing.T, dpkgDeb, deb string) map[string]*tar.Header {
	t.Helper()
	data := run(t, dpkgDeb, "--fsys-tarfile", deb)
	files := map[string]*tar.Header{}
	tr := tar.NewReader(strings.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("%s: data archive: %v", deb, err)
		}
		files[filepath.Clean("/"+h.Name)] = h
	}
}

// dpkgRoot is an empty root with the database dpkg --root needs to install
// a package with no dependencies and no maintainer scripts.
func dpkgRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	db := filepath.Join(root, "var/lib/dpkg")
	for _, dir := range []string{"info", "updates", "triggers"} {
		if err := os.MkdirAll(filepath.Join(db, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, file := range []string{"status", "available"} {
		if err := os.WriteFile(filepath.Join(db, file), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// sameFile fails the test unless installed has generated's bytes.
func sameFile(t *testing.T, installed, generated string) {
	t.Helper()
	a, err := os.ReadFile(installed)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(generated)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("%s differs from what the build generated, %s", installed, generated)
	}
}
