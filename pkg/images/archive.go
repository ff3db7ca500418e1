package images

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/images/archive"
	"github.com/containerd/platforms"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	tarBlock = 512
	// A tar archive ends with two zero blocks.
	tarEndMarker = 2 * tarBlock
	// maxJSONBlob bounds the manifests, indexes and configs read into
	// memory; real ones are a few KiB.
	maxJSONBlob = 16 << 20
	// maxIndexDepth bounds nested indexes, which real images never nest
	// more than once.
	maxIndexDepth = 4
	// maxBlobReads bounds the blobs opened while reading one archive. A
	// real one opens each layer once and a few manifests and configs per
	// image; a manifest.json listing the same image 50,000 times (2.5 MB)
	// made containerd's importer open 100,000 and run for 18 seconds.
	maxBlobReads = 10000
)

// sourceReader counts the bytes of the caller's stream and keeps its read
// error, so that a failing source (a disk error, docker save dying) is
// reported as such and not as a bad archive.
type sourceReader struct {
	r   io.Reader
	n   int64
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// tailReader watches the uncompressed tar stream as containerd's importer
// reads it: how far it got, whether anything but zeros came by, and the
// last bytes read, which are the end-of-archive marker when the tar was
// complete (Go's tar reader stops right after it).
type tailReader struct {
	r       io.Reader
	n       int64
	nonZero bool
	tail    [tarEndMarker]byte
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		b := p[:n]
		if !t.nonZero && !allZero(b) {
			t.nonZero = true
		}
		if n >= len(t.tail) {
			copy(t.tail[:], b[n-len(t.tail):])
		} else {
			copy(t.tail[:], t.tail[n:])
			copy(t.tail[len(t.tail)-n:], b)
		}
		t.n += int64(n)
	}
	return n, err
}

func (t *tailReader) endMarker() bool { return t.n >= tarEndMarker && allZero(t.tail[:]) }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// decodeError is a compressed stream that cannot be decompressed.
type decodeError struct{ err error }

func (e *decodeError) Error() string { return "decompress: " + e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

type decodeReader struct {
	r     io.Reader
	close func()
}

func (d *decodeReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		var de *decodeError
		if !errors.As(err, &de) {
			err = &decodeError{err: err}
		}
	}
	return n, err
}

func (d *decodeReader) Close() error {
	if d.close != nil {
		d.close()
	}
	return nil
}

// decompress recognises gzip and zstd by their magic bytes and passes
// anything else through: `docker save | gzip` is a common way to ship an
// image, and k3s's own airgap loader takes .tar.gz and .tar.zst. Go's
// decoders are used rather than containerd's, which may run unpigz.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, &decodeError{err: err}
		}
		return &decodeReader{r: gz}, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		// One goroutine and low memory: the stream is read once, in
		// order, and import speed is bound by containerd's writes.
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, &decodeError{err: err}
		}
		return &decodeReader{r: zr, close: zr.Close}, nil
	}
	return io.NopCloser(br), nil
}

// scopedStore gives the ingests of one import refs of their own.
// containerd's importer names ingests after the files in the tar
// ("tar-manifest.json", "tar-<id>/layer.tar"), which repeat across
// archives: an ingest left by an import that was killed (its lease lives on
// until it expires) would be resumed by the next import of a file with that
// name, which trusts the bytes already written; and two imports at once
// would wait on each other's lock.
type scopedStore struct {
	content.Store
	prefix string
}

func (s *scopedStore) Writer(ctx context.Context, opts ...content.WriterOpt) (content.Writer, error) {
	var wo content.WriterOpts
	for _, o := range opts {
		if err := o(&wo); err != nil {
			return nil, err
		}
	}
	return s.Store.Writer(ctx, append(opts, content.WithRef(s.prefix+wo.Ref))...)
}

// archiveImage is the image an archive holds, read into a content store.
type archiveImage struct {
	// target is the image's root (manifest or index) and names the names
	// to store it under.
	target ocispec.Descriptor
	names  []string
	// match is the manifest for the wanted platform.
	match platformManifest
}

