package hosttest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// recordingT captures the fake's failures instead of failing this test, and
// runs cleanups when the test says so.
type recordingT struct {
	testing.TB
	errors   []string
	cleanups []func()
}

func (r *recordingT) Helper() {}
func (r *recordingT) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recordingT) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recordingT) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func newRecorded(t *testing.T) (*Host, *recordingT) {
	rt := &recordingT{TB: t}
	return New(rt), rt
}

var ctx = context.Background()

func run(h *Host, name string, args ...string) (string, error) {
	out, err := h.Run(ctx, host.Cmd{Name: name, Args: args})
	return string(out), err
}

func TestExpectedCommandsAnswer(t *testing.T) {
	h := New(t)
	h.Expect("systemctl", "daemon-reload").Returns("", nil)
	h.Expect("systemctl", "is-active", "k3s").Returns("inactive\n", Exit(3))
	if out, err := run(h, "systemctl", "daemon-reload"); err != nil || out != "" {
		t.Fatalf("daemon-reload: %q %v", out, err)
	}
	out, err := run(h, "systemctl", "is-active", "k3s")
	var cmdErr *host.CmdError
	var exit *ExitError
	if out != "inactive\n" || !errors.As(err, &cmdErr) || !errors.As(err, &exit) || exit.Code != 3 {
		t.Fatalf("is-active: %q %v, want the output and a *host.CmdError with exit 3", out, err)
	}
	if !strings.Contains(err.Error(), "inactive") || !strings.Contains(err.Error(), "systemctl is-active k3s") {
		t.Errorf("error %q should name the command and carry its output, as host.Local's does", err)
	}
	if got := strings.Join(h.CommandLines(), "; "); got != "systemctl daemon-reload; systemctl is-active k3s" {
		t.Errorf("recorded %s", got)
	}
}

func TestUnexpectedCommandFailsLoudly(t *testing.T) {
	h, rt := newRecorded(t)
	h.Expect("systemctl", "daemon-reload")
	_, err := h.Run(ctx, host.Cmd{Name: "apt-get", Args: []string{"install", "-y", "nginx light"}, Env: []string{"DEBIAN_FRONTEND=noninteractive"}})
	if !errors.Is(err, ErrUnexpected) {
		t.Fatalf("err %v, want ErrUnexpected", err)
	}
	const line = "DEBIAN_FRONTEND=noninteractive apt-get install -y 'nginx light'"
	if len(rt.errors) != 1 || !strings.Contains(rt.errors[0], line) || !strings.Contains(rt.errors[0], "systemctl daemon-reload") {
		t.Fatalf("failures %q, want one naming %q and what was expected instead", rt.errors, line)
	}
	if !strings.Contains(err.Error(), line) {
		t.Errorf("error %q should carry the command line", err)
	}
}

func TestUnmetExpectationsAreReportedAtCleanup(t *testing.T) {
	h, rt := newRecorded(t)
	h.Expect("systemctl", "enable", "--now", "k3s")
	h.Expect("systemctl", "daemon-reload").Times(2)
	h.Expect("k3s", "--version").AnyTimes()
	h.Expect("nginx", "-t").Maybe()
	if _, err := run(h, "systemctl", "daemon-reload"); err != nil {
		t.Fatal(err)
	}
	rt.end()
	want := []string{
		"hosttest: expected command not run: systemctl enable --now k3s (ran 0 of 1 times)",
		"hosttest: expected command not run: systemctl daemon-reload (ran 1 of 2 times)",
	}
	if strings.Join(rt.errors, "\n") != strings.Join(want, "\n") {
		t.Fatalf("failures:\n%s\nwant:\n%s", strings.Join(rt.errors, "\n"), strings.Join(want, "\n"))
	}
}

