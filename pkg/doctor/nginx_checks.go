package doctor

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/homelab-dev/homelab/pkg/layout"
)

const reloadNginx = "sudo nginx -t && sudo systemctl reload nginx"

func (d *doctor) nginxChecks() []Check {
	return []Check{
		{ID: "nginx.config", Group: GroupNginx, Name: "nginx -t", Run: d.checkNginxConfig},
		{ID: "nginx.site", Group: GroupNginx, Name: "site enabled", Run: d.checkNginxSite},
		{ID: "nginx.drift", Group: GroupNginx, Name: "site up to date", Needs: []string{"nginx.site"}, Run: d.checkNginxDrift},
		{ID: "nginx.upstreams", Group: GroupNginx, Name: "upstreams", Needs: []string{"nginx.site"}, Run: d.checkNginxUpstreams},
		{ID: "nginx.grafana-prefix", Group: GroupNginx, Name: "Grafana prefix kept", Needs: []string{"nginx.site"}, Run: d.checkGrafanaPrefix},
	}
}

var nginxEmerg = regexp.MustCompile(`\[(emerg|alert|crit)\] (.*)`)

// checkNginxConfig runs `nginx -t` on the host.
func (d *doctor) checkNginxConfig(ctx context.Context) Finding {
	out, err := d.run(ctx, "nginx", "-t")
	if f, ok := underRoot(err); ok {
		return f
	}
	switch {
	case notInstalled(err):
		return Fail("sudo apt-get install -y nginx && sudo homelab init", "nginx is not installed")
	case err != nil:
		msg := lastLine(out)
		if m := nginxEmerg.FindStringSubmatch(out); m != nil {
			msg = m[2]
		} else if msg == "" {
			msg = err.Error()
		}
		if strings.Contains(out, "Permission denied") {
			return Fail("sudo homelab doctor", "nginx -t needs root: %s", msg)
		}
		fix := "correct the file and line named, then " + reloadNginx
		if strings.Contains(msg, layout.NginxSite) {
			fix = "sudo homelab init (rewrites " + layout.NginxSite + "), then " + reloadNginx
		}
		return Fail(fix, "nginx -t fails: %s", msg)
	}
	return OK("configuration test is successful")
}

// checkNginxSite: the site file is there and sites-enabled links to it.
func (d *doctor) checkNginxSite(context.Context) Finding {
	info, err := d.Host.Lstat(layout.NginxSite)
	switch {
	case notExist(err):
		return Fail("sudo homelab init", "%s is missing", layout.NginxSite)
	case err != nil:
		return Fail("sudo homelab doctor", "cannot look at %s: %v", layout.NginxSite, err)
	case !info.Mode().IsRegular():
		return Fail("sudo rm "+layout.NginxSite+" && sudo homelab init", "%s is not a regular file", layout.NginxSite)
	}
	linkFix := fmt.Sprintf("sudo ln -sfn %s %s && %s", layout.NginxSiteTarget, layout.NginxSiteLink, reloadNginx)
	target, err := d.Host.Readlink(layout.NginxSiteLink)
	switch {
	case notExist(err):
		return Fail(linkFix, "site is not enabled: %s is missing", layout.NginxSiteLink)
	case err != nil:
		return Fail(linkFix, "%s is not a link to the site: %v", layout.NginxSiteLink, err)
	case target != layout.NginxSiteTarget && target != layout.NginxSite:
		return Fail(linkFix, "%s points at %s, not the homelab site", layout.NginxSiteLink, target)
	}
	return OK("%s enabled", layout.NginxSite)
}

// checkNginxDrift compares the site on disk with what homelab renders for
// the current configuration.
func (d *doctor) checkNginxDrift(context.Context) Finding {
	return d.drift(layout.NginxSite)
}

