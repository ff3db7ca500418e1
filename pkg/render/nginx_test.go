package render

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/nginx/nginxtest"
)

// siteChanges are what only a test must change in the rendered site, for
// nginxtest's Configure (which moves the listens to loopback test ports):
// the app upstream (the app's ClusterIP becomes appAddr, a loopback test
// server), then more old, new pairs (certificate paths).
func siteChanges(cfg *config.Config, appAddr string, more ...string) []string {
	return append([]string{fmt.Sprintf("server %s:%d;", cfg.App.ClusterIP, cfg.App.Port), "server " + appAddr + ";"}, more...)
}

// arrivals records the paths requests reach a backend with.
type arrivals struct {
	mu    sync.Mutex
	paths []string
	hdrs  []http.Header
}

func (a *arrivals) add(r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.paths = append(a.paths, r.URL.RequestURI())
	a.hdrs = append(a.hdrs, r.Header.Clone())
}

func (a *arrivals) take() ([]string, []http.Header) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, h := a.paths, a.hdrs
	a.paths, a.hdrs = nil, nil
	return p, h
}

// fakeGrafana behaves like Grafana with root_url .../prefix/ and
// serve_from_sub_path = true: a request without the prefix is redirected to
// the prefixed path, which loops when a proxy strips the prefix.
func fakeGrafana(t *testing.T, prefix string, seen *arrivals) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r)
		switch {
		case !strings.HasPrefix(r.URL.Path, prefix+"/"):
			http.Redirect(w, r, prefix+r.URL.Path, http.StatusMovedPermanently)
		case r.URL.Path == prefix+"/api/health":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"database":"ok","version":"13.2.0"}`)
		case r.URL.Path == prefix+"/api/live/ws":
			if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
				http.Error(w, "not a websocket upgrade: Upgrade="+r.Header.Get("Upgrade")+" Connection="+r.Header.Get("Connection"), http.StatusBadRequest)
				return
			}
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprint(buf, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nlive")
			buf.Flush()
		default:
			fmt.Fprint(w, "grafana page "+r.URL.Path)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func noRedirects() *http.Client {
	return &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // the test's own self-signed cert
	}
}

// TestNginxSiteLoadsInRealNginx runs `nginx -t` on the site of every configuration.
func TestNginxSiteLoadsInRealNginx(t *testing.T) {
	for name := range configs {
		t.Run(name, func(t *testing.T) {
			n := nginxtest.New(t)
			cfg, files := renderConfig(t, name)
			var certs []string
			if cfg.TLS.Enabled() {
				// The certificate paths are absolute host paths; point them at a test certificate.
				cert, key := selfSigned(t, n.Dir(), cfg.Domain)
				certs = []string{certPath(cfg), cert, keyPath(cfg), key}
			}
			n.Configure(fileAt(t, files, layout.NginxSite), siteChanges(cfg, "127.0.0.1:1", certs...)...)
			if out, err := n.Test(t.Context()); err != nil {
				t.Fatalf("nginx -t: %v\n%s", err, out)
			}
		})
	}
	t.Run("broken site fails", func(t *testing.T) {
		n := nginxtest.New(t)
		cfg, files := renderConfig(t, "default")
		site := strings.Replace(string(fileAt(t, files, layout.NginxSite)), "proxy_pass http://homelab_app;", "proxy_pass http://homelab_app", 1)
		n.Configure([]byte(site), siteChanges(cfg, "127.0.0.1:1")...)
		if _, err := n.Test(t.Context()); err == nil {
			t.Fatal("nginx -t accepted a site with a missing semicolon: the check proves nothing")
		}
	})
}

func certPath(cfg *config.Config) string {
	if cfg.TLS.Mode == config.TLSCertbot {
		return layout.LetsEncryptCert(cfg.Domain)
	}
	return cfg.TLS.CertFile
}

func keyPath(cfg *config.Config) string {
	if cfg.TLS.Mode == config.TLSCertbot {
		return layout.LetsEncryptKey(cfg.Domain)
	}
	return cfg.TLS.KeyFile
}

type routeResult struct {
	status   int
	location string
	app      []string
	grafana  []string
	grafHdrs []http.Header
}

// TestNginxRoutesRequests serves the rendered site with real nginx in front of
// a recording app and a fake Grafana, and checks where each request arrives.
func TestNginxRoutesRequests(t *testing.T) {
	n := nginxtest.New(t)
	cfg, _ := renderConfig(t, "default")
	var appSeen, grafSeen arrivals
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		appSeen.add(r)
		fmt.Fprint(w, "app")
	}))
	defer app.Close()
	graf := fakeGrafana(t, cfg.Monitoring.Grafana.Path, &grafSeen)
	cfg.Monitoring.Grafana.LocalPort = graf.Listener.Addr().(*net.TCPAddr).Port
	r, _ := New()
	site, err := r.Named(cfg, layout.NginxSite)
	if err != nil {
		t.Fatal(err)
	}
	n.Configure(site.Data, siteChanges(cfg, app.Listener.Addr().String())...)
	n.Start()
	base := n.HTTPURL()
	client := noRedirects()
	get := func(path string) routeResult {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Host = cfg.Domain
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		res := routeResult{status: resp.StatusCode, location: resp.Header.Get("Location")}
		res.app, _ = appSeen.take()
		res.grafana, res.grafHdrs = grafSeen.take()
		return res
	}

	if res := get("/blog/post-1?x=1"); res.status != 200 || fmt.Sprint(res.app) != "[/blog/post-1?x=1]" || len(res.grafana) != 0 {
		t.Errorf("/blog/post-1: status %d, app got %v, grafana got %v; want the app to get it unchanged", res.status, res.app, res.grafana)
	}
	if res := get("/grafana"); res.status != 301 || !strings.HasSuffix(res.location, "/grafana/") || len(res.app)+len(res.grafana) != 0 {
		t.Errorf("/grafana: status %d location %q (app %v, grafana %v); want 301 to /grafana/ from nginx itself", res.status, res.location, res.app, res.grafana)
	}
	res := get("/grafana/api/health")
	if res.status != 200 || fmt.Sprint(res.grafana) != "[/grafana/api/health]" {
		t.Errorf("/grafana/api/health: status %d, grafana got %v; want 200 with the prefix kept", res.status, res.grafana)
	}
	if len(res.grafHdrs) == 1 {
		h := res.grafHdrs[0]
		if h.Get("X-Forwarded-Proto") != "http" || h.Get("X-Forwarded-For") == "" || h.Get("X-Real-Ip") == "" || h.Get("X-Forwarded-Host") != cfg.Domain {
			t.Errorf("forwarding headers missing at Grafana: %v", h)
		}
	}

	// WebSocket upgrade for Grafana Live, over a raw connection.
	conn, err := net.Dial("tcp", n.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /grafana/api/live/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", cfg.Domain)
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 101") {
		t.Errorf("websocket upgrade through nginx: %q %v; want 101 Switching Protocols", status, err)
	}
	if paths, _ := grafSeen.take(); fmt.Sprint(paths) != "[/grafana/api/live/ws]" {
		t.Errorf("websocket arrived at grafana as %v", paths)
	}
}

// TestStrippedPrefixLoops is the control for TestNginxRoutesRequests: the
// often-copied `proxy_pass http://127.0.0.1:3100/;` strips the prefix, and the
// same fake Grafana answers with a redirect back to where the client was.
func TestStrippedPrefixLoops(t *testing.T) {
	n := nginxtest.New(t)
	cfg, _ := renderConfig(t, "default")
	var grafSeen arrivals
	graf := fakeGrafana(t, cfg.Monitoring.Grafana.Path, &grafSeen)
	cfg.Monitoring.Grafana.LocalPort = graf.Listener.Addr().(*net.TCPAddr).Port
	r, _ := New()
	site, _ := r.Named(cfg, layout.NginxSite)
	stripped := strings.Replace(string(site.Data), "location /grafana/ {\n        proxy_pass http://homelab_grafana;", "location /grafana/ {\n        proxy_pass http://homelab_grafana/;", 1)
	if stripped == string(site.Data) {
		t.Fatal("could not build the stripping variant")
	}
	n.Configure([]byte(stripped), siteChanges(cfg, "127.0.0.1:1")...)
	n.Start()
	req, _ := http.NewRequest("GET", n.HTTPURL()+"/grafana/api/health", nil)
	req.Host = cfg.Domain
	resp, err := noRedirects().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 301 || !strings.HasSuffix(resp.Header.Get("Location"), "/grafana/api/health") {
		t.Fatalf("stripped variant: status %d location %q; want a redirect to the same path (a loop)", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestNginxTLSRedirectsAndServes checks the TLS variant: HTTP redirects to HTTPS, HTTPS serves.
func TestNginxTLSRedirectsAndServes(t *testing.T) {
	n := nginxtest.New(t)
	cfg, _ := renderConfig(t, "files")
	var grafSeen arrivals
	graf := fakeGrafana(t, cfg.Monitoring.Grafana.Path, &grafSeen)
	cfg.Monitoring.Grafana.LocalPort = graf.Listener.Addr().(*net.TCPAddr).Port
	r, _ := New()
	site, _ := r.Named(cfg, layout.NginxSite)
	cert, key := selfSigned(t, n.Dir(), cfg.Domain)
	n.Configure(site.Data, siteChanges(cfg, "127.0.0.1:1", cfg.TLS.CertFile, cert, cfg.TLS.KeyFile, key)...)
	n.Start()
	client := noRedirects()

	req, _ := http.NewRequest("GET", n.HTTPURL()+"/x", nil)
	req.Host = cfg.Domain
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://"+cfg.Domain+"/x" {
		t.Errorf("http: status %d location %q; want 301 to https://%s/x", resp.StatusCode, resp.Header.Get("Location"), cfg.Domain)
	}
	req, _ = http.NewRequest("GET", n.HTTPSURL()+cfg.Monitoring.Grafana.Path+"/api/health", nil)
	req.Host = cfg.Domain
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	paths, hdrs := grafSeen.take()
	if resp.StatusCode != 200 || fmt.Sprint(paths) != "["+cfg.Monitoring.Grafana.Path+"/api/health]" {
		t.Errorf("https grafana health: status %d, grafana got %v", resp.StatusCode, paths)
	}
	if len(hdrs) == 1 && hdrs[0].Get("X-Forwarded-Proto") != "https" {
		t.Errorf("X-Forwarded-Proto %q, want https", hdrs[0].Get("X-Forwarded-Proto"))
	}
}

// selfSigned writes a throwaway certificate for domain into dir.
func selfSigned(t *testing.T, dir, domain string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
