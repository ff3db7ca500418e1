// Package bundle makes and opens homelab's offline bundle: one archive with
// everything `homelab init` downloads — the k3s binary, its release checksum
// list and airgap images, both charts, and every container image the charts
// run with homelab's values — so that a machine without internet can be
// installed with `homelab init --bundle FILE`.
//
// The archive is a plain tar (its contents are compressed already) whose
// first entry is manifest.json: versions, architecture, the image list, and
// the size and sha256 of every other file. Open and Verify check the whole
// archive against it before anything in it is used.
package bundle

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/homelab-dev/homelab/pkg/config"
)

// FormatVersion is the manifest format this build writes and reads.
const FormatVersion = 1

// ManifestName is the archive's first entry.
const ManifestName = "manifest.json"

// Archive paths of the parts.
const (
	k3sDir    = "k3s"
	chartsDir = "charts"
	imagesDir = "images"
)

// Arches are the architectures a bundle can be made for (k3s's node images
// exist for both; 32-bit arm is not supported by the charts' images).
var Arches = []string{"amd64", "arm64"}

// Manifest describes a bundle.
type Manifest struct {
	Format         int       `json:"format"`
	Created        time.Time `json:"created"`
	HomelabVersion string    `json:"homelabVersion,omitempty"`
	// Arch is the Go architecture name of the machines the bundle is for.
	Arch string `json:"arch"`
	// KubernetesVersion is what the charts were rendered for.
	KubernetesVersion string      `json:"kubernetesVersion"`
	K3s               K3sFiles    `json:"k3s"`
	Charts            []ChartFile `json:"charts"`
	// ImagesFile is the docker-save tarball with every image in Images, for
	// k3s to import from its agent images directory.
	ImagesFile string  `json:"imagesFile"`
	Images     []Image `json:"images"`
	// Files lists every file of the archive but the manifest.
	Files []File `json:"files"`
}

// K3sFiles are the k3s release's files in the bundle (archive paths).
type K3sFiles struct {
	Version      string `json:"version"`
	Binary       string `json:"binary"`
	Sums         string `json:"sums"`
	AirgapImages string `json:"airgapImages"`
}

// ChartFile is one chart archive.
type ChartFile struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	File    string `json:"file"`
}

// Image is one image of ImagesFile: the reference the charts use and the
// digest of the manifest pulled for the bundle's platform.
type Image struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}

// File is one file of the archive.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// File returns the entry for archive path p.
func (m *Manifest) File(p string) (File, bool) {
	i := slices.IndexFunc(m.Files, func(f File) bool { return f.Path == p })
	if i < 0 {
		return File{}, false
	}
	return m.Files[i], true
}

// Chart returns the chart archive entry of the named chart.
func (m *Manifest) Chart(name string) (ChartFile, bool) {
	i := slices.IndexFunc(m.Charts, func(c ChartFile) bool { return c.Name == name })
	if i < 0 {
		return ChartFile{}, false
	}
	return m.Charts[i], true
}

// check reports what makes the manifest unusable (every problem).
func (m *Manifest) check() []string {
	var probs []string
	if m.Format != FormatVersion {
		probs = append(probs, fmt.Sprintf("manifest format %d is not the %d this homelab reads", m.Format, FormatVersion))
		return probs
	}
	if !slices.Contains(Arches, m.Arch) {
		probs = append(probs, fmt.Sprintf("architecture %q is not one of %s", m.Arch, strings.Join(Arches, ", ")))
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if !safePath(f.Path) || f.Path == ManifestName {
			probs = append(probs, fmt.Sprintf("file path %q is not a plain relative path", short(f.Path)))
		}
		if f.Size < 0 {
			probs = append(probs, fmt.Sprintf("file %s: size %d", f.Path, f.Size))
		}
		if seen[f.Path] {
			probs = append(probs, fmt.Sprintf("file %s is listed twice", f.Path))
		}
		seen[f.Path] = true
		if len(f.SHA256) != 64 || strings.Trim(f.SHA256, "0123456789abcdef") != "" {
			probs = append(probs, fmt.Sprintf("file %s: sha256 %q is not 64 hexadecimal digits", f.Path, f.SHA256))
		}
	}
	// A file cannot also be a directory of others ("k3s" and "k3s/k3s"):
	// extracting both would fail half-way.
	for _, f := range m.Files {
		for dir := path.Dir(f.Path); dir != "." && dir != "/" && dir != ""; dir = path.Dir(dir) {
			if seen[dir] {
				probs = append(probs, fmt.Sprintf("file %s is also the directory of %s", dir, f.Path))
				break
			}
		}
	}
	need := func(what, p string) {
		if p == "" {
			probs = append(probs, what+" is missing from the manifest")
		} else if !seen[p] {
			probs = append(probs, fmt.Sprintf("%s %s is not among the manifest's files", what, p))
		}
	}
	if m.K3s.Version == "" {
		probs = append(probs, "the k3s version is missing from the manifest")
	}
	need("the k3s binary", m.K3s.Binary)
	need("the k3s checksum list", m.K3s.Sums)
	need("the k3s airgap images", m.K3s.AirgapImages)
	need("the image tarball", m.ImagesFile)
	for _, name := range []string{StackChart, BlackboxChart} {
		c, ok := m.Chart(name)
		if !ok {
			probs = append(probs, "chart "+name+" is missing from the manifest")
			continue
		}
		need("chart "+name, c.File)
	}
	return probs
}

