package uninstall_test

import (
	"context"
	"fmt"
	"os"
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
	"github.com/homelab-dev/homelab/pkg/testutil"
)

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

func TestUninstallRemovesWhatInitCreatedAndOnlyThat(t *testing.T) {
	m := apptest.NewMachine(t)
	ctx := context.Background()
	ensureFixtureCRD(t, m.Kube)
	crd := fmt.Sprintf("u%d", time.Now().UnixNano()%1_000_000_000)
	charts := helmtest.Package(t, helmtest.Variant{Name: "kube-prometheus-stack", Mutate: uniqueCRD(crd)}, helmtest.Variant{Name: "prometheus-blackbox-exporter"})
	cfg, _ := os.ReadFile(m.Config)
	cfg = regexp.MustCompile(`chartRepo: .*`).ReplaceAll(cfg, []byte("chartRepo: "+charts.ServeRepo(t)))
	if err := os.WriteFile(m.Config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	crdName := crd + "s.monitoring.coreos.com"
	t.Cleanup(func() {
		_ = kubetest.Dynamic(m.Kube).Resource(kube.CRDResource).Delete(context.Background(), crdName, metav1.DeleteOptions{})
	})
	// A site of the user's was where homelab writes its own.
	const mine = "# the user's own site\nserver { listen 8080; }\n"
	m.Write(layout.NginxSite, mine, 0o644)

	if code, _, stderr := m.Init(ctx); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, stderr)
	}
	crds, ok := m.Record().Find("crds:" + m.Namespace + "/mon-" + m.Namespace[len(m.Namespace)-6:])
	if !ok || strings.Join(crds.Names, " ") != crdName {
		t.Fatalf("recorded CRDs %+v, want only %s (the fixture CRD existed before)", crds, crdName)
	}

	// A dry run shows the plan and changes nothing.
	m.Host.Reset()
	code, stdout, stderr := m.Uninstall(ctx, "--dry-run")
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"~ [", "helm uninstall mon-", "put back the original from " + record.OriginalPath(layout.NginxSite),
		"systemctl disable --now grafana-portforward.service", "kept k3s " + apptest.K3sVersion, "--delete-data deletes it", "would change; nothing was changed"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run lacks %q:\n%s", want, stdout)
		}
	}
	if c := m.Host.Changes(); len(c) != 0 || m.DeployedReleases(t) != 2 {
		t.Fatalf("the dry run wrote %v or removed releases", c)
	}

	// uninstall: the site, unit, releases and files go; what holds data, k3s and nginx stay.
	m.Host.Reset()
	m.ExpectUninstall()
	code, _, stderr = m.Uninstall(ctx)
	if code != 0 {
		t.Fatalf("uninstall: exit %d\n%s", code, stderr)
	}
	if n := m.DeployedReleases(t); n != 0 {
		t.Errorf("%d releases left", n)
	}
	for _, p := range []string{layout.NginxSiteLink, layout.NginxStamp, layout.PortForwardUnit, layout.ValuesStack, layout.ValuesBlackbox, layout.EffectiveConfig, "/etc/homelab"} {
		if _, err := os.Lstat(m.Host.Path(p)); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", p, err)
		}
	}
	if data, _ := os.ReadFile(m.Host.Path(layout.NginxSite)); string(data) != mine {
		t.Errorf("the user's site was not put back:\n%s", data)
	}
	for _, p := range []string{k3s.BinaryPath, k3s.UnitPath, "/usr/sbin/nginx", k3s.CommandLink("kubectl")} {
		if _, err := os.Lstat(m.Host.Path(p)); err != nil {
			t.Errorf("%s was removed without being asked: %v", p, err)
		}
	}
	if _, err := os.Lstat(m.Host.Path(layout.Binary)); err == nil {
		t.Errorf("the homelab binary init installed is still at %s", layout.Binary)
	}
	_, _, secret := m.ReleaseNames()
	if _, err := kubetest.Typed(m.Kube).CoreV1().Secrets(m.Namespace).Get(ctx, secret, metav1.GetOptions{}); err != nil {
		t.Errorf("the Grafana admin Secret was deleted without --delete-data: %v", err)
	}
	if _, err := kubetest.Dynamic(m.Kube).Resource(kube.CRDResource).Get(ctx, crdName, metav1.GetOptions{}); err != nil {
		t.Errorf("the CRD was deleted without --crds: %v", err)
	}
	if got := strings.Join(m.RecordKeys(), " "); got != fmt.Sprintf("apt-package:nginx k3s k3s-link:/usr/local/bin/kubectl k3s-link:/usr/local/bin/crictl k3s-link:/usr/local/bin/ctr secret:%s/%s", m.Namespace, secret) {
		t.Errorf("the record should list only what was kept, lists %s", got)
	}
	if !strings.Contains(stderr, "Removed what homelab installed.") || !strings.Contains(stderr, "k3s "+apptest.K3sVersion+" (--k3s)") {
		t.Errorf("summary:\n%s", stderr)
	}

	// Again: nothing to do, no command, no write.
	m.Host.Reset()
	code, _, stderr = m.Uninstall(ctx)
	if code != 0 || !strings.Contains(stderr, "Nothing to remove") {
		t.Fatalf("second uninstall: exit %d\n%s", code, stderr)
	}
	if c, cmds := m.Host.Changes(), m.Host.CommandLines(); len(c) != 0 || len(cmds) != 0 {
		t.Errorf("second uninstall wrote %v, ran %v", c, cmds)
	}

	// Everything, on request: data, CRDs, k3s, nginx. Then the record goes.
	m.Host.Reset()
	m.Host.Expect("systemctl", "disable", "--now", "k3s")
	m.Host.Expect("systemctl", "daemon-reload")
	m.Host.Expect("rm", "-rf", "--one-file-system", "/var/lib/rancher/k3s", "/etc/rancher/k3s").Do(func(c host.Cmd) ([]byte, error) {
		for _, p := range c.Args[2:] {
			os.RemoveAll(m.Host.Path(p))
		}
		return nil, nil
	})
	m.Host.Expect("dpkg-query", "-W", "-f=${db:Status-Status}", "nginx").Do(func(host.Cmd) ([]byte, error) {
		if _, err := os.Stat(m.Host.Path("/usr/sbin/nginx")); err != nil {
			return []byte("dpkg-query: no packages found matching nginx\n"), hosttest.Exit(1)
		}
		return []byte("installed"), nil
	}).Times(2)
	m.Host.ExpectFunc("apt-get remove nginx", func(c host.Cmd) bool {
		return c.Name == "apt-get" && strings.Join(c.Args, " ") == "remove -y -q nginx" && strings.Join(c.Env, " ") == "DEBIAN_FRONTEND=noninteractive"
	}).Do(func(host.Cmd) ([]byte, error) { return nil, os.Remove(m.Host.Path("/usr/sbin/nginx")) })
	code, _, stderr = m.Uninstall(ctx, "--crds", "--k3s", "--delete-data", "--packages")
	if code != 0 {
		t.Fatalf("uninstall of everything: exit %d\n%s", code, stderr)
	}
	for _, p := range []string{k3s.BinaryPath, k3s.UnitPath, layout.K3sKubeconfig, layout.Record, k3s.CommandLink("kubectl"), k3s.CommandLink("ctr")} {
		if _, err := os.Lstat(m.Host.Path(p)); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", p, err)
		}
	}
	if _, err := kubetest.Typed(m.Kube).CoreV1().Secrets(m.Namespace).Get(ctx, secret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Secret: %v, want it deleted", err)
	}
	if got, err := kubetest.Dynamic(m.Kube).Resource(kube.CRDResource).Get(ctx, crdName, metav1.GetOptions{}); err == nil && got.GetDeletionTimestamp() == nil {
		t.Error("the CRD was not deleted")
	}
	if !strings.Contains(stderr, "keep running until the next reboot") {
		t.Errorf("no word about the pods k3s leaves running:\n%s", stderr)
	}

	// Without a record there is nothing to do, and uninstall says why.
	m.Host.Reset()
	code, _, stderr = m.Uninstall(ctx)
	if code != 1 || !strings.Contains(stderr, "nothing recorded: homelab did not install anything here (or the record /var/lib/homelab/installed.json was removed)") {
		t.Fatalf("exit %d, want 1 and why:\n%s", code, stderr)
	}
	if c := m.Host.Changes(); len(c) != 0 {
		t.Errorf("wrote %v", c)
	}
}

