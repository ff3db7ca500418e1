package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/iostreams"
)

// runToFile runs homelab with stdout on the given file, as a shell
// redirection would, and returns the exit code and stderr.
func runToFile(t *testing.T, stdout string, args ...string) (int, string) {
	t.Helper()
	out, err := os.OpenFile(stdout, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	in, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	errPath := filepath.Join(t.TempDir(), "stderr")
	errOut, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer errOut.Close()
	code := RunWith(context.Background(), args, cmdutil.New(iostreams.Files(in, out, errOut), "test"))
	stderr, err := os.ReadFile(errPath)
	if err != nil {
		t.Fatal(err)
	}
	return code, string(stderr)
}

// TestLostOutputFailsEveryCommand: with stdout on /dev/full (every write
// fails with ENOSPC) a command whose data was lost exits 1 and says so,
// whether or not the command looked at the write's error. The same runs
// with stdout on /dev/null succeed (or report their findings), so the
// failure is the lost output and nothing else.
func TestLostOutputFailsEveryCommand(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatalf("/dev/full: %v (Linux has it)", err)
	}
	emptyRoot := t.TempDir()
	cases := []struct {
		name string
		args []string
		// okCode is the exit code with a working stdout.
		okCode int
	}{
		{"version", []string{"version"}, 0},
		{"render to stdout", []string{"render", "--domain", "blog.example.com"}, 0},
		{"help", []string{"--help"}, 0},
		{"completion", []string{"completion", "bash"}, 0},
		{"init dry run", []string{"init", "--dry-run", "--root", emptyRoot}, 0},
		// Nothing is installed under an empty root: doctor's report has
		// failures, exit 3; losing that report is exit 1.
		{"doctor json", []string{"doctor", "-o", "json", "--root", emptyRoot, "--timeout", "2s",
			"--prometheus-url", "http://127.0.0.1:1", "--alertmanager-url", "http://127.0.0.1:1"}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if code, stderr := runToFile(t, os.DevNull, tc.args...); code != tc.okCode {
				t.Fatalf("to /dev/null: exit %d, want %d:\n%s", code, tc.okCode, stderr)
			}
			code, stderr := runToFile(t, "/dev/full", tc.args...)
			if code != 1 {
				t.Errorf("to /dev/full: exit %d, want 1:\n%s", code, stderr)
			}
			if !strings.Contains(stderr, "no space left on device") {
				t.Errorf("to /dev/full: the error does not say what happened:\n%s", stderr)
			}
			if strings.Count(stderr, "Error:") != 1 {
				t.Errorf("to /dev/full: want exactly one error line:\n%s", stderr)
			}
		})
	}
}

// TestLostOutputKeepsTheCommandsOwnError: a command that failed on its own
// keeps its error and exit code, with the lost output named as well; one
// whose error already is the failed write is not told twice.
func TestLostOutputKeepsTheCommandsOwnError(t *testing.T) {
	lost := &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}
	usage := cmdutil.FlagErrorf("invalid value for --timeout")
	err := outputLost(usage, lost)
	if code := cmdutil.ExitCode(err); code != cmdutil.ExitUsage {
		t.Errorf("bad usage with lost output: exit %d, want %d", code, cmdutil.ExitUsage)
	}
	if msg := err.Error(); !strings.Contains(msg, "--timeout") || !strings.Contains(msg, "no space left") {
		t.Errorf("message %q names not both", msg)
	}
	printed := fmt.Errorf("write the report: %w", lost)
	if got := outputLost(printed, lost); got != printed {
		t.Errorf("the failed write itself: got %q, want it unchanged", got)
	}
	problems := &cmdutil.ExitCodeError{Code: cmdutil.ExitProblems}
	if code := cmdutil.ExitCode(outputLost(problems, lost)); code != cmdutil.ExitError {
		t.Errorf("a report of problems that was lost: exit %d, want %d", code, cmdutil.ExitError)
	}
}
