package doctor

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/doctor/doctortest"
	"github.com/homelab-dev/homelab/pkg/layout"
)

// proxyTo is a minimal stand-in for Nginx's proxy_pass without a URI part.
func proxyTo(next http.Handler) http.Handler { return doctortest.Nginx(next) }

func TestGrafanaChecks(t *testing.T) {
	cfg := parseConfig(t, "")
	graf := doctortest.Grafana("/grafana")
	noSubPath := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { // serve_from_sub_path = false
		if r.URL.Path == "/api/health" {
			fmt.Fprint(w, `{"database":"ok","version":"13.2.0"}`)
			return
		}
		http.NotFound(w, r)
	})
	badGateway := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nginx")
		http.Error(w, "bad gateway", http.StatusBadGateway)
	})
	appOnly := doctortest.Nginx(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>blog</html>") }))
	for name, c := range map[string]struct {
		nginx, grafana http.Handler
		want           map[string][]string // id -> status, message part, fix part
	}{
		"healthy": {proxyTo(graf), graf, map[string][]string{
			"grafana.local": {"ok", "Grafana answers on 127.0.0.1:3100/grafana/api/health"},
			"grafana.nginx": {"ok", "Grafana answers at http://homelab.example.com/grafana/api/health"},
		}},
		"prefix stripped": {doctortest.StrippingNginx("/grafana", graf), graf, map[string][]string{
			"grafana.nginx": {"fail", "redirect loop /grafana/api/health → /grafana/api/health: Nginx strips the /grafana prefix", "proxy_pass http://homelab_grafana;"},
		}},
		"root_url loop": {proxyTo(doctortest.LoopingGrafana("/grafana")), graf, map[string][]string{
			"grafana.nginx": {"fail", "redirect loop: /grafana/api/health → /grafana/login → /grafana/api/health", "root_url http://homelab.example.com/grafana/"},
		}},
		"no sub-path": {proxyTo(noSubPath), noSubPath, map[string][]string{
			"grafana.local": {"fail", "Grafana answers at /api/health, not /grafana/api/health: it does not serve from its sub-path", "serve_from_sub_path: true"},
			"grafana.nginx": {"skipped", "needs grafana.local, which failed"},
		}},
		"port-forward dead": {proxyTo(graf), nil, map[string][]string{
			"grafana.local": {"fail", "nothing listens on 127.0.0.1:3100", "systemctl restart grafana-portforward.service"},
		}},
		"nginx 502": {badGateway, graf, map[string][]string{
			"grafana.nginx": {"fail", "Nginx answers 502 for /grafana/api/health: it cannot reach Grafana on 127.0.0.1:3100", "systemctl restart grafana-portforward.service"},
		}},
		"location missing": {appOnly, graf, map[string][]string{
			"grafana.nginx": {"fail", "is answered, but not by Grafana", "homelab init"},
		}},
	} {
		t.Run(name, func(t *testing.T) {
			env, _ := healthyEnv(t, cfg, c.nginx, c.grafana)
			res, _ := runChecks(t, env, time.Second)
			for id, w := range c.want {
				expect(t, res, id, Status(w[0]), w[1], w[2:]...)
			}
		})
	}
}

