package doctor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/doctor/doctortest"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/nginx/nginxtest"
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

// realNginx is nginxtest's sandbox serving a site as it is on the host's
// disk, changed only where a test must: the listen ports (the sandbox's
// loopback ones) and the app upstream (the ClusterIP is not reachable here).
type realNginx struct{ *nginxtest.Sandbox }

func newRealNginx(t testing.TB) *realNginx {
	t.Helper()
	return &realNginx{nginxtest.New(t)}
}

func freePort(t testing.TB) int { return testutil.FreePort(t) }

// configure writes nginx.conf around the host's site; certs maps certificate
// paths in the site to local files.
func (n *realNginx) configure(t testing.TB, cfg *config.Config, h *doctortest.Host, certs map[string]string) {
	t.Helper()
	site, err := h.ReadFile(layout.NginxSite)
	if err != nil {
		t.Fatal(err)
	}
	repl := []string{fmt.Sprintf("server %s:%d;", cfg.App.ClusterIP, cfg.App.Port), "server 127.0.0.1:1;"}
	for from, to := range certs {
		repl = append(repl, from, to)
	}
	n.Configure(site, repl...)
	// `nginx -t` on the host is this nginx testing this configuration (the
	// fake host wraps its failure in a *host.CmdError, as on a machine).
	h.On("nginx -t", func(ctx context.Context, _ host.Cmd) ([]byte, error) { return n.Test(ctx) })
}

// start runs nginx until the test that made it ends.
func (n *realNginx) start(testing.TB) { n.Start() }

func (n *realNginx) env(cfg *config.Config, h host.Host) Env {
	return Env{
		Config: cfg, Host: h,
		NginxHTTPAddr:  n.HTTPAddr(),
		NginxHTTPSAddr: n.HTTPSAddr(),
	}
}
