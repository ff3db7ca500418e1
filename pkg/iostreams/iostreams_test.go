package iostreams

import (
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
)

func open(t *testing.T, name string, flag int) *os.File {
	t.Helper()
	f, err := os.OpenFile(name, flag, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// A write to a full device is remembered, and every later write fails the
// same way without reaching the file.
func TestOutputErrorRemembersTheFirstFailedWrite(t *testing.T) {
	null := open(t, os.DevNull, os.O_RDWR)
	s := Files(null, open(t, "/dev/full", os.O_WRONLY), null)
	if err := s.OutputError(); err != nil {
		t.Fatalf("before any write: %v", err)
	}
	if _, err := io.WriteString(s.Out, "data\n"); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write to /dev/full: %v, want ENOSPC", err)
	}
	if err := s.OutputError(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("OutputError = %v, want ENOSPC", err)
	}
	if n, err := io.WriteString(s.Out, "more\n"); n != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("later write: %d, %v; want 0 and the first error", n, err)
	}
}

func TestOutputErrorIsNilWhenEverythingWasWritten(t *testing.T) {
	null := open(t, os.DevNull, os.O_RDWR)
	s := Files(null, null, null)
	if _, err := io.WriteString(s.Out, "data\n"); err != nil {
		t.Fatal(err)
	}
	if err := s.OutputError(); err != nil {
		t.Errorf("OutputError = %v after a good write", err)
	}
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

// A writer that takes less than it was given without saying why has lost
// the rest: io.ErrShortWrite.
func TestShortWriteIsAnError(t *testing.T) {
	s := &IOStreams{Out: &checkedWriter{w: shortWriter{}}}
	if _, err := io.WriteString(s.Out, "data\n"); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("short write: %v", err)
	}
	if !errors.Is(s.OutputError(), io.ErrShortWrite) {
		t.Errorf("OutputError = %v", s.OutputError())
	}
}

// Only both ends on a terminal, outside CI and on a terminal that can move
// its cursor, may show a live display or ask questions.
func TestInteractive(t *testing.T) {
	for _, tc := range []struct {
		name string
		tty  bool
		env  map[string]string
		want bool
	}{
		{"terminal", true, map[string]string{"TERM": "xterm-256color"}, true},
		{"no TERM at all", true, nil, true},
		{"pipe", false, map[string]string{"TERM": "xterm-256color"}, false},
		{"CI", true, map[string]string{"TERM": "xterm-256color", "CI": "true"}, false},
		{"TERM=dumb", true, map[string]string{"TERM": "dumb"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _, _ := Test()
			s.SetTTY(tc.tty)
			s.readEnv(func(k string) string { return tc.env[k] })
			if got := s.Interactive(); got != tc.want {
				t.Errorf("Interactive() = %v with tty=%v and %v, want %v", got, tc.tty, tc.env, tc.want)
			}
		})
	}
}

// Stdin on a terminal but stdout redirected (homelab init > log) is not
// interactive: nobody sees the form.
func TestInteractiveNeedsBothEnds(t *testing.T) {
	s := &IOStreams{stdinTTY: true, stdoutTTY: false}
	if s.Interactive() {
		t.Error("Interactive() with stdout redirected")
	}
	s = &IOStreams{stdinTTY: false, stdoutTTY: true}
	if s.Interactive() {
		t.Error("Interactive() with stdin redirected")
	}
}
