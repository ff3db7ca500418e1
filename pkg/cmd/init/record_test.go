package init_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homelab-dev/homelab/pkg/app/apptest"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/kube/kubetest"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/selfinstall"
)

func TestInitRecordsWhatItCreated(t *testing.T) {
	m := apptest.NewMachine(t)
	if code, _, stderr := m.Init(context.Background()); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, stderr)
	}
	stack, blackbox, secret := m.ReleaseNames()
	rec := m.Record()
	want := []string{
		"file:" + layout.Binary, "file:" + selfinstall.StampPath,
		"apt-package:nginx", "k3s", "k3s-link:/usr/local/bin/kubectl", "k3s-link:/usr/local/bin/crictl", "k3s-link:/usr/local/bin/ctr",
		"secret:" + m.Namespace + "/" + secret, // the namespace existed: not listed
		"file:" + layout.AlertmanagerConfig, "config-secret:" + m.Namespace + "/" + stack + "-alertmanager-homelab",
		"file:" + layout.ValuesStack, "helm-release:" + m.Namespace + "/" + stack,
		"file:" + layout.ValuesBlackbox, "helm-release:" + m.Namespace + "/" + blackbox,
		"systemd-unit:" + layout.PortForwardUnit, "nginx-site:" + layout.NginxSite, "file:" + layout.EffectiveConfig,
	}
	if got := m.RecordKeys(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("record lists\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	k3sItem, _ := rec.Find("k3s")
	site, _ := rec.Find("nginx-site:" + layout.NginxSite)
	values, _ := rec.Find("file:" + layout.ValuesStack)
	if k3sItem.Version != apptest.K3sVersion || site.Modified || site.Link != layout.NginxSiteLink || site.Stamp != layout.NginxStamp ||
		strings.Join(values.Dirs, " ") != "/etc/homelab/values" {
		t.Errorf("items: %+v\n%+v\n%+v", k3sItem, site, values)
	}
	if info, err := os.Stat(m.Host.Path(layout.Record)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("record file: %v", err)
	}
	// Alertmanager's configuration: private on disk, the same bytes in the
	// Secret the chart's Alertmanager reads.
	amFile, err := os.ReadFile(m.Host.Path(layout.AlertmanagerConfig))
	if info, statErr := os.Stat(m.Host.Path(layout.AlertmanagerConfig)); err != nil || statErr != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v, want mode 0600", layout.AlertmanagerConfig, err, statErr)
	}
	amSecret, err := kubetest.Typed(m.Kube).CoreV1().Secrets(m.Namespace).Get(context.Background(), stack+"-alertmanager-homelab", metav1.GetOptions{})
	if err != nil || !bytes.Equal(amSecret.Data["alertmanager.yaml"], amFile) || len(amFile) == 0 {
		t.Errorf("Alertmanager Secret: %v; its alertmanager.yaml differs from %s", err, layout.AlertmanagerConfig)
	}
	before, _ := os.ReadFile(m.Host.Path(layout.Record))

	// A second run changes nothing, the record included.
	m.Host.Reset()
	m.ExpectMachine()
	if code, _, stderr := m.Init(context.Background()); code != 0 {
		t.Fatalf("second init: exit %d\n%s", code, stderr)
	}
	if after, _ := os.ReadFile(m.Host.Path(layout.Record)); string(after) != string(before) {
		t.Errorf("the second run changed the record:\n%s\nwas\n%s", after, before)
	}
	if c := m.Host.Changes(); len(c) != 0 {
		t.Errorf("second run wrote %v", c)
	}
}

func TestInterruptedInitKeepsARecordOfWhatItDid(t *testing.T) {
	m := apptest.NewMachine(t)
	ctx, cancel := context.WithCancel(context.Background())
	m.OnCommand(func(c host.Cmd) {
		if strings.Join(c.Args, " ") == "enable --now k3s" {
			cancel()
		}
	})
	if code, _, stderr := m.Init(ctx); code != 130 {
		t.Fatalf("exit %d, want 130\n%s", code, stderr)
	}
	if got := strings.Join(m.RecordKeys(), " "); got != "file:"+layout.Binary+" file:"+selfinstall.StampPath+" apt-package:nginx k3s" {
		t.Errorf("record after the interruption: %s", got)
	}
}