func TestGrafanaFilesAndUnit(t *testing.T) {
	cfg := parseConfig(t, "")
	graf := doctortest.Grafana("/grafana")

	env, h := healthyEnv(t, cfg, proxyTo(graf), graf)
	res, _ := runChecks(t, env, time.Second)
	expect(t, res, "grafana.root-url", StatusOK, "root_url http://homelab.example.com/grafana/ with serve_from_sub_path")
	expect(t, res, "grafana.unit", StatusOK, "")
	expect(t, res, "grafana.portforward", StatusOK, "grafana-portforward.service is active")

	values := strings.Replace(string(rendered(t, cfg, layout.ValuesStack)), "root_url: http://homelab.example.com/grafana/", "root_url: http://homelab.example.com/", 1)
	h.Write(layout.ValuesStack, []byte(values), 0o644)
	unit := strings.Replace(string(rendered(t, cfg, layout.PortForwardUnit)), "RestartSec=5", "RestartSec=30", 1)
	h.Write(layout.PortForwardUnit, []byte(unit), 0o644)
	h.On("systemctl is-active grafana-portforward.service", doctortest.Failure("failed\n", 3))
	res, _ = runChecks(t, env, time.Second)
	expect(t, res, "grafana.root-url", StatusFail, `grafana.ini.server.root_url is "http://homelab.example.com/", want "http://homelab.example.com/grafana/"`, "homelab init")
	expect(t, res, "grafana.unit", StatusWarn, `differs from what homelab renders for this configuration, from line 32: "RestartSec=30"`, "homelab init")
	expect(t, res, "grafana.portforward", StatusFail, "grafana-portforward.service is failed", "systemctl enable --now grafana-portforward.service")
	expect(t, res, "grafana.local", StatusSkipped, "needs grafana.portforward, which failed")

	if err := h.Remove(layout.PortForwardUnit); err != nil {
		t.Fatal(err)
	}
	if err := h.Remove(layout.ValuesStack); err != nil {
		t.Fatal(err)
	}
	res, _ = runChecks(t, env, time.Second)
	expect(t, res, "grafana.unit", StatusFail, "/etc/systemd/system/grafana-portforward.service is missing", "homelab init")
	expect(t, res, "grafana.root-url", StatusFail, "kube-prometheus-stack.yaml is missing", "homelab init")
}

func TestNginxSiteLinkAndUpstreams(t *testing.T) {
	cfg := parseConfig(t, "")
	env, h := healthyEnv(t, cfg, nil, nil)
	h.Link("/etc/nginx/sites-available/default", layout.NginxSiteLink)
	res, _ := runChecks(t, env, time.Second)
	expect(t, res, "nginx.site", StatusFail, "points at /etc/nginx/sites-available/default", "sudo ln -sfn ../sites-available/homelab.conf /etc/nginx/sites-enabled/homelab.conf")

	h.Link(layout.NginxSiteTarget, layout.NginxSiteLink)
	other := parseConfig(t, "app:\n  clusterIP: 10.43.0.99\nmonitoring:\n  grafana: {localPort: 3200}\n")
	h.Write(layout.NginxSite, rendered(t, other, layout.NginxSite), 0o644)
	res, _ = runChecks(t, env, time.Second)
	expect(t, res, "nginx.site", StatusOK, "")
	expect(t, res, "nginx.upstreams", StatusFail, "location /grafana/ sends Grafana to 127.0.0.1:3200, but the configuration says 127.0.0.1:3100", "homelab init")
	expect(t, res, "nginx.drift", StatusWarn, "from line", "homelab init")

	if err := h.Remove(layout.NginxSite); err != nil {
		t.Fatal(err)
	}
	res, _ = runChecks(t, env, time.Second)
	expect(t, res, "nginx.site", StatusFail, "homelab.conf is missing", "homelab init")
	for _, id := range []string{"nginx.drift", "nginx.upstreams", "nginx.grafana-prefix"} {
		expect(t, res, id, StatusSkipped, "needs nginx.site, which failed")
	}
}

func TestParseNginx(t *testing.T) {
	s, err := parseSite([]byte(`# comment { ;
upstream g { server localhost:3100; }
server {
    listen 443 ssl; # trailing
    location = /grafana { return 301 /grafana/; }
    location ^~ /grafana/ { proxy_pass "http://g/grafana/"; }
    location / { proxy_pass http://10.43.0.30:3000; add_header X-A 'a;b'; }
}`))
	if err != nil {
		t.Fatal(err)
	}
	pp, _ := s.location("/grafana/").proxyPass()
	if pp.hostport != "g" || pp.uri != "/grafana/" || fmt.Sprint(s.backends("g")) != "[localhost:3100]" {
		t.Errorf("grafana location: %+v, backends %v", pp, s.backends("g"))
	}
	pp, _ = s.location("/").proxyPass()
	if pp.hostport != "10.43.0.30:3000" || pp.uri != "" {
		t.Errorf("app location: %+v", pp)
	}
	for _, bad := range []string{"server {", "server { listen 80; }}", "listen 80", `add_header "x;`} {
		if _, err := parseSite([]byte(bad)); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}
