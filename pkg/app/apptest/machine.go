package apptest

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

	"github.com/homelab-dev/homelab/pkg/helm/helmtest"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/host/hosttest"
	"github.com/homelab-dev/homelab/pkg/k3s"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/kube/kubetest"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/nginx/nginxtest"
	"github.com/homelab-dev/homelab/pkg/record"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// K3sVersion is the version the stand-in k3s binary reports.
const K3sVersion = "v1.37.2+k3s1"

// Machine is a fresh Ubuntu box as init sees it: files under a temp root,
// commands answered by a recorder that plays systemd, apt and k3s, the real
// test cluster standing in for k3s, real nginx for `nginx -t`, fixture
// charts from a local repository, and k3s from a local download server.
// init and uninstall run on it with Init and Uninstall.
type Machine struct {
	Host      *hosttest.Host
	Kube      *kube.Client
	Config    string // homelab.yaml
	Namespace string // the monitoring namespace, this test's own
	// CorruptK3s serves a k3s binary that does not match the sums file.
	CorruptK3s bool

	t      *testing.T
	k3sURL string

	mu       sync.Mutex
	k3sUp    bool
	units    map[string]bool // active
	nginxBad bool            // make `nginx -t` fail
	onCmd    func(host.Cmd)  // hook, for interruptions
}

// NewMachine is a fresh box whose pods become Ready (the kubelet stand-in
// runs from the start).
func NewMachine(t *testing.T) *Machine {
	m := NewMachineWithoutKubelet(t)
	m.StartKubelet()
	return m
}

// StartKubelet starts the kubelet stand-in: pods become Ready from now on.
func (m *Machine) StartKubelet() {
	ctx, cancel := context.WithCancel(context.Background())
	m.t.Cleanup(cancel)
	go kubetest.KeepPodsReady(ctx, m.Kube, m.Namespace, helmtest.ReadySelector)
}

// NewMachineWithoutKubelet is a fresh box whose pods stay unready until
// StartKubelet.
func NewMachineWithoutKubelet(t *testing.T) *Machine {
	t.Helper()
	m := &Machine{t: t, Host: hosttest.New(t), Kube: kubetest.Client(t), units: map[string]bool{}}
	testutil.NeedProgram(t, "nginx", "/usr/sbin/nginx") // before anything runs: nginx -t is the real one
	m.Namespace = kubetest.Namespace(t, m.Kube)

	m.Write("/etc/os-release", "PRETTY_NAME=\"Ubuntu 24.04.3 LTS\"\nID=ubuntu\nID_LIKE=debian\n", 0o644)
	m.Write("/proc/meminfo", "MemTotal:        3914000 kB\n", 0o644)
	m.k3sURL = m.serveK3s()
	charts := helmtest.Package(t, helmtest.Variant{Name: "kube-prometheus-stack"}, helmtest.Variant{Name: "prometheus-blackbox-exporter"})
	repo := charts.ServeRepo(t)
	m.Config = filepath.Join(t.TempDir(), "homelab.yaml")
	if err := os.WriteFile(m.Config, []byte(fmt.Sprintf(`apiVersion: homelab/v1alpha1
domain: blog.example.com
monitoring:
  namespace: %s
  release: mon-%s
  chartRepo: %s
  blackbox: {release: bb-%s}
`, m.Namespace, m.Namespace[len(m.Namespace)-6:], repo, m.Namespace[len(m.Namespace)-6:])), 0o644); err != nil {
		t.Fatal(err)
	}
	m.ExpectMachine()
	return m
}

// Write puts a file at host path p.
func (m *Machine) Write(p, data string, mode os.FileMode) {
	m.t.Helper()
	local := m.Host.Path(p)
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		m.t.Fatal(err)
	}
	if err := os.WriteFile(local, []byte(data), mode); err != nil {
		m.t.Fatal(err)
	}
}

