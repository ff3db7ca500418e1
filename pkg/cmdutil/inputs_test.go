package cmdutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Every check fails with a *FlagError (exit 2) naming the flag, and keeps a
// long value short.
func TestInputChecksNameTheFlag(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "kc")
	if err := os.WriteFile(garbage, []byte("clusters: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noServer := filepath.Join(dir, "kc2")
	if err := os.WriteFile(noServer, []byte("apiVersion: v1\nkind: Config\ncurrent-context: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	long := "http://" + strings.Repeat("x", 1<<16)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"negative duration", CheckPositive("--timeout", -time.Second, "3m"), "--timeout"},
		{"zero duration", CheckPositive("--timeout", 0, "3m"), "like 3m"},
		{"URL without scheme", CheckHTTPURL("--prometheus-url", "127.0.0.1:9090", "http://127.0.0.1:9090"), "--prometheus-url"},
		{"URL unparsable", CheckHTTPURL("--prometheus-url", "::9090", "http://127.0.0.1:9090"), "http:// or https://"},
		{"URL without host", CheckHTTPURL("--alertmanager-url", "https://", "x"), "--alertmanager-url"},
		{"URL port out of range", CheckHTTPURL("--k3s-base-url", "http://h:0", "x"), "port 0"},
		{"URL with a query", CheckHTTPURL("--k3s-base-url", "http://h/?a=b", "x"), "without ?query"},
		{"URL huge", CheckHTTPURL("--k3s-base-url", long+" ", "x"), "bytes)"},
		{"sha256 short", CheckSHA256("--k3s-sha256", "abc"), "64 hexadecimal"},
		{"sha256 not hex", CheckSHA256("--k3s-sha256", strings.Repeat("g", 64)), "--k3s-sha256"},
		{"file missing", second(CheckInputFile("--archive", filepath.Join(dir, "none"))), "no such file"},
		{"file a directory", second(CheckInputFile("--archive", dir)), "a directory"},
		{"file a FIFO", second(CheckInputFile("--archive", fifo)), "not a regular file"},
		{"file a device", second(CheckInputFile("--archive", "/dev/null")), "not a regular file"},
		{"kubeconfig garbage", CheckKubeconfig("--kubeconfig", garbage), "not a usable kubeconfig"},
		{"kubeconfig without a server", CheckKubeconfig("--kubeconfig", noServer), "not a usable kubeconfig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fe *FlagError
			if !errors.As(tc.err, &fe) || ExitCode(tc.err) != ExitUsage {
				t.Fatalf("error %v (%T), want a *FlagError", tc.err, tc.err)
			}
			if msg := tc.err.Error(); !strings.Contains(msg, tc.want) || len(msg) > 500 {
				t.Errorf("message %q (%d bytes) lacks %q or is not short", msg[:min(len(msg), 200)], len(msg), tc.want)
			}
		})
	}
	for _, ok := range []error{
		CheckPositive("--timeout", time.Second, "1s"), CheckHTTPURL("--x", "", "x"), CheckHTTPURL("--x", "https://[::1]:9093/am", "x"),
		CheckSHA256("--x", "sha256:"+strings.Repeat("A", 64)), CheckSHA256("--x", ""), second(CheckInputFile("--x", garbage)),
	} {
		if ok != nil {
			t.Errorf("a good value is refused: %v", ok)
		}
	}
}

func second(_ int64, err error) error { return err }
