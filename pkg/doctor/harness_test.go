package doctor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/doctor/doctortest"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/render"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// fixedNow is the clock of every test that does not ask for another.
var fixedNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func parseConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("homelab.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func rendered(t testing.TB, cfg *config.Config, path string) []byte {
	t.Helper()
	r, err := render.New()
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.Named(cfg, path)
	if err != nil {
		t.Fatal(err)
	}
	return f.Data
}

// runChecks runs every check for env and returns results by ID. It also
// holds every finding to doctor's promises: one line, and a fix for every
// warn and fail.
func runChecks(t testing.TB, env Env, timeout time.Duration) (map[string]Result, Report) {
	t.Helper()
	if env.Now == nil {
		env.Now = func() time.Time { return fixedNow }
	}
	rep, err := Run(context.Background(), env, Runner{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Result{}
	for _, r := range rep.Results {
		byID[r.ID] = r
		if (r.Status == StatusWarn || r.Status == StatusFail) && (r.Fix == "" || r.Fix == "see the finding") {
			t.Errorf("%s: %s without a fix: %s", r.ID, r.Status, r.Message)
		}
		if strings.Contains(r.Message, "\n") || r.Message == "" {
			t.Errorf("%s: message is not one line: %q", r.ID, r.Message)
		}
	}
	return byID, rep
}

// expect asserts a check's status and that its message (and fix) contain
// the given substrings.
func expect(t testing.TB, res map[string]Result, id string, status Status, msgHas string, fixHas ...string) {
	t.Helper()
	r, ok := res[id]
	if !ok {
		t.Errorf("no result for %s", id)
		return
	}
	if r.Status != status || !strings.Contains(r.Message, msgHas) {
		t.Errorf("%s: %s %q (fix %q); want %s with %q", id, r.Status, r.Message, r.Fix, status, msgHas)
		return
	}
	for _, f := range fixHas {
		if !strings.Contains(r.Fix, f) {
			t.Errorf("%s: fix %q lacks %q", id, r.Fix, f)
		}
	}
}

func portOf(t testing.TB, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(p, &n)
	return n
}

func serve(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// realNginx runs nginx on loopback test ports with a site as it is on the
// host's disk, changed only where a test must: the listen ports and the app
// upstream (the ClusterIP is not reachable here).
type realNginx struct {
	bin, dir            string
	httpPort, httpsPort int
	conf                string
}

func newRealNginx(t testing.TB) *realNginx {
	t.Helper()
	bin := testutil.NeedProgram(t, "nginx", "/usr/sbin/nginx")
	dir := t.TempDir()
	for _, d := range []string{"tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil { // workers run as nobody
		t.Fatal(err)
	}
	return &realNginx{bin: bin, dir: dir, httpPort: freePort(t), httpsPort: freePort(t)}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// configure writes nginx.conf around the host's site; certs maps certificate
// paths in the site to local files.
func (n *realNginx) configure(t testing.TB, cfg *config.Config, h *doctortest.Host, certs map[string]string) {
	t.Helper()
	site, err := h.ReadFile(layout.NginxSite)
	if err != nil {
		t.Fatal(err)
	}
	repl := []string{
		"    listen [::]:80;\n", "",
		"    listen [::]:443 ssl http2;\n", "",
		"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", n.httpPort),
		"listen 443 ssl http2;", fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", n.httpsPort),
		fmt.Sprintf("server %s:%d;", cfg.App.ClusterIP, cfg.App.Port), "server 127.0.0.1:1;",
	}
	for from, to := range certs {
		repl = append(repl, from, to)
	}
	sitePath := filepath.Join(n.dir, "homelab.conf")
	if err := os.WriteFile(sitePath, []byte(strings.NewReplacer(repl...).Replace(string(site))), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log;
events { worker_connections 64; }
http {
    access_log %[1]s/logs/access.log;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    include %[2]s;
}
`, n.dir, sitePath)
	n.conf = filepath.Join(n.dir, "nginx.conf")
	if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// `nginx -t` on the host is this nginx testing this configuration.
	h.On("nginx -t", func(ctx context.Context, c host.Cmd) ([]byte, error) {
		out, err := exec.CommandContext(ctx, n.bin, "-t", "-p", n.dir, "-e", filepath.Join(n.dir, "logs", "error.log"), "-c", n.conf).CombinedOutput()
		if err != nil {
			return out, &host.CmdError{Cmd: c, Err: err, Output: out}
		}
		return out, nil
	})
}

func (n *realNginx) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(n.bin, "-p", n.dir, "-e", filepath.Join(n.dir, "logs", "error.log"), "-c", n.conf, "-g", "daemon off;")
	testutil.StartDaemon(t, cmd, fmt.Sprintf("127.0.0.1:%d", n.httpPort))
}

func (n *realNginx) env(cfg *config.Config, h host.Host) Env {
	return Env{
		Config: cfg, Host: h,
		NginxHTTPAddr:  fmt.Sprintf("127.0.0.1:%d", n.httpPort),
		NginxHTTPSAddr: fmt.Sprintf("127.0.0.1:%d", n.httpsPort),
	}
}