func TestCallCounts(t *testing.T) {
	h, rt := newRecorded(t)
	h.Expect("true")
	h.Expect("k3s", "--version").AnyTimes().Returns("k3s version v1\n", nil)
	for range 3 {
		if out, err := run(h, "k3s", "--version"); err != nil || out != "k3s version v1\n" {
			t.Fatalf("%q %v", out, err)
		}
	}
	if _, err := run(h, "true"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(h, "true"); !errors.Is(err, ErrUnexpected) {
		t.Errorf("second call of a once-expected command: %v, want unexpected", err)
	}
	rt.end()
	if len(rt.errors) != 1 {
		t.Errorf("failures %q, want exactly the extra call", rt.errors)
	}
}

func TestUnorderedAcceptsAnyOrder(t *testing.T) {
	h := New(t)
	h.Expect("a")
	h.Expect("b")
	for _, name := range []string{"b", "a"} {
		if _, err := run(h, name); err != nil {
			t.Fatal(err)
		}
	}
}

func TestInOrder(t *testing.T) {
	h, rt := newRecorded(t)
	h.InOrder()
	h.Expect("systemctl", "is-active", "k3s").Returns("inactive\n", Exit(3))
	h.Expect("systemctl", "daemon-reload")
	h.Expect("systemctl", "enable", "--now", "k3s")
	h.Expect("systemctl", "is-active", "k3s").Returns("active\n", nil)

	if _, err := run(h, "systemctl", "daemon-reload"); !errors.Is(err, ErrUnexpected) {
		t.Fatalf("out-of-order command: %v, want unexpected", err)
	}
	if len(rt.errors) != 1 || !strings.Contains(rt.errors[0], "in order: systemctl is-active k3s") {
		t.Fatalf("failures %q, want the command that was due", rt.errors)
	}
	rt.errors = nil
	// The same command line answers differently at each point of the sequence.
	if out, _ := run(h, "systemctl", "is-active", "k3s"); out != "inactive\n" {
		t.Fatalf("first is-active: %q", out)
	}
	for _, args := range [][]string{{"daemon-reload"}, {"enable", "--now", "k3s"}} {
		if _, err := run(h, "systemctl", args...); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := run(h, "systemctl", "is-active", "k3s"); out != "active\n" || err != nil {
		t.Fatalf("second is-active: %q %v", out, err)
	}
	rt.end()
	if len(rt.errors) != 0 {
		t.Fatalf("failures %q", rt.errors)
	}
}

func TestInOrderPassesOverSatisfiedOptionalCalls(t *testing.T) {
	h := New(t).InOrder()
	h.Expect("a").AnyTimes()
	h.Expect("b")
	h.Expect("c").Maybe()
	h.Expect("d")
	for _, name := range []string{"a", "a", "b", "d"} {
		if _, err := run(h, name); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMatcherAndDo(t *testing.T) {
	h := New(t)
	h.ExpectFunc("kubectl apply -f -", func(c host.Cmd) bool {
		return c.Name == "kubectl" && len(c.Args) > 0 && c.Args[0] == "apply"
	}).Do(func(c host.Cmd) ([]byte, error) {
		return []byte(fmt.Sprintf("applied %d bytes\n", len(c.Stdin))), nil
	})
	out, err := h.Run(ctx, host.Cmd{Name: "kubectl", Args: []string{"apply", "-f", "-"}, Stdin: []byte("kind: X")})
	if err != nil || string(out) != "applied 7 bytes\n" {
		t.Fatalf("%q %v", out, err)
	}
	if got := h.CommandLines()[0]; got != "kubectl apply -f - <(7 bytes)" {
		t.Errorf("command line %q", got)
	}
}

func TestCancelledContext(t *testing.T) {
	h := New(t)
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := h.Run(c, host.Cmd{Name: "anything"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestResetStartsAPhase(t *testing.T) {
	h, rt := newRecorded(t)
	h.Expect("a")
	if _, err := run(h, "a"); err != nil {
		t.Fatal(err)
	}
	h.Reset()
	if len(h.Calls()) != 0 || len(rt.errors) != 0 {
		t.Fatalf("after reset: calls %v failures %q", h.Calls(), rt.errors)
	}
	h.Expect("b")
	h.Reset()
	if len(rt.errors) != 1 || !strings.Contains(rt.errors[0], "expected command not run: b") {
		t.Fatalf("failures %q", rt.errors)
	}
}

func TestFilesAreRealAndChangesRecorded(t *testing.T) {
	h := New(t)
	var _ host.Host = h
	const p = "/etc/systemd/system/k3s.service"
	if res, err := h.WriteFile(p, []byte("one\n"), 0o644); err != nil || !res.Changed {
		t.Fatalf("%+v %v", res, err)
	}
	if res, err := h.WriteFile(p, []byte("one\n"), 0o644); err != nil || res.Changed {
		t.Fatalf("same again: %+v %v", res, err)
	}
	res, err := h.WriteFile(p, []byte("two\n"), 0o600)
	if err != nil || !strings.HasPrefix(res.Backup, BackupDir+p+".") {
		t.Fatalf("overwrite: %+v %v, want a backup under %s", res, err, BackupDir)
	}
	info, err := os.Stat(h.Path(p))
	if err != nil || info.Mode().Perm() != 0o600 || !strings.HasPrefix(h.Path(p), h.Root()) {
		t.Fatalf("local file %s: %v %v", h.Path(p), info, err)
	}
	if data, _ := h.ReadFile(p); string(data) != "two\n" {
		t.Errorf("read %q", data)
	}
	if _, err := h.Symlink("../a", "/etc/b"); err != nil {
		t.Fatal(err)
	}
	if target, _ := h.Readlink("/etc/b"); target != "../a" {
		t.Errorf("link target %q", target)
	}
	if err := h.Remove("/etc/b"); err != nil {
		t.Fatal(err)
	}
	if err := h.Remove("/etc/never"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Lstat("/etc/b"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("removed link: %v", err)
	}
	want := []string{p, p, "/etc/b", "/etc/b"}
	if got := h.Changes(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("changes %v, want %v", got, want)
	}
}

func TestCommandLineQuoting(t *testing.T) {
	for cmd, want := range map[*host.Cmd]string{
		{Name: "k3s", Args: []string{"--version"}}:                     "k3s --version",
		{Name: "sh", Args: []string{"-c", "echo 'hi' $X"}}:             `sh -c 'echo '\''hi'\'' $X'`,
		{Name: "x", Args: []string{""}}:                                "x ''",
		{Name: "curl", Args: []string{"https://h/v1.37.2%2Bk3s1/k3s"}}: "curl https://h/v1.37.2%2Bk3s1/k3s",
	} {
		if got := CommandLine(*cmd); got != want {
			t.Errorf("CommandLine(%v) = %s, want %s", *cmd, got, want)
		}
	}
	_ = testutil.InCI // every test package imports testutil (the -update flag)
}

func TestDoContextGetsTheCallersContext(t *testing.T) {
	h := New(t)
	type key struct{}
	h.Expect("nginx", "-t").DoContext(func(ctx context.Context, _ host.Cmd) ([]byte, error) {
		return []byte(fmt.Sprint(ctx.Value(key{}))), ctx.Err()
	})
	out, err := h.Run(context.WithValue(ctx, key{}, "the caller's"), host.Cmd{Name: "nginx", Args: []string{"-t"}})
	if err != nil || string(out) != "the caller's" {
		t.Fatalf("%q %v, want the answer to see the caller's context", out, err)
	}
}

func TestResolveStaysUnderRoot(t *testing.T) {
	h := New(t)
	if _, err := h.Symlink("/", "/proc/self/root"); err != nil {
		t.Fatal(err)
	}
	got, err := h.Resolve("/proc/self/root/etc")
	if err != nil || got != h.Path("/etc") {
		t.Fatalf("Resolve through a link to /: %q %v, want %s (under the fake's root)", got, err, h.Path("/etc"))
	}
}
