package bundle_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/homelab-dev/homelab/pkg/bundle"
	"github.com/homelab-dev/homelab/pkg/bundle/bundletest"
	"github.com/homelab-dev/homelab/pkg/cmdutil"
)

func TestWriteThenOpen(t *testing.T) {
	for _, arch := range bundle.Arches {
		t.Run(arch, func(t *testing.T) {
			file, src := bundletest.Make(t, arch)
			b, err := bundle.Open(file, bundle.OpenOptions{Arch: arch, TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			m := b.Manifest
			if m.Arch != arch || m.K3s.Version != bundletest.K3sVersion || m.KubernetesVersion != "v1.37.2" {
				t.Errorf("manifest: arch %s, k3s %s, kubernetes %s", m.Arch, m.K3s.Version, m.KubernetesVersion)
			}
			// k3s's release files, as published.
			for p, want := range map[string][]byte{m.K3s.Binary: src.K3sBinary[arch], m.K3s.AirgapImages: src.Airgap[arch]} {
				if got, err := os.ReadFile(b.Path(p)); err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %q, %v", p, got, err)
				}
			}
			if info, err := os.Stat(b.Path(m.K3s.Binary)); err != nil || info.Mode().Perm()&0o100 == 0 {
				t.Errorf("k3s binary not executable: %v", err)
			}
			// Both charts, byte for byte the repository's.
			for _, c := range m.Charts {
				got, _ := os.ReadFile(b.Path(c.File))
				want, _ := os.ReadFile(filepath.Join(bundletest.ChartsDir(), c.Name+"-"+c.Version+".tgz"))
				if len(want) == 0 || !bytes.Equal(got, want) {
					t.Errorf("chart %s differs from the repository's", c.File)
				}
			}
			// Every image the charts reference, for this arch, under the
			// name the charts use.
			var refs []string
			for _, img := range m.Images {
				refs = append(refs, img.Ref)
				want, _ := src.Images[arch][img.Ref].Digest()
				if img.Digest != want.String() {
					t.Errorf("%s: digest %s, want the %s image's %s", img.Ref, img.Digest, arch, want)
				}
				tag, _ := name.NewTag(img.Ref)
				got, err := tarball.ImageFromPath(b.Path(m.ImagesFile), &tag)
				if err != nil {
					t.Errorf("%s is not in the image tarball: %v", img.Ref, err)
					continue
				}
				gotCfg, _ := got.ConfigName()
				wantCfg, _ := src.Images[arch][img.Ref].ConfigName()
				if gotCfg != wantCfg {
					t.Errorf("%s: config %s in the tarball, want %s", img.Ref, gotCfg, wantCfg)
				}
			}
			if !slices.Equal(refs, src.Refs) {
				t.Errorf("images %q\nwant %q", refs, src.Refs)
			}
			if !slices.Contains(repoTags(t, b.Path(m.ImagesFile)), "docker.io/library/busybox:1.38.0") {
				t.Errorf("the tarball does not name busybox as containerd does: %q", repoTags(t, b.Path(m.ImagesFile)))
			}
		})
	}
}

// repoTags are the names docker-save's manifest.json gives the images.
func repoTags(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("no manifest.json in %s: %v", file, err)
		}
		if hdr.Name == "manifest.json" {
			var m []struct{ RepoTags []string }
			if err := json.NewDecoder(tr).Decode(&m); err != nil {
				t.Fatal(err)
			}
			var tags []string
			for _, e := range m {
				tags = append(tags, e.RepoTags...)
			}
			return tags
		}
	}
}

