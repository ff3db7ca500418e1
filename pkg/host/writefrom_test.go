package host_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/host"
)

func TestWriteFileFromCommitsOnlyAfterCheck(t *testing.T) {
	l := &host.Local{Root: t.TempDir()}
	const p = "/var/lib/rancher/k3s/agent/images/x.tar"
	if res, err := l.WriteFileFrom(p, strings.NewReader("first"), 0o640, nil); err != nil || !res.Changed {
		t.Fatalf("%v %v", res, err)
	}
	bad := errors.New("sha256 mismatch")
	if _, err := l.WriteFileFrom(p, strings.NewReader("second"), 0o640, func() error { return bad }); !errors.Is(err, bad) {
		t.Fatalf("err = %v", err)
	}
	data, _ := os.ReadFile(l.Path(p))
	info, _ := os.Stat(l.Path(p))
	if string(data) != "first" || info.Mode().Perm() != 0o640 {
		t.Errorf("after a failed check: %q %v", data, info.Mode())
	}
	entries, _ := os.ReadDir(l.Path("/var/lib/rancher/k3s/agent/images"))
	if len(entries) != 1 {
		t.Errorf("left a pending file: %v", entries)
	}
}
