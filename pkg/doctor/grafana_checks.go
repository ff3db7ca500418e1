package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/homelab-dev/homelab/pkg/layout"
)

const (
	portForwardService = "grafana-portforward.service"
	maxRedirects       = 5
)

func (d *doctor) grafanaChecks() []Check {
	restart := "sudo systemctl restart " + portForwardService + " (journalctl -u grafana-portforward -n 50 shows why)"
	return []Check{
		{ID: "grafana.unit", Group: GroupGrafana, Name: "port-forward unit file", Run: d.checkPortForwardUnit},
		{ID: "grafana.portforward", Group: GroupGrafana, Name: "port-forward active", Needs: []string{"grafana.unit"}, Run: d.checkPortForwardActive},
		{ID: "grafana.local", Group: GroupGrafana, Name: "health on 127.0.0.1", Needs: []string{"grafana.portforward"}, Run: d.checkGrafanaLocal,
			TimeoutFix: restart},
		{ID: "grafana.nginx", Group: GroupGrafana, Name: "health through Nginx", Needs: []string{"grafana.local"}, Run: d.checkGrafanaNginx,
			TimeoutFix: "sudo systemctl restart nginx, then " + restart},
		{ID: "grafana.root-url", Group: GroupGrafana, Name: "root_url", Run: d.checkRootURL},
	}
}

func (d *doctor) checkPortForwardUnit(context.Context) Finding {
	f := d.drift(layout.PortForwardUnit)
	if f.Status == StatusWarn {
		f.Fix = "sudo homelab init (rewrites the unit and restarts it)"
	}
	return f
}

func (d *doctor) checkPortForwardActive(ctx context.Context) Finding {
	return d.systemdActive(ctx, portForwardService,
		"sudo systemctl enable --now "+portForwardService+" (journalctl -u grafana-portforward -n 50 shows why it stopped)")
}

func (d *doctor) grafanaLocalAddr() string {
	return "127.0.0.1:" + strconv.Itoa(d.cfg.Monitoring.Grafana.LocalPort)
}

// isGrafanaHealth reports whether body is Grafana's /api/health answer.
func isGrafanaHealth(body []byte) (database string, ok bool) {
	var h struct {
		Database string `json:"database"`
		Version  string `json:"version"`
	}
	if json.Unmarshal(body, &h) != nil || h.Database == "" {
		return "", false
	}
	return h.Database, true
}

// checkGrafanaLocal asks Grafana on the port-forward's loopback port, at
// its sub-path, as Nginx does.
func (d *doctor) checkGrafanaLocal(ctx context.Context) Finding {
	addr := d.grafanaLocalAddr()
	path := d.cfg.Monitoring.Grafana.Path + "/api/health"
	c := d.client("")
	resp, body, err := d.get(ctx, c, "http://"+addr+path, "")
	restart := "sudo systemctl restart " + portForwardService + " (journalctl -u grafana-portforward -n 50 shows why)"
	if err != nil {
		if refused(err) {
			return Fail(restart, "nothing listens on %s: the port-forward is not forwarding", addr)
		}
		return Fail(restart, "Grafana on %s does not answer: %s", addr, netReason(err))
	}
	if resp.StatusCode == http.StatusOK {
		if db, ok := isGrafanaHealth(body); !ok {
			return Fail(restart, "%s%s answers, but not like Grafana's health endpoint", addr, path)
		} else if db != "ok" {
			return Fail(fmt.Sprintf("sudo kubectl -n %s logs deploy/%s -c grafana --tail=50", d.cfg.Monitoring.Namespace, d.cfg.Monitoring.GrafanaServiceName()),
				"Grafana on %s reports database %q", addr, db)
		}
		return OK("Grafana answers on %s%s", addr, path)
	}
	if resp.StatusCode == http.StatusNotFound {
		// Grafana without serve_from_sub_path serves /api/health only.
		if r2, b2, err := d.get(ctx, c, "http://"+addr+"/api/health", ""); err == nil && r2.StatusCode == http.StatusOK {
			if _, ok := isGrafanaHealth(b2); ok {
				return Fail("sudo homelab init (sets grafana.ini.server.serve_from_sub_path: true in "+layout.ValuesStack+" and upgrades the release)",
					"Grafana answers at /api/health, not %s: it does not serve from its sub-path", path)
			}
		}
	}
	return Fail(restart, "%s%s answers HTTP %d", addr, path, resp.StatusCode)
}

