package uninstall_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/app/apptest"
	"github.com/homelab-dev/homelab/pkg/cmd/uninstall"
	"github.com/homelab-dev/homelab/pkg/helm"
	"github.com/homelab-dev/homelab/pkg/host/hosttest"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/record"
)

func run(t *testing.T, h *hosttest.Host, args ...string) (int, string, string) {
	t.Helper()
	return apptest.Run(context.Background(), apptest.OnHost(h), append([]string{"uninstall", "--root", h.Root()}, args...)...)
}

func write(t *testing.T, h *hosttest.Host, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(h.Path(p)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.Path(p), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWithoutARecordThereIsNothingToDo(t *testing.T) {
	h := hosttest.New(t)
	for _, args := range [][]string{nil, {"--dry-run"}, {"--k3s", "--delete-data"}} {
		code, out, stderr := run(t, h, args...)
		if code != 1 || out != "" || !strings.Contains(stderr, "Error: nothing recorded: homelab did not install anything here (or the record /var/lib/homelab/installed.json was removed)") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, stderr)
		}
	}
	write(t, h, layout.Record, `{"version": 1, "items": []}`)
	if code, _, stderr := run(t, h); code != 1 || !strings.Contains(stderr, "nothing recorded") {
		t.Errorf("empty record: exit %d\n%s", code, stderr)
	}
	if c := h.Changes(); len(c) != 0 {
		t.Errorf("wrote %v", c)
	}
}

func TestAConcurrentRunIsRefused(t *testing.T) {
	h := hosttest.New(t)
	write(t, h, layout.Record, `{"version": 1, "items": [{"kind": "file", "path": "/etc/homelab/homelab.yaml"}]}`)
	unlock, err := h.Lock(layout.Lock)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if code, _, stderr := run(t, h); code != 1 || !strings.Contains(stderr, "another homelab run is in progress") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
}

// initOrder is a record as init writes it.
var initOrder = []record.Item{
	{Kind: record.AptPackage, Name: "nginx"},
	{Kind: record.K3s, Version: "v1.37.2+k3s1", Path: "/usr/local/bin/k3s", Unit: "/etc/systemd/system/k3s.service"},
	{Kind: record.Namespace, Name: "monitoring"},
	{Kind: record.Secret, Namespace: "monitoring", Name: "grafana-admin"},
	{Kind: record.File, Path: layout.ValuesStack},
	{Kind: record.CRDs, Namespace: "monitoring", Name: "stack", Names: []string{"probes.monitoring.coreos.com"}},
	{Kind: record.HelmRelease, Namespace: "monitoring", Name: "stack"},
	{Kind: record.HelmRelease, Namespace: "monitoring", Name: "blackbox"},
	{Kind: record.SystemdUnit, Name: "grafana-portforward.service", Path: layout.PortForwardUnit},
	{Kind: record.NginxSite, Path: layout.NginxSite, Link: layout.NginxSiteLink, Target: layout.NginxSiteTarget, Stamp: layout.NginxStamp},
	{Kind: record.File, Path: layout.EffectiveConfig},
}

func names(p plan.Plan) string {
	var n []string
	for _, s := range p.Steps {
		n = append(n, s.Name)
	}
	return strings.Join(n, " | ")
}

func TestPlanGoesBackwardsPhaseByPhase(t *testing.T) {
	rec := record.New()
	rec.Add(initOrder...)
	noCluster := uninstall.Deps{Host: hosttest.New(t),
		Kube: func() (*kube.Client, error) { return nil, errors.New("no cluster") },
		Helm: func() (*helm.Engine, error) { return nil, errors.New("no cluster") }}
	got := names(uninstall.Plan(rec, noCluster, uninstall.Choices{}))
	want := "/etc/homelab/homelab.yaml | Nginx site | systemd unit grafana-portforward.service | /etc/homelab/values/kube-prometheus-stack.yaml | " +
		"Helm release monitoring/blackbox | Helm release monitoring/stack | CRDs of monitoring/stack | Secret monitoring/grafana-admin | " +
		"namespace monitoring | k3s | apt package nginx | record"
	if got != want {
		t.Errorf("steps:\n%s\nwant\n%s", got, want)
	}
	// A dry run on a box whose cluster is gone still shows the whole plan.
	var out strings.Builder
	_, err := plan.Runner{DryRun: true, OnEvent: plan.TextReport{W: &out}.Event}.Run(context.Background(), uninstall.Plan(rec, noCluster, uninstall.Choices{CRDs: true, DeleteData: true}))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"helm uninstall stack (the cluster could not be asked: no cluster)", "delete CRDs probes.monitoring.coreos.com",
		"delete Secret monitoring/grafana-admin", "kept k3s", "--packages removes it"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run lacks %q:\n%s", want, out.String())
		}
	}
}

