// Package hosttest owns the repository's one fake host.Host: files live in a
// temporary directory (through a real host.Local, so atomic writes, backups
// and modes behave as on a machine), and commands are answered by a recorder
// that knows which commands the test expects. Other test helpers
// (doctortest's Host, say) build on it rather than fake the host again.
//
//	h := hosttest.New(t)
//	h.Expect("systemctl", "daemon-reload").Returns("", nil)
//	h.Expect("systemctl", "is-active", "k3s").Returns("inactive\n", hosttest.Exit(3))
//
// A command nobody expected fails the test with its full command line and
// returns an error to the code under test. Expected commands that never ran
// are reported when the test ends.
package hosttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/homelab-dev/homelab/pkg/host"
)

// BackupDir is where the fake keeps the previous versions of overwritten
// files, as a host path under Root.
const BackupDir = "/var/backups/homelab"

// Host is the fake. Its zero value is not usable; call New.
type Host struct {
	t     testing.TB
	files *host.Local

	mu      sync.Mutex
	ordered bool
	next    int // in order: expectations before next are done with
	expects []*Call
	calls   []host.Cmd
	changes []string
}

var (
	_ host.Host         = (*Host)(nil)
	_ host.StreamWriter = (*Host)(nil)
)

// New returns a fake host whose file system is an empty temporary directory.
// At the end of the test it reports every expected command that did not run
// as often as expected.
func New(t testing.TB) *Host {
	t.Helper()
	h := &Host{t: t, files: &host.Local{Root: t.TempDir(), BackupDir: BackupDir}}
	t.Cleanup(h.verify)
	return h
}

// InOrder makes commands match their expectations only in the order they were
// declared (an expectation that has had its minimum number of calls may be
// passed over). By default any expectation may match any command.
func (h *Host) InOrder() *Host {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ordered = true
	return h
}

// Root is the local directory holding the fake's file system.
func (h *Host) Root() string { return h.files.Root }

// Path is the local path of host path p, for assertions with os functions.
func (h *Host) Path(p string) string { return h.files.Path(p) }

// Resolve is the local path of host path p as host.Local resolves it (no
// symlink under Root leads out of it). Code that lists directories, which
// host.Host cannot, finds the local path through it (doctor lists /proc).
func (h *Host) Resolve(p string) (string, error) { return h.files.Resolve(p) }

// Call is one expected command.
type Call struct {
	desc     string
	match    func(host.Cmd) bool
	out      []byte
	err      error
	do       func(context.Context, host.Cmd) ([]byte, error)
	min, max int // max < 0: unlimited
	count    int
}

// Expect declares a command with exactly this name and arguments. It answers
// with empty output and no error until Returns or Do says otherwise, and is
// expected exactly once until Times, AnyTimes or Maybe says otherwise.
func (h *Host) Expect(name string, args ...string) *Call {
	want := host.Cmd{Name: name, Args: args}
	return h.ExpectFunc(CommandLine(want), func(c host.Cmd) bool {
		return c.Name == name && slices.Equal(c.Args, args)
	})
}

// ExpectFunc declares a command matched by match; desc names it in failures.
func (h *Host) ExpectFunc(desc string, match func(host.Cmd) bool) *Call {
	c := &Call{desc: desc, match: match, min: 1, max: 1}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expects = append(h.expects, c)
	return c
}

// Returns sets the command's combined output and error. A non-nil err is
// wrapped in a *host.CmdError carrying the output, as host.Local does; use
// Exit(code) for a non-zero exit status.
func (c *Call) Returns(out string, err error) *Call {
	c.out, c.err = []byte(out), err
	return c
}

// Do answers the command with fn, for answers that depend on the command
// (its stdin, say) or on what the test has done since.
func (c *Call) Do(fn func(host.Cmd) ([]byte, error)) *Call {
	return c.DoContext(func(_ context.Context, cmd host.Cmd) ([]byte, error) { return fn(cmd) })
}

// DoContext is Do for answers that need the caller's context: an answer
// that runs a real program (nginx -t against a test configuration, say)
// stops when the code under test gives up.
func (c *Call) DoContext(fn func(context.Context, host.Cmd) ([]byte, error)) *Call {
	c.do = fn
	return c
}

// Times expects the command exactly n times.
func (c *Call) Times(n int) *Call {
	c.min, c.max = n, n
	return c
}

// AnyTimes allows the command any number of times, including never.
func (c *Call) AnyTimes() *Call {
	c.min, c.max = 0, -1
	return c
}

// Maybe allows the command at most once.
func (c *Call) Maybe() *Call {
	c.min, c.max = 0, 1
	return c
}

func (c *Call) full() bool { return c.max >= 0 && c.count >= c.max }

// ExitError is a command's non-zero exit status.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// ExitCode mirrors exec.ExitError.
func (e *ExitError) ExitCode() int { return e.Code }

// Exit is the error of a command that exited with code.
func Exit(code int) error { return &ExitError{Code: code} }

// ErrUnexpected is returned to the code under test for a command no
// expectation matched.
var ErrUnexpected = errors.New("hosttest: unexpected command")