// readArchive streams an image archive (docker save or OCI image layout
// tar, optionally gzip or zstd compressed) into cs and picks the image to
// import and its manifest for want. It is all of an import that reads the
// archive; what follows (unpack, records) works on cs's content. Bad
// archives are *InputError or *PlatformError.
func readArchive(ctx context.Context, cs content.Store, r io.Reader, name string, want ocispec.Platform) (archiveImage, error) {
	src := &sourceReader{r: r}
	dec, err := decompress(src)
	if err != nil {
		return archiveImage{}, streamError(ctx, err, src, nil)
	}
	defer dec.Close()
	tail := &tailReader{r: dec}
	cs = &boundedStore{Store: cs}

	indexDesc, err := archive.ImportIndex(ctx, cs, tail)
	if err != nil {
		return archiveImage{}, streamError(ctx, err, src, tail)
	}
	if !tail.endMarker() {
		// A stream cut off exactly between two tar entries reads like a
		// complete tar; only the missing end-of-archive blocks tell.
		return archiveImage{}, &InputError{Kind: ErrCorruptArchive, Detail: "truncated: the tar stream ends without its end-of-archive marker"}
	}

	var idx ocispec.Index
	if err := readJSON(ctx, cs, indexDesc, &idx); err != nil {
		var in *InputError
		if errors.As(err, &in) {
			return archiveImage{}, err
		}
		return archiveImage{}, &InputError{Kind: ErrCorruptArchive, Detail: "unreadable image index", Err: err}
	}
	if len(idx.Manifests) == 0 {
		return archiveImage{}, &InputError{Kind: ErrEmptyArchive, Detail: "the archive's index lists no images"}
	}
	target, names, err := choose(idx.Manifests, name)
	if err != nil {
		return archiveImage{}, err
	}
	candidates, err := platformManifests(ctx, cs, target, 0)
	if err != nil {
		return archiveImage{}, err
	}
	match, ok := bestMatch(candidates, platforms.Only(want))
	if !ok {
		return archiveImage{}, &PlatformError{Image: names[0], Have: formatPlatforms(candidates), Want: platforms.Format(want)}
	}
	return archiveImage{target: target, names: names, match: match}, nil
}

// boundedStore refuses to hand out image metadata (manifests, indexes,
// configs) larger than maxJSONBlob. containerd's importer and its images
// package read such blobs whole into memory (content.ReadBlob allocates
// the blob's size), so without this an archive holding a "config" of
// gigabytes, which a gzip bomb of a few megabytes expands to, would take
// that much memory. Layers are streamed and pass.
type boundedStore struct {
	content.Store
	// reads counts the blobs opened, against maxBlobReads: the work an
	// archive makes is bounded by its size, not multiplied by what its
	// manifest.json repeats.
	reads atomic.Int64
}

func (s *boundedStore) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	if s.reads.Add(1) > maxBlobReads {
		return nil, &InputError{Kind: ErrCorruptArchive, Detail: fmt.Sprintf("it makes more than %d blob reads, more than any real image archive (a manifest.json that repeats its images or layers)", maxBlobReads)}
	}
	if !isMetadata(desc.MediaType) {
		return s.Store.ReaderAt(ctx, desc)
	}
	if desc.Size > maxJSONBlob {
		return nil, metadataTooLarge(desc, desc.Size)
	}
	ra, err := s.Store.ReaderAt(ctx, desc)
	if err != nil {
		return nil, err
	}
	if ra.Size() > maxJSONBlob {
		ra.Close()
		return nil, metadataTooLarge(desc, ra.Size())
	}
	return ra, nil
}

func isMetadata(mediaType string) bool {
	switch mediaType {
	case images.MediaTypeDockerSchema2Manifest, images.MediaTypeDockerSchema2ManifestList, images.MediaTypeDockerSchema2Config,
		ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageConfig:
		return true
	}
	return false
}

func metadataTooLarge(desc ocispec.Descriptor, size int64) error {
	return &InputError{Kind: ErrCorruptArchive, Detail: fmt.Sprintf("%s %s is %d bytes, more than the %d image metadata can be", mediaTypeOrNone(desc.MediaType), desc.Digest, size, maxJSONBlob)}
}

// archiveFaults are messages of containerd's importer (which returns
// untyped errors) that mean the archive's own structure is broken.
var archiveFaults = []string{
	"missing index.json",
	"unsupported OCI version",
	"untar oci layout",
	"untar manifest",
	`image config "`,
	"failed to resolve layers",
	"no target for symlink",
	"unable to resolve platform",
	// A RepoTags entry of manifest.json that is not an image reference
	// (found by FuzzReadArchive).
	"normalize image ref",
}

