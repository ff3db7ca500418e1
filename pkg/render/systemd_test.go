package render

import (
	"bytes"
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
	return testutil.VerifyUnit(t, layout.PortForwardUnit,
		testutil.File{Path: layout.Binary, Data: []byte("#!/bin/sh\nexit 0\n"), Mode: 0o755},
		testutil.File{Path: layout.PortForwardUnit, Data: unitData, Mode: 0o644})
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
	// Stopped with k3s and started by it, but never starting it: a
	// Wants=k3s.service undid `systemctl stop k3s` on the booted machine.
	has("Unit.PartOf", "k3s.service")
	has("Install.WantedBy", "k3s.service")
	for _, v := range append(got["Unit.Wants"], got["Unit.Requires"]...) {
		if strings.Contains(v, "k3s.service") {
			t.Errorf("the forwarder pulls k3s up (%q): its restarts would cancel a stop of k3s", v)
		}
	}
	has("Unit.StartLimitIntervalSec", "0")
	has("Service.Restart", "always")
	has("Service.Type", "exec")
	has("Service.WatchdogSec", "60")
	has("Service.ExecStart", "--address 127.0.0.1")
	has("Service.ExecStart", "--service "+cfg.Monitoring.GrafanaServiceName())
	has("Service.ExecStart", "--port 3100:80")
	// The forwarder takes k3s's kubeconfig by default, as every command
	// does, and never reads $KUBECONFIG: nothing to set.
	if strings.Contains(strings.Join(got["Service.ExecStart"], " "), "--kubeconfig") || len(got["Service.Environment"]) > 0 {
		t.Errorf("the unit names a kubeconfig (ExecStart %q, Environment %q); the default is k3s's", got["Service.ExecStart"], got["Service.Environment"])
	}
	has("Install.WantedBy", "multi-user.target")
}