func TestUninstallPutsTheSiteBackWhenNginxRejectsTheRest(t *testing.T) {
	m := apptest.NewMachine(t)
	ctx := context.Background()
	if code, _, stderr := m.Init(ctx); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, stderr)
	}
	site, _ := os.ReadFile(m.Host.Path(layout.NginxSite))
	m.Host.Reset()
	m.Host.Expect("nginx", "-t").Returns("nginx: [emerg] unknown directive \"oops\" in /etc/nginx/sites-enabled/other.conf:1\n", hosttest.Exit(1))
	code, _, stderr := m.Uninstall(ctx)
	if code != 1 || !strings.Contains(stderr, "nginx -t rejected the configuration without homelab's site") || !strings.Contains(stderr, "other.conf") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if now, _ := os.ReadFile(m.Host.Path(layout.NginxSite)); string(now) != string(site) {
		t.Error("the site was not put back")
	}
	if target, err := os.Readlink(m.Host.Path(layout.NginxSiteLink)); err != nil || target != layout.NginxSiteTarget {
		t.Errorf("the site was not enabled again: %q %v", target, err)
	}
	if _, err := os.Stat(m.Host.Path(layout.PortForwardUnit)); err != nil {
		t.Errorf("steps after the failure ran: %v", err)
	}
	if m.DeployedReleases(t) != 2 {
		t.Error("releases were uninstalled after the failure")
	}
}