// serveK3s serves a k3s release: a stand-in binary and its sums file.
func (m *Machine) serveK3s() string {
	binary := []byte("#!/bin/sh\necho 'k3s version " + K3sVersion + " (0123abcd)'\n")
	sum := sha256.Sum256(binary)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/sha256sum-amd64.txt"):
			fmt.Fprintf(w, "%s  k3s\n", hex.EncodeToString(sum[:]))
		case strings.HasSuffix(r.URL.Path, "/k3s"):
			if m.CorruptK3s {
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

// ExpectMachine answers every command init may run on the box (again after
// Host.Reset).
func (m *Machine) ExpectMachine() {
	h := m.Host
	h.Expect("df", "-Pk", "/").Returns("Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 41152736 9000000 30000000 24% /\n", nil).AnyTimes()
	h.Expect("ss", "-Hltnp").Returns("", nil).AnyTimes()
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	h.ExpectFunc("apt-get update", func(c host.Cmd) bool {
		return c.Name == "apt-get" && c.Args[0] == "update" && strings.Join(c.Env, " ") == env[0]
	}).AnyTimes()
	h.ExpectFunc("apt-get install nginx", func(c host.Cmd) bool {
		return c.Name == "apt-get" && c.Args[0] == "install" && c.Args[len(c.Args)-1] == "nginx"
	}).Do(func(host.Cmd) ([]byte, error) {
		m.Write("/usr/sbin/nginx", "#!/bin/sh\n", 0o755)
		return nil, nil
	}).AnyTimes()
	h.Expect(k3s.BinaryPath, "--version").Do(func(host.Cmd) ([]byte, error) {
		data, err := os.ReadFile(m.Host.Path(k3s.BinaryPath))
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
		m.Write(layout.K3sKubeconfig, string(kc), 0o600)
		kubetest.RegisterReadyNode(m.t, m.Kube, "node-"+m.Namespace)
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
	h.Expect("nginx", "-t").DoContext(m.nginxTest).AnyTimes()
	h.ExpectFunc("apt-get install certbot", func(c host.Cmd) bool {
		return c.Name == "apt-get" && c.Args[0] == "install" && c.Args[len(c.Args)-1] == "certbot"
	}).Do(func(host.Cmd) ([]byte, error) {
		m.Write("/usr/bin/certbot", "#!/bin/sh\n", 0o755)
		return nil, nil
	}).AnyTimes()
	// certbot: Let's Encrypt checks the challenge over HTTP, then issues.
	h.ExpectFunc("certbot certonly", func(c host.Cmd) bool { return c.Name == "certbot" && c.Args[0] == "certonly" }).Do(m.certbot).AnyTimes()
	h.Expect("systemctl", "reload-or-restart", "nginx").Do(m.hook).AnyTimes()
}

// certbot stands in for Let's Encrypt: it requires the site Nginx serves to
// offer the challenge directory from the webroot, then writes a certificate.
func (m *Machine) certbot(c host.Cmd) ([]byte, error) {
	site, err := os.ReadFile(m.Host.Path(layout.NginxSiteLink))
	if err != nil || !strings.Contains(string(site), "location /.well-known/acme-challenge/") || !strings.Contains(strings.Join(c.Args, " "), "--webroot -w "+layout.ACMEWebroot) {
		return []byte("Challenge failed for domain"), hosttest.Exit(1)
	}
	if _, err := os.Stat(m.Host.Path(layout.ACMEWebroot + "/.well-known/acme-challenge")); err != nil {
		return []byte("webroot missing"), hosttest.Exit(1)
	}
	cert, key := SelfSigned(m.t, "blog.example.com")
	m.Write("/etc/letsencrypt/live/blog.example.com/fullchain.pem", cert, 0o644)
	m.Write("/etc/letsencrypt/live/blog.example.com/privkey.pem", key, 0o600)
	return []byte("Successfully received certificate."), nil
}

func (m *Machine) hook(c host.Cmd) ([]byte, error) {
	m.mu.Lock()
	hook := m.onCmd
	m.mu.Unlock()
	if hook != nil {
		hook(c)
	}
	return nil, nil
}

func (m *Machine) unitState(unit, yes, no string, code int) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.units[unit] {
		return []byte(yes + "\n"), nil
	}
	return []byte(no + "\n"), hosttest.Exit(code)
}

// nginxTest runs the real `nginx -t` over the site init wrote under root.
func (m *Machine) nginxTest(ctx context.Context, _ host.Cmd) ([]byte, error) {
	m.mu.Lock()
	bad := m.nginxBad
	m.mu.Unlock()
	sandbox := nginxtest.New(m.t)
	if bad {
		sandbox.Configure([]byte("server { listen 80 }\n"))
		return sandbox.Test(ctx)
	}
	site, err := os.ReadFile(m.Host.Path(layout.NginxSiteLink))
	if err != nil {
		return nil, err
	}
	// Certificates live at absolute host paths; here they are under root.
	var certs []string
	if strings.Contains(string(site), " /etc/letsencrypt/") {
		certs = []string{" /etc/letsencrypt/", " " + m.Host.Path("/etc/letsencrypt") + "/"}
	}
	sandbox.Configure(site, certs...)
	return sandbox.Test(ctx)
}

// Init runs homelab init on the box with its configuration and k3s server.
func (m *Machine) Init(ctx context.Context, extra ...string) (int, string, string) {
	m.t.Helper()
	args := append([]string{"init", "--root", m.Host.Root(), "--config", m.Config, "--k3s-base-url", m.k3sURL, "--timeout", "60s"}, extra...)
	return Run(ctx, OnHost(m.Host), args...)
}

// UnitsRunAnInstalledHomelab checks that the binary the Grafana unit runs
// is on the Machine, executable, and this very homelab (the test binary
// runs init): a unit naming a missing binary fails with 203/EXEC.
func (m *Machine) UnitsRunAnInstalledHomelab() {
	m.t.Helper()
	unit, err := os.ReadFile(m.Host.Path(layout.PortForwardUnit))
	if err != nil {
		m.t.Fatal(err)
	}
	exec := regexp.MustCompile(`(?m)^ExecStart=(\S+) port-forward `).FindSubmatch(unit)
	if exec == nil {
		m.t.Fatalf("no ExecStart in the unit:\n%s", unit)
	}
	bin := string(exec[1])
	info, err := os.Stat(m.Host.Path(bin))
	if err != nil || info.Mode().Perm()&0o111 == 0 {
		m.t.Fatalf("the unit runs %s, which init did not install (%v)", bin, err)
	}
	self, err := os.Executable()
	if err != nil {
		m.t.Fatal(err)
	}
	want, _ := os.ReadFile(self)
	got, _ := os.ReadFile(m.Host.Path(bin))
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

// Uninstall runs homelab uninstall on the box.
func (m *Machine) Uninstall(ctx context.Context, extra ...string) (int, string, string) {
	m.t.Helper()
	args := append([]string{"uninstall", "--root", m.Host.Root(), "--timeout", "60s"}, extra...)
	return Run(ctx, OnHost(m.Host), args...)
}

// Record is what init recorded on the box.
func (m *Machine) Record() *record.Record {
	m.t.Helper()
	rec, err := record.Load(m.Host)
	if err != nil {
		m.t.Fatal(err)
	}
	return rec
}

// RecordKeys are the keys of what the record lists, in its order, except
// CRDs: which of those a test's init creates depends on what other tests
// left in the shared cluster.
func (m *Machine) RecordKeys() []string {
	var ks []string
	for _, it := range m.Record().Items {
		if it.Kind != record.CRDs {
			ks = append(ks, it.Key())
		}
	}
	return ks
}

// ReleaseNames are the box's release names and its Grafana admin Secret.
func (m *Machine) ReleaseNames() (stack, blackbox, secret string) {
	suffix := m.Namespace[len(m.Namespace)-6:]
	return "mon-" + suffix, "bb-" + suffix, "mon-" + suffix + "-grafana-admin"
}

// ExpectUninstall answers the commands uninstall runs on the box.
func (m *Machine) ExpectUninstall() {
	h := m.Host
	unit := "grafana-portforward.service"
	h.Expect("systemctl", "disable", "--now", unit).Do(func(host.Cmd) ([]byte, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.units[unit] = false
		return nil, nil
	})
	h.Expect("systemctl", "daemon-reload")
	// nginx -t over what is enabled now: homelab's site is gone.
	h.Expect("nginx", "-t").DoContext(func(ctx context.Context, _ host.Cmd) ([]byte, error) {
		enabled, err := filepath.Glob(m.Host.Path("/etc/nginx/sites-enabled/*"))
		if err != nil {
			return nil, err
		}
		var sites []byte
		for _, p := range enabled {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			sites = append(append(sites, data...), '\n')
		}
		sandbox := nginxtest.New(m.t)
		sandbox.Configure(sites)
		return sandbox.Test(ctx)
	})
	h.Expect("systemctl", "try-reload-or-restart", "nginx")
}

// DeployedReleases counts the Helm releases deployed in the box's namespace.
func (m *Machine) DeployedReleases(t *testing.T) int {
	t.Helper()
	// Helm keeps a release's revisions in Secrets labelled owner=helm and its status.
	rels, err := kubetest.Typed(m.Kube).CoreV1().Secrets(m.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: "owner=helm,status=deployed"})
	if err != nil {
		t.Fatal(err)
	}
	return len(rels.Items)
}

// SelfSigned returns a throwaway certificate and key in PEM.
func SelfSigned(t *testing.T, domain string) (string, string) {
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

// RejectNginx makes `nginx -t` fail (a broken configuration) or pass again.
func (m *Machine) RejectNginx(bad bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nginxBad = bad
}

// OnCommand calls fn before answering each systemctl command (daemon-reload,
// starts, reloads): where a test interrupts a run. nil removes it.
func (m *Machine) OnCommand(fn func(host.Cmd)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onCmd = fn
}
