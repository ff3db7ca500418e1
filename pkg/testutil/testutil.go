// Package testutil holds helpers shared by homelab's tests: golden files and
// finding the real programs (nginx, systemd-analyze, ...) tests run.
//
// Every test package imports it, because it defines the -update flag that
// `go test ./... -update` passes to all of them.
package testutil

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aymanbagabas/go-udiff"
)

var update = flag.Bool("update", false, "rewrite golden files with the current output")

// Golden compares got with testdata golden file name (relative to the
// repository's testdata/golden directory), or rewrites it with -update.
func Golden(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join(RepoRoot(t), "testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file %s: %v (run go test ./... -update to create it)", name, err)
	}
	if string(want) != string(got) {
		t.Errorf("output differs from golden file %s (run go test ./... -update if the change is intended):\n%s",
			name, udiff.Unified("want", "got", string(want), string(got)))
	}
}

// RepoRoot is the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// InCI reports whether the suite runs in CI, where every component must be
// present: a missing one fails the test instead of skipping it.
func InCI() bool { return os.Getenv("CI") != "" }

// NeedProgram returns the path of a real program the test runs. Missing, it
// fails the test in CI and skips it elsewhere (a developer's fast subset).
func NeedProgram(t testing.TB, name string, fallbacks ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range fallbacks {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	Missing(t, "program %s is not installed (bash .ci/run installs it)", name)
	return ""
}

// Missing fails (in CI) or skips (elsewhere) a test whose component is absent.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("required test component missing: "+format, args...)
	}
	t.Skipf("skipping: "+format, args...)
}

// TestEnv returns a variable exported by the test environment
// (`.ci/testenv/testenv up`, then `eval "$(.ci/testenv/testenv env)"`; make
// test does both). Unset, the test fails in CI and is skipped elsewhere.
func TestEnv(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(t, "%s is not set: start the test environment with make testenv", name)
	}
	return v
}
