package init_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homelab-dev/homelab/pkg/app/apptest"
	"github.com/homelab-dev/homelab/pkg/certbot"
	"github.com/homelab-dev/homelab/pkg/grafana"
	"github.com/homelab-dev/homelab/pkg/helm/helmtest"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/host/hosttest"
	"github.com/homelab-dev/homelab/pkg/k3s"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/kube/kubetest"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

const k3sVersion = "v1.37.2+k3s1"

// machine is a fresh Ubuntu box as init sees it: files under a temp root,
// commands answered by a recorder that plays systemd, apt and k3s, the real
// test cluster standing in for k3s, real nginx for `nginx -t`, fixture
// charts from a local repository, and k3s from a local download server.
type machine struct {
	t       *testing.T
	h       *hosttest.Host
	kube    *kube.Client
	config  string // homelab.yaml
	ns      string
	k3sURL  string
	nginx   string
	corrupt bool // serve a k3s binary that does not match the sums file

	mu       sync.Mutex
	k3sUp    bool
	units    map[string]bool // active
	nginxBad bool            // make `nginx -t` fail
	onCmd    func(host.Cmd)  // hook, for interruptions
}

func newMachine(t *testing.T) *machine {
	m := newMachineWithoutKubelet(t)
	m.startKubelet()
	return m
}

// startKubelet starts the kubelet stand-in: pods become Ready from now on.
func (m *machine) startKubelet() {
	ctx, cancel := context.WithCancel(context.Background())
	m.t.Cleanup(cancel)
	go kubetest.KeepPodsReady(ctx, m.kube, m.ns, helmtest.ReadySelector)
}

func newMachineWithoutKubelet(t *testing.T) *machine {
	t.Helper()
	m := &machine{t: t, h: hosttest.New(t), kube: kubetest.Client(t), units: map[string]bool{}}
	m.nginx = testutil.NeedProgram(t, "nginx", "/usr/sbin/nginx")
	m.ns = kubetest.Namespace(t, m.kube)

	m.write("/etc/os-release", "PRETTY_NAME=\"Ubuntu 24.04.3 LTS\"\nID=ubuntu\nID_LIKE=debian\n", 0o644)
	m.write("/proc/meminfo", "MemTotal:        3914000 kB\n", 0o644)
	m.k3sURL = m.serveK3s()
	charts := helmtest.Package(t, helmtest.Variant{Name: "kube-prometheus-stack"}, helmtest.Variant{Name: "prometheus-blackbox-exporter"})
	repo := charts.ServeRepo(t)
	m.config = filepath.Join(t.TempDir(), "homelab.yaml")
	if err := os.WriteFile(m.config, []byte(fmt.Sprintf(`apiVersion: homelab/v1alpha1
domain: blog.example.com
monitoring:
  namespace: %s
  release: mon-%s
  chartRepo: %s
  blackbox: {release: bb-%s}
`, m.ns, m.ns[len(m.ns)-6:], repo, m.ns[len(m.ns)-6:])), 0o644); err != nil {
		t.Fatal(err)
	}
	m.expectMachine()
	return m
}

func (m *machine) write(p, data string, mode os.FileMode) {
	m.t.Helper()
	local := m.h.Path(p)
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		m.t.Fatal(err)
	}
	if err := os.WriteFile(local, []byte(data), mode); err != nil {
		m.t.Fatal(err)
	}
}

// serveK3s serves a k3s release: a stand-in binary and its sums file.
func (m *machine) serveK3s() string {
	binary := []byte("#!/bin/sh\necho 'k3s version " + k3sVersion + " (0123abcd)'\n")
	sum := sha256.Sum256(binary)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/sha256sum-amd64.txt"):
			fmt.Fprintf(w, "%s  k3s\n", hex.EncodeToString(sum[:]))
		case strings.HasSuffix(r.URL.Path, "/k3s"):
			if m.corrupt {
				w.Write(append([]byte("#!/bin/sh\necho tampered\n"), binary...))
				return
			}
			w.Write(binary)
		default:
			http.NotFound(w, r)
		}
	}))
	m.t.Cleanup(srv.Close)
	return srv.URL
}

