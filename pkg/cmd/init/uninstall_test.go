package init_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homelab-dev/homelab/pkg/app/apptest"
	"github.com/homelab-dev/homelab/pkg/helm/helmtest"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/host/hosttest"
	"github.com/homelab-dev/homelab/pkg/k3s"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/kube/kubetest"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/record"
	"github.com/homelab-dev/homelab/pkg/selfinstall"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

func (m *machine) uninstall(ctx context.Context, extra ...string) (int, string, string) {
	m.t.Helper()
	args := append([]string{"uninstall", "--root", m.h.Root(), "--timeout", "60s"}, extra...)
	return apptest.Run(ctx, apptest.OnHost(m.h), args...)
}

func (m *machine) record() *record.Record {
	m.t.Helper()
	rec, err := record.Load(m.h)
	if err != nil {
		m.t.Fatal(err)
	}
	return rec
}

func (m *machine) names() (stack, blackbox, secret string) {
	suffix := m.ns[len(m.ns)-6:]
	return "mon-" + suffix, "bb-" + suffix, "mon-" + suffix + "-grafana-admin"
}

func keys(rec *record.Record) []string {
	var ks []string
	for _, it := range rec.Items {
		if it.Kind != record.CRDs { // depends on what other tests left in the shared cluster
			ks = append(ks, it.Key())
		}
	}
	return ks
}

func TestInitRecordsWhatItCreated(t *testing.T) {
	m := newMachine(t)
	if code, _, stderr := m.init(context.Background()); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, stderr)
	}
	stack, blackbox, secret := m.names()
	rec := m.record()
	want := []string{
		"file:" + layout.Binary, "file:" + selfinstall.StampPath,
		"apt-package:nginx", "k3s", "k3s-link:/usr/local/bin/kubectl", "k3s-link:/usr/local/bin/crictl", "k3s-link:/usr/local/bin/ctr",
		"secret:" + m.ns + "/" + secret, // the namespace existed: not listed
		"file:" + layout.AlertmanagerConfig, "config-secret:" + m.ns + "/" + stack + "-alertmanager-homelab",
		"file:" + layout.ValuesStack, "helm-release:" + m.ns + "/" + stack,
		"file:" + layout.ValuesBlackbox, "helm-release:" + m.ns + "/" + blackbox,
		"systemd-unit:" + layout.PortForwardUnit, "nginx-site:" + layout.NginxSite, "file:" + layout.EffectiveConfig,
	}
	if got := keys(rec); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("record lists\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	k3sItem, _ := rec.Find("k3s")
	site, _ := rec.Find("nginx-site:" + layout.NginxSite)
	values, _ := rec.Find("file:" + layout.ValuesStack)
	if k3sItem.Version != k3sVersion || site.Modified || site.Link != layout.NginxSiteLink || site.Stamp != layout.NginxStamp ||
		strings.Join(values.Dirs, " ") != "/etc/homelab/values" {
		t.Errorf("items: %+v\n%+v\n%+v", k3sItem, site, values)
	}
	if info, err := os.Stat(m.h.Path(layout.Record)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("record file: %v", err)
	}
	// Alertmanager's configuration: private on disk, the same bytes in the
	// Secret the chart's Alertmanager reads.
	amFile, err := os.ReadFile(m.h.Path(layout.AlertmanagerConfig))
	if info, statErr := os.Stat(m.h.Path(layout.AlertmanagerConfig)); err != nil || statErr != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v, want mode 0600", layout.AlertmanagerConfig, err, statErr)
	}
	amSecret, err := kubetest.Typed(m.kube).CoreV1().Secrets(m.ns).Get(context.Background(), stack+"-alertmanager-homelab", metav1.GetOptions{})
	if err != nil || !bytes.Equal(amSecret.Data["alertmanager.yaml"], amFile) || len(amFile) == 0 {
		t.Errorf("Alertmanager Secret: %v; its alertmanager.yaml differs from %s", err, layout.AlertmanagerConfig)
	}
	before, _ := os.ReadFile(m.h.Path(layout.Record))

	// A second run changes nothing, the record included.
	m.h.Reset()
	m.expectMachine()
	if code, _, stderr := m.init(context.Background()); code != 0 {
		t.Fatalf("second init: exit %d\n%s", code, stderr)
	}
	if after, _ := os.ReadFile(m.h.Path(layout.Record)); string(after) != string(before) {
		t.Errorf("the second run changed the record:\n%s\nwas\n%s", after, before)
	}
	if c := m.h.Changes(); len(c) != 0 {
		t.Errorf("second run wrote %v", c)
	}
}

