package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// File is a file to place in a scratch root.
type File struct {
	Path string
	Data []byte
	Mode os.FileMode
}

// VerifyUnit runs `systemd-analyze verify` on the unit at host path unit,
// in a scratch root holding a copy of the distribution's units and files
// (the unit itself, the binaries its ExecStart names). It never boots
// systemd or touches the real root. It returns systemd-analyze's output,
// which is empty for a clean unit.
func VerifyUnit(t testing.TB, unit string, files ...File) (string, error) {
	t.Helper()
	analyze := NeedProgram(t, "systemd-analyze")
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/lib/systemd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copy the distribution's units: %v %s", err, out)
	}
	for _, f := range files {
		local := filepath.Join(root, f.Path)
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(local, f.Data, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(analyze, "verify", "--man=no", "--root="+root, unit).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
