package init_test

import (
	"context"
	"os"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homelab-dev/homelab/pkg/app/apptest"
	"github.com/homelab-dev/homelab/pkg/certbot"
	"github.com/homelab-dev/homelab/pkg/grafana"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/k3s"
	"github.com/homelab-dev/homelab/pkg/kube/kubetest"
	"github.com/homelab-dev/homelab/pkg/layout"
)

func TestInitEndToEndThenNothingToDo(t *testing.T) {
	m := apptest.NewMachine(t)
	code, _, stderr := m.Init(context.Background())
	if code != 0 {
		t.Fatalf("first init: exit %d\n%s", code, stderr)
	}
	// k3s was downloaded and verified, the files written, the charts installed.
	if info, err := os.Stat(m.Host.Path(k3s.BinaryPath)); err != nil || info.Mode().Perm() != 0o755 {
		t.Fatalf("k3s binary: %v", err)
	}
	for _, p := range []string{layout.NginxSite, layout.PortForwardUnit, layout.ValuesStack, layout.ValuesBlackbox, layout.EffectiveConfig, k3s.UnitPath} {
		if _, err := os.Stat(m.Host.Path(p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	m.UnitsRunAnInstalledHomelab()
	for _, name := range k3s.Commands {
		if target, err := os.Readlink(m.Host.Path(k3s.CommandLink(name))); err != nil || target != k3s.BinaryPath {
			t.Errorf("%s: -> %q, %v; want a link to k3s as get.k3s.io makes", name, target, err)
		}
	}
	ctx := context.Background()
	// Helm keeps a release's revisions in Secrets labelled owner=helm and its status.
	rels, err := kubetest.Typed(m.Kube).CoreV1().Secrets(m.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,status=deployed"})
	if err != nil || len(rels.Items) != 2 {
		t.Fatalf("deployed releases: %d (%v), want the stack and the blackbox exporter", len(rels.Items), err)
	}
	secret, err := kubetest.Typed(m.Kube).CoreV1().Secrets(m.Namespace).Get(ctx, "mon-"+m.Namespace[len(m.Namespace)-6:]+"-grafana-admin", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	password := string(secret.Data[grafana.PasswordKey])
	if len(password) < 20 || strings.Contains(stderr, password) {
		t.Errorf("password %d characters; printed to a non-terminal stderr: %v", len(password), strings.Contains(stderr, password))
	}
	for _, want := range []string{"Your server is monitored", "http://blog.example.com/grafana/", "Dashboard: http://blog.example.com/grafana/d/homelab-", "homelab deploy-app"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr)
		}
	}

	// A second run on the converged box changes nothing and says so.
	m.Host.Reset()
	m.ExpectMachine()
	code, _, stderr = m.Init(ctx)
	if code != 0 {
		t.Fatalf("second init: exit %d\n%s", code, stderr)
	}
	if changes := m.Host.Changes(); len(changes) != 0 {
		t.Errorf("second run wrote %v", changes)
	}
	if !strings.Contains(stderr, "Everything is up to date; nothing changed.") || strings.Contains(stderr, " + [") {
		t.Errorf("second run did not report everything up to date:\n%s", stderr)
	}
	for _, c := range m.Host.CommandLines() {
		for _, mutating := range []string{"apt-get", "daemon-reload", "systemctl enable", "systemctl start", "systemctl restart", "reload-or-restart"} {
			if strings.Contains(c, mutating) {
				t.Errorf("second run ran %q", c)
			}
		}
	}
	// The secret's password was not replaced.
	again, _ := kubetest.Typed(m.Kube).CoreV1().Secrets(m.Namespace).Get(ctx, secret.Name, metav1.GetOptions{})
	if string(again.Data[grafana.PasswordKey]) != password {
		t.Error("a re-run replaced the Grafana password")
	}
}

func TestInitRefusesACorruptK3sDownload(t *testing.T) {
	m := apptest.NewMachine(t)
	m.CorruptK3s = true
	code, _, stderr := m.Init(context.Background())
	if code != 1 || !strings.Contains(stderr, "sha256") {
		t.Fatalf("exit %d, want a checksum error:\n%s", code, stderr)
	}
	if _, err := os.Stat(m.Host.Path(k3s.BinaryPath)); !os.IsNotExist(err) {
		t.Errorf("a corrupt k3s binary was written: %v", err)
	}
}

func TestInitRestoresTheSiteWhenNginxRejectsIt(t *testing.T) {
	m := apptest.NewMachine(t)
	const old = "# the site that was there before\nserver { listen 8080; }\n"
	m.Write(layout.NginxSite, old, 0o644)
	m.RejectNginx(true)
	code, _, stderr := m.Init(context.Background())
	if code != 1 || !strings.Contains(stderr, "nginx -t rejected the new site") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if data, _ := os.ReadFile(m.Host.Path(layout.NginxSite)); string(data) != old {
		t.Errorf("the previous site was not restored:\n%s", data)
	}
	for _, c := range m.Host.CommandLines() {
		if strings.Contains(c, "reload-or-restart nginx") {
			t.Error("nginx was reloaded with a rejected site")
		}
	}
	// Fixed, a re-run finishes the job.
	m.RejectNginx(false)
	if code, _, stderr := m.Init(context.Background()); code != 0 {
		t.Fatalf("re-run: exit %d\n%s", code, stderr)
	}
}

func TestInitInterruptedThenFinished(t *testing.T) {
	m := apptest.NewMachine(t)
	ctx, cancel := context.WithCancel(context.Background())
	// Ctrl-C arrives while k3s starts: the current step finishes, no other starts.
	m.OnCommand(func(c host.Cmd) {
		if strings.Join(c.Args, " ") == "enable --now k3s" {
			cancel()
		}
	})
	code, _, stderr := m.Init(ctx)
	if code != 130 || !strings.Contains(stderr, "interrupted") {
		t.Fatalf("exit %d, want 130:\n%s", code, stderr)
	}
	if _, err := os.Stat(m.Host.Path(layout.NginxSite)); !os.IsNotExist(err) {
		t.Error("steps after the interruption ran")
	}
	m.OnCommand(nil)
	if code, _, stderr := m.Init(context.Background()); code != 0 {
		t.Fatalf("re-run after interruption: exit %d\n%s", code, stderr)
	}
}

func TestInitRefusesAConcurrentRun(t *testing.T) {
	m := apptest.NewMachine(t)
	unlock, err := m.Host.Lock(layout.Lock)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	code, _, stderr := m.Init(context.Background())
	if code != 1 || !strings.Contains(stderr, "another homelab run is in progress") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if changes := m.Host.Changes(); len(changes) != 0 {
		t.Errorf("a refused run wrote %v", changes)
	}
}

func TestInitHelmTimeoutThenRecovers(t *testing.T) {
	m := apptest.NewMachineWithoutKubelet(t)
	code, _, stderr := m.Init(context.Background(), "--timeout", "3s")
	if code != 1 || !strings.Contains(stderr, "kube-prometheus-stack") || !strings.Contains(stderr, "removed again") {
		t.Fatalf("exit %d, want a clear chart install failure:\n%s", code, stderr)
	}
	// The pods can start now (say, the image finished pulling): a re-run finishes.
	m.StartKubelet()
	if code, _, stderr := m.Init(context.Background()); code != 0 {
		t.Fatalf("re-run: exit %d\n%s", code, stderr)
	}
}

func TestInitWithLetsEncrypt(t *testing.T) {
	m := apptest.NewMachine(t)
	cfg, _ := os.ReadFile(m.Config)
	cfg = append(cfg, []byte("email: me@example.com\ntls: {mode: certbot}\n")...)
	if err := os.WriteFile(m.Config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := m.Init(context.Background())
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	site, _ := os.ReadFile(m.Host.Path(layout.NginxSite))
	for _, want := range []string{"listen 443 ssl http2;", "ssl_certificate     /etc/letsencrypt/live/blog.example.com/fullchain.pem;", "return 301 https://$host$request_uri;"} {
		if !strings.Contains(string(site), want) {
			t.Errorf("final site lacks %q", want)
		}
	}
	if hook, err := os.Stat(m.Host.Path(certbot.RenewHook)); err != nil || hook.Mode().Perm() != 0o755 {
		t.Errorf("renewal hook: %v", err)
	}
	if !strings.Contains(stderr, "https://blog.example.com/grafana/") {
		t.Errorf("summary does not give the HTTPS URL:\n%s", stderr)
	}
	m.Host.Reset()
	m.ExpectMachine()
	if code, _, stderr := m.Init(context.Background()); code != 0 || !strings.Contains(stderr, "nothing changed") {
		t.Fatalf("second run: exit %d\n%s", code, stderr)
	}
}