// streamError explains a failure while containerd's importer read the
// stream: the source failing, or what is wrong with the archive.
func streamError(ctx context.Context, err error, src *sourceReader, tail *tailReader) error {
	if ctx.Err() != nil {
		return fmt.Errorf("import interrupted: %w", ctx.Err())
	}
	if src.err != nil {
		return fmt.Errorf("read archive: %w", src.err)
	}
	if src.n == 0 {
		return &InputError{Kind: ErrEmptyArchive, Detail: "the stream holds no bytes"}
	}
	var de *decodeError
	if errors.As(err, &de) {
		return &InputError{Kind: ErrCorruptArchive, Detail: "the compressed stream is damaged", Err: err}
	}
	if tail == nil {
		return fmt.Errorf("read archive: %w", err)
	}
	if isDataError(err) {
		if tail.n <= tarBlock {
			return &InputError{Kind: ErrNotImageArchive, Detail: "not a tar archive (docker save or OCI image layout)", Err: err}
		}
		return &InputError{Kind: ErrCorruptArchive, Detail: fmt.Sprintf("unreadable after %d bytes", tail.n), Err: err}
	}
	msg := err.Error()
	if strings.Contains(msg, "unrecognized image format") {
		switch {
		case !tail.nonZero:
			return &InputError{Kind: ErrEmptyArchive, Detail: "the tar archive holds no files"}
		case !tail.endMarker():
			return &InputError{Kind: ErrCorruptArchive, Detail: "truncated: the tar stream ends without its end-of-archive marker"}
		}
		return &InputError{Kind: ErrNotImageArchive, Detail: "the tar holds neither manifest.json (docker save) nor oci-layout (OCI image layout)"}
	}
	for _, fault := range archiveFaults {
		if strings.Contains(msg, fault) {
			return &InputError{Kind: ErrCorruptArchive, Err: err}
		}
	}
	return fmt.Errorf("containerd: store archive content: %w", err)
}

// isDataError: the bytes themselves are wrong (bad tar headers, a stream
// ending mid-entry, malformed JSON), as opposed to containerd failing.
func isDataError(err error) bool {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	return errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &syn) || errors.As(err, &typ)
}

