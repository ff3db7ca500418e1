package init_test

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/app/apptest"
	"github.com/homelab-dev/homelab/pkg/bundle"
	"github.com/homelab-dev/homelab/pkg/bundle/bundletest"
	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/host/hosttest"
	"github.com/homelab-dev/homelab/pkg/k3s"
)

// bundleBox is a fresh box without network as a dry run sees it: the
// recording host answers the read-only commands the checks run.
func bundleBox(t *testing.T) *hosttest.Host {
	h := hosttest.New(t)
	for p, data := range map[string]string{
		"/etc/os-release": "PRETTY_NAME=\"Ubuntu 24.04.3 LTS\"\nID=ubuntu\nID_LIKE=debian\n",
		"/proc/meminfo":   "MemTotal:        3914000 kB\n",
	} {
		os.MkdirAll(filepath.Dir(h.Path(p)), 0o755)
		os.WriteFile(h.Path(p), []byte(data), 0o644)
	}
	h.Expect("df", "-Pk", "/").Returns("Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 41152736 9000000 30000000 24% /\n", nil).AnyTimes()
	h.Expect("ss", "-Hltnp").Returns("", nil).AnyTimes()
	show := k3s.ShowCommand()
	h.Expect(show.Name, show.Args...).Returns("ActiveState=inactive\nUnitFileState=\nNeedDaemonReload=no\nExecMainStartTimestamp=\n", nil).AnyTimes()
	h.ExpectFunc("systemctl is-enabled/is-active", func(c host.Cmd) bool {
		return c.Name == "systemctl" && (c.Args[0] == "is-enabled" || c.Args[0] == "is-active")
	}).Returns("inactive\n", hosttest.Exit(3)).AnyTimes()
	h.Expect("systemctl", "show", "--value", "-p", "StatusText", "grafana-portforward.service").Returns("\n", nil).AnyTimes()
	return h
}

func runInit(t *testing.T, h *hosttest.Host, args ...string) (int, string, string) {
	t.Helper()
	return apptest.Run(context.Background(), apptest.OnHost(h), append([]string{"init", "--root", h.Root(), "--domain", "blog.example.com"}, args...)...)
}

func TestInitBundleDryRunShowsTheOfflineSteps(t *testing.T) {
	file, src := bundletest.Make(t, runtime.GOARCH)
	src.Close() // nothing below may reach the network
	h := bundleBox(t)
	code, stdout, stderr := runInit(t, h, "--bundle", file, "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	m, err := bundle.Verify(file, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"(offline), verified against the pinned sha256 " + mustFile(t, m, m.K3s.Binary).SHA256[:12],
		"k3s-airgap-images-" + runtime.GOARCH + ".tar.zst to " + k3s.ImagesDir,
		"copy 11 images for linux/" + runtime.GOARCH + " from the bundle to " + k3s.ImagesDir + "/homelab-chart-images-" + runtime.GOARCH + ".tar",
		"kube-prometheus-stack 88.5.3",
		"prometheus-blackbox-exporter 11.17.2",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the plan lacks %q:\n%s", want, stdout)
		}
	}
	// The image step comes after the airgap images and before k3s starts.
	air, imgs, svc := strings.Index(stdout, "] k3s airgap images:"), strings.Index(stdout, "] chart images:"), strings.Index(stdout, "] k3s service:")
	if air < 0 || imgs < air || svc < imgs {
		t.Errorf("step order: airgap %d, chart images %d, k3s service %d\n%s", air, imgs, svc, stdout)
	}
	if !strings.Contains(stderr, "Bundle verified") {
		t.Errorf("stderr: %s", stderr)
	}
	if ch := h.Changes(); len(ch) != 0 {
		t.Errorf("a dry run changed %v", ch)
	}
}

func mustFile(t *testing.T, m *bundle.Manifest, p string) bundle.File {
	f, ok := m.File(p)
	if !ok {
		t.Fatalf("%s not in the manifest", p)
	}
	return f
}

func TestInitBundleRefusesBadInputAndChangesNothing(t *testing.T) {
	file, src := bundletest.Make(t, runtime.GOARCH)
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	otherFile := filepath.Join(t.TempDir(), "other.tar")
	if _, err := bundle.Write(context.Background(), otherFile, src.Options(src.Config(t), other)); err != nil {
		t.Fatal(err)
	}
	src.Close()
	cfgFile := filepath.Join(t.TempDir(), "homelab.yaml")
	os.WriteFile(cfgFile, []byte("apiVersion: homelab/v1alpha1\nmonitoring:\n  chartVersion: 88.0.0\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"with --k3s-binary", []string{"--bundle", file, "--k3s-binary", "/tmp/k3s"}, "--bundle and --k3s-binary cannot be used together"},
		{"with --stack-chart", []string{"--bundle", file, "--stack-chart", "x.tgz"}, "--bundle and --stack-chart cannot be used together"},
		{"with --k3s-sums", []string{"--bundle", file, "--k3s-sums", "s.txt", "--dry-run"}, "--bundle and --k3s-sums cannot be used together"},
		{"tampered", []string{"--bundle", tampered(t, file)}, "has sha256"},
		{"other arch", []string{"--bundle", otherFile, "--dry-run"}, "it is for " + other + ", this machine is " + runtime.GOARCH},
		{"missing", []string{"--bundle", filepath.Join(t.TempDir(), "nope.tar")}, "it does not exist"},
		{"other chart version", []string{"--bundle", file, "--config", cfgFile}, "it holds kube-prometheus-stack 88.5.3, the configuration installs 88.0.0 (monitoring.chartVersion)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hosttest.New(t) // any command at all fails the test
			code, _, stderr := runInit(t, h, tc.args...)
			if code != cmdutil.ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want 2 saying %q:\n%s", code, tc.want, stderr)
			}
			if ch := h.Changes(); len(ch) != 0 || len(h.Calls()) != 0 {
				t.Errorf("changed %v, ran %v", ch, h.CommandLines())
			}
		})
	}
}

// tampered is a copy of the bundle with one byte of the image tarball flipped.
func tampered(t *testing.T, file string) string {
	return bundletest.Tamper(t, file, func(hdr *tar.Header, data []byte) (*tar.Header, []byte) {
		if strings.HasPrefix(hdr.Name, "images/") {
			data[len(data)/2] ^= 0xff
		}
		return hdr, data
	})
}
