package release_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/testutil"
)

// releaseFlags are .goreleaser.yaml's build flags, so every binary is built
// the way a release is: static, stripped, without local paths.
var releaseFlags = []string{"-trimpath", "-ldflags=-s -w"}

// BenchmarkHelpStartup times `--help` of homelab, helm and kubectl, each
// built with the same Go and the same release flags, and reports the
// ratios of their wall times and their sizes: homelab's start-up (package
// initialisation, building the command tree) against two well-known cobra
// CLIs of the same family. It asserts nothing about time: the numbers are
// for `make bench` to print.
//
// helm is built from the module this one requires (in a throwaway module
// cached under ~/.cache/homelab-tools, since helm's command needs modules
// homelab does not); kubectl is the test environment's, built from the
// Kubernetes source with the same flags.
func BenchmarkHelpStartup(b *testing.B) {
	kubectl := testutil.TestEnv(b, "HOMELAB_TEST_KUBECTL")
	repo := testutil.RepoRoot(b)
	dir := b.TempDir()
	homelab := filepath.Join(dir, "homelab")
	goBuild(b, repo, homelab, releaseFlags, "./cmd/homelab")
	unstripped := filepath.Join(dir, "homelab-unstripped")
	goBuild(b, repo, unstripped, []string{"-trimpath"}, "./cmd/homelab")
	helm := buildHelm(b, repo)

	bins := []struct{ name, path string }{{"homelab", homelab}, {"helm", helm}, {"kubectl", kubectl}}
	total := make([]time.Duration, len(bins))
	b.ResetTimer()
	for b.Loop() {
		// Interleaved, so that a busy moment of the machine weighs on all
		// three alike.
		for i, bin := range bins {
			start := time.Now()
			if out, err := exec.Command(bin.path, "--help").CombinedOutput(); err != nil {
				b.Fatalf("%s --help: %v\n%s", bin.name, err, out)
			}
			total[i] += time.Since(start)
		}
	}
	b.StopTimer()
	ms := func(i int) float64 { return float64(total[i].Microseconds()) / 1000 / float64(b.N) }
	for i, bin := range bins {
		b.ReportMetric(ms(i), bin.name+"-ms/op")
	}
	b.ReportMetric(ms(0)/ms(1), "homelab/helm")
	b.ReportMetric(ms(0)/ms(2), "homelab/kubectl")
	for _, bin := range append(bins, struct{ name, path string }{"homelab-unstripped", unstripped}) {
		b.ReportMetric(sizeMiB(b, bin.path), bin.name+"-MiB")
	}
	b.ReportMetric(0, "ns/op") // the loop times three programs; their own metrics say it
}

func goBuild(b *testing.B, dir, out string, flags []string, pkg string, env ...string) {
	b.Helper()
	args := append(append([]string{"build", "-o", out}, flags...), pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
}

// buildHelm returns helm's binary at the version homelab's go.mod requires,
// built once per Go version, helm version and build recipe.
func buildHelm(b *testing.B, repo string) string {
	b.Helper()
	version := goOutput(b, repo, "list", "-m", "-f", "{{.Version}}", "helm.sh/helm/v3")
	gomod := fmt.Sprintf("module homelab.local/bench-helm\n\ngo %s\n\nrequire helm.sh/helm/v3 %s\n",
		strings.TrimPrefix(runtime.Version(), "go"), version)
	recipe := sha256.Sum256([]byte(gomod + strings.Join(releaseFlags, " ")))
	home, err := os.UserHomeDir()
	if err != nil {
		b.Fatal(err)
	}
	cache := filepath.Join(home, ".cache", "homelab-tools",
		fmt.Sprintf("helm-%s-%s-%s", version, runtime.Version(), hex.EncodeToString(recipe[:])[:12]))
	helm := filepath.Join(cache, "helm")
	if _, err := os.Stat(helm); err == nil {
		return helm
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cache, "go.mod"), []byte(gomod), 0o644); err != nil {
		b.Fatal(err)
	}
	// Built next to the final name and renamed, so that an interrupted
	// build never leaves a helm that looks complete.
	goBuild(b, cache, helm+".tmp", releaseFlags, "helm.sh/helm/v3/cmd/helm", "GOFLAGS=-mod=mod")
	if err := os.Rename(helm+".tmp", helm); err != nil {
		b.Fatal(err)
	}
	return helm
}

func goOutput(b *testing.B, dir string, args ...string) string {
	b.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Stderr = dir, &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func sizeMiB(b *testing.B, path string) float64 {
	b.Helper()
	info, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return float64(info.Size()) / (1 << 20)
}