// contentError explains a failure reading the imported content: a blob the
// archive references but does not contain (or contains damaged, so it was
// stored under another digest) is a corrupt archive.
func contentError(ctx context.Context, err error, what string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("import interrupted: %w", ctx.Err())
	}
	var in *InputError
	if errors.As(err, &in) {
		return err
	}
	if errdefs.IsNotFound(err) {
		return &InputError{Kind: ErrCorruptArchive, Detail: "it lacks a blob it references (missing or damaged)", Err: err}
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &typ) {
		return &InputError{Kind: ErrCorruptArchive, Detail: "malformed image metadata", Err: err}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// readJSON reads the metadata blob desc into v. The size is checked on the
// blob itself, whatever desc claims, before anything is read into memory.
func readJSON(ctx context.Context, p content.Provider, desc ocispec.Descriptor, v any) error {
	if desc.Size > maxJSONBlob {
		return metadataTooLarge(desc, desc.Size)
	}
	ra, err := p.ReaderAt(ctx, desc)
	if err != nil {
		return err
	}
	defer ra.Close()
	if ra.Size() > maxJSONBlob {
		return metadataTooLarge(desc, ra.Size())
	}
	b := make([]byte, ra.Size())
	if n, err := ra.ReadAt(b, 0); n < len(b) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return json.Unmarshal(b, v)
}

// choose picks the image to import from the archive's index and the names
// to store it under (see ImportOptions.Name).
func choose(manifests []ocispec.Descriptor, name string) (ocispec.Descriptor, []string, error) {
	type entry struct {
		desc  ocispec.Descriptor
		names []string
	}
	var entries []*entry
	byDigest := map[digest.Digest]*entry{}
	for _, m := range manifests {
		e := byDigest[m.Digest]
		if e == nil {
			d := m
			// The names live in the image records; the annotations
			// would only repeat the archive's tag on a retagged image.
			d.Annotations = nil
			e = &entry{desc: d}
			byDigest[m.Digest] = e
			entries = append(entries, e)
		}
		e.names = appendUnique(e.names, archiveNames(m)...)
	}
	describe := func() string {
		var s []string
		for _, e := range entries {
			if len(e.names) > 0 {
				s = append(s, strings.Join(e.names, ", "))
			} else {
				s = append(s, "an unnamed image "+e.desc.Digest.String())
			}
		}
		return strings.Join(s, "; ")
	}
	if name != "" {
		for _, e := range entries {
			for _, n := range e.names {
				if n == name {
					return e.desc, []string{name}, nil
				}
			}
		}
		if len(entries) == 1 {
			return entries[0].desc, []string{name}, nil
		}
		return ocispec.Descriptor{}, nil, &InputError{Kind: ErrNoImage,
			Detail: fmt.Sprintf("it holds %d images (%s), none named %s", len(entries), describe(), name)}
	}
	if len(entries) > 1 {
		return ocispec.Descriptor{}, nil, &InputError{Kind: ErrNoImage,
			Detail: fmt.Sprintf("it holds %d images (%s); name the one to import", len(entries), describe())}
	}
	if len(entries[0].names) == 0 {
		return ocispec.Descriptor{}, nil, &InputError{Kind: ErrNoImage,
			Detail: "the archive does not name its image; give the name to import it under"}
	}
	names := entries[0].names
	sort.Strings(names)
	return entries[0].desc, names, nil
}

// archiveNames are the image names an index entry carries: containerd's
// annotation (set from docker save's RepoTags), or an OCI ref.name that is
// a whole reference. A bare tag ("latest") names nothing by itself.
func archiveNames(d ocispec.Descriptor) []string {
	var out []string
	for _, key := range []string{images.AnnotationImageName, ocispec.AnnotationRefName} {
		v := d.Annotations[key]
		if v == "" || (key == ocispec.AnnotationRefName && !strings.ContainsAny(v, "/:")) {
			continue
		}
		if n, err := NormalizeName(v); err == nil {
			out = appendUnique(out, n)
		}
	}
	return out
}

func appendUnique(list []string, add ...string) []string {
	for _, a := range add {
		found := false
		for _, l := range list {
			found = found || l == a
		}
		if !found {
			list = append(list, a)
		}
	}
	return list
}

// platformManifest is one runnable manifest of an image and its platform.
type platformManifest struct {
	desc     ocispec.Descriptor
	platform ocispec.Platform
}

// platformManifests lists the manifests under desc with their platforms,
// taken from the index entry or, failing that, from the image config.
func platformManifests(ctx context.Context, cs content.Provider, desc ocispec.Descriptor, depth int) ([]platformManifest, error) {
	switch desc.MediaType {
	case images.MediaTypeDockerSchema2Manifest, ocispec.MediaTypeImageManifest:
		var m ocispec.Manifest
		if err := readJSON(ctx, cs, desc, &m); err != nil {
			return nil, contentError(ctx, err, "read image manifest")
		}
		var cfg ocispec.Image
		if err := readJSON(ctx, cs, m.Config, &cfg); err != nil {
			return nil, contentError(ctx, err, "read image config")
		}
		if cfg.OS == "" || cfg.Architecture == "" {
			// No platform: nothing can match; reported as such.
			return nil, nil
		}
		p := ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant, OSVersion: cfg.OSVersion}
		return []platformManifest{{desc: desc, platform: platforms.Normalize(p)}}, nil
	case images.MediaTypeDockerSchema2ManifestList, ocispec.MediaTypeImageIndex:
		if depth >= maxIndexDepth {
			return nil, &InputError{Kind: ErrCorruptArchive, Detail: "image indexes nested too deep"}
		}
		var idx ocispec.Index
		if err := readJSON(ctx, cs, desc, &idx); err != nil {
			return nil, contentError(ctx, err, "read image index")
		}
		var out []platformManifest
		for _, m := range idx.Manifests {
			isManifest := m.MediaType == images.MediaTypeDockerSchema2Manifest || m.MediaType == ocispec.MediaTypeImageManifest
			if m.Platform != nil && isManifest {
				// Attestation manifests (buildkit's provenance, SBOMs)
				// are listed as unknown/unknown: not runnable.
				if m.Platform.OS != "unknown" && m.Platform.Architecture != "unknown" {
					out = append(out, platformManifest{desc: m, platform: platforms.Normalize(*m.Platform)})
				}
				continue
			}
			sub, err := platformManifests(ctx, cs, m, depth+1)
			if err != nil {
				// A multi-platform index saved with only some platforms'
				// content still has the others listed: skip those.
				if errors.Is(err, ErrCorruptArchive) && errdefs.IsNotFound(err) {
					continue
				}
				return nil, err
			}
			out = append(out, sub...)
		}
		return out, nil
	}
	return nil, &InputError{Kind: ErrNotImageArchive, Detail: fmt.Sprintf("its index points at %s, not an image manifest or index", mediaTypeOrNone(desc.MediaType))}
}