func TestWriteNamesWhatFailedAndLeavesNothing(t *testing.T) {
	src := bundletest.Serve(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "b.tar")
	// An image missing from the registry.
	src.Delete(t, "docker.io/grafana/grafana:13.2.0")
	_, err := bundle.Write(context.Background(), file, src.Options(src.Config(t), "amd64"))
	if err == nil || !strings.Contains(err.Error(), "docker.io/grafana/grafana:13.2.0") {
		t.Fatalf("err = %v, want it to name the image", err)
	}
	// Only for another platform.
	src.PushSingle(t, "docker.io/grafana/grafana:13.2.0", "arm64")
	_, err = bundle.Write(context.Background(), file, src.Options(src.Config(t), "amd64"))
	if err == nil || !strings.Contains(err.Error(), "linux/arm64 only") {
		t.Fatalf("err = %v, want the platform named", err)
	}
	// A k3s version the release server does not have.
	cfg := src.Config(t)
	cfg.K3s.Version = "v1.36.0+k3s1"
	_, err = bundle.Write(context.Background(), file, src.Options(cfg, "amd64"))
	if err == nil || !strings.Contains(err.Error(), "v1.36.0+k3s1") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err = %v, want the k3s version and the HTTP status", err)
	}
	// A chart version the repository does not have.
	cfg = src.Config(t)
	cfg.Monitoring.ChartVersion = "1.0.0"
	_, err = bundle.Write(context.Background(), file, src.Options(cfg, "amd64"))
	if err == nil || !strings.Contains(err.Error(), "kube-prometheus-stack 1.0.0") {
		t.Fatalf("err = %v, want the chart named", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestVerifyCatchesBadBundles(t *testing.T) {
	file, _ := bundletest.Make(t, "amd64")
	m, err := bundle.Verify(file, "amd64")
	if err != nil {
		t.Fatalf("the bundle as written: %v", err)
	}
	keep := func(hdr *tar.Header, data []byte) (*tar.Header, []byte) { return hdr, data }
	for _, tc := range []struct {
		name, want string
		file       func() string
		arch       string
	}{
		{"tampered chart", "charts/prometheus-blackbox-exporter-11.17.2.tgz has sha256", func() string {
			return bundletest.Tamper(t, file, func(hdr *tar.Header, data []byte) (*tar.Header, []byte) {
				if strings.HasPrefix(hdr.Name, "charts/prometheus-blackbox") {
					data = bytes.Clone(data)
					data[100] ^= 1
				}
				return hdr, data
			})
		}, "amd64"},
		{"tampered binary, other size", "k3s/k3s is 5 bytes, the manifest says", func() string {
			return bundletest.Tamper(t, file, func(hdr *tar.Header, data []byte) (*tar.Header, []byte) {
				if hdr.Name == m.K3s.Binary {
					data = []byte("evil\n")
				}
				return hdr, data
			})
		}, "amd64"},
		{"missing images", "images/homelab-chart-images-amd64.tar is missing from the archive", func() string {
			return bundletest.Tamper(t, file, func(hdr *tar.Header, data []byte) (*tar.Header, []byte) {
				if hdr.Name == m.ImagesFile {
					return nil, nil
				}
				return hdr, data
			})
		}, "amd64"},
		{"extra file", "evil.sh is in the archive but not in its manifest", func() string {
			return bundletest.Tamper(t, file, keep, [2]string{"evil.sh", "#!/bin/sh\n"})
		}, "amd64"},
		{"path outside", "../escape is in the archive but not in its manifest", func() string {
			return bundletest.Tamper(t, file, keep, [2]string{"../escape", "x"})
		}, "amd64"},
		{"wrong arch", "it is for amd64, this machine is arm64", func() string { return file }, "arm64"},
		{"not a bundle", "not a homelab bundle", func() string {
			p := filepath.Join(t.TempDir(), "x.tar")
			os.WriteFile(p, []byte("hello"), 0o644)
			return p
		}, "amd64"},
		{"missing file", "it does not exist", func() string { return filepath.Join(t.TempDir(), "nope.tar") }, "amd64"},
		{"truncated", "damaged or truncated", func() string {
			data, _ := os.ReadFile(file)
			p := filepath.Join(t.TempDir(), "cut.tar")
			os.WriteFile(p, data[:len(data)/2], 0o644)
			return p
		}, "amd64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.file()
			_, err := bundle.Verify(f, tc.arch)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to say %q", err, tc.want)
			}
			if code := cmdutil.ExitCode(err); code != cmdutil.ExitUsage {
				t.Errorf("exit code %d, want %d", code, cmdutil.ExitUsage)
			}
			// Open leaves nothing extracted.
			tmp := t.TempDir()
			if _, err := bundle.Open(f, bundle.OpenOptions{Arch: tc.arch, TempDir: tmp}); err == nil {
				t.Fatal("Open accepted it")
			}
			if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
				t.Errorf("Open left %v", entries)
			}
		})
	}
}
