package host

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Locker is a host that can hold an exclusive lock, so that two homelab runs
// never act on one machine at once.
type Locker interface {
	// Lock takes the lock at host path p without waiting; ErrLocked (with
	// the holder's PID) if another process holds it.
	Lock(p string) (unlock func(), err error)
}

// ErrLocked means another homelab run holds the lock.
var ErrLocked = errors.New("another homelab run is in progress")

// Lock takes an flock(2) on p. The kernel drops it when the process dies, so
// a killed run never leaves a stale lock behind.
func (l *Local) Lock(p string) (func(), error) {
	local, err := l.Resolve(p)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(local, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(local)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (pid %s holds %s); wait for it to finish", ErrLocked, strings.TrimSpace(string(holder)), p)
		}
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { _ = f.Close() }, nil
}