func TestInterruptedInitKeepsARecordOfWhatItDid(t *testing.T) {
	m := newMachine(t)
	ctx, cancel := context.WithCancel(context.Background())
	m.onCmd = func(c host.Cmd) {
		if strings.Join(c.Args, " ") == "enable --now k3s" {
			cancel()
		}
	}
	if code, _, stderr := m.init(ctx); code != 130 {
		t.Fatalf("exit %d, want 130\n%s", code, stderr)
	}
	if got := strings.Join(keys(m.record()), " "); got != "file:"+layout.Binary+" file:"+selfinstall.StampPath+" apt-package:nginx k3s" {
		t.Errorf("record after the interruption: %s", got)
	}
}

// uniqueCRD adds a CRD only this test's chart has (in the charts' group, the only one
// uninstall trusts a record to name), so that uninstall --crds
// deletes nothing other tests in the shared cluster use.
func uniqueCRD(name string) func(*chart.Chart) {
	return func(ch *chart.Chart) {
		ch.Files = append(ch.Files, &chart.File{Name: "crds/crd-" + name + ".yaml", Data: []byte(fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %[1]ss.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {plural: %[1]ss, singular: %[1]s, kind: W%[1]s}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object}
`, name))})
	}
}

// ensureFixtureCRD creates the fixture chart's CRD unless another test did:
// this test's init then does not create it, so its uninstall never deletes
// it from under other tests.
func ensureFixtureCRD(t *testing.T, c *kube.Client) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "testdata/charts/kube-prometheus-stack/crds/crd-fixturewidgets.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := kube.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kubetest.Dynamic(c).Resource(kube.CRDResource).Create(context.Background(), objs[0], metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// expectUninstall answers the commands uninstall runs on the box.
func (m *machine) expectUninstall() {
	h := m.h
	unit := "grafana-portforward.service"
	h.Expect("systemctl", "disable", "--now", unit).Do(func(host.Cmd) ([]byte, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.units[unit] = false
		return nil, nil
	})
	h.Expect("systemctl", "daemon-reload")
	// nginx -t over what is enabled now: homelab's site is gone.
	h.Expect("nginx", "-t").Do(func(host.Cmd) ([]byte, error) {
		dir := m.t.TempDir()
		conf := fmt.Sprintf("pid %[1]s/nginx.pid;\nerror_log %[1]s/error.log;\nevents {}\nhttp {\n  access_log off;\n  include %[2]s/*;\n}\n",
			dir, m.h.Path("/etc/nginx/sites-enabled"))
		confPath := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		out, err := exec.Command(m.nginx, "-t", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath).CombinedOutput()
		if err != nil {
			return out, hosttest.Exit(1)
		}
		return out, nil
	})
	h.Expect("systemctl", "try-reload-or-restart", "nginx")
}

func (m *machine) releases(t *testing.T) int {
	t.Helper()
	// Helm keeps a release's revisions in Secrets labelled owner=helm and its status.
	rels, err := kubetest.Typed(m.kube).CoreV1().Secrets(m.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "owner=helm,status=deployed"})
	if err != nil {
		t.Fatal(err)
	}
	return len(rels.Items)
}

func TestUninstallRemovesWhatInitCreatedAndOnlyThat(t *testing.T) {
	m := newMachine(t)
	ctx := context.Background()
	ensureFixtureCRD(t, m.kube)
	crd := fmt.Sprintf("u%d", time.Now().UnixNano()%1_000_000_000)
	charts := helmtest.Package(t, helmtest.Variant{Name: "kube-prometheus-stack", Mutate: uniqueCRD(crd)}, helmtest.Variant{Name: "prometheus-blackbox-exporter"})
	cfg, _ := os.ReadFile(m.config)
	cfg = regexp.MustCompile(`chartRepo: .*`).ReplaceAll(cfg, []byte("chartRepo: "+charts.ServeRepo(t)))
	if err := os.WriteFile(m.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	crdName := crd + "s.monitoring.coreos.com"
	t.Cleanup(func() {
		_ = kubetest.Dynamic(m.kube).Resource(kube.CRDResource).Delete(context.Background(), crdName, metav1.DeleteOptions{})
	})
	// A site of the user's was where homelab writes its own.
	const mine = "# the user's own site\nserver { listen 8080; }\n"
	m.write(layout.NginxSite, mine, 0o644)

	if code, _, stderr := m.init(ctx); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, stderr)
	}
	crds, ok := m.record().Find("crds:" + m.ns + "/mon-" + m.ns[len(m.ns)-6:])
	if !ok || strings.Join(crds.Names, " ") != crdName {
		t.Fatalf("recorded CRDs %+v, want only %s (the fixture CRD existed before)", crds, crdName)
	}

	// A dry run shows the plan and changes nothing.
	m.h.Reset()
	code, stdout, stderr := m.uninstall(ctx, "--dry-run")
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"~ [", "helm uninstall mon-", "put back the original from " + record.OriginalPath(layout.NginxSite),
		"systemctl disable --now grafana-portforward.service", "kept k3s " + k3sVersion, "--delete-data deletes it", "would change; nothing was changed"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run lacks %q:\n%s", want, stdout)
		}
	}
	if c := m.h.Changes(); len(c) != 0 || m.releases(t) != 2 {
		t.Fatalf("the dry run wrote %v or removed releases", c)
	}

	// uninstall: the site, unit, releases and files go; what holds data, k3s and nginx stay.
	m.h.Reset()
	m.expectUninstall()
	code, _, stderr = m.uninstall(ctx)
	if code != 0 {
		t.Fatalf("uninstall: exit %d\n%s", code, stderr)
	}
	if n := m.releases(t); n != 0 {
		t.Errorf("%d releases left", n)
	}
	for _, p := range []string{layout.NginxSiteLink, layout.NginxStamp, layout.PortForwardUnit, layout.ValuesStack, layout.ValuesBlackbox, layout.EffectiveConfig, "/etc/homelab"} {
		if _, err := os.Lstat(m.h.Path(p)); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", p, err)
		}
	}
	if data, _ := os.ReadFile(m.h.Path(layout.NginxSite)); string(data) != mine {
		t.Errorf("the user's site was not put back:\n%s", data)
	}
	for _, p := range []string{k3s.BinaryPath, k3s.UnitPath, "/usr/sbin/nginx", k3s.CommandLink("kubectl")} {
		if _, err := os.Lstat(m.h.Path(p)); err != nil {
			t.Errorf("%s was removed without being asked: %v", p, err)
		}
	}
	if _, err := os.Lstat(m.h.Path(layout.Binary)); err == nil {
		t.Errorf("the homelab binary init installed is still at %s", layout.Binary)
	}
	_, _, secret := m.names()
	if _, err := kubetest.Typed(m.kube).CoreV1().Secrets(m.ns).Get(ctx, secret, metav1.GetOptions{}); err != nil {
		t.Errorf("the Grafana admin Secret was deleted without --delete-data: %v", err)
	}
	if _, err := kubetest.Dynamic(m.kube).Resource(kube.CRDResource).Get(ctx, crdName, metav1.GetOptions{}); err != nil {
		t.Errorf("the CRD was deleted without --crds: %v", err)
	}
	if got := strings.Join(keys(m.record()), " "); got != fmt.Sprintf("apt-package:nginx k3s k3s-link:/usr/local/bin/kubectl k3s-link:/usr/local/bin/crictl k3s-link:/usr/local/bin/ctr secret:%s/%s", m.ns, secret) {
		t.Errorf("the record should list only what was kept, lists %s", got)
	}
	if !strings.Contains(stderr, "Removed what homelab installed.") || !strings.Contains(stderr, "k3s "+k3sVersion+" (--k3s)") {
		t.Errorf("summary:\n%s", stderr)
	}

	// Again: nothing to do, no command, no write.
	m.h.Reset()
	code, _, stderr = m.uninstall(ctx)
	if code != 0 || !strings.Contains(stderr, "Nothing to remove") {
		t.Fatalf("second uninstall: exit %d\n%s", code, stderr)
	}
	if c, cmds := m.h.Changes(), m.h.CommandLines(); len(c) != 0 || len(cmds) != 0 {
		t.Errorf("second uninstall wrote %v, ran %v", c, cmds)
	}

	// Everything, on request: data, CRDs, k3s, nginx. Then the record goes.
	m.h.Reset()
	m.h.Expect("systemctl", "disable", "--now", "k3s")
	m.h.Expect("systemctl", "daemon-reload")
	m.h.Expect("rm", "-rf", "--one-file-system", "/var/lib/rancher/k3s", "/etc/rancher/k3s").Do(func(c host.Cmd) ([]byte, error) {
		for _, p := range c.Args[2:] {
			os.RemoveAll(m.h.Path(p))
		}
		return nil, nil
	})
	m.h.Expect("dpkg-query", "-W", "-f=${db:Status-Status}", "nginx").Do(func(host.Cmd) ([]byte, error) {
		if _, err := os.Stat(m.h.Path("/usr/sbin/nginx")); err != nil {
			return []byte("dpkg-query: no packages found matching nginx\n"), hosttest.Exit(1)
		}
		return []byte("installed"), nil
	}).Times(2)
	m.h.ExpectFunc("apt-get remove nginx", func(c host.Cmd) bool {
		return c.Name == "apt-get" && strings.Join(c.Args, " ") == "remove -y -q nginx" && strings.Join(c.Env, " ") == "DEBIAN_FRONTEND=noninteractive"
	}).Do(func(host.Cmd) ([]byte, error) { return nil, os.Remove(m.h.Path("/usr/sbin/nginx")) })
	code, _, stderr = m.uninstall(ctx, "--crds", "--k3s", "--delete-data", "--packages")
	if code != 0 {
		t.Fatalf("uninstall of everything: exit %d\n%s", code, stderr)
	}
	for _, p := range []string{k3s.BinaryPath, k3s.UnitPath, layout.K3sKubeconfig, layout.Record, k3s.CommandLink("kubectl"), k3s.CommandLink("ctr")} {
		if _, err := os.Lstat(m.h.Path(p)); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", p, err)
		}
	}
	if _, err := kubetest.Typed(m.kube).CoreV1().Secrets(m.ns).Get(ctx, secret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Secret: %v, want it deleted", err)
	}
	if got, err := kubetest.Dynamic(m.kube).Resource(kube.CRDResource).Get(ctx, crdName, metav1.GetOptions{}); err == nil && got.GetDeletionTimestamp() == nil {
		t.Error("the CRD was not deleted")
	}
	if !strings.Contains(stderr, "keep running until the next reboot") {
		t.Errorf("no word about the pods k3s leaves running:\n%s", stderr)
	}

	// Without a record there is nothing to do, and uninstall says why.
	m.h.Reset()
	code, _, stderr = m.uninstall(ctx)
	if code != 1 || !strings.Contains(stderr, "nothing recorded: homelab did not install anything here (or the record /var/lib/homelab/installed.json was removed)") {
		t.Fatalf("exit %d, want 1 and why:\n%s", code, stderr)
	}
	if c := m.h.Changes(); len(c) != 0 {
		t.Errorf("wrote %v", c)
	}
}

func TestUninstallPutsTheSiteBackWhenNginxRejectsTheRest(t *testing.T) {
	m := newMachine(t)
	ctx := context.Background()
	if code, _, stderr := m.init(ctx); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, stderr)
	}
	site, _ := os.ReadFile(m.h.Path(layout.NginxSite))
	m.h.Reset()
	m.h.Expect("nginx", "-t").Returns("nginx: [emerg] unknown directive \"oops\" in /etc/nginx/sites-enabled/other.conf:1\n", hosttest.Exit(1))
	code, _, stderr := m.uninstall(ctx)
	if code != 1 || !strings.Contains(stderr, "nginx -t rejected the configuration without homelab's site") || !strings.Contains(stderr, "other.conf") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if now, _ := os.ReadFile(m.h.Path(layout.NginxSite)); string(now) != string(site) {
		t.Error("the site was not put back")
	}
	if target, err := os.Readlink(m.h.Path(layout.NginxSiteLink)); err != nil || target != layout.NginxSiteTarget {
		t.Errorf("the site was not enabled again: %q %v", target, err)
	}
	if _, err := os.Stat(m.h.Path(layout.PortForwardUnit)); err != nil {
		t.Errorf("steps after the failure ran: %v", err)
	}
	if m.releases(t) != 2 {
		t.Error("releases were uninstalled after the failure")
	}
}
