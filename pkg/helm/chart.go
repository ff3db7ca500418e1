package helm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
)

// Source says where a chart comes from: exactly one of a repository URL
// (http, https or oci), a local archive (offline installs), or a chart
// directory embedded in homelab itself.
type Source struct {
	// RepoURL is a chart repository (https://prometheus-community.github.io/helm-charts)
	// or an OCI registry path (oci://ghcr.io/prometheus-community/charts).
	RepoURL string
	// Archive is a local chart .tgz; it wins over RepoURL.
	Archive string
	// Files is a chart directory (Chart.yaml at its top), for homelab's own
	// embedded charts; it wins over Archive and RepoURL.
	Files   fs.FS
	Name    string
	Version string
}

func (s Source) String() string {
	if s.Files != nil {
		return fmt.Sprintf("%s %s (built into homelab)", s.Name, s.Version)
	}
	if s.Archive != "" {
		return s.Archive
	}
	return fmt.Sprintf("%s/%s %s", strings.TrimSuffix(s.RepoURL, "/"), s.Name, s.Version)
}

func (s Source) isOCI() bool { return registry.IsOCI(s.RepoURL) }

// loadChart fetches (or reuses from the cache) and loads the chart. HTTP
// repository downloads are checked against the digest in the repository's
// index; a cached archive is re-checked before use.
func (e *Engine) loadChart(src Source) (*chart.Chart, error) {
	switch {
	case src.Files != nil:
		ch, err := loadFS(src.Files)
		if err != nil {
			return nil, fmt.Errorf("load chart %s: %w", src.Name, err)
		}
		return e.checkIdentity(ch, src)
	case src.Archive != "":
		ch, err := loader.Load(src.Archive)
		if err != nil {
			return nil, fmt.Errorf("load chart archive %s: %w", src.Archive, err)
		}
		return e.checkIdentity(ch, src)
	case src.isOCI():
		return e.pullOCI(src)
	case src.RepoURL != "":
		return e.downloadFromRepo(src)
	}
	return nil, fmt.Errorf("chart %s: neither a repository URL nor an archive is set", src.Name)
}

func (e *Engine) checkIdentity(ch *chart.Chart, src Source) (*chart.Chart, error) {
	if src.Name != "" && ch.Metadata.Name != src.Name {
		return nil, fmt.Errorf("chart %s is %s, not %s", src, ch.Metadata.Name, src.Name)
	}
	if src.Version != "" && ch.Metadata.Version != src.Version {
		return nil, fmt.Errorf("chart %s has version %s, want %s", src, ch.Metadata.Version, src.Version)
	}
	return ch, nil
}

func (e *Engine) settings() *cli.EnvSettings {
	s := cli.New()
	// Never the user's own helm setup: everything under homelab's directory.
	s.RepositoryCache = filepath.Join(e.Home, "cache", "repository")
	s.RepositoryConfig = filepath.Join(e.Home, "repositories.yaml")
	s.RegistryConfig = filepath.Join(e.Home, "registry", "config.json")
	return s
}

func (e *Engine) downloadFromRepo(src Source) (*chart.Chart, error) {
	data, err := e.repoArchive(src)
	if err != nil {
		return nil, err
	}
	return e.loadArchiveBytes(data, src)
}

// FetchArchive returns the chart archive src names, fetched as an install
// would (a repository download checked against the index digest, through
// the cache; an OCI pull; or the local archive), and the chart loaded from
// it, checked to be src's name and version. homelab bundle carries it.
func (e *Engine) FetchArchive(src Source) ([]byte, *chart.Chart, error) {
	var data []byte
	var err error
	switch {
	case src.Files != nil:
		return nil, nil, fmt.Errorf("chart %s is built into homelab and has no archive", src.Name)
	case src.Archive != "":
		data, err = os.ReadFile(src.Archive)
		if err != nil {
			return nil, nil, fmt.Errorf("read chart archive %s: %w", src.Archive, err)
		}
	case src.isOCI():
		data, err = e.ociArchive(src)
	case src.RepoURL != "":
		data, err = e.repoArchive(src)
	default:
		err = fmt.Errorf("chart %s: neither a repository URL nor an archive is set", src.Name)
	}
	if err != nil {
		return nil, nil, err
	}
	ch, err := e.loadArchiveBytes(data, src)
	if err != nil {
		return nil, nil, err
	}
	return data, ch, nil
}

