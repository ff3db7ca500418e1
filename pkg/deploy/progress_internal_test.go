package deploy

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/images"
)

// fakeClock advances by step each time it is read.
func fakeClock(step time.Duration) func() time.Time {
	t := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(step)
		return t
	}
}

// An archive's import says how much of the file was read, of how much, and
// how fast; every half second and once at the end.
func TestImportProgressOfAnArchive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.tar")
	if err := os.WriteFile(path, bytes.Repeat([]byte{'x'}, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	var lines []string
	src := progressSource{Source: images.ArchiveSource{Path: path}, report: func(s string) { lines = append(lines, s) }, now: fakeClock(time.Second)}
	rc, err := src.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := rc.Read(buf); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"read 1.0 of 3.0 MiB, 1.0 MiB/s", "read 2.0 of 3.0 MiB, 1.0 MiB/s", "read 3.0 of 3.0 MiB, 1.0 MiB/s", "read 3.0 of 3.0 MiB, 0.8 MiB/s"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("progress:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if src.Name() != path {
		t.Errorf("Name() = %q: the wrapped source must keep its name for messages", src.Name())
	}
}

// A stream (docker save) has no size: only what was read and how fast; and
// nothing is said more often than every half second.
func TestImportProgressOfAStream(t *testing.T) {
	var lines []string
	src := progressSource{Source: streamSource{data: bytes.Repeat([]byte{'x'}, 1<<20)}, report: func(s string) { lines = append(lines, s) },
		now: fakeClock(100 * time.Millisecond)}
	rc, err := src.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	reads, buf := 0, make([]byte, 32<<10)
	for {
		_, err := rc.Read(buf)
		reads++
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	// Reads 100 ms apart: a report every fifth (and at the end), not every read.
	if len(lines) > reads/5+1 {
		t.Errorf("%d reports for %d reads 100 ms apart: %q", len(lines), reads, lines)
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "read 1.0 MiB, ") || strings.Contains(lines[len(lines)-1], " of ") {
		t.Errorf("progress of a stream: %q", lines)
	}
}

type streamSource struct{ data []byte }

func (s streamSource) Open(context.Context) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(s.data)), nil
}
func (streamSource) Name() string { return "docker save app:latest" }