// expectMachine answers every command init may run on the box.
func (m *machine) expectMachine() {
	h := m.h
	h.Expect("df", "-Pk", "/").Returns("Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 41152736 9000000 30000000 24% /\n", nil).AnyTimes()
	h.Expect("ss", "-Hltnp").Returns("", nil).AnyTimes()
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	h.ExpectFunc("apt-get update", func(c host.Cmd) bool {
		return c.Name == "apt-get" && c.Args[0] == "update" && strings.Join(c.Env, " ") == env[0]
	}).AnyTimes()
	h.ExpectFunc("apt-get install nginx", func(c host.Cmd) bool {
		return c.Name == "apt-get" && c.Args[0] == "install" && c.Args[len(c.Args)-1] == "nginx"
	}).Do(func(host.Cmd) ([]byte, error) {
		m.write("/usr/sbin/nginx", "#!/bin/sh\n", 0o755)
		return nil, nil
	}).AnyTimes()
	h.Expect(k3s.BinaryPath, "--version").Do(func(host.Cmd) ([]byte, error) {
		data, err := os.ReadFile(m.h.Path(k3s.BinaryPath))
		if err != nil {
			return nil, err
		}
		return exec.Command("sh", "-c", string(data)).Output()
	}).AnyTimes()
	show := k3s.ShowCommand()
	h.Expect(show.Name, show.Args...).Do(func(host.Cmd) ([]byte, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.k3sUp {
			return []byte("ActiveState=active\nUnitFileState=enabled\nNeedDaemonReload=no\nExecMainStartTimestamp=@" + fmt.Sprint(time.Now().Unix()+3600) + "\n"), nil
		}
		return []byte("ActiveState=inactive\nUnitFileState=\nNeedDaemonReload=no\nExecMainStartTimestamp=\n"), nil
	}).AnyTimes()
	h.Expect("systemctl", "daemon-reload").Do(m.hook).AnyTimes()
	// Starting k3s: the test cluster's kubeconfig appears and the node registers.
	h.Expect("systemctl", "enable", "--now", "k3s").Do(func(c host.Cmd) ([]byte, error) {
		m.mu.Lock()
		m.k3sUp = true
		m.mu.Unlock()
		kc, err := os.ReadFile(testutil.TestEnv(m.t, "HOMELAB_TEST_KUBECONFIG"))
		if err != nil {
			return nil, err
		}
		m.write(layout.K3sKubeconfig, string(kc), 0o600)
		kubetest.RegisterReadyNode(m.t, m.kube, "node-"+m.ns)
		return m.hook(c)
	}).AnyTimes()
	unit := "grafana-portforward.service"
	h.Expect("systemctl", "enable", unit).AnyTimes()
	for _, verb := range []string{"start", "restart"} {
		h.Expect("systemctl", verb, unit).Do(func(c host.Cmd) ([]byte, error) {
			m.mu.Lock()
			m.units[unit] = true
			m.mu.Unlock()
			return m.hook(c)
		}).AnyTimes()
	}
	h.Expect("systemctl", "is-enabled", unit).Do(func(host.Cmd) ([]byte, error) { return m.unitState(unit, "enabled", "disabled", 1) }).AnyTimes()
	h.Expect("systemctl", "is-active", unit).Do(func(host.Cmd) ([]byte, error) { return m.unitState(unit, "active", "inactive", 3) }).AnyTimes()
	// The forwarder's status line, as systemd keeps it: forwarding once started.
	h.Expect("systemctl", "show", "--value", "-p", "StatusText", unit).Do(func(host.Cmd) ([]byte, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.units[unit] {
			return []byte("forwarding 127.0.0.1:3100 to pod monitoring/lightweight-monitoring-grafana-0:3000\n"), nil
		}
		return []byte("\n"), nil
	}).AnyTimes()
	h.Expect("nginx", "-t").Do(m.nginxTest).AnyTimes()
	h.ExpectFunc("apt-get install certbot", func(c host.Cmd) bool {
		return c.Name == "apt-get" && c.Args[0] == "install" && c.Args[len(c.Args)-1] == "certbot"
	}).Do(func(host.Cmd) ([]byte, error) {
		m.write("/usr/bin/certbot", "#!/bin/sh\n", 0o755)
		return nil, nil
	}).AnyTimes()
	// certbot: Let's Encrypt checks the challenge over HTTP, then issues.
	h.ExpectFunc("certbot certonly", func(c host.Cmd) bool { return c.Name == "certbot" && c.Args[0] == "certonly" }).Do(m.certbot).AnyTimes()
	h.Expect("systemctl", "reload-or-restart", "nginx").Do(m.hook).AnyTimes()
}

