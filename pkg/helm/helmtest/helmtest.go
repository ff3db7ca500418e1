// Package helmtest serves the project's fixture charts (testdata/charts) the
// ways homelab fetches charts: an HTTP chart repository, an OCI registry and
// plain archives.
package helmtest

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	helmregistry "helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"

	"github.com/homelab-dev/homelab/pkg/testutil"
)

// NeverReadyLabel marks fixture pods the kubelet stand-in must leave unready
// (values: fixture.neverReady=true).
const NeverReadyLabel = "homelab.dev/fixture-never-ready"

// ReadySelector selects the pods a kubelet stand-in should mark Ready.
const ReadySelector = "!" + NeverReadyLabel

// Variant is one packaged fixture chart.
type Variant struct {
	Name    string // fixture directory: kube-prometheus-stack, prometheus-blackbox-exporter
	Version string
	// Mutate changes the chart before packaging (a new CRD field, say).
	Mutate func(*chart.Chart)
}

// Charts packages fixture chart variants into a directory.
type Charts struct {
	Dir      string
	archives map[string]string
}

// Package builds the given variants as .tgz archives.
func Package(t testing.TB, variants ...Variant) *Charts {
	t.Helper()
	c := &Charts{Dir: t.TempDir(), archives: map[string]string{}}
	for _, v := range variants {
		ch, err := loader.LoadDir(filepath.Join(testutil.RepoRoot(t), "testdata", "charts", v.Name))
		if err != nil {
			t.Fatal(err)
		}
		if v.Version != "" {
			ch.Metadata.Version = v.Version
		}
		if v.Mutate != nil {
			v.Mutate(ch)
		}
		path, err := chartutil.Save(ch, c.Dir)
		if err != nil {
			t.Fatal(err)
		}
		c.archives[ch.Metadata.Name+"-"+ch.Metadata.Version] = path
	}
	return c
}

// Archive is the path of a packaged chart.
func (c *Charts) Archive(t testing.TB, name, version string) string {
	t.Helper()
	p, ok := c.archives[name+"-"+version]
	if !ok {
		t.Fatalf("no fixture chart %s %s was packaged", name, version)
	}
	return p
}

// ServeRepo serves the packaged charts as an HTTP chart repository on
// loopback and returns its URL.
func (c *Charts) ServeRepo(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(c.Dir)))
	t.Cleanup(srv.Close)
	idx, err := repo.IndexDirectory(c.Dir, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.WriteFile(filepath.Join(c.Dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv.URL
}

// ServeOCI pushes the packaged charts to an in-process OCI registry on
// loopback and returns the oci:// URL of their repository path.
func (c *Charts) ServeOCI(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	client, err := helmregistry.NewClient(helmregistry.ClientOptPlainHTTP(), helmregistry.ClientOptWriter(nopWriter{}))
	if err != nil {
		t.Fatal(err)
	}
	for key, path := range c.archives {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		i := strings.LastIndex(key, "-")
		ref := host + "/charts/" + key[:i] + ":" + key[i+1:]
		if _, err := client.Push(data, ref); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
	return "oci://" + host + "/charts"
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
