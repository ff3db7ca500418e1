package render

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// verifyUnit runs `systemd-analyze verify` on unit placed at its host path
// in a scratch root holding the distribution's units and a homelab binary.
// It does not boot systemd or touch the real root.
func verifyUnit(t *testing.T, unitData []byte) (string, error) {
	t.Helper()
	analyze := testutil.NeedProgram(t, "systemd-analyze")
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/lib/systemd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copy the distribution's units: %v %s", err, out)
	}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{layout.Binary, []byte("#!/bin/sh\nexit 0\n"), 0o755},
		{layout.PortForwardUnit, unitData, 0o644},
	} {
		local := filepath.Join(root, f.path)
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(local, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(analyze, "verify", "--man=no", "--root="+root, layout.PortForwardUnit).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestPortForwardUnitVerifies(t *testing.T) {
	for name := range configs {
		t.Run(name, func(t *testing.T) {
			_, files := renderConfig(t, name)
			out, err := verifyUnit(t, fileAt(t, files, layout.PortForwardUnit))
			if err != nil || out != "" {
				t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
			}
		})
	}
	t.Run("a broken unit is caught", func(t *testing.T) {
		_, files := renderConfig(t, "default")
		broken := bytes.Replace(fileAt(t, files, layout.PortForwardUnit), []byte("Restart=always"), []byte("Restart=sometimes"), 1)
		if out, err := verifyUnit(t, broken); err == nil && out == "" {
			t.Fatal("systemd-analyze accepted Restart=sometimes: the check proves nothing")
		}
	})
}

func TestPortForwardUnitRecoversAndStaysLocal(t *testing.T) {
	cfg, files := renderConfig(t, "default")
	opts, err := unit.DeserializeOptions(bytes.NewReader(fileAt(t, files, layout.PortForwardUnit)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, o := range opts {
		got[o.Section+"."+o.Name] = append(got[o.Section+"."+o.Name], o.Value)
	}
	has := func(key, want string) {
		t.Helper()
		for _, v := range got[key] {
			if strings.Contains(" "+v+" ", " "+want+" ") {
				return
			}
		}
		t.Errorf("%s = %v, want it to contain %q", key, got[key], want)
	}
	has("Unit.After", "k3s.service")
	has("Unit.Wants", "k3s.service")
	has("Unit.StartLimitIntervalSec", "0")
	has("Service.Restart", "always")
	has("Service.Type", "notify")
	has("Service.WatchdogSec", "60")
	has("Service.ExecStart", "--address 127.0.0.1")
	has("Service.ExecStart", "--service "+cfg.Monitoring.GrafanaServiceName())
	has("Service.ExecStart", "--port 3100:80")
	has("Service.Environment", "KUBECONFIG="+layout.K3sKubeconfig)
	has("Install.WantedBy", "multi-user.target")
}
