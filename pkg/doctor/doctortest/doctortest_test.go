package doctortest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/host/hosttest"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// recordingT keeps the fake's failures instead of failing this test.
type recordingT struct {
	testing.TB
	errors []string
}

func (r *recordingT) Helper() {}
func (r *recordingT) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

var ctx = context.Background()

func TestLaterOnReplacesTheAnswer(t *testing.T) {
	h := NewHost(t)
	h.On("systemctl is-active k3s.service", Output("active\n"))
	h.On("systemctl is-active k3s.service", Failure("inactive\n", 3))
	for range 2 { // any number of times
		out, err := h.Run(ctx, host.Cmd{Name: "systemctl", Args: []string{"is-active", "k3s.service"}})
		var cmdErr *host.CmdError
		var exit *hosttest.ExitError
		if string(out) != "inactive\n" || !errors.As(err, &cmdErr) || string(cmdErr.Output) != "inactive\n" || !errors.As(err, &exit) || exit.Code != 3 {
			t.Fatalf("%q %v, want the second answer: the output and a *host.CmdError with exit 3, as host.Local returns", out, err)
		}
	}
}

func TestUnansweredCommandFailsTheTest(t *testing.T) {
	rt := &recordingT{TB: t}
	h := NewHost(rt)
	h.On("nginx -t", Output("ok\n"))
	if _, err := h.Run(ctx, host.Cmd{Name: "ufw", Args: []string{"status", "verbose"}}); !errors.Is(err, hosttest.ErrUnexpected) {
		t.Fatalf("err %v, want hosttest.ErrUnexpected", err)
	}
	if len(rt.errors) != 1 || !strings.Contains(rt.errors[0], "ufw status verbose") {
		t.Fatalf("failures %q, want one naming the command", rt.errors)
	}
}

// The test's files are its arrangement, not something the code under test
// changed: no backups, nothing in Changes.
func TestWritesAreNotChanges(t *testing.T) {
	cfg, err := config.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	h := NewHost(t).Healthy(cfg, 4)
	h.Write("/proc/meminfo", []byte("MemTotal: 1 kB\n"), 0o444)
	if got := h.Changes(); len(got) != 0 {
		t.Errorf("changes %v", got)
	}
	if _, err := os.Stat(h.Path(hosttest.BackupDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: %v, want no backups", hosttest.BackupDir, err)
	}
	_ = testutil.InCI // every test package imports testutil (the -update flag)
}
