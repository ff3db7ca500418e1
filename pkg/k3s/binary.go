package k3s

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// BinaryStep makes BinaryPath the verified k3s binary of i.Version. Its Check
// runs only `k3s --version`; an installed k3s of the right version is left
// alone, and a newer one is refused (k3s does not support downgrades).
func (i Installer) BinaryStep() plan.Step {
	const name = "k3s binary"
	n, err := i.normalized()
	if err != nil {
		return failing(name, err)
	}
	return plan.Step{
		Name:  name,
		Check: n.checkBinary,
		Apply: n.applyBinary,
	}
}

func (i Installer) checkBinary(ctx context.Context) (plan.Status, error) {
	asset := i.binaryAsset()
	todo := fmt.Sprintf("from %s, %s", i.source(asset), i.verification(asset))
	have, err := InstalledVersion(ctx, i.Host)
	var notRunning *notRunningError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return plan.Status{Pending: true, Summary: fmt.Sprintf("install k3s %s %s", i.Version, todo)}, nil
	case errors.As(err, &notRunning):
		return plan.Status{Pending: true, Summary: fmt.Sprintf("reinstall k3s %s %s (%s)", i.Version, todo, notRunning.reason)}, nil
	case err != nil:
		return plan.Status{}, err
	case have == i.Version:
		return plan.Status{Summary: "k3s " + have + " is installed"}, nil
	}
	switch c, ok := compareVersions(have, i.Version); {
	case ok && c > 0:
		return plan.Status{}, fmt.Errorf("the installed k3s %s is newer than k3s.version %s, and k3s does not support downgrades: set k3s.version to %s",
			have, i.Version, have)
	case ok && c < 0:
		return plan.Status{Pending: true, Summary: fmt.Sprintf("upgrade k3s from %s to %s %s", have, i.Version, todo)}, nil
	}
	return plan.Status{Pending: true, Summary: fmt.Sprintf("replace k3s %s with %s %s", have, i.Version, todo)}, nil
}

func (i Installer) applyBinary(ctx context.Context) error {
	asset := i.binaryAsset()
	want, err := i.expectedFor(ctx, asset)
	if err != nil {
		return err
	}
	data, err := i.fetchVerified(ctx, asset, want, maxBinary)
	if err != nil {
		return err
	}
	// A running k3s keeps its old binary open; the rename is safe. The
	// service step restarts k3s when its binary is newer than the process.
	_, err = i.Host.WriteFile(BinaryPath, data, 0o755)
	return err
}

// notRunningError is an installed binary that does not report a version.
type notRunningError struct{ reason string }

func (e *notRunningError) Error() string { return e.reason }

// InstalledVersion is the version of the k3s at BinaryPath, from its
// --version output. A missing binary is fs.ErrNotExist.
func InstalledVersion(ctx context.Context, h host.Host) (string, error) {
	if _, err := h.Lstat(BinaryPath); err != nil {
		return "", err
	}
	out, err := h.Run(ctx, host.Cmd{Name: BinaryPath, Args: []string{"--version"}})
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", &notRunningError{reason: "the installed binary does not run: " + reason(err)}
	}
	if v := parseVersion(out); v != "" {
		return v, nil
	}
	return "", &notRunningError{reason: fmt.Sprintf("%s --version printed no version: %q", BinaryPath, firstLine(string(out)))}
}

// parseVersion reads "k3s version v1.37.2+k3s1 (abcdef)".
func parseVersion(out []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[0] == "k3s" && f[1] == "version" {
			return f[2]
		}
	}
	return ""
}

// compareVersions orders two k3s release tags (-1, 0, 1); ok is false when
// either is not one. Pre-releases order before their release.
func compareVersions(a, b string) (c int, ok bool) {
	pa, pb := versionPattern.FindStringSubmatch(a), versionPattern.FindStringSubmatch(b)
	if pa == nil || pb == nil {
		return 0, false
	}
	num := func(s string) int { n, _ := strconv.Atoi(s); return n }
	for _, k := range []int{1, 2, 3} {
		if d := num(pa[k]) - num(pb[k]); d != 0 {
			return sign(d), true
		}
	}
	switch {
	case pa[4] != pb[4] && pa[4] == "":
		return 1, true
	case pa[4] != pb[4] && pb[4] == "":
		return -1, true
	case pa[4] != pb[4]:
		return strings.Compare(pa[4], pb[4]), true
	}
	return sign(num(pa[5]) - num(pb[5])), true
}

func sign(d int) int {
	switch {
	case d < 0:
		return -1
	case d > 0:
		return 1
	}
	return 0
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// ImagesStep places the verified airgap image tarball in ImagesDir, where k3s
// imports it at start. Check compares sizes only: hashing a tarball of
// hundreds of MB on every run would cost more than it finds.
func (i Installer) ImagesStep() plan.Step {
	const name = "k3s airgap images"
	n, err := i.normalized()
	if err != nil {
		return failing(name, err)
	}
	if n.ImagesFile == "" {
		return failing(name, errors.New("k3s installer: no images file given"))
	}
	return plan.Step{Name: name, Check: n.checkImages, Apply: n.applyImages}
}

func (i Installer) checkImages(ctx context.Context) (plan.Status, error) {
	src, err := os.Stat(i.ImagesFile)
	if err != nil {
		return plan.Status{}, fmt.Errorf("k3s images: %w", err)
	}
	dst := i.ImagesPath()
	todo := fmt.Sprintf("copy %s to %s (%d bytes, %s)", i.ImagesFile, dst, src.Size(), i.verification(i.imagesAsset()))
	info, err := i.Host.Lstat(dst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return plan.Status{Pending: true, Summary: todo}, nil
	case err != nil:
		return plan.Status{}, err
	case info.Mode().IsRegular() && info.Size() == src.Size():
		return plan.Status{Summary: dst + " is in place"}, nil
	}
	return plan.Status{Pending: true, Summary: "replace: " + todo}, nil
}

func (i Installer) applyImages(ctx context.Context) error {
	asset := i.imagesAsset()
	want, err := i.expectedFor(ctx, asset)
	if err != nil {
		return err
	}
	data, err := i.fetchVerified(ctx, asset, want, maxImages)
	if err != nil {
		return err
	}
	_, err = i.Host.WriteFile(i.ImagesPath(), data, 0o644)
	return err
}