func mediaTypeOrNone(mt string) string {
	if mt == "" {
		return "content without a media type"
	}
	return mt
}

// bestMatch is the manifest the matcher prefers, as containerd picks one.
func bestMatch(candidates []platformManifest, m platforms.MatchComparer) (platformManifest, bool) {
	var best platformManifest
	found := false
	for _, c := range candidates {
		if !m.Match(c.platform) {
			continue
		}
		if !found || m.Less(c.platform, best.platform) {
			best, found = c, true
		}
	}
	return best, found
}

func formatPlatforms(candidates []platformManifest) []string {
	var out []string
	for _, c := range candidates {
		out = appendUnique(out, platforms.Format(c.platform))
	}
	sort.Strings(out)
	return out
}

// unpackError explains a failed unpack. containerd's message for a damaged
// layer is opaque ("wrong diff id", a gzip error from the daemon), so the
// layers are checked here, only on this failure path, against the diff IDs
// in the image config: a mismatch is a corrupt archive, not a failure.
func (i *Importer) unpackError(ctx context.Context, cs content.Provider, manifest ocispec.Descriptor, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("import interrupted: %w", ctx.Err())
	}
	if bad := verifyLayers(ctx, cs, manifest); bad != nil {
		return bad
	}
	return fmt.Errorf("unpack image for snapshotter %s: %w", i.snapshotter(), err)
}

// verifyLayers returns an *InputError naming the first damaged layer, or
// nil when the layers are intact or cannot be checked.
func verifyLayers(ctx context.Context, cs content.Provider, manifest ocispec.Descriptor) error {
	var m ocispec.Manifest
	if err := readJSON(ctx, cs, manifest, &m); err != nil {
		return corruptOrNil(ctx, contentError(ctx, err, ""))
	}
	var cfg ocispec.Image
	if err := readJSON(ctx, cs, m.Config, &cfg); err != nil {
		return corruptOrNil(ctx, contentError(ctx, err, ""))
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return &InputError{Kind: ErrCorruptArchive, Detail: fmt.Sprintf("the image config lists %d layers, the manifest %d", len(cfg.RootFS.DiffIDs), len(m.Layers))}
	}
	for n, l := range m.Layers {
		ra, err := cs.ReaderAt(ctx, l)
		if err != nil {
			if errdefs.IsNotFound(err) {
				return &InputError{Kind: ErrCorruptArchive, Detail: fmt.Sprintf("layer %d (%s) is missing or damaged", n+1, l.Digest)}
			}
			return nil
		}
		got, err := uncompressedDigest(content.NewReader(ra))
		ra.Close()
		var de *decodeError
		switch {
		case errors.As(err, &de):
			return &InputError{Kind: ErrCorruptArchive, Detail: fmt.Sprintf("layer %d (%s) is damaged", n+1, l.Digest), Err: err}
		case err != nil:
			return nil
		case got != cfg.RootFS.DiffIDs[n]:
			return &InputError{Kind: ErrCorruptArchive, Detail: fmt.Sprintf("layer %d (%s) is damaged: its content is %s, the image config says %s", n+1, l.Digest, got, cfg.RootFS.DiffIDs[n])}
		}
	}
	return nil
}

func uncompressedDigest(r io.Reader) (digest.Digest, error) {
	dr, err := decompress(r)
	if err != nil {
		return "", err
	}
	defer dr.Close()
	d := digest.Canonical.Digester()
	if _, err := io.Copy(d.Hash(), dr); err != nil {
		return "", err
	}
	return d.Digest(), nil
}

func corruptOrNil(ctx context.Context, err error) error {
	if errors.Is(err, ErrCorruptArchive) && ctx.Err() == nil {
		return err
	}
	return nil
}