// Chart names.
const (
	StackChart    = "kube-prometheus-stack"
	BlackboxChart = "prometheus-blackbox-exporter"
)

// CheckConfig reports, as a bad-input error, where the bundle was made for
// other versions than cfg installs: the bundle's k3s and charts must be
// the configured ones.
func (m *Manifest) CheckConfig(file string, cfg *config.Config) error {
	var probs []string
	if m.K3s.Version != cfg.K3s.Version {
		probs = append(probs, fmt.Sprintf("it holds k3s %s, the configuration installs %s (k3s.version)", m.K3s.Version, cfg.K3s.Version))
	}
	for _, c := range []struct{ name, version, key string }{
		{StackChart, cfg.Monitoring.ChartVersion, "monitoring.chartVersion"},
		{BlackboxChart, cfg.Monitoring.Blackbox.ChartVersion, "monitoring.blackbox.chartVersion"},
	} {
		if have, _ := m.Chart(c.name); have.Version != c.version {
			probs = append(probs, fmt.Sprintf("it holds %s %s, the configuration installs %s (%s)", c.name, have.Version, c.version, c.key))
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return &Error{Path: file, Problems: probs, Hint: "make the bundle with the same configuration: homelab bundle --config FILE -o BUNDLE"}
}

// maxPath bounds an archive path: homelab's own are a few dozen bytes, and
// a longer one could not be extracted (a file name is at most 255 bytes).
const maxPath = 255

// safePath accepts a clean relative slash path inside the archive.
func safePath(p string) bool {
	return p != "" && p != "." && len(p) <= maxPath && !strings.HasPrefix(p, "/") && path.Clean(p) == p && p != ".." &&
		!strings.HasPrefix(p, "../") && !strings.ContainsAny(p, "\\\x00")
}

// cut shortens a problem to maxProblemLen bytes, at a character boundary.
func cut(s string) string { return cutTo(s, maxProblemLen) }

// short shortens a name from the bundle quoted in a problem, so that the
// problem's own words survive cut.
func short(s string) string { return cutTo(s, 80) }

func cutTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return fmt.Sprintf("%s... (%d more bytes)", s[:i], len(s)-i)
}

// Error is a bundle that cannot be used as it is: damaged, incomplete, for
// another architecture or other versions. It is the user's input that is
// wrong, so commands exit with 2, having changed nothing.
type Error struct {
	Path     string
	Problems []string
	Hint     string
}

// A bundle's problems quote it (entry names, manifest values); the message
// shows the first few, each cut short, rather than repeat a hostile or
// damaged archive on the terminal.
const (
	maxProblemsShown = 10
	maxProblemLen    = 200
)

func (e *Error) Error() string {
	shown := make([]string, 0, maxProblemsShown+1)
	for i, p := range e.Problems {
		if i == maxProblemsShown {
			shown = append(shown, fmt.Sprintf("and %d more problems", len(e.Problems)-i))
			break
		}
		shown = append(shown, cut(p))
	}
	msg := "bundle " + e.Path + " cannot be used: " + strings.Join(shown, "; ")
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// BadInput marks the error as the user's input (exit code 2).
func (e *Error) BadInput() bool { return true }
