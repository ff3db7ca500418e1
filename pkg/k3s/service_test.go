package k3s_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/homelab-dev/homelab/pkg/host/hosttest"
	"github.com/homelab-dev/homelab/pkg/k3s"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

func renderUnit(t *testing.T, cidr string) []byte {
	t.Helper()
	data, err := k3s.Installer{ServiceCIDR: cidr}.Unit()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// verifyUnit runs `systemd-analyze verify` on the unit at its host path in a
// scratch root holding the distribution's units and a k3s binary. It does
// not boot systemd or touch the real root.
func verifyUnit(t *testing.T, unitData []byte) (string, error) {
	t.Helper()
	return testutil.VerifyUnit(t, k3s.UnitPath,
		testutil.File{Path: k3s.BinaryPath, Data: fakeK3s(version), Mode: 0o755},
		testutil.File{Path: k3s.UnitPath, Data: unitData, Mode: 0o644})
}

func TestUnitVerifies(t *testing.T) {
	for _, cidr := range []string{"", k3s.DefaultServiceCIDR, "10.44.0.0/16"} {
		t.Run(cidr, func(t *testing.T) {
			if out, err := verifyUnit(t, renderUnit(t, cidr)); err != nil || out != "" {
				t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
			}
		})
	}
	t.Run("a broken unit is caught", func(t *testing.T) {
		broken := bytes.Replace(renderUnit(t, ""), []byte("Restart=always"), []byte("Restart=sometimes"), 1)
		if out, err := verifyUnit(t, broken); err == nil && out == "" {
			t.Fatal("systemd-analyze accepted Restart=sometimes: the check proves nothing")
		}
	})
}

func unitOptions(t *testing.T, data []byte) map[string][]string {
	t.Helper()
	opts, err := unit.DeserializeOptions(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, o := range opts {
		got[o.Section+"."+o.Name] = append(got[o.Section+"."+o.Name], o.Value)
	}
	return got
}

func TestUnitSettings(t *testing.T) {
	got := unitOptions(t, renderUnit(t, ""))
	for key, want := range map[string]string{
		"Service.ExecStart":    "/usr/local/bin/k3s server --disable traefik --disable servicelb --write-kubeconfig-mode 0600",
		"Service.Type":         "notify",
		"Service.KillMode":     "process",
		"Service.Delegate":     "yes",
		"Service.LimitNOFILE":  "1048576",
		"Service.TasksMax":     "infinity",
		"Service.Restart":      "always",
		"Install.WantedBy":     "multi-user.target",
		"Unit.After":           "network-online.target",
		"Service.ExecStartPre": "-/sbin/modprobe br_netfilter,-/sbin/modprobe overlay",
	} {
		if v := strings.Join(got[key], ","); v != want {
			t.Errorf("%s = %q, want %q", key, v, want)
		}
	}
	custom := unitOptions(t, renderUnit(t, "10.44.0.0/16"))
	if v := custom["Service.ExecStart"][0]; !strings.HasSuffix(v, "--write-kubeconfig-mode 0600 --service-cidr 10.44.0.0/16") {
		t.Errorf("ExecStart with a custom service CIDR: %q", v)
	}
}

func TestServiceUnitChangeRestartsRunningK3s(t *testing.T) {
	h := hosttest.New(t).InOrder()
	if _, err := h.WriteFile(k3s.UnitPath, renderUnit(t, ""), 0o644); err != nil {
		t.Fatal(err)
	}
	step := k3s.Installer{Host: h, Arch: "amd64", Version: version, ServiceCIDR: "10.44.0.0/16"}.ServiceStep()
	running := time.Now().Add(-time.Hour)
	expectShow(h, "active", "enabled", running).Times(2) // check, apply
	h.Expect("systemctl", "daemon-reload")
	h.Expect("systemctl", "restart", "k3s")
	expectShow(h, "active", "enabled", time.Now().Add(time.Second))

	st, err := step.Check(ctx)
	if err != nil || !st.Pending || !strings.Contains(st.Summary, "restart k3s with the new unit") ||
		!strings.Contains(st.Diff, "+ExecStart=/usr/local/bin/k3s server --disable traefik --disable servicelb --write-kubeconfig-mode 0600 --service-cidr 10.44.0.0/16") {
		t.Fatalf("check: %+v %v", st, err)
	}
	if err := step.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := step.Check(ctx); err != nil || st.Pending {
		t.Fatalf("after apply: %+v %v", st, err)
	}
	if matches, _ := filepath.Glob(h.Path(hosttest.BackupDir + k3s.UnitPath + ".*")); len(matches) != 1 {
		t.Errorf("backups of the old unit: %v", matches)
	}
}

func TestServiceStartsStoppedK3s(t *testing.T) {
	h := hosttest.New(t).InOrder()
	if _, err := h.WriteFile(k3s.UnitPath, renderUnit(t, ""), 0o644); err != nil {
		t.Fatal(err)
	}
	h.Reset() // the unit above is the machine's state, not a change
	step := k3s.Installer{Host: h, Arch: "amd64", Version: version}.ServiceStep()
	expectShow(h, "failed", "enabled", time.Time{}).Times(2)
	h.Expect("systemctl", "enable", "--now", "k3s")
	expectShow(h, "active", "enabled", time.Now())
	st, err := step.Check(ctx)
	if err != nil || st.Summary != "start k3s (now failed)" {
		t.Fatalf("check: %+v %v", st, err)
	}
	if err := step.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := step.Check(ctx); err != nil || st.Pending || len(h.Changes()) != 0 {
		t.Fatalf("after apply: %+v %v, changes %v", st, err, h.Changes())
	}
}

func TestServiceWhenSystemdCannotBeAsked(t *testing.T) {
	h := hosttest.New(t)
	c := k3s.ShowCommand()
	h.Expect(c.Name, c.Args...).Returns("System has not been booted with systemd\n", hosttest.Exit(1)).Times(2)
	step := k3s.Installer{Host: h, Arch: "amd64", Version: version}.ServiceStep()
	// Check (a dry run under --root, say) reports the unknown state as work to do.
	st, err := step.Check(ctx)
	if err != nil || !st.Pending || !strings.Contains(st.Summary, "systemd could not be asked: System has not been booted with systemd)") {
		t.Fatalf("check: %+v %v", st, err)
	}
	// Apply fails with systemd's own words.
	if err := step.Apply(ctx); err == nil || !strings.Contains(err.Error(), "not been booted with systemd") {
		t.Fatalf("apply: %v", err)
	}
}
