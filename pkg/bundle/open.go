package bundle

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
)

// maxManifest bounds the manifest read into memory.
const maxManifest = 4 << 20

// Bundle is an opened, verified bundle: its files extracted under Dir.
type Bundle struct {
	// Archive is the bundle file it was opened from.
	Archive  string
	Dir      string
	Manifest Manifest
}

// Path is the local path of archive path p.
func (b *Bundle) Path(p string) string { return filepath.Join(b.Dir, filepath.FromSlash(p)) }

// Close removes the extracted files.
func (b *Bundle) Close() error { return os.RemoveAll(b.Dir) }

// OpenOptions say what a bundle must be for and where it goes.
type OpenOptions struct {
	// Arch is the architecture the bundle must be for; runtime.GOARCH when
	// empty.
	Arch string
	// TempDir is where the files are extracted, in a new directory;
	// beside the bundle file when empty (where there was room for the
	// bundle), never $TMPDIR, which an interrupted run would leave full.
	TempDir string
}

// Open verifies the bundle at file against its manifest while extracting it
// into a new directory: every file's size and sha256, no file missing,
// none extra, and the architecture. A bundle that fails is an *Error and
// nothing of it is left on disk.
func Open(file string, o OpenOptions) (*Bundle, error) {
	parent := o.TempDir
	if parent == "" {
		parent = filepath.Dir(file)
	}
	// The directory is made when the first file is extracted: a bundle
	// refused from its manifest (or one that does not exist) leaves nothing.
	var dir string
	mkdir := func() error {
		if dir != "" {
			return nil
		}
		if err := os.MkdirAll(parent, 0o700); err != nil {
			return fmt.Errorf("extract bundle %s: %w", file, err)
		}
		d, err := os.MkdirTemp(parent, ".homelab-bundle-")
		if err != nil {
			return fmt.Errorf("extract bundle %s: %w", file, err)
		}
		dir = d
		return nil
	}
	m, err := read(file, o.Arch, func(p string, mode os.FileMode) (io.WriteCloser, error) {
		if err := mkdir(); err != nil {
			return nil, err
		}
		local := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			return nil, err
		}
		return os.OpenFile(local, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	})
	if err == nil {
		err = mkdir()
	}
	if err != nil {
		if dir != "" {
			os.RemoveAll(dir)
		}
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("%w (the bundle is extracted under %s and needs about its own size there)", err, parent)
		}
		return nil, err
	}
	return &Bundle{Archive: file, Dir: dir, Manifest: *m}, nil
}

// Verify checks the bundle at file as Open does, without extracting it.
func Verify(file, arch string) (*Manifest, error) {
	return read(file, arch, func(string, os.FileMode) (io.WriteCloser, error) { return discard{}, nil })
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Close() error                { return nil }

// read streams the archive once: the manifest first, then every file,
// hashed as it is handed to create.
func read(file, arch string, create func(p string, mode os.FileMode) (io.WriteCloser, error)) (*Manifest, error) {
	if arch == "" {
		arch = runtime.GOARCH
	}
	bad := func(probs ...string) error { return &Error{Path: file, Problems: probs} }
	// O_NONBLOCK: opening a FIFO given as the bundle must not wait for a
	// writer; it is refused below as not a regular file.
	f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, bad("it does not exist")
		}
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, bad("it is not a regular file")
	}
	// A bundle is a plain tar: every file's bytes are in it. An entry that
	// claims more (a sparse entry, a forged header) would make this read
	// and write that much.
	size := info.Size()
	tr := tar.NewReader(f)
	hdr, err := tr.Next()
	if err != nil {
		return nil, bad(fmt.Sprintf("not a homelab bundle (a tar archive starting with %s): %v", ManifestName, err))
	}
	if hdr.Name != ManifestName || hdr.Typeflag != tar.TypeReg {
		return nil, bad(fmt.Sprintf("not a homelab bundle: its first entry is %q, not %s", short(hdr.Name), ManifestName))
	}
	if hdr.Size > maxManifest {
		return nil, bad(fmt.Sprintf("%s is %d bytes, more than a manifest can be", ManifestName, hdr.Size))
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return nil, bad(fmt.Sprintf("read %s: %v", ManifestName, err))
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, bad(fmt.Sprintf("%s is not valid: %v", ManifestName, err))
	}
	if probs := m.check(); len(probs) > 0 {
		return nil, bad(probs...)
	}
	if m.Arch != arch {
		return nil, &Error{Path: file, Problems: []string{fmt.Sprintf("it is for %s, this machine is %s", m.Arch, arch)},
			Hint: "make one for this machine: homelab bundle --arch " + arch + " -o FILE"}
	}
	want := map[string]File{}
	for _, f := range m.Files {
		want[f.Path] = f
	}
	seen := map[string]bool{}
	var probs []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, bad(fmt.Sprintf("damaged or truncated archive: %v", err))
		}
		if hdr.Typeflag == tar.TypeDir {
			continue
		}
		name := hdr.Name
		exp, listed := want[name]
		// Messages quote the entry's name cut short: a tar's extended
		// header can make it a MiB.
		shown := short(name)
		switch {
		case isSparse(hdr):
			return nil, bad(fmt.Sprintf("%s is a sparse file (a bundle holds plain files only)", shown))
		case hdr.Size > size:
			return nil, bad(fmt.Sprintf("damaged or truncated archive: %s claims %d bytes, more than the whole bundle (%d)", shown, hdr.Size, size))
		case hdr.Typeflag != tar.TypeReg:
			return nil, bad(fmt.Sprintf("%s is not a regular file (tar type %q)", shown, hdr.Typeflag))
		case !listed || !safePath(name):
			return nil, bad(fmt.Sprintf("%s is in the archive but not in its manifest", shown))
		case seen[name]:
			return nil, bad(fmt.Sprintf("%s is in the archive twice", shown))
		case hdr.Size != exp.Size:
			probs = append(probs, fmt.Sprintf("%s is %d bytes, the manifest says %d", shown, hdr.Size, exp.Size))
			seen[name] = true
			continue
		}
		seen[name] = true
		w, err := create(name, os.FileMode(hdr.Mode).Perm()|0o400)
		if err != nil {
			return nil, fmt.Errorf("extract %s from bundle %s: %w", name, file, err)
		}
		sum := sha256.New()
		_, err = io.Copy(io.MultiWriter(w, sum), tr)
		if cerr := w.Close(); err == nil && cerr != nil {
			return nil, fmt.Errorf("extract %s from bundle %s: %w", name, file, cerr)
		}
		if err != nil {
			var perr *os.PathError
			if errors.As(err, &perr) {
				return nil, fmt.Errorf("extract %s from bundle %s: %w", name, file, err)
			}
			return nil, bad(fmt.Sprintf("damaged or truncated archive at %s: %v", shown, err))
		}
		if got := hex.EncodeToString(sum.Sum(nil)); got != exp.SHA256 {
			probs = append(probs, fmt.Sprintf("%s has sha256 %s, the manifest says %s (damaged or changed)", shown, got, exp.SHA256))
		}
	}
	var missing []string
	for p := range want {
		if !seen[p] {
			missing = append(missing, p)
		}
	}
	sort.Strings(missing)
	for _, p := range missing {
		probs = append(probs, p+" is missing from the archive")
	}
	if len(probs) > 0 {
		return nil, bad(probs...)
	}
	return &m, nil
}

// isSparse reports a sparse tar entry, in GNU's old form or as PAX records.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}
