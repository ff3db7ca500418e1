package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
)

// Streamer is a host that can stream a command's output, for outputs too
// large to buffer (`docker save` of an app image).
type Streamer interface {
	// Stream starts cmd and returns its standard output. When the command
	// fails, Read returns its exit error (with the end of its stderr)
	// instead of io.EOF, so a cut-off stream is never taken for a whole one.
	Stream(ctx context.Context, cmd Cmd) (io.ReadCloser, error)
}

// Stream runs c and streams its standard output.
func (l *Local) Stream(ctx context.Context, c Cmd) (io.ReadCloser, error) {
	if underRoot(l.Root) {
		return nil, fmt.Errorf("%s: %w (%s is not a running system)", c.Name, ErrCommandUnderRoot, l.Root)
	}
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &stream{cmd: cmd, out: stdout, c: c}
	cmd.Stderr = &s.stderr
	if err := cmd.Start(); err != nil {
		return nil, &CmdError{Cmd: c, Err: err}
	}
	return s, nil
}

type stream struct {
	cmd    *exec.Cmd
	out    io.ReadCloser
	c      Cmd
	stderr bytes.Buffer
	once   sync.Once
	err    error
}

func (s *stream) wait() error {
	s.once.Do(func() {
		if err := s.cmd.Wait(); err != nil {
			s.err = &CmdError{Cmd: s.c, Err: err, Output: s.stderr.Bytes()}
		}
	})
	return s.err
}

func (s *stream) Read(p []byte) (int, error) {
	n, err := s.out.Read(p)
	if errors.Is(err, io.EOF) {
		if werr := s.wait(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

func (s *stream) Close() error {
	_ = s.out.Close()
	err := s.wait()
	var cmdErr *CmdError
	if errors.As(err, &cmdErr) && s.cmd.ProcessState != nil && !s.cmd.ProcessState.Success() && s.cmd.ProcessState.ExitCode() == -1 {
		return nil // killed because the reader stopped early: not the command's failure
	}
	return err
}
