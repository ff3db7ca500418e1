// Package k3s installs k3s the verifiable way: homelab downloads the release
// binary itself (or takes a local copy for an offline install), checks it
// against the release's sha256 list or a digest the user pinned, and writes
// its own systemd unit with Traefik and servicelb disabled. The get.k3s.io
// install script is not used.
//
// Every side effect goes through host.Host; the only network access is the
// download of release assets with the Installer's *http.Client.
//
// Waiting for the node to become Ready after the service starts is the
// cluster engine's job (pkg/kube), not this package's. Watch and LinkWatch
// record what homelab installed; the removal steps in remove.go take it
// back.
package k3s

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// Host paths k3s uses.
const (
	BinaryPath = "/usr/local/bin/k3s"
	UnitPath   = "/etc/systemd/system/k3s.service"
	ConfigPath = "/etc/rancher/k3s/config.yaml"
	// ImagesDir is where k3s looks for airgap image tarballs to import at start.
	ImagesDir = "/var/lib/rancher/k3s/agent/images"
)

// DefaultBaseURL is where k3s releases are published; a mirror must keep the
// layout <base>/<version>/<asset>.
const DefaultBaseURL = "https://github.com/k3s-io/k3s/releases/download"

// DefaultServiceCIDR is k3s's own default; the unit passes --service-cidr only
// for another network.
const DefaultServiceCIDR = "10.43.0.0/16"

// Installer installs one k3s version on Host. Build its steps with Steps (or
// the single-step constructors); building them does no I/O.
type Installer struct {
	Host host.Host
	// HTTP downloads release assets; a new client when nil.
	HTTP *http.Client
	// BaseURL is the release download URL, DefaultBaseURL when empty.
	BaseURL string
	// Arch is the host's architecture as Go names it (amd64, arm64, arm);
	// runtime.GOARCH when empty.
	Arch string
	// Version is the k3s release tag, like v1.37.2+k3s1.
	Version string
	// BinaryFile is a local k3s binary for an offline install (--k3s-binary).
	// With it, nothing is downloaded: it must be verified by PinnedSHA256 or
	// SumsFile.
	BinaryFile string
	// ImagesFile is a local airgap image tarball (--k3s-images), placed where
	// k3s imports it at start. It is verified against the release's sha256 list.
	ImagesFile string
	// SumsFile is a local copy of the release's sha256sum-<arch>.txt, for
	// offline installs (--k3s-sums).
	SumsFile string
	// PinnedSHA256 is a digest of the k3s binary the user pinned; it replaces
	// the release's sha256 list for the binary.
	PinnedSHA256 string
	// ServiceCIDR is passed to k3s server when not DefaultServiceCIDR.
	ServiceCIDR string
}

// arch describes the release assets of one architecture.
type arch struct{ binary, suffix string }

var arches = map[string]arch{
	"amd64": {binary: "k3s", suffix: "amd64"},
	"arm64": {binary: "k3s-arm64", suffix: "arm64"},
	"arm":   {binary: "k3s-armhf", suffix: "arm"},
}