// Run answers cmd from the first matching expectation.
func (h *Host) Run(ctx context.Context, cmd host.Cmd) ([]byte, error) {
	h.t.Helper()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.calls = append(h.calls, cmd)
	c := h.find(cmd)
	h.mu.Unlock()
	line := CommandLine(cmd)
	if c == nil {
		h.t.Errorf("hosttest: unexpected command: %s%s", line, h.pendingNote())
		return nil, fmt.Errorf("%w: %s", ErrUnexpected, line)
	}
	out, err := c.out, c.err
	if c.do != nil {
		out, err = c.do(ctx, cmd)
	}
	out = append([]byte(nil), out...)
	var cmdErr *host.CmdError
	if err != nil && !errors.As(err, &cmdErr) {
		err = &host.CmdError{Cmd: cmd, Err: err, Output: out}
	}
	return out, err
}

// find returns the expectation that takes cmd and counts the call, or nil.
// The caller holds h.mu.
func (h *Host) find(cmd host.Cmd) *Call {
	if !h.ordered {
		for _, c := range h.expects {
			if !c.full() && c.match(cmd) {
				c.count++
				return c
			}
		}
		return nil
	}
	for i := h.next; i < len(h.expects); i++ {
		c := h.expects[i]
		if !c.full() && c.match(cmd) {
			c.count++
			h.next = i
			return c
		}
		if c.count < c.min {
			return nil // out of order: an earlier expectation still waits
		}
	}
	return nil
}

// pendingNote lists what the recorder was waiting for, to explain a failure.
func (h *Host) pendingNote() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var waiting []string
	start := 0
	if h.ordered {
		start = h.next
	}
	for _, c := range h.expects[start:] {
		if c.count < c.min {
			waiting = append(waiting, c.desc)
		}
	}
	if len(waiting) == 0 {
		return " (no expected command is waiting)"
	}
	order := ""
	if h.ordered {
		order = ", in order"
	}
	return fmt.Sprintf(" (still expected%s: %s)", order, strings.Join(waiting, "; "))
}

// Calls returns every command run so far, expected or not, in order.
func (h *Host) Calls() []host.Cmd {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]host.Cmd(nil), h.calls...)
}

// CommandLines returns Calls as command lines.
func (h *Host) CommandLines() []string {
	var lines []string
	for _, c := range h.Calls() {
		lines = append(lines, CommandLine(c))
	}
	return lines
}

// Reset forgets the recorded calls, changes and expectations (not the files), after reporting the
// expectations that were not met: a test can declare a second phase (a re-run,
// say) with its own expectations.
func (h *Host) Reset() {
	h.t.Helper()
	h.verify()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expects, h.calls, h.changes, h.next = nil, nil, nil, 0
}

func (h *Host) verify() {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.expects {
		if c.count < c.min {
			h.t.Errorf("hosttest: expected command not run: %s (ran %d of %d times)", c.desc, c.count, c.min)
		}
	}
}

// CommandLine renders cmd as a shell would read it, with its environment
// additions and the size of its standard input.
func CommandLine(cmd host.Cmd) string {
	var parts []string
	for _, e := range cmd.Env {
		parts = append(parts, quote(e))
	}
	parts = append(parts, quote(cmd.Name))
	for _, a := range cmd.Args {
		parts = append(parts, quote(a))
	}
	line := strings.Join(parts, " ")
	if cmd.Stdin != nil {
		line += fmt.Sprintf(" <(%d bytes)", len(cmd.Stdin))
	}
	return line
}

func quote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Changes lists the host paths that WriteFile, Symlink or Remove changed, in
// order: a converged re-run must leave it empty.
func (h *Host) Changes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.changes...)
}

func (h *Host) changed(p string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.changes = append(h.changes, p)
}

// Files: a real host.Local under the temporary root.

func (h *Host) ReadFile(p string) ([]byte, error) { return h.files.ReadFile(p) }

func (h *Host) WriteFile(p string, data []byte, mode fs.FileMode) (host.WriteResult, error) {
	res, err := h.files.WriteFile(p, data, mode)
	if res.Changed {
		h.changed(p)
	}
	return res, err
}

// WriteFileFrom streams a file, as host.Local does.
func (h *Host) WriteFileFrom(p string, r io.Reader, mode fs.FileMode, check func() error) (host.WriteResult, error) {
	res, err := h.files.WriteFileFrom(p, r, mode, check)
	if res.Changed {
		h.changed(p)
	}
	return res, err
}

func (h *Host) Symlink(target, link string) (host.WriteResult, error) {
	res, err := h.files.Symlink(target, link)
	if res.Changed {
		h.changed(link)
	}
	return res, err
}

func (h *Host) Remove(p string) error {
	_, statErr := h.files.Lstat(p)
	err := h.files.Remove(p)
	if statErr == nil && err == nil {
		h.changed(p)
	}
	return err
}

func (h *Host) Readlink(p string) (string, error)   { return h.files.Readlink(p) }
func (h *Host) Lstat(p string) (fs.FileInfo, error) { return h.files.Lstat(p) }

// Lock takes a real flock under Root, as host.Local does.
func (h *Host) Lock(p string) (func(), error) { return h.files.Lock(p) }
