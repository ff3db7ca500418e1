package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/host/hosttest"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/k3s"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

const ubuntu = "PRETTY_NAME=\"Ubuntu 24.04.3 LTS\"\nID=ubuntu\nID_LIKE=debian\n"

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, data := range files {
		local := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(local, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// listTree returns every path under root, relative, for "nothing written" checks.
func listTree(t *testing.T, root string) []string {
	t.Helper()
	var paths []string
	_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && p != root {
			rel, _ := filepath.Rel(root, p)
			paths = append(paths, rel)
		}
		return nil
	})
	return paths
}

const meminfo = "MemTotal:        3914000 kB\nMemFree:         1000000 kB\n"

// fakeHost is a machine where nothing is installed yet: init's read-only
// checks are answered, any other command fails the test.
func fakeHost(t *testing.T) *hosttest.Host {
	h := hosttest.New(t)
	writeTree(t, h.Root(), map[string]string{"/etc/os-release": ubuntu, "/proc/meminfo": meminfo})
	h.Expect("df", "-Pk", "/").Returns("Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 41152736 9000000 30000000 24% /\n", nil).AnyTimes()
	h.Expect("ss", "-Hltnp").Returns("LISTEN 0 511 0.0.0.0:22 0.0.0.0:* users:((\"sshd\",pid=1,fd=3))\n", nil).AnyTimes()
	cmd := k3s.ShowCommand()
	h.Expect(cmd.Name, cmd.Args...).Returns("ActiveState=inactive\nUnitFileState=\nNeedDaemonReload=no\nExecMainStartTimestamp=\n", nil).AnyTimes()
	h.Expect("systemctl", "is-enabled", "grafana-portforward.service").Returns("disabled\n", hosttest.Exit(1)).AnyTimes()
	h.Expect("systemctl", "is-active", "grafana-portforward.service").Returns("inactive\n", hosttest.Exit(3)).AnyTimes()
	h.Expect("systemctl", "show", "--value", "-p", "StatusText", "grafana-portforward.service").Returns("\n", nil).AnyTimes()
	return h
}

func runOn(t *testing.T, h host.Host, args ...string) (int, string, string) {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	f := cmdutil.New(ios, "test")
	f.Host = func() host.Host { return h }
	code := RunWith(context.Background(), args, f)
	return code, out.String(), errOut.String()
}

