package bundletest

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
)

// EmptyTempDir points $TMPDIR at a new empty directory watched with
// inotify, for tests that prove a command keeps its temporary files beside
// their targets. The returned check fails the test if anything was created
// in it, even a file removed again before the check, or is left in it.
// Make every t.TempDir before calling it: the first one of a test is made
// under $TMPDIR.
func EmptyTempDir(t testing.TB) (check func()) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpdir")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	createdIn := WatchCreations(t, dir)
	t.Setenv("TMPDIR", dir)
	return func() {
		t.Helper()
		if created := createdIn(); len(created) > 0 {
			t.Errorf("created in $TMPDIR (%s): %q", dir, created)
		}
		if left, _ := os.ReadDir(dir); len(left) > 0 {
			t.Errorf("left in $TMPDIR (%s): %d entries", dir, len(left))
		}
	}
}

// WatchCreations watches an existing directory with inotify; the returned
// function gives the names created in it since, even those removed again.
func WatchCreations(t testing.TB, dir string) (created func() []string) {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_MOVED_TO); err != nil {
		t.Fatalf("inotify watch %s: %v", dir, err)
	}
	return func() []string { return readCreated(t, fd) }
}

// readCreated drains the pending inotify events and returns their names.
func readCreated(t testing.TB, fd int) []string {
	var names []string
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EAGAIN {
			return names
		}
		if err != nil || n <= 0 {
			t.Fatalf("read inotify events: %d, %v", n, err)
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
			names = append(names, string(bytes.TrimRight(name, "\x00")))
			off += syscall.SizeofInotifyEvent + int(ev.Len)
		}
	}
}