func (d *doctor) drift(path string) Finding {
	want := d.rendered[path].Data
	got, err := d.Host.ReadFile(path)
	switch {
	case notExist(err):
		return Fail("sudo homelab init", "%s is missing", path)
	case err != nil:
		return Fail("sudo homelab doctor", "cannot read %s: %v", path, err)
	case bytes.Equal(got, want):
		return OK("%s is what homelab renders for this configuration", path)
	}
	line, text := firstDiff(want, got)
	return Warn("sudo homelab init (keeps a backup under "+layout.BackupDir+")",
		"%s differs from what homelab renders for this configuration, from line %d: %q", path, line, text)
}

func (d *doctor) readSite() (*site, Finding, bool) {
	data, err := d.Host.ReadFile(layout.NginxSite)
	if err != nil {
		return nil, Fail("sudo homelab init", "cannot read %s: %v", layout.NginxSite, err), false
	}
	s, err := parseSite(data)
	if err != nil {
		return nil, Fail("sudo homelab init", "cannot parse %s: %v", layout.NginxSite, err), false
	}
	return s, Finding{}, true
}

// checkNginxUpstreams: / goes to the app's ClusterIP and port, the Grafana
// path to the port-forward's loopback port.
func (d *doctor) checkNginxUpstreams(context.Context) Finding {
	s, f, ok := d.readSite()
	if !ok {
		return f
	}
	g := d.cfg.Monitoring.Grafana
	wants := []struct{ path, what, addr string }{
		{g.Path + "/", "Grafana", "127.0.0.1:" + strconv.Itoa(g.LocalPort)},
		{"/", "the app", d.cfg.App.ClusterIP + ":" + strconv.Itoa(d.cfg.App.Port)},
	}
	fix := "sudo homelab init (rewrites the site from homelab.yaml), then " + reloadNginx
	var okMsgs []string
	for _, w := range wants {
		loc := s.location(w.path)
		if loc == nil {
			return Fail(fix, "the site has no location %s for %s", w.path, w.what)
		}
		pp, has := loc.proxyPass()
		if !has || pp.hostport == "" {
			return Fail(fix, "location %s (line %d) does not proxy_pass to %s", w.path, loc.line, w.what)
		}
		backends := s.backends(pp.hostport)
		if !containsAddr(backends, w.addr) {
			return Fail(fix, "location %s sends %s to %s, but the configuration says %s", w.path, w.what, strings.Join(backends, ", "), w.addr)
		}
		okMsgs = append(okMsgs, w.path+" → "+w.addr)
	}
	return OK("%s", strings.Join(okMsgs, ", "))
}

func containsAddr(list []string, want string) bool {
	alt := strings.Replace(want, "127.0.0.1:", "localhost:", 1)
	for _, a := range list {
		if a == want || a == alt {
			return true
		}
	}
	return false
}

// checkGrafanaPrefix: every location under the Grafana path passes the
// request URI unchanged. A URI part in proxy_pass (even a bare "/") strips
// the prefix, and Grafana serving from its sub-path redirects in a loop.
func (d *doctor) checkGrafanaPrefix(context.Context) Finding {
	s, f, ok := d.readSite()
	if !ok {
		return f
	}
	path := d.cfg.Monitoring.Grafana.Path
	found := false
	for _, srv := range s.servers {
		for _, loc := range find(srv.block, "location") {
			p := loc.arg(len(loc.args) - 1)
			if !strings.HasPrefix(p, path+"/") {
				continue
			}
			pp, has := loc.proxyPass()
			if !has {
				continue
			}
			found = true
			if pp.uri != "" {
				fixed := "proxy_pass http://" + pp.hostport + ";"
				return Fail(fmt.Sprintf("in %s line %d write `%s` (no URI part), or run sudo homelab init; then %s", layout.NginxSite, pp.line, fixed, reloadNginx),
					"location %s has `proxy_pass %s;`: the URI part %q strips %s and Grafana redirects in a loop", p, pp.raw, pp.uri, path)
			}
		}
	}
	if !found {
		return Fail("sudo homelab init (rewrites the site), then "+reloadNginx, "the site has no location %s/ that proxies to Grafana", path)
	}
	return OK("proxy_pass keeps the %s prefix", path)
}