func TestInitDryRunOnDefaults(t *testing.T) {
	h := fakeHost(t)
	code, out, stderr := runOn(t, h, "init", "--dry-run", "--root", h.Root())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if changes := h.Changes(); len(changes) != 0 {
		t.Errorf("dry run wrote files: %v", changes)
	}
	for _, want := range []string{"configuration: built-in defaults", "preflight: Ubuntu 24.04.3 LTS, 3.7 GiB RAM, 28.6 GiB free on /",
		"install k3s v1.37.2+k3s1", "--disable traefik", "+      root_url: http://homelab.example.com/grafana/", "nothing was changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	testutil.Golden(t, "init/dry-run-default.txt", []byte(out))
}

func TestInitDryRunShowsDiffAgainstExistingSite(t *testing.T) {
	h := fakeHost(t)
	if code, _, stderr := run(t, "render", "--root", h.Root()); code != 0 {
		t.Fatal(stderr)
	}
	code, out, _ := runOn(t, h, "init", "--dry-run", "--root", h.Root(), "--domain", "blog.example.com")
	if code != 0 {
		t.Fatal(out)
	}
	for _, want := range []string{"-    server_name homelab.example.com;", "+    server_name blog.example.com;"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
}

func TestInitRefusesUnsupportedOS(t *testing.T) {
	h := hosttest.New(t)
	writeTree(t, h.Root(), map[string]string{"/etc/os-release": "PRETTY_NAME=\"Fedora Linux 41\"\nID=fedora\n"})
	code, _, stderr := runOn(t, h, "init", "--dry-run", "--root", h.Root())
	if code != 1 || !strings.Contains(stderr, `unsupported operating system "Fedora Linux 41"`) {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

func TestInitPreflightNamesTheNumbers(t *testing.T) {
	h := hosttest.New(t)
	writeTree(t, h.Root(), map[string]string{"/etc/os-release": ubuntu, "/proc/meminfo": "MemTotal: 1000000 kB\n"})
	h.Expect("df", "-Pk", "/").Returns("Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 8000000 6000000 2000000 75% /\n", nil)
	h.Expect("ss", "-Hltnp").Returns("LISTEN 0 4096 *:80 *:* users:((\"traefik\",pid=7,fd=8))\n", nil)
	code, _, stderr := runOn(t, h, "init", "--dry-run", "--root", h.Root())
	for _, want := range []string{"1.0 GiB of RAM", "at least 1.7 GiB", "1.9 GiB free on /", "at least 8 GiB", "port 80 is held by traefik"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("preflight error lacks %q: %s", want, stderr)
		}
	}
	if code != 1 {
		t.Errorf("exit %d", code)
	}
}

func TestRenderWritesHostPathsAndConverges(t *testing.T) {
	root := t.TempDir()
	code, _, stderr := run(t, "render", "--root", root)
	if code != 0 || !strings.Contains(stderr, "7 changed, 0 up to date") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, p := range []string{"etc/nginx/sites-available/homelab.conf", "etc/systemd/system/grafana-portforward.service",
		"etc/homelab/manifests/app.yaml", "etc/homelab/values/kube-prometheus-stack.yaml",
		"etc/homelab/values/prometheus-blackbox-exporter.yaml", "etc/homelab/homelab.yaml"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	link := filepath.Join(root, "etc/nginx/sites-enabled/homelab.conf")
	if target, err := os.Readlink(link); err != nil || target != "../sites-available/homelab.conf" {
		t.Errorf("sites-enabled link -> %q (%v), want a relative link", target, err)
	}
	if data, err := os.ReadFile(link); err != nil || !strings.Contains(string(data), "server_name homelab.example.com;") {
		t.Errorf("link does not resolve to the site: %v", err)
	}
	code, _, stderr = run(t, "render", "--root", root)
	if code != 0 || !strings.Contains(stderr, "0 changed, 7 up to date") {
		t.Fatalf("second render: exit %d: %s", code, stderr)
	}
	// A hand edit is replaced, and kept as a backup.
	site := filepath.Join(root, "etc/nginx/sites-available/homelab.conf")
	if err := os.WriteFile(site, []byte("# my edit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr = run(t, "render", "--root", root); code != 0 || !strings.Contains(stderr, "1 changed, 6 up to date") {
		t.Fatalf("third render: exit %d: %s", code, stderr)
	}
	backups, _ := filepath.Glob(filepath.Join(root, "var/backups/homelab/etc/nginx/sites-available/homelab.conf.*"))
	if len(backups) != 1 {
		t.Fatalf("backups: %v", backups)
	}
	if data, _ := os.ReadFile(backups[0]); string(data) != "# my edit\n" {
		t.Errorf("backup holds %q", data)
	}
}

func TestRenderToStdout(t *testing.T) {
	code, out, _ := run(t, "render", "--domain", "blog.example.com")
	if code != 0 || !strings.Contains(out, "# ==> /etc/nginx/sites-available/homelab.conf\n") || !strings.Contains(out, "server_name blog.example.com;") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// TestSetReachesAnyKey: --set goes through the decoder homelab.yaml goes
// through, so any key can be set, typed as in the file, later ones winning,
// and the command says which keys the flags set.
func TestSetReachesAnyKey(t *testing.T) {
	root := t.TempDir()
	code, _, stderr := run(t, "render", "--root", root, "--domain", "blog.example.com",
		"--set", "monitoring.grafana.path=/dash", "--set", "app.replicas=3", "--set", "app.replicas=2", "--set", "app.command=[pnpm, start]")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "with --domain, --set monitoring.grafana.path, --set app.replicas, --set app.command") {
		t.Errorf("the configuration line does not name the flags:\n%s", stderr)
	}
	site, err := os.ReadFile(filepath.Join(root, "etc/nginx/sites-available/homelab.conf"))
	if err != nil || !strings.Contains(string(site), "location /dash/") {
		t.Errorf("--set monitoring.grafana.path=/dash did not reach the Nginx site (%v):\n%s", err, site)
	}
	eff, err := os.ReadFile(filepath.Join(root, "etc/homelab/homelab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"replicas: 2", "- pnpm", "- start", "path: /dash"} {
		if !strings.Contains(string(eff), want) {
			t.Errorf("applied configuration lacks %q:\n%s", want, eff)
		}
	}
}

func TestEffectiveConfigRoundTrips(t *testing.T) {
	root := t.TempDir()
	if code, _, stderr := run(t, "render", "--root", root, "--domain", "blog.example.com", "--app-port", "8080"); code != 0 {
		t.Fatal(stderr)
	}
	eff := filepath.Join(root, "etc/homelab/homelab.yaml")
	root2 := t.TempDir()
	if code, _, stderr := run(t, "render", "--root", root2, "--config", eff); code != 0 {
		t.Fatalf("the effective configuration does not load back: %s", stderr)
	}
	a, _ := os.ReadFile(filepath.Join(root, "etc/nginx/sites-available/homelab.conf"))
	b, _ := os.ReadFile(filepath.Join(root2, "etc/nginx/sites-available/homelab.conf"))
	if string(a) != string(b) {
		t.Error("rendering from the effective configuration gives a different site")
	}
}
