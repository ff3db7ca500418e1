// Package bundletest serves, on 127.0.0.1, stand-ins for everything
// `homelab bundle` gathers from the internet, so tests can make real
// bundles with no network:
//
//   - a k3s release server (GitHub's release layout) with a stand-in k3s
//     binary and airgap tarball per architecture and their sha256sum files;
//   - a chart repository serving the real upstream charts committed in
//     e2e/charts;
//   - go-containerregistry's in-process registry holding, under every image
//     the charts reference with homelab's values, a small random image for
//     linux/amd64 and linux/arm64 (a multi-platform index).
//
// The registry is reached through bundle.Options.Mirrors: every registry
// host the charts name (quay.io, docker.io, ghcr.io, registry.k8s.io) maps
// to the test registry, which serves the same repository paths. Images keep
// their original names in the bundle, as with a real pull-through mirror.
package bundletest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/homelab-dev/homelab/pkg/bundle"
	"github.com/homelab-dev/homelab/pkg/config"
)

// K3sVersion is the k3s release the servers carry (the default configuration's).
const K3sVersion = "v1.37.2+k3s1"

// Sources are the running stand-ins.
type Sources struct {
	// K3sURL is the release base URL (bundle.Options.K3sBaseURL).
	K3sURL string
	// ChartRepo is the chart repository URL (monitoring.chartRepo).
	ChartRepo string
	// Registry is the in-process registry's host:port.
	Registry string
	// Mirrors maps every registry the charts use to Registry.
	Mirrors map[string]string
	// Refs are the images served, as the charts name them.
	Refs []string
	// Images are the platform images served per arch and reference.
	Images map[string]map[string]v1.Image
	// K3sBinary and Airgap are the release assets per arch.
	K3sBinary, Airgap map[string][]byte
	// Requests counts the requests the registry answered.
	Requests func() int

	servers []*httptest.Server
}

// Close stops every server now (they also stop when the test ends), to show
// that what follows needs no network.
func (s *Sources) Close() {
	for _, srv := range s.servers {
		srv.Close()
	}
}

// ChartsDir is the directory of the committed upstream charts.
func ChartsDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "e2e", "charts")
}

// Config is the default configuration with the charts from s's repository.
func (s *Sources) Config(t testing.TB) *config.Config {
	t.Helper()
	l, err := config.Load(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Config.Monitoring.ChartRepo = s.ChartRepo
	return l.Config
}

// Options are bundle options reaching only the stand-ins.
func (s *Sources) Options(cfg *config.Config, arch string) bundle.Options {
	return bundle.Options{Config: cfg, Arch: arch, K3sBaseURL: s.K3sURL, Mirrors: s.Mirrors, Version: "test"}
}

// Serve starts the stand-ins; they stop when the test ends.
func Serve(t testing.TB) *Sources {
	t.Helper()
	s := &Sources{Images: map[string]map[string]v1.Image{}, K3sBinary: map[string][]byte{}, Airgap: map[string][]byte{}}

	// The release server.
	sums := map[string]string{}
	files := map[string][]byte{}
	for _, a := range []struct{ arch, binary string }{{"amd64", "k3s"}, {"arm64", "k3s-arm64"}} {
		bin := []byte("#!/bin/sh\necho 'k3s version " + K3sVersion + " (0123abcd)' # " + a.arch + "\n")
		air := []byte("stand-in airgap images for " + a.arch + "\n")
		s.K3sBinary[a.arch], s.Airgap[a.arch] = bin, air
		airName := "k3s-airgap-images-" + a.arch + ".tar.zst"
		files[a.binary], files[airName] = bin, air
		sums[a.arch] = fmt.Sprintf("%s  %s\n%s  %s\n", hexSum(bin), a.binary, hexSum(air), airName)
		files["sha256sum-"+a.arch+".txt"] = []byte(sums[a.arch])
	}
	rel := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dir, asset := filepath.Split(r.URL.Path)
		if dir != "/"+K3sVersion+"/" {
			http.NotFound(w, r)
			return
		}
		data, ok := files[asset]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(rel.Close)
	s.servers = append(s.servers, rel)
	s.K3sURL = rel.URL

	charts := httptest.NewServer(http.FileServer(http.Dir(ChartsDir())))
	t.Cleanup(charts.Close)
	s.servers = append(s.servers, charts)
	s.ChartRepo = charts.URL

	// The registry, with every image the real charts reference.
	var n atomic.Int64
	handler := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(reg.Close)
	s.servers = append(s.servers, reg)
	s.Requests = func() int { return int(n.Load()) }
	s.Registry = strings.TrimPrefix(reg.URL, "http://")
	s.Mirrors = map[string]string{}
	for _, h := range []string{"quay.io", "docker.io", "ghcr.io", "registry.k8s.io"} {
		s.Mirrors[h] = s.Registry
	}
	refs, err := chartRefs(s.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Refs = refs
	for _, ref := range refs {
		s.Push(t, ref)
	}
	return s
}

// Push serves a new random multi-platform image (linux/amd64, linux/arm64)
// under ref.
func (s *Sources) Push(t testing.TB, ref string) {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	at, err := name.NewTag(s.Registry+"/"+tag.Context().RepositoryStr()+":"+tag.TagStr(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx := v1.ImageIndex(empty.Index)
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(512, 2)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		img, err = mutate.ConfigFile(img, cf)
		if err != nil {
			t.Fatal(err)
		}
		if s.Images[arch] == nil {
			s.Images[arch] = map[string]v1.Image{}
		}
		s.Images[arch][ref] = img
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	if err := remote.WriteIndex(at, idx); err != nil {
		t.Fatal(err)
	}
}

// PushSingle serves a single-platform image for arch only under ref.
func (s *Sources) PushSingle(t testing.TB, ref, arch string) {
	t.Helper()
	tag, _ := name.NewTag(ref)
	at, err := name.NewTag(s.Registry+"/"+tag.Context().RepositoryStr()+":"+tag.TagStr(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(at, img); err != nil {
		t.Fatal(err)
	}
}

// Delete removes ref from the registry.
func (s *Sources) Delete(t testing.TB, ref string) {
	t.Helper()
	tag, _ := name.NewTag(ref)
	at, err := name.NewTag(s.Registry+"/"+tag.Context().RepositoryStr()+":"+tag.TagStr(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(at); err != nil {
		t.Fatal(err)
	}
}

// Make writes a bundle for arch from fresh stand-ins and returns its path.
func Make(t testing.TB, arch string) (string, *Sources) {
	t.Helper()
	s := Serve(t)
	file := filepath.Join(t.TempDir(), "homelab-bundle-"+arch+".tar")
	if _, err := bundle.Write(context.Background(), file, s.Options(s.Config(t), arch)); err != nil {
		t.Fatal(err)
	}
	return file, s
}

// chartRefs renders the upstream charts once per test binary: the image
// list does not depend on the chart repository's URL.
var (
	refsOnce sync.Once
	refsList []string
	refsErr  error
)

func chartRefs(cfg *config.Config) ([]string, error) {
	refsOnce.Do(func() {
		stack, err := loader.Load(filepath.Join(ChartsDir(), "kube-prometheus-stack-88.5.3.tgz"))
		if err != nil {
			refsErr = err
			return
		}
		bb, err := loader.Load(filepath.Join(ChartsDir(), "prometheus-blackbox-exporter-11.17.2.tgz"))
		if err != nil {
			refsErr = err
			return
		}
		refsList, refsErr = bundle.ConfigImages(context.Background(), cfg, bundle.Charts{Stack: stack, Blackbox: bb})
	})
	return refsList, refsErr
}

func hexSum(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