// certbot stands in for Let's Encrypt: it requires the site Nginx serves to
// offer the challenge directory from the webroot, then writes a certificate.
func (m *machine) certbot(c host.Cmd) ([]byte, error) {
	site, err := os.ReadFile(m.h.Path(layout.NginxSiteLink))
	if err != nil || !strings.Contains(string(site), "location /.well-known/acme-challenge/") || !strings.Contains(strings.Join(c.Args, " "), "--webroot -w "+layout.ACMEWebroot) {
		return []byte("Challenge failed for domain"), hosttest.Exit(1)
	}
	if _, err := os.Stat(m.h.Path(layout.ACMEWebroot + "/.well-known/acme-challenge")); err != nil {
		return []byte("webroot missing"), hosttest.Exit(1)
	}
	dir := m.h.Path("/etc/letsencrypt/live/blog.example.com")
	os.MkdirAll(dir, 0o755)
	cert, key := selfSigned(m.t, "blog.example.com")
	m.write("/etc/letsencrypt/live/blog.example.com/fullchain.pem", cert, 0o644)
	m.write("/etc/letsencrypt/live/blog.example.com/privkey.pem", key, 0o600)
	return []byte("Successfully received certificate."), nil
}

func (m *machine) hook(c host.Cmd) ([]byte, error) {
	m.mu.Lock()
	hook := m.onCmd
	m.mu.Unlock()
	if hook != nil {
		hook(c)
	}
	return nil, nil
}

func (m *machine) unitState(unit, yes, no string, code int) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.units[unit] {
		return []byte(yes + "\n"), nil
	}
	return []byte(no + "\n"), hosttest.Exit(code)
}

// nginxTest runs the real `nginx -t` over the site init wrote under root.
func (m *machine) nginxTest(host.Cmd) ([]byte, error) {
	m.mu.Lock()
	bad := m.nginxBad
	m.mu.Unlock()
	dir := m.t.TempDir()
	data, err := os.ReadFile(m.h.Path(layout.NginxSiteLink))
	if err != nil {
		return nil, err
	}
	// Certificates live at absolute host paths; here they are under root.
	site := filepath.Join(dir, "site.conf")
	os.WriteFile(site, []byte(strings.ReplaceAll(string(data), " /etc/letsencrypt/", " "+m.h.Path("/etc/letsencrypt")+"/")), 0o644)
	if bad {
		site = filepath.Join(dir, "broken.conf")
		os.WriteFile(site, []byte("server { listen 80 }\n"), 0o644)
	}
	conf := fmt.Sprintf("pid %[1]s/nginx.pid;\nerror_log %[1]s/error.log;\nevents {}\nhttp {\n  access_log off;\n  include %[2]s;\n}\n", dir, site)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	out, err := exec.Command(m.nginx, "-t", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath).CombinedOutput()
	if err != nil {
		return out, hosttest.Exit(1)
	}
	return out, nil
}

func (m *machine) init(ctx context.Context, extra ...string) (int, string, string) {
	m.t.Helper()
	args := append([]string{"init", "--root", m.h.Root(), "--config", m.config, "--k3s-base-url", m.k3sURL, "--timeout", "60s"}, extra...)
	return apptest.Run(ctx, apptest.OnHost(m.h), args...)
}

// unitsRunAnInstalledHomelab checks that the binary the Grafana unit runs
// is on the machine, executable, and this very homelab (the test binary
// runs init): a unit naming a missing binary fails with 203/EXEC.
func (m *machine) unitsRunAnInstalledHomelab() {
	m.t.Helper()
	unit, err := os.ReadFile(m.h.Path(layout.PortForwardUnit))
	if err != nil {
		m.t.Fatal(err)
	}
	exec := regexp.MustCompile(`(?m)^ExecStart=(\S+) port-forward `).FindSubmatch(unit)
	if exec == nil {
		m.t.Fatalf("no ExecStart in the unit:\n%s", unit)
	}
	bin := string(exec[1])
	info, err := os.Stat(m.h.Path(bin))
	if err != nil || info.Mode().Perm()&0o111 == 0 {
		m.t.Fatalf("the unit runs %s, which init did not install (%v)", bin, err)
	}
	self, err := os.Executable()
	if err != nil {
		m.t.Fatal(err)
	}
	want, _ := os.ReadFile(self)
	got, _ := os.ReadFile(m.h.Path(bin))
	if sha256.Sum256(want) != sha256.Sum256(got) {
		m.t.Errorf("%s is not the homelab that ran init", bin)
	}
	out, err := testutil.VerifyUnit(m.t, layout.PortForwardUnit,
		testutil.File{Path: bin, Data: got, Mode: info.Mode().Perm()},
		testutil.File{Path: layout.PortForwardUnit, Data: unit, Mode: 0o644})
	if err != nil || out != "" {
		m.t.Errorf("systemd-analyze verify of the unit as installed: %v\n%s", err, out)
	}
}

