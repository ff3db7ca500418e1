package doctor

import (
	"strings"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/doctor/doctortest"
	"github.com/homelab-dev/homelab/pkg/layout"
)

// nginxSetup is a converged host whose Grafana is a fake on a loopback port,
// with the site on disk changed by edit (nil: as rendered).
func nginxSetup(t *testing.T, yaml string, edit func(site string) string) (*config.Config, *doctortest.Host, *realNginx) {
	t.Helper()
	n := newRealNginx(t)
	cfg := parseConfig(t, yaml)
	graf := serve(t, doctortest.Grafana(cfg.Monitoring.Grafana.Path))
	cfg.Monitoring.Grafana.LocalPort = portOf(t, graf.Listener.Addr().String())
	h := doctortest.NewHost(t).Healthy(cfg, 4)
	if edit != nil {
		site := string(rendered(t, cfg, layout.NginxSite))
		changed := edit(site)
		if changed == site {
			t.Fatal("the edit changed nothing")
		}
		h.Write(layout.NginxSite, []byte(changed), 0o644)
	}
	return cfg, h, n
}

func TestRealNginxGoodSite(t *testing.T) {
	cfg, h, n := nginxSetup(t, "", nil)
	n.configure(t, cfg, h, nil)
	n.start(t)
	res, rep := runChecks(t, n.env(cfg, h), 2*time.Second)
	for _, id := range []string{"nginx.config", "nginx.site", "nginx.drift", "nginx.upstreams", "nginx.grafana-prefix",
		"host.ports", "grafana.unit", "grafana.portforward", "grafana.local", "grafana.nginx", "grafana.root-url",
		"host.ram", "host.disk", "host.clock", "k3s.service", "k3s.kubeconfig", "k3s.addons", "app.image"} {
		expect(t, res, id, StatusOK, "")
	}
	expect(t, res, "grafana.nginx", StatusOK, "Grafana answers at http://homelab.example.com/grafana/api/health")
	expect(t, res, "nginx.upstreams", StatusOK, "/ → 10.43.0.30:3000")
	expect(t, res, "k3s.api", StatusSkipped, "cluster checks not available")
	expect(t, res, "app.deployment", StatusSkipped, "cluster checks not available")
	expect(t, res, "monitoring.prometheus", StatusSkipped, "--prometheus-url")
	expect(t, res, "tls.certificate", StatusSkipped, "tls.mode: none")
	if rep.Failed() {
		t.Errorf("a healthy set-up failed: %+v", rep.Summary())
	}
}

func TestRealNginxBrokenSite(t *testing.T) {
	cfg, h, n := nginxSetup(t, "", func(site string) string {
		return strings.Replace(site, "proxy_pass http://homelab_app;", "proxy_pass http://homelab_app", 1)
	})
	n.configure(t, cfg, h, nil)
	res, _ := runChecks(t, n.env(cfg, h), 2*time.Second)
	expect(t, res, "nginx.config", StatusFail, `nginx -t fails: unexpected "}"`, "nginx -t")
	expect(t, res, "nginx.drift", StatusWarn, "differs from what homelab renders", "homelab init")
	expect(t, res, "nginx.upstreams", StatusFail, "cannot parse", "homelab init")
	expect(t, res, "host.ports", StatusFail, "nothing listens on 127.0.0.1:", "systemctl enable --now nginx")
}

func TestRealNginxStrippedPrefix(t *testing.T) {
	cfg, h, n := nginxSetup(t, "", func(site string) string {
		return strings.Replace(site, "location /grafana/ {\n        proxy_pass http://homelab_grafana;",
			"location /grafana/ {\n        proxy_pass http://homelab_grafana/;", 1)
	})
	n.configure(t, cfg, h, nil)
	n.start(t)
	res, rep := runChecks(t, n.env(cfg, h), 2*time.Second)
	expect(t, res, "nginx.config", StatusOK, "")
	expect(t, res, "grafana.local", StatusOK, "")
	expect(t, res, "grafana.nginx", StatusFail, "redirect loop /grafana/api/health → /grafana/api/health: Nginx strips the /grafana prefix",
		"proxy_pass http://homelab_grafana;", "nginx -t && sudo systemctl reload nginx")
	expect(t, res, "nginx.grafana-prefix", StatusFail, `has `+"`proxy_pass http://homelab_grafana/;`"+`: the URI part "/" strips /grafana`,
		"proxy_pass http://homelab_grafana;")
	expect(t, res, "nginx.drift", StatusWarn, `from line`, "homelab init")
	expect(t, res, "nginx.upstreams", StatusOK, "")
	if !rep.Failed() {
		t.Error("the stripping site did not fail doctor")
	}
}

func TestRealNginxTLS(t *testing.T) {
	yaml := "domain: home.example.org\ntls:\n  mode: files\n  certFile: /etc/ssl/homelab/fullchain.pem\n  keyFile: /etc/ssl/homelab/privkey.pem\n"
	cfg, h, n := nginxSetup(t, yaml, nil)
	writeCert(t, h, cfg.TLS.CertFile, cfg.TLS.KeyFile, []string{cfg.Domain}, fixedNow.Add(-80*24*time.Hour), fixedNow.Add(10*24*time.Hour+time.Hour))
	n.configure(t, cfg, h, map[string]string{cfg.TLS.CertFile: h.Path(cfg.TLS.CertFile), cfg.TLS.KeyFile: h.Path(cfg.TLS.KeyFile)})
	n.start(t)
	res, _ := runChecks(t, n.env(cfg, h), 2*time.Second)
	expect(t, res, "host.ports", StatusOK, "Nginx answers on ")
	if !strings.Contains(res["host.ports"].Message, " and ") {
		t.Errorf("host.ports with TLS asked one port only: %s", res["host.ports"].Message)
	}
	expect(t, res, "grafana.nginx", StatusOK, "Grafana answers at https://home.example.org/grafana/api/health")
	expect(t, res, "tls.certificate", StatusOK, "is for home.example.org")
	expect(t, res, "tls.expiry", StatusWarn, "expires in 10 days", "replace /etc/ssl/homelab/fullchain.pem")
	expect(t, res, "nginx.drift", StatusOK, "")
}