// repoArchive downloads (or takes from the cache) a chart archive from an
// HTTP repository, checked against the index's digest.
func (e *Engine) repoArchive(src Source) ([]byte, error) {
	cached := filepath.Join(e.Home, "cache", "charts", src.Name+"-"+src.Version+".tgz")
	getters := getter.All(e.settings())
	r, err := repo.NewChartRepository(&repo.Entry{Name: "homelab-" + shortHash(src.RepoURL), URL: src.RepoURL}, getters)
	if err != nil {
		return nil, fmt.Errorf("chart repository %s: %w", src.RepoURL, err)
	}
	r.CachePath = filepath.Join(e.Home, "cache", "repository")
	indexPath, err := r.DownloadIndexFile()
	if err != nil {
		return nil, fmt.Errorf("chart repository %s cannot be reached: %w (offline? give the chart archive instead)", src.RepoURL, err)
	}
	index, err := repo.LoadIndexFile(indexPath)
	if err != nil {
		return nil, fmt.Errorf("chart repository %s: bad index: %w", src.RepoURL, err)
	}
	cv, err := index.Get(src.Name, src.Version)
	if err != nil {
		return nil, fmt.Errorf("chart %s version %s is not in %s", src.Name, src.Version, src.RepoURL)
	}
	if len(cv.URLs) == 0 {
		return nil, fmt.Errorf("chart %s %s has no download URL in %s", src.Name, src.Version, src.RepoURL)
	}
	if data, err := os.ReadFile(cached); err == nil && digestOK(data, cv.Digest) {
		return data, nil
	}
	chartURL, err := repo.ResolveReferenceURL(src.RepoURL, cv.URLs[0])
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(chartURL)
	if err != nil {
		return nil, err
	}
	g, err := getters.ByScheme(u.Scheme)
	if err != nil {
		return nil, err
	}
	buf, err := g.Get(chartURL, getter.WithURL(src.RepoURL))
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", chartURL, err)
	}
	data := buf.Bytes()
	if !digestOK(data, cv.Digest) {
		return nil, fmt.Errorf("chart %s from %s: sha256 %s does not match the repository index's %s; refusing it",
			src.Name, chartURL, sha256Hex(data), cv.Digest)
	}
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(cached, data, 0o644); err != nil {
		return nil, err
	}
	return data, nil
}

// digestOK accepts data whose sha256 is want. An index without a digest
// cannot be checked; such charts are accepted (the index itself came over TLS).
func digestOK(data []byte, want string) bool {
	return want == "" || strings.EqualFold(strings.TrimPrefix(want, "sha256:"), sha256Hex(data))
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func shortHash(s string) string { return sha256Hex([]byte(s))[:12] }

func (e *Engine) loadArchiveBytes(data []byte, src Source) (*chart.Chart, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", src, err)
	}
	return e.checkIdentity(ch, src)
}

func (e *Engine) pullOCI(src Source) (*chart.Chart, error) {
	data, err := e.ociArchive(src)
	if err != nil {
		return nil, err
	}
	return e.loadArchiveBytes(data, src)
}

func (e *Engine) ociArchive(src Source) ([]byte, error) {
	opts := []registry.ClientOption{
		registry.ClientOptWriter(io.Discard),
		registry.ClientOptCredentialsFile(filepath.Join(e.Home, "registry", "config.json")),
	}
	u, err := url.Parse(src.RepoURL)
	if err != nil {
		return nil, err
	}
	// Plain HTTP only to a registry on this machine (a local mirror or a test).
	if host, _, err := net.SplitHostPort(u.Host); err == nil && isLoopback(host) {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	client, err := registry.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	ref := strings.TrimPrefix(strings.TrimSuffix(src.RepoURL, "/"), "oci://") + "/" + src.Name + ":" + src.Version
	res, err := client.Pull(ref, registry.PullOptWithChart(true))
	if err != nil {
		return nil, fmt.Errorf("pull chart %s: %w", ref, err)
	}
	return res.Chart.Data, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loadFS loads a chart directory from fsys, as loader.LoadDir does from disk.
func loadFS(fsys fs.FS) (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: p, Data: data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return loader.LoadFiles(files)
}
