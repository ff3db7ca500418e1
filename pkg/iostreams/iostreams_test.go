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
