// Package iostreams carries standard input, output and error, and what kind of
// terminal they are, so commands never touch os.Stdout directly and tests can
// capture everything.
package iostreams

import (
	"bytes"
	"io"
	"os"
	"sync"

	"golang.org/x/term"
)

// IOStreams are a command's streams. Data goes to Out, people's messages to ErrOut.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY, stdoutTTY, stderrTTY bool
	// ci is true under a CI system, where no TUI or prompt may run.
	ci bool
	// dumbTerminal is TERM=dumb: a terminal that cannot move the cursor,
	// where a live display or a form would print garbage.
	dumbTerminal bool
	noColor      bool
}

// System returns the process's streams.
func System() *IOStreams {
	s := Files(os.Stdin, os.Stdout, os.Stderr)
	s.readEnv(os.Getenv)
	return s
}

// readEnv takes from the environment what, besides the streams themselves,
// decides whether a person can be shown a display and asked questions.
func (s *IOStreams) readEnv(getenv func(string) string) {
	s.ci = getenv("CI") != ""
	s.noColor = getenv("NO_COLOR") != ""
	s.dumbTerminal = getenv("TERM") == "dumb"
}

// Files returns streams over open files, as System does over the process's
// own; tests give it a real /dev/full. Out is checked (see OutputError)
// unless it is a terminal: there a person sees what is missing, and a
// command may need the *os.File itself (doctor clears the screen).
func Files(in, out, errOut *os.File) *IOStreams {
	s := &IOStreams{
		In: in, Out: out, ErrOut: errOut,
		stdinTTY:  term.IsTerminal(int(in.Fd())),
		stdoutTTY: term.IsTerminal(int(out.Fd())),
		stderrTTY: term.IsTerminal(int(errOut.Fd())),
	}
	if !s.stdoutTTY {
		s.Out = &checkedWriter{w: out}
	}
	return s
}

// OutputError is the first write to Out that failed (a full disk,
// /dev/full, a closed pipe), or nil. Once it is set the command's data is
// incomplete whatever the command itself made of the error, so the caller
// fails the run on it (pkg/app).
func (s *IOStreams) OutputError() error {
	if c, ok := s.Out.(*checkedWriter); ok {
		return c.error()
	}
	return nil
}

// checkedWriter remembers the first failed write. Commands print data with
// fmt.Fprintf and seldom look at its error; checking here, once, keeps a
// lost output from passing as a success. Every later write fails the same
// way, so a command that does look stops early.
type checkedWriter struct {
	w   io.Writer
	mu  sync.Mutex
	err error
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	c.err = err
	return n, err
}

func (c *checkedWriter) error() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Test returns streams backed by buffers, none of them a terminal.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// SetTTY marks all streams as terminals or not, for tests.
func (s *IOStreams) SetTTY(tty bool) { s.stdinTTY, s.stdoutTTY, s.stderrTTY = tty, tty, tty }

// Interactive reports whether a TUI or prompt may run: both ends are a
// terminal, this is not CI and the terminal is not TERM=dumb. It is the one
// answer to "may we be interactive?" (the Factory adds --no-tui, UseTUI):
// commands ask it instead of looking at the streams themselves.
func (s *IOStreams) Interactive() bool {
	return s.stdinTTY && s.stdoutTTY && !s.ci && !s.dumbTerminal
}

// StderrIsTerminal reports whether ErrOut is a terminal (a person reads it).
func (s *IOStreams) StderrIsTerminal() bool { return s.stderrTTY }

// ColorEnabled reports whether ErrOut may carry colour.
func (s *IOStreams) ColorEnabled() bool { return s.stderrTTY && !s.noColor }