// checkGrafanaNginx asks Nginx on this machine for Grafana's health as a
// browser would (Host: DOMAIN, HTTPS when TLS is on), following up to five
// redirects. A redirect back to a URL already visited is a loop; a redirect
// of the health URL to itself is the stripped-prefix loop.
func (d *doctor) checkGrafanaNginx(ctx context.Context) Finding {
	scheme := "http"
	if d.cfg.TLS.Enabled() {
		scheme = "https"
	}
	gpath := d.cfg.Monitoring.Grafana.Path
	start := &url.URL{Scheme: scheme, Host: d.cfg.Domain, Path: gpath + "/api/health"}
	const prefixFix = "keep the prefix: `proxy_pass http://homelab_grafana;` (no trailing /) in the location %s/ of " +
		layout.NginxSite + ", or sudo homelab init; then " + reloadNginx
	loopFix := fmt.Sprintf("make root_url %s (sudo homelab init) and "+prefixFix, d.cfg.GrafanaURL(), gpath)
	seen := map[string]bool{}
	var hops []string
	cur := start
	for i := 0; ; i++ {
		key := cur.String()
		if seen[key] {
			chain := strings.Join(append(hops, cur.RequestURI()), " → ")
			if len(hops) == 1 && key == start.String() {
				return Fail(fmt.Sprintf(prefixFix, gpath),
					"redirect loop %s: Nginx strips the %s prefix and Grafana redirects back", chain, gpath)
			}
			return Fail(loopFix, "redirect loop: %s", chain)
		}
		if i > maxRedirects {
			return Fail(loopFix, "more than %d redirects: %s", maxRedirects, strings.Join(hops, " → "))
		}
		seen[key] = true
		hops = append(hops, cur.RequestURI())
		addr, sni := d.NginxHTTPAddr, ""
		if cur.Scheme == "https" {
			addr, sni = d.NginxHTTPSAddr, d.cfg.Domain
		}
		target := url.URL{Scheme: cur.Scheme, Host: addr, Path: cur.Path, RawPath: cur.RawPath, RawQuery: cur.RawQuery}
		resp, body, err := d.get(ctx, d.client(sni), target.String(), d.cfg.Domain)
		if err != nil {
			return Fail("sudo systemctl restart nginx ("+reloadNginx+" first if it fails)", "Nginx on %s: %s", addr, netReason(err))
		}
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := cur.Parse(resp.Header.Get("Location"))
			if err != nil || resp.Header.Get("Location") == "" {
				return Fail(loopFix, "%s redirects without a usable Location", cur.RequestURI())
			}
			if h := loc.Hostname(); h != d.cfg.Domain && h != "127.0.0.1" && h != "localhost" {
				return Fail(loopFix, "%s redirects away to %s", cur.RequestURI(), loc.String())
			}
			if h := loc.Hostname(); h != d.cfg.Domain {
				loc.Host = d.cfg.Domain // a redirect built from the upstream's address
			}
			cur = loc
		case resp.StatusCode == http.StatusOK:
			if _, ok := isGrafanaHealth(body); !ok {
				return Fail("sudo homelab init (rewrites the site), then "+reloadNginx,
					"%s is answered, but not by Grafana (the location %s/ is missing or goes elsewhere)", cur.RequestURI(), gpath)
			}
			via := ""
			if len(hops) > 1 {
				via = " via " + strings.Join(hops[:len(hops)-1], " → ")
			}
			return OK("Grafana answers at %s://%s%s%s", cur.Scheme, d.cfg.Domain, cur.RequestURI(), via)
		case resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout:
			return Fail("sudo systemctl restart "+portForwardService,
				"Nginx answers %d for %s: it cannot reach Grafana on %s", resp.StatusCode, cur.RequestURI(), d.grafanaLocalAddr())
		default:
			return Fail("sudo homelab init (rewrites the site), then "+reloadNginx,
				"Nginx answers HTTP %d for %s", resp.StatusCode, cur.RequestURI())
		}
	}
}

// checkRootURL: the chart values homelab applied give Grafana the root_url
// that matches the Nginx location, and serve_from_sub_path.
func (d *doctor) checkRootURL(context.Context) Finding {
	data, err := d.Host.ReadFile(layout.ValuesStack)
	if notExist(err) {
		return Fail("sudo homelab init", "%s is missing", layout.ValuesStack)
	} else if err != nil {
		return Fail("sudo homelab doctor", "cannot read %s: %v", layout.ValuesStack, err)
	}
	var v struct {
		Grafana struct {
			Ini struct {
				Server struct {
					RootURL          string `yaml:"root_url"`
					ServeFromSubPath any    `yaml:"serve_from_sub_path"`
				} `yaml:"server"`
			} `yaml:"grafana.ini"`
		} `yaml:"grafana"`
	}
	if err := yaml.Unmarshal(data, &v); err != nil {
		return Fail("sudo homelab init", "%s is not valid YAML: %v", layout.ValuesStack, err)
	}
	srv := v.Grafana.Ini.Server
	want := d.cfg.GrafanaURL()
	fix := "sudo homelab init (rewrites " + layout.ValuesStack + " and upgrades the release)"
	switch {
	case srv.RootURL != want:
		return Fail(fix, "grafana.ini.server.root_url is %q, want %q", srv.RootURL, want)
	case fmt.Sprint(srv.ServeFromSubPath) != "true":
		return Fail(fix, "grafana.ini.server.serve_from_sub_path is %v, want true", srv.ServeFromSubPath)
	}
	return OK("root_url %s with serve_from_sub_path", want)
}