func TestModifiedFilesGoBackOrStay(t *testing.T) {
	h := hosttest.New(t).InOrder()
	unit := "/etc/systemd/system/grafana-portforward.service"
	write(t, h, unit, "homelab's unit\n")
	write(t, h, record.OriginalPath(unit), "the user's unit\n")
	write(t, h, layout.AlertmanagerConfig, "homelab's\n")
	rec := record.New()
	rec.Add(
		record.Item{Kind: record.File, Path: layout.AlertmanagerConfig, Modified: true, Backup: record.OriginalPath(layout.AlertmanagerConfig), Mode: "0644"},
		record.Item{Kind: record.SystemdUnit, Name: "grafana-portforward.service", Path: unit, Modified: true, Backup: record.OriginalPath(unit), Mode: "0640"},
	)
	if err := rec.Save(h); err != nil {
		t.Fatal(err)
	}
	h.Reset()
	h.Expect("systemctl", "daemon-reload")
	h.Expect("systemctl", "try-restart", "grafana-portforward.service")
	code, _, stderr := run(t, h)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if data, _ := os.ReadFile(h.Path(unit)); string(data) != "the user's unit\n" {
		t.Errorf("unit: %q", data)
	}
	if info, _ := os.Stat(h.Path(unit)); info.Mode().Perm() != 0o640 {
		t.Errorf("unit mode %v", info.Mode())
	}
	if data, _ := os.ReadFile(h.Path(layout.AlertmanagerConfig)); string(data) != "homelab's\n" {
		t.Errorf("a file without an original copy was changed: %q", data)
	}
	if !strings.Contains(stderr, "no copy of the original was kept") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if _, err := os.Stat(h.Path(layout.Record)); !os.IsNotExist(err) {
		t.Errorf("record: %v", err)
	}
}

// A record edited by hand or damaged cannot make uninstall delete, purge or
// overwrite anything homelab could not have made (issue 12, class 3): the
// run refuses before any step, exit 2, naming each bad item.
func TestARecordListingWhatHomelabCouldNotHaveMadeIsRefused(t *testing.T) {
	for name, item := range map[string]string{
		"any file":                  `{"kind": "file", "path": "/etc/passwd"}`,
		"a path that climbs out":    `{"kind": "file", "path": "/etc/homelab/../passwd"}`,
		"a backup from elsewhere":   `{"kind": "file", "path": "/etc/homelab/homelab.yaml", "modified": true, "backup": "/etc/shadow"}`,
		"a setuid mode":             `{"kind": "file", "path": "/etc/homelab/homelab.yaml", "modified": true, "mode": "4755"}`,
		"a directory not a parent":  `{"kind": "file", "path": "/etc/homelab/homelab.yaml", "dirs": ["/etc/ssh"]}`,
		"the root directory":        `{"kind": "file", "path": "/etc/homelab/homelab.yaml", "dirs": ["/"]}`,
		"another unit":              `{"kind": "systemd-unit", "name": "ssh.service", "path": "/etc/systemd/system/ssh.service"}`,
		"a unit under another name": `{"kind": "systemd-unit", "name": "ssh.service", "path": "/etc/systemd/system/grafana-portforward.service"}`,
		"another site":              `{"kind": "nginx-site", "path": "/etc/nginx/sites-available/default", "stamp": "/var/lib/homelab/nginx-site.sha256"}`,
		"k3s somewhere else":        `{"kind": "k3s", "version": "v1", "path": "/bin/bash", "unit": "/etc/systemd/system/k3s.service"}`,
		"another link":              `{"kind": "k3s-link", "path": "/usr/bin/sudo"}`,
		"another package":           `{"kind": "apt-package", "name": "openssh-server"}`,
		"kube-system":               `{"kind": "namespace", "name": "kube-system"}`,
		"default":                   `{"kind": "namespace", "name": "default"}`,
		"any Secret":                `{"kind": "secret", "namespace": "monitoring", "name": "database-password"}`,
		"a release in kube-system":  `{"kind": "helm-release", "namespace": "kube-system", "name": "traefik"}`,
		"core CRDs":                 `{"kind": "crds", "namespace": "monitoring", "name": "x", "names": ["certificates.cert-manager.io"]}`,
	} {
		t.Run(name, func(t *testing.T) {
			h := hosttest.New(t)
			write(t, h, "/etc/passwd", "root:x:0:0\n")
			write(t, h, "/etc/shadow", "root:*:1\n")
			good := `{"kind": "file", "path": "/etc/homelab/homelab.yaml"}`
			write(t, h, layout.Record, `{"version": 1, "items": [`+good+`, `+item+`]}`)
			for _, args := range [][]string{nil, {"--dry-run"}, {"--k3s", "--delete-data", "--packages", "--crds"}} {
				code, out, stderr := run(t, h, args...)
				if code != 2 || !strings.Contains(stderr, "items[1]") || strings.Contains(stderr, "items[0]") || !strings.Contains(stderr, "changes nothing") {
					t.Errorf("%v: exit %d, want 2 naming items[1] only\n%s%s", args, code, out, stderr)
				}
			}
			if c := h.Changes(); len(c) != 0 {
				t.Errorf("changed %v", c)
			}
		})
	}
}

func TestBadFlagsExitTwoBeforeTheRecordIsRead(t *testing.T) {
	h := hosttest.New(t)
	for _, args := range [][]string{{"--timeout", "-1s"}, {"--timeout", "0"}, {"--kubeconfig", "/nonexistent/kubeconfig"}} {
		code, _, stderr := run(t, h, args...)
		if code != 2 || !strings.Contains(stderr, args[0]) {
			t.Errorf("%v: exit %d, want 2 naming %s\n%s", args, code, args[0], stderr)
		}
	}
}