var (
	versionPattern = regexp.MustCompile(`^v([0-9]+)\.([0-9]+)\.([0-9]+)(-[0-9A-Za-z.]+)?\+k3s([0-9]+)$`)
	sha256Pattern  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// imageExtensions are the tarballs k3s imports from ImagesDir.
var imageExtensions = []string{".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst", ".tar.bz2", ".tbz", ".tar.lz4", ".tlz4"}

// normalized returns i with defaults filled in, or every problem with its fields.
func (i Installer) normalized() (Installer, error) {
	var errs []error
	bad := func(field, value, valid string) {
		errs = append(errs, fmt.Errorf("k3s installer: %s %q is invalid: want %s", field, value, valid))
	}
	if i.Host == nil {
		errs = append(errs, errors.New("k3s installer: no host"))
	}
	if i.HTTP == nil {
		i.HTTP = &http.Client{}
	}
	if i.BaseURL == "" {
		i.BaseURL = DefaultBaseURL
	}
	i.BaseURL = strings.TrimRight(i.BaseURL, "/")
	if u, err := url.Parse(i.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("base URL", i.BaseURL, "an http or https URL like "+DefaultBaseURL)
	}
	if i.Arch == "" {
		i.Arch = runtime.GOARCH
	}
	if _, ok := arches[i.Arch]; !ok {
		bad("architecture", i.Arch, "one of amd64, arm64, arm")
	}
	if !versionPattern.MatchString(i.Version) {
		bad("version", i.Version, "a k3s release tag like v1.37.2+k3s1")
	}
	if i.ServiceCIDR == "" {
		i.ServiceCIDR = DefaultServiceCIDR
	}
	if i.PinnedSHA256 != "" {
		i.PinnedSHA256 = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(i.PinnedSHA256), "sha256:"))
		if !sha256Pattern.MatchString(i.PinnedSHA256) {
			bad("pinned sha256", i.PinnedSHA256, "64 hexadecimal digits (sha256sum's output)")
		}
	}
	if i.BinaryFile != "" && i.PinnedSHA256 == "" && i.SumsFile == "" {
		errs = append(errs, fmt.Errorf("k3s installer: the offline k3s binary %s cannot be verified: pin its digest (--k3s-sha256) or give the release's %s (--k3s-sums)",
			i.BinaryFile, i.sumsAsset()))
	}
	if i.ImagesFile != "" {
		if !slices.ContainsFunc(imageExtensions, func(ext string) bool { return strings.HasSuffix(i.ImagesFile, ext) }) {
			bad("images file", i.ImagesFile, "an image tarball k3s imports ("+strings.Join(imageExtensions, ", ")+"), like k3s-airgap-images-amd64.tar.zst")
		}
		if i.BinaryFile != "" && i.SumsFile == "" {
			errs = append(errs, fmt.Errorf("k3s installer: the offline images %s cannot be verified: give the release's %s (--k3s-sums)",
				i.ImagesFile, i.sumsAsset()))
		}
	}
	return i, errors.Join(errs...)
}

// offline reports whether the install must not use the network.
func (i Installer) offline() bool { return i.BinaryFile != "" }

func (i Installer) binaryAsset() string { return arches[i.Arch].binary }
func (i Installer) sumsAsset() string {
	a, ok := arches[i.Arch]
	if !ok {
		return "sha256sum-<arch>.txt"
	}
	return "sha256sum-" + a.suffix + ".txt"
}
func (i Installer) imagesAsset() string { return filepath.Base(i.ImagesFile) }

// ImagesPath is where the airgap tarball is placed on the host.
func (i Installer) ImagesPath() string { return path.Join(ImagesDir, i.imagesAsset()) }

// ReleaseURL is the download URL of a release asset under base. The "+" of
// the version is escaped: servers would otherwise read it as a space.
func ReleaseURL(base, version, asset string) string {
	return strings.TrimRight(base, "/") + "/" + strings.ReplaceAll(url.PathEscape(version), "+", "%2B") + "/" + url.PathEscape(asset)
}

// Steps are the install steps in order: the binary, the airgap images when
// ImagesFile is set, and the systemd service. An invalid Installer is an
// error here, before anything runs.
func (i Installer) Steps() ([]plan.Step, error) {
	if _, err := i.normalized(); err != nil {
		return nil, err
	}
	steps := []plan.Step{i.BinaryStep()}
	if i.ImagesFile != "" {
		steps = append(steps, i.ImagesStep())
	}
	return append(steps, i.ServiceStep()), nil
}

// failing is a step whose Check reports err (an invalid Installer).
func failing(name string, err error) plan.Step {
	return plan.Step{
		Name:  name,
		Check: func(context.Context) (plan.Status, error) { return plan.Status{}, err },
		Apply: func(context.Context) error { return err },
	}
}
