package selfinstall_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/selfinstall"
)

// binary writes a stand-in for the running executable: its bytes are all
// the step looks at.
func binary(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "homelab")
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func machine(t *testing.T) *host.Local {
	return &host.Local{Root: t.TempDir(), BackupDir: layout.BackupDir}
}

func check(t *testing.T, s plan.Step) plan.Status {
	t.Helper()
	st, err := s.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func apply(t *testing.T, s plan.Step) {
	t.Helper()
	if _, err := (plan.Runner{}).Run(context.Background(), plan.Plan{Name: "t", Steps: []plan.Step{s}}); err != nil {
		t.Fatal(err)
	}
}

func installed(t *testing.T, h *host.Local) (string, os.FileMode) {
	t.Helper()
	p := filepath.Join(h.Root, layout.Binary)
	info, err := os.Stat(p)
	if err != nil {
		t.Fatalf("nothing installed at %s: %v", layout.Binary, err)
	}
	b, _ := os.ReadFile(p)
	return string(b), info.Mode().Perm()
}

func TestInstallsThenNothingToDoThenUpgrades(t *testing.T) {
	h := machine(t)
	self := selfinstall.Self{Executable: binary(t, "v1 bytes"), Version: "v0.3.0"}
	step := selfinstall.Step(h, self)
	if st := check(t, step); !st.Pending || !strings.Contains(st.Summary, "install homelab v0.3.0 to /usr/local/bin/homelab") {
		t.Fatalf("fresh machine: %+v", st)
	}
	apply(t, step)
	if data, mode := installed(t, h); data != "v1 bytes" || mode != 0o755 {
		t.Fatalf("installed %q mode %o", data, mode)
	}
	if st := check(t, step); st.Pending {
		t.Fatalf("identical binary is pending: %+v", st)
	}
	// A newer homelab replaces it, keeping a backup of the old one.
	newer := selfinstall.Step(h, selfinstall.Self{Executable: binary(t, "v2 bytes"), Version: "v0.4.0"})
	if st := check(t, newer); !st.Pending || !strings.Contains(st.Summary, "replace") {
		t.Fatalf("different binary: %+v", st)
	}
	apply(t, newer)
	if data, _ := installed(t, h); data != "v2 bytes" {
		t.Fatalf("not upgraded: %q", data)
	}
	backups, _ := filepath.Glob(filepath.Join(h.Root, layout.BackupDir, layout.Binary) + ".*")
	if len(backups) != 1 {
		t.Errorf("backups of the replaced binary: %v", backups)
	}
	// An older release run later keeps the newer one the units use.
	older := selfinstall.Step(h, self)
	if st := check(t, older); st.Pending || !strings.Contains(st.Summary, "kept homelab v0.4.0") {
		t.Fatalf("older binary would downgrade: %+v", st)
	}
	// An unstamped (dev) build replaces it: running it is the user's choice.
	dev := selfinstall.Step(h, selfinstall.Self{Executable: binary(t, "dev bytes"), Version: "dev"})
	if st := check(t, dev); !st.Pending {
		t.Fatalf("dev build: %+v", st)
	}
}

func TestNotExecutableIsRepaired(t *testing.T) {
	h := machine(t)
	self := selfinstall.Self{Executable: binary(t, "bytes"), Version: "dev"}
	if _, err := h.WriteFile(layout.Binary, []byte("bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	step := selfinstall.Step(h, self)
	if st := check(t, step); !st.Pending {
		t.Fatalf("0644 binary: %+v", st)
	}
	apply(t, step)
	if _, mode := installed(t, h); mode != 0o755 {
		t.Errorf("mode %o", mode)
	}
}

func TestPackagedBinaryRunsInPlace(t *testing.T) {
	for exe, want := range map[string]string{
		"/usr/bin/homelab":           "/usr/bin/homelab",
		"/usr/local/bin/homelab":     "/usr/local/bin/homelab",
		"/tmp/go-build1/exe/homelab": layout.Binary,
		"/home/me/bin/homelab":       layout.Binary,
	} {
		if got := (selfinstall.Self{Executable: exe, OnRealRoot: true}).Target(); got != want {
			t.Errorf("running %s: units run %s, want %s", exe, got, want)
		}
	}
	// Under --root the running binary is not on the machine being set up.
	if got := (selfinstall.Self{Executable: "/usr/bin/homelab"}).Target(); got != layout.Binary {
		t.Errorf("under --root: %s", got)
	}
	st := check(t, selfinstall.Step(machine(t), selfinstall.Self{Executable: "/usr/bin/homelab", OnRealRoot: true}))
	if st.Pending || !strings.Contains(st.Summary, "where it is: /usr/bin/homelab") {
		t.Errorf("packaged binary: %+v", st)
	}
}

func TestUnreadableExecutableIsAnError(t *testing.T) {
	step := selfinstall.Step(machine(t), selfinstall.Self{Executable: filepath.Join(t.TempDir(), "gone")})
	if _, err := step.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "read the running homelab binary") {
		t.Fatalf("err = %v", err)
	}
}
