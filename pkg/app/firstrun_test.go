package app

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/homelab-dev/homelab/pkg/host/hosttest"
	"github.com/homelab-dev/homelab/pkg/layout"
)

// A real init on the defaults' placeholder domain would serve a name that is
// not the user's: it stops before any step, exit 2, naming the key.
func TestInitRealRunRefusesThePlaceholderDomain(t *testing.T) {
	h := fakeHost(t) // any command it is not told about fails the test
	before := listTree(t, h.Root())
	code, _, stderr := runOn(t, h, "init", "--root", h.Root())
	if code != 2 {
		t.Fatalf("exit %d, want 2: %s", code, stderr)
	}
	for _, want := range []string{"domain: homelab.example.com is the placeholder", "--domain blog.example.com", "Nothing was changed"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("error lacks %q: %s", want, stderr)
		}
	}
	if after := listTree(t, h.Root()); len(after) != len(before) || len(h.Calls()) != 0 {
		t.Errorf("the refused run touched the machine: files %v -> %v, commands %v", before, after, h.CommandLines())
	}
	// A preview may use the placeholder.
	if code, _, stderr := runOn(t, h, "init", "--dry-run", "--root", h.Root()); code != 0 {
		t.Errorf("dry run on the placeholder: exit %d: %s", code, stderr)
	}
}

// The documented preview into an empty directory reads what it can and
// says what it could not check, instead of stopping at preflight.
func TestInitDryRunIntoAnEmptyRoot(t *testing.T) {
	root := t.TempDir()
	code, out, stderr := run(t, "init", "--dry-run", "--no-tui", "--root", root)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"not checked: the OS (no /etc/os-release)", "free disk (--root is not a running system)",
		"homelab binary: install homelab test to /usr/local/bin/homelab", "kubectl, crictl, ctr: link kubectl, crictl, ctr to /usr/local/bin/k3s",
		"nothing was changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if left := listTree(t, root); len(left) != 0 {
		t.Errorf("a dry run wrote %v", left)
	}
}

// After init (here: render, which writes the same applied configuration),
// every later command without --config works from what was applied, not
// from the defaults, and says so.
func TestLaterCommandsUseTheAppliedConfiguration(t *testing.T) {
	t.Chdir(t.TempDir()) // no ./homelab.yaml
	root := t.TempDir()
	if code, _, stderr := run(t, "render", "--root", root, "--domain", "blog.example.com"); code != 0 {
		t.Fatal(stderr)
	}
	code, _, stderr := run(t, "render", "--root", root)
	if code != 0 {
		t.Fatal(stderr)
	}
	if !strings.Contains(stderr, "Configuration: /etc/homelab/homelab.yaml (applied by the last init)") ||
		!strings.Contains(stderr, "rendered under "+root+": 0 changed") {
		t.Errorf("the second render did not keep the applied configuration:\n%s", stderr)
	}
	site, _ := os.ReadFile(filepath.Join(root, layout.NginxSite))
	if !strings.Contains(string(site), "server_name blog.example.com;") {
		t.Errorf("site lost the applied domain:\n%s", site)
	}
	h := fakeHost(t)
	writeTree(t, h.Root(), map[string]string{layout.EffectiveConfig: mustRead(t, filepath.Join(root, layout.EffectiveConfig))})
	code, out, stderr := runOn(t, h, "init", "--dry-run", "--root", h.Root())
	if code != 0 || !strings.Contains(out, "configuration: /etc/homelab/homelab.yaml (applied by the last init)") ||
		!strings.Contains(out, "root_url: http://blog.example.com/grafana/") {
		t.Errorf("init again did not use the applied configuration (exit %d): %s\n%s", code, stderr, out)
	}
	// Flags still change single keys, and say so.
	code, _, stderr = run(t, "render", "--root", root, "--app-port", "8080")
	if code != 0 || !strings.Contains(stderr, "(applied by the last init) with --app-port") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	// --config wins over the applied file.
	other := filepath.Join(t.TempDir(), "homelab.yaml")
	if err := os.WriteFile(other, []byte("domain: other.example.org\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = run(t, "render", "--root", root, "--config", other)
	if site, _ := os.ReadFile(filepath.Join(root, layout.NginxSite)); code != 0 || !strings.Contains(string(site), "server_name other.example.org;") ||
		!strings.Contains(stderr, "Configuration: "+other) {
		t.Errorf("--config did not win (exit %d): %s", code, stderr)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// As a normal user: a preview works and says a real run needs root; a
// command that needs the applied configuration (mode 0600) says how to read
// it. Runs the real binary under another uid, so it needs root to start.
func TestAsANormalUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the binary as another user")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "homelab")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/homelab").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	h := hosttest.New(t) // only a directory tree here: the binary runs its own Local host
	root := h.Root()
	writeTree(t, root, map[string]string{"/etc/os-release": ubuntu, "/proc/meminfo": meminfo})
	for p := root; p != "/"; p = filepath.Dir(p) {
		_ = os.Chmod(p, 0o755) // let uid 65534 reach the tree (temp dirs are 0700)
	}
	nobody := func(args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = []string{"HOME=" + dir, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "CI=true"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	code, out := nobody("init", "--dry-run", "--root", root)
	if code != 0 || !strings.Contains(out, "not root (a real run needs sudo)") {
		t.Fatalf("preview as a normal user: exit %d\n%s", code, out)
	}
	writeTree(t, root, map[string]string{layout.EffectiveConfig: "domain: blog.example.com\n"})
	if err := os.Chmod(filepath.Join(root, layout.EffectiveConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = nobody("render", "--root", root)
	if code != 2 || !strings.Contains(out, "cannot read the configuration init applied, /etc/homelab/homelab.yaml (mode 0600): run as root (sudo), or pass --config FILE") {
		t.Errorf("unreadable applied configuration: exit %d\n%s", code, out)
	}
}