func TestInitEndToEndThenNothingToDo(t *testing.T) {
	m := newMachine(t)
	code, _, stderr := m.init(context.Background())
	if code != 0 {
		t.Fatalf("first init: exit %d\n%s", code, stderr)
	}
	// k3s was downloaded and verified, the files written, the charts installed.
	if info, err := os.Stat(m.h.Path(k3s.BinaryPath)); err != nil || info.Mode().Perm() != 0o755 {
		t.Fatalf("k3s binary: %v", err)
	}
	for _, p := range []string{layout.NginxSite, layout.PortForwardUnit, layout.ValuesStack, layout.ValuesBlackbox, layout.EffectiveConfig, k3s.UnitPath} {
		if _, err := os.Stat(m.h.Path(p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	m.unitsRunAnInstalledHomelab()
	for _, name := range k3s.Commands {
		if target, err := os.Readlink(m.h.Path(k3s.CommandLink(name))); err != nil || target != k3s.BinaryPath {
			t.Errorf("%s: -> %q, %v; want a link to k3s as get.k3s.io makes", name, target, err)
		}
	}
	ctx := context.Background()
	// Helm keeps a release's revisions in Secrets labelled owner=helm and its status.
	rels, err := kubetest.Typed(m.kube).CoreV1().Secrets(m.ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,status=deployed"})
	if err != nil || len(rels.Items) != 2 {
		t.Fatalf("deployed releases: %d (%v), want the stack and the blackbox exporter", len(rels.Items), err)
	}
	secret, err := kubetest.Typed(m.kube).CoreV1().Secrets(m.ns).Get(ctx, "mon-"+m.ns[len(m.ns)-6:]+"-grafana-admin", metav1.GetOptions{})
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
	m.h.Reset()
	m.expectMachine()
	code, _, stderr = m.init(ctx)
	if code != 0 {
		t.Fatalf("second init: exit %d\n%s", code, stderr)
	}
	if changes := m.h.Changes(); len(changes) != 0 {
		t.Errorf("second run wrote %v", changes)
	}
	if !strings.Contains(stderr, "Everything is up to date; nothing changed.") || strings.Contains(stderr, " + [") {
		t.Errorf("second run did not report everything up to date:\n%s", stderr)
	}
	for _, c := range m.h.CommandLines() {
		for _, mutating := range []string{"apt-get", "daemon-reload", "systemctl enable", "systemctl start", "systemctl restart", "reload-or-restart"} {
			if strings.Contains(c, mutating) {
				t.Errorf("second run ran %q", c)
			}
		}
	}
	// The secret's password was not replaced.
	again, _ := kubetest.Typed(m.kube).CoreV1().Secrets(m.ns).Get(ctx, secret.Name, metav1.GetOptions{})
	if string(again.Data[grafana.PasswordKey]) != password {
		t.Error("a re-run replaced the Grafana password")
	}
}

func TestInitRefusesACorruptK3sDownload(t *testing.T) {
	m := newMachine(t)
	m.corrupt = true
	code, _, stderr := m.init(context.Background())
	if code != 1 || !strings.Contains(stderr, "sha256") {
		t.Fatalf("exit %d, want a checksum error:\n%s", code, stderr)
	}
	if _, err := os.Stat(m.h.Path(k3s.BinaryPath)); !os.IsNotExist(err) {
		t.Errorf("a corrupt k3s binary was written: %v", err)
	}
}

func TestInitRestoresTheSiteWhenNginxRejectsIt(t *testing.T) {
	m := newMachine(t)
	const old = "# the site that was there before\nserver { listen 8080; }\n"
	m.write(layout.NginxSite, old, 0o644)
	m.nginxBad = true
	code, _, stderr := m.init(context.Background())
	if code != 1 || !strings.Contains(stderr, "nginx -t rejected the new site") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if data, _ := os.ReadFile(m.h.Path(layout.NginxSite)); string(data) != old {
		t.Errorf("the previous site was not restored:\n%s", data)
	}
	for _, c := range m.h.CommandLines() {
		if strings.Contains(c, "reload-or-restart nginx") {
			t.Error("nginx was reloaded with a rejected site")
		}
	}
	// Fixed, a re-run finishes the job.
	m.nginxBad = false
	if code, _, stderr := m.init(context.Background()); code != 0 {
		t.Fatalf("re-run: exit %d\n%s", code, stderr)
	}
}

func TestInitInterruptedThenFinished(t *testing.T) {
	m := newMachine(t)
	ctx, cancel := context.WithCancel(context.Background())
	// Ctrl-C arrives while k3s starts: the current step finishes, no other starts.
	m.onCmd = func(c host.Cmd) {
		if strings.Join(c.Args, " ") == "enable --now k3s" {
			cancel()
		}
	}
	code, _, stderr := m.init(ctx)
	if code != 130 || !strings.Contains(stderr, "interrupted") {
		t.Fatalf("exit %d, want 130:\n%s", code, stderr)
	}
	if _, err := os.Stat(m.h.Path(layout.NginxSite)); !os.IsNotExist(err) {
		t.Error("steps after the interruption ran")
	}
	m.onCmd = nil
	if code, _, stderr := m.init(context.Background()); code != 0 {
		t.Fatalf("re-run after interruption: exit %d\n%s", code, stderr)
	}
}

func TestInitRefusesAConcurrentRun(t *testing.T) {
	m := newMachine(t)
	unlock, err := m.h.Lock(layout.Lock)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	code, _, stderr := m.init(context.Background())
	if code != 1 || !strings.Contains(stderr, "another homelab run is in progress") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if changes := m.h.Changes(); len(changes) != 0 {
		t.Errorf("a refused run wrote %v", changes)
	}
}

func TestInitHelmTimeoutThenRecovers(t *testing.T) {
	m := newMachineWithoutKubelet(t)
	code, _, stderr := m.init(context.Background(), "--timeout", "3s")
	if code != 1 || !strings.Contains(stderr, "kube-prometheus-stack") || !strings.Contains(stderr, "removed again") {
		t.Fatalf("exit %d, want a clear chart install failure:\n%s", code, stderr)
	}
	// The pods can start now (say, the image finished pulling): a re-run finishes.
	m.startKubelet()
	if code, _, stderr := m.init(context.Background()); code != 0 {
		t.Fatalf("re-run: exit %d\n%s", code, stderr)
	}
}

func TestInitWithLetsEncrypt(t *testing.T) {
	m := newMachine(t)
	cfg, _ := os.ReadFile(m.config)
	cfg = append(cfg, []byte("email: me@example.com\ntls: {mode: certbot}\n")...)
	if err := os.WriteFile(m.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := m.init(context.Background())
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	site, _ := os.ReadFile(m.h.Path(layout.NginxSite))
	for _, want := range []string{"listen 443 ssl http2;", "ssl_certificate     /etc/letsencrypt/live/blog.example.com/fullchain.pem;", "return 301 https://$host$request_uri;"} {
		if !strings.Contains(string(site), want) {
			t.Errorf("final site lacks %q", want)
		}
	}
	if hook, err := os.Stat(m.h.Path(certbot.RenewHook)); err != nil || hook.Mode().Perm() != 0o755 {
		t.Errorf("renewal hook: %v", err)
	}
	if !strings.Contains(stderr, "https://blog.example.com/grafana/") {
		t.Errorf("summary does not give the HTTPS URL:\n%s", stderr)
	}
	m.h.Reset()
	m.expectMachine()
	if code, _, stderr := m.init(context.Background()); code != 0 || !strings.Contains(stderr, "nothing changed") {
		t.Fatalf("second run: exit %d\n%s", code, stderr)
	}
}

// selfSigned returns a throwaway certificate and key in PEM.
func selfSigned(t *testing.T, domain string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
}
