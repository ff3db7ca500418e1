package k3s

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// Size limits: a release asset larger than these is refused rather than
// buffered (the k3s binary is about 70 MB, the zstd airgap tarball a few
// hundred MB).
const (
	maxSums   = 1 << 20
	maxBinary = 512 << 20
	maxImages = 4 << 30
)

// ChecksumError is a release asset whose sha256 is not the expected one.
// Nothing is written when it is returned.
type ChecksumError struct {
	Asset string
	// From is where the asset was read: a URL or a local file.
	From string
	// Want is the expected digest and WantFrom where that digest came from.
	Want, WantFrom string
	Got            string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s from %s failed verification: sha256 is %s, expected %s (%s); nothing was written",
		e.Asset, e.From, e.Got, e.Want, e.WantFrom)
}

// expected is a digest and where it comes from, for error messages.
type expected struct{ digest, from string }

// open reads a release asset: the user's local file when one was given for
// it, else (unless the install is offline) a download from the release URL.
// Local files are the user's inputs, like --config, not host paths.
func (i Installer) open(ctx context.Context, asset string) (io.ReadCloser, int64, string, error) {
	local := map[string]string{}
	if i.BinaryFile != "" {
		local[i.binaryAsset()] = i.BinaryFile
	}
	if i.SumsFile != "" {
		local[i.sumsAsset()] = i.SumsFile
	}
	if i.ImagesFile != "" {
		local[i.imagesAsset()] = i.ImagesFile
	}
	if p, ok := local[asset]; ok {
		f, err := os.Open(p)
		if err != nil {
			return nil, 0, p, fmt.Errorf("open local %s: %w", asset, err)
		}
		info, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, p, err
		}
		return f, info.Size(), p, nil
	}
	if i.offline() {
		return nil, 0, "", fmt.Errorf("offline install: no local file given for %s, and nothing is downloaded", asset)
	}
	return i.download(ctx, asset)
}

// download is the package's only network access.
func (i Installer) download(ctx context.Context, asset string) (io.ReadCloser, int64, string, error) {
	u := ReleaseURL(i.BaseURL, i.Version, asset)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, u, err
	}
	resp, err := i.HTTP.Do(req)
	if err != nil {
		return nil, 0, u, fmt.Errorf("download %s: %w (offline? give local files with --k3s-binary and --k3s-sums)", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		hint := ""
		if resp.StatusCode == http.StatusNotFound {
			hint = fmt.Sprintf(" (is %s a k3s release, and does %s carry it?)", i.Version, i.BaseURL)
		}
		return nil, 0, u, fmt.Errorf("download %s: HTTP %s%s", u, resp.Status, hint)
	}
	return resp.Body, resp.ContentLength, u, nil
}

// fetchVerified reads asset whole, hashing it as it streams in, and returns
// it only if its sha256 is want's. The one in-memory copy exists because
// host.WriteFile takes []byte; a streaming host write that commits only after
// a verify callback (renameio's pending file underneath) would remove it.
func (i Installer) fetchVerified(ctx context.Context, asset string, want expected, limit int64) ([]byte, error) {
	body, size, from, err := i.open(ctx, asset)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	if size > limit {
		return nil, fmt.Errorf("%s from %s is %d bytes, more than the %d this installer accepts", asset, from, size, limit)
	}
	var buf bytes.Buffer
	if size > 0 {
		buf.Grow(int(size))
	}
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(&buf, sum), io.LimitReader(body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", asset, from, err)
	}
	if n > limit {
		return nil, fmt.Errorf("%s from %s is larger than the %d bytes this installer accepts", asset, from, limit)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != want.digest {
		return nil, &ChecksumError{Asset: asset, From: from, Want: want.digest, WantFrom: want.from, Got: got}
	}
	return buf.Bytes(), nil
}

// sums reads the release's sha256 list: asset name to digest.
func (i Installer) sums(ctx context.Context) (map[string]string, string, error) {
	asset := i.sumsAsset()
	body, _, from, err := i.open(ctx, asset)
	if err != nil {
		return nil, from, err
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, maxSums+1))
	if err != nil {
		return nil, from, fmt.Errorf("read %s: %w", from, err)
	}
	if len(data) > maxSums {
		return nil, from, fmt.Errorf("%s is larger than %d bytes: not a sha256 list", from, maxSums)
	}
	m, err := parseSums(data)
	if err != nil {
		return nil, from, fmt.Errorf("%s: %w", from, err)
	}
	return m, from, nil
}

// parseSums reads sha256sum output: "<digest>  <name>" (or " *<name>").
func parseSums(data []byte) (map[string]string, error) {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		digest, name, ok := strings.Cut(line, " ")
		name = strings.TrimPrefix(strings.TrimSpace(name), "*")
		digest = strings.ToLower(digest)
		if !ok || name == "" || !sha256Pattern.MatchString(digest) {
			return nil, fmt.Errorf("line %d is not \"<sha256>  <file>\": %q", n, line)
		}
		m[name] = digest
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("no checksums in the file")
	}
	return m, nil
}

// expectedFor is the digest asset must have, from the pinned digest (binary
// only) or the release's sha256 list.
func (i Installer) expectedFor(ctx context.Context, asset string) (expected, error) {
	if asset == i.binaryAsset() && i.PinnedSHA256 != "" {
		return expected{digest: i.PinnedSHA256, from: "the pinned digest"}, nil
	}
	m, from, err := i.sums(ctx)
	if err != nil {
		return expected{}, err
	}
	d, ok := m[asset]
	if !ok {
		return expected{}, fmt.Errorf("%s has no checksum for %s: keep the release's file name", from, asset)
	}
	return expected{digest: d, from: "from " + from}, nil
}

// verification describes how asset will be checked, for plan summaries.
func (i Installer) verification(asset string) string {
	if asset == i.binaryAsset() && i.PinnedSHA256 != "" {
		return "verified against the pinned sha256 " + i.PinnedSHA256[:12] + "…"
	}
	if i.SumsFile != "" {
		return "verified against " + i.SumsFile
	}
	return "verified against the release's " + i.sumsAsset()
}

// source says where asset comes from, for plan summaries.
func (i Installer) source(asset string) string {
	switch {
	case asset == i.binaryAsset() && i.BinaryFile != "":
		return i.BinaryFile + " (offline)"
	case asset == i.imagesAsset() && i.ImagesFile != "":
		return i.ImagesFile
	}
	return ReleaseURL(i.BaseURL, i.Version, asset)
}
