package testutil

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// StartDaemon starts cmd (a server the test runs for real, bound to
// loopback), stops it by its PID when the test ends (interrupt, then kill),
// and waits until addr accepts connections. Its output is shown if it never
// does.
func StartDaemon(t testing.TB, cmd *exec.Cmd, addr string) {
	t.Helper()
	out := &strings.Builder{}
	if cmd.Stdout == nil {
		cmd.Stdout = out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = out
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not start listening on %s:\n%s", cmd.Path, addr, out)
}

// FreePort is a loopback TCP port nothing listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
