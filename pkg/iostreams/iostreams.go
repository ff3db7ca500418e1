// Package iostreams carries standard input, output and error, and what kind of
// terminal they are, so commands never touch os.Stdout directly and tests can
// capture everything.
package iostreams

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams are a command's streams. Data goes to Out, people's messages to ErrOut.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY, stdoutTTY, stderrTTY bool
	// ci is true under a CI system, where no TUI or prompt may run.
	ci      bool
	noColor bool
}

// System returns the process's streams.
func System() *IOStreams {
	return &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		stdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		ci:        os.Getenv("CI") != "",
		noColor:   os.Getenv("NO_COLOR") != "",
	}
}

// Test returns streams backed by buffers, none of them a terminal.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// SetTTY marks all streams as terminals or not, for tests.
func (s *IOStreams) SetTTY(tty bool) { s.stdinTTY, s.stdoutTTY, s.stderrTTY = tty, tty, tty }

// Interactive reports whether a TUI or prompt may run: both ends are a
// terminal and this is not CI.
func (s *IOStreams) Interactive() bool { return s.stdinTTY && s.stdoutTTY && !s.ci }

// StderrIsTerminal reports whether ErrOut is a terminal (a person reads it).
func (s *IOStreams) StderrIsTerminal() bool { return s.stderrTTY }

// ColorEnabled reports whether ErrOut may carry colour.
func (s *IOStreams) ColorEnabled() bool { return s.stderrTTY && !s.noColor }
