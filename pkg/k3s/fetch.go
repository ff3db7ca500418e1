package k3s

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/homelab-dev/homelab/pkg/host"
)

// Release asset names for the Installer's architecture (runtime.GOARCH when
// Arch is empty), for callers that gather a release (homelab bundle).

// BinaryAsset is the k3s binary's asset name: k3s, k3s-arm64, k3s-armhf.
func (i Installer) BinaryAsset() string { return i.withArch().binaryAsset() }

// SumsAsset is the release's checksum list: sha256sum-<arch>.txt.
func (i Installer) SumsAsset() string { return i.withArch().sumsAsset() }

// AirgapImagesAsset is the zstd airgap image tarball: k3s-airgap-images-<arch>.tar.zst.
func (i Installer) AirgapImagesAsset() string {
	a, ok := arches[i.withArch().Arch]
	if !ok {
		return "k3s-airgap-images-<arch>.tar.zst"
	}
	return "k3s-airgap-images-" + a.suffix + ".tar.zst"
}

func (i Installer) withArch() Installer {
	if i.Arch == "" {
		n, _ := i.forDownload()
		i.Arch = n.Arch
	}
	return i
}

// downloadOnly stands in for the host when an Installer only downloads:
// Sums and Download (a Host is not needed for them) never touch the machine.
type downloadOnly struct{ host.Host }

func (i Installer) forDownload() (Installer, error) {
	if i.Host == nil {
		i.Host = downloadOnly{}
	}
	return i.normalized()
}

// Sums returns the release's checksum list as published (from SumsFile, or
// downloaded), after checking that it is one.
func (i Installer) Sums(ctx context.Context) ([]byte, error) {
	n, err := i.forDownload()
	if err != nil {
		return nil, err
	}
	body, _, from, err := n.open(ctx, n.sumsAsset())
	if err != nil {
		return nil, err
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, maxSums+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", from, err)
	}
	if len(data) > maxSums {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a sha256 list", from, maxSums)
	}
	if _, err := parseSums(data); err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return data, nil
}

// Download streams a release asset (the binary or an airgap image tarball)
// into w while hashing it, and returns its sha256 when it is the one the
// release's checksum list (or, for the binary, PinnedSHA256) expects. On a
// mismatch it returns a *ChecksumError: w has then received bytes that must
// be thrown away.
func (i Installer) Download(ctx context.Context, asset string, w io.Writer) (string, error) {
	n, err := i.forDownload()
	if err != nil {
		return "", err
	}
	want, err := n.expectedFor(ctx, asset)
	if err != nil {
		return "", err
	}
	limit := int64(maxImages)
	if asset == n.binaryAsset() {
		limit = maxBinary
	}
	body, size, from, err := n.open(ctx, asset)
	if err != nil {
		return "", err
	}
	defer body.Close()
	if size > limit {
		return "", fmt.Errorf("%s from %s is %d bytes, more than the %d accepted", asset, from, size, limit)
	}
	sum := sha256.New()
	written, err := io.Copy(io.MultiWriter(w, sum), io.LimitReader(body, limit+1))
	if err != nil {
		return "", fmt.Errorf("read %s from %s: %w", asset, from, err)
	}
	if written > limit {
		return "", fmt.Errorf("%s from %s is larger than the %d bytes accepted", asset, from, limit)
	}
	got := hex.EncodeToString(sum.Sum(nil))
	if got != want.digest {
		return "", &ChecksumError{Asset: asset, From: from, Want: want.digest, WantFrom: want.from, Got: got}
	}
	return got, nil
}
