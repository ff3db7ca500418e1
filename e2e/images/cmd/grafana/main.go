// grafana is a stand-in for Grafana in the end-to-end test machine: the real
// Grafana cannot be built here (AGPL front end and back end outside the Go
// module proxy). It is NOT Grafana. It does only what homelab and its journey
// rely on, the way Grafana documents and implements it:
//
//   - configuration: the ini file at $GF_PATHS_CONFIG (the chart's
//     /etc/grafana/grafana.ini), then GF_<SECTION>_<KEY> environment variables
//     (and GF_<SECTION>_<KEY>__FILE), with %(protocol)s, %(domain)s and
//     %(http_port)s expanded in root_url;
//   - the sub-path: with serve_from_sub_path and a root_url that has a path,
//     requests must carry the prefix; one that lacks it (and is not an /api
//     request) is answered with a 301 to root_url + the request URI, as
//     Grafana's SubPathRedirect middleware does. A proxy that strips the prefix
//     therefore gets a redirect loop, as with the real Grafana;
//   - GET /api/health: {"commit","database","version"};
//   - pages need a session: unauthenticated ones answer 302 to
//     <sub-path>/login; the login page, POST /login (JSON user/password, sets
//     the grafana_session cookie), /logout;
//   - the API with basic auth or the session as the admin user
//     (GF_SECURITY_ADMIN_USER/PASSWORD, from the chart's Secret): /api/user,
//     /api/search (dashboards), /api/dashboards/uid/UID, /api/datasources,
//     /api/admin/provisioning/{dashboards,datasources}/reload;
//   - provisioning: dashboard providers and datasources read from
//     $GF_PATHS_PROVISIONING/{dashboards,datasources}/*.yaml; dashboards are
//     the *.json files under each file provider's options.path (where the
//     dashboard sidecar writes them), rescanned every updateIntervalSeconds
//     and on the reload API;
//   - the data directory ($GF_PATHS_DATA) must be writable, or it exits 1 at
//     start, as Grafana does when it cannot create its database.
//
// It renders no dashboards, queries no datasource, has no plugins, no
// alerting, no Grafana Live and no users but the admin.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"
)

// version is the Grafana version this stand-in answers as (the chart's tag).
var version = "13.2.0"

const commit = "homelab-e2e-standin"

// ---------------------------------------------------------------- config

type ini map[string]map[string]string

func (c ini) get(section, key, def string) string {
	if s, ok := c[section]; ok {
		if v, ok := s[key]; ok {
			return v
		}
	}
	return def
}

func (c ini) set(section, key, val string) {
	if c[section] == nil {
		c[section] = map[string]string{}
	}
	c[section][key] = val
}

func parseINI(data string) ini {
	c := ini{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, ";") || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		c.set(section, strings.TrimSpace(k), v)
	}
	return c
}

// applyEnv applies GF_<SECTION>_<KEY> overrides to the keys the file has
// and to the few this stand-in reads, as Grafana does (section and key
// upper-cased, dots and dashes as underscores).
func applyEnv(c ini, environ []string) {
	known := map[string][2]string{}
	add := func(s, k string) {
		known["GF_"+envName(s)+"_"+envName(k)] = [2]string{s, k}
	}
	for s, kv := range c {
		for k := range kv {
			add(s, k)
		}
	}
	for _, sk := range [][2]string{{"server", "root_url"}, {"server", "serve_from_sub_path"}, {"server", "domain"},
		{"server", "http_port"}, {"server", "http_addr"}, {"server", "protocol"}, {"security", "admin_user"},
		{"security", "admin_password"}, {"paths", "data"}, {"paths", "provisioning"}, {"paths", "logs"},
		{"paths", "plugins"}, {"auth.basic", "enabled"}, {"auth.anonymous", "enabled"}} {
		add(sk[0], sk[1])
	}
	for _, e := range environ {
		k, v, _ := strings.Cut(e, "=")
		file := false
		if strings.HasSuffix(k, "__FILE") {
			k, file = strings.TrimSuffix(k, "__FILE"), true
		}
		sk, ok := known[k]
		if !ok {
			continue
		}
		if file {
			b, err := os.ReadFile(v)
			if err != nil {
				slog.Warn("cannot read env file", "var", k+"__FILE", "err", err)
				continue
			}
			v = strings.TrimSpace(string(b))
		}
		c.set(sk[0], sk[1], v)
	}
}

func envName(s string) string {
	return strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(s))
}

type settings struct {
	addr         string
	appURL       string // root_url with a trailing slash
	appSubURL    string // its path without the trailing slash ("" or "/grafana")
	fromSubPath  bool
	adminUser    string
	adminPass    string
	basicAuth    bool
	anonymous    bool
	dataDir      string
	provisioning string
}

func load() (*settings, error) {
	cfgPath := os.Getenv("GF_PATHS_CONFIG")
	if cfgPath == "" {
		cfgPath = "/etc/grafana/grafana.ini"
	}
	c := ini{}
	if b, err := os.ReadFile(cfgPath); err == nil {
		c = parseINI(string(b))
		slog.Info("Config loaded from", "file", cfgPath)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	// Grafana's own env names for paths win over the ini's [paths].
	for env, key := range map[string]string{"GF_PATHS_DATA": "data", "GF_PATHS_PROVISIONING": "provisioning"} {
		if v := os.Getenv(env); v != "" {
			c.set("paths", key, v)
		}
	}
	applyEnv(c, os.Environ())
	protocol := c.get("server", "protocol", "http")
	domain := c.get("server", "domain", "localhost")
	port := c.get("server", "http_port", "3000")
	root := c.get("server", "root_url", "%(protocol)s://%(domain)s:%(http_port)s/")
	root = strings.NewReplacer("%(protocol)s", protocol, "%(domain)s", domain, "%(http_port)s", port).Replace(root)
	if !strings.HasSuffix(root, "/") {
		root += "/"
	}
	u, err := url.Parse(root)
	if err != nil {
		return nil, fmt.Errorf("server.root_url %q: %w", root, err)
	}
	s := &settings{
		addr:         net.JoinHostPort(c.get("server", "http_addr", ""), port),
		appURL:       root,
		appSubURL:    strings.TrimSuffix(u.Path, "/"),
		fromSubPath:  truthy(c.get("server", "serve_from_sub_path", "false")),
		adminUser:    c.get("security", "admin_user", "admin"),
		adminPass:    c.get("security", "admin_password", "admin"),
		basicAuth:    truthy(c.get("auth.basic", "enabled", "true")),
		anonymous:    truthy(c.get("auth.anonymous", "enabled", "false")),
		dataDir:      c.get("paths", "data", "/var/lib/grafana"),
		provisioning: c.get("paths", "provisioning", "/etc/grafana/provisioning"),
	}
	if protocol != "http" {
		return nil, fmt.Errorf("server.protocol %q: this stand-in serves plain http only", protocol)
	}
	return s, nil
}

func truthy(s string) bool {
	b, _ := strconv.ParseBool(strings.TrimSpace(s))
	return b
}

// ---------------------------------------------------------- provisioning

type dashboard struct {
	UID     string   `json:"uid"`
	Title   string   `json:"title"`
	Tags    []string `json:"tags"`
	Folder  string   `json:"-"`
	Path    string   `json:"-"`
	Raw     json.RawMessage
	Updated time.Time
}

type datasource struct {
	Name      string         `json:"name"`
	Type      string         `json:"type"`
	UID       string         `json:"uid"`
	URL       string         `json:"url"`
	Access    string         `json:"access"`
	IsDefault bool           `json:"isDefault"`
	JSONData  map[string]any `json:"jsonData"`
	OrgID     int            `json:"orgId"`
}

type provider struct {
	Name                  string `json:"name"`
	Folder                string `json:"folder"`
	Type                  string `json:"type"`
	UpdateIntervalSeconds int    `json:"updateIntervalSeconds"`
	Options               struct {
		Path                      string `json:"path"`
		FoldersFromFilesStructure bool   `json:"foldersFromFilesStructure"`
	} `json:"options"`
}

type store struct {
	dir string

	mu          sync.RWMutex
	dashboards  map[string]*dashboard
	datasources []datasource
	providers   []provider
}

func readYAMLs(dir string, each func(path string, data []byte) error) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			continue
		}
		p := filepath.Join(dir, n)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := each(p, b); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

func (s *store) loadProviders() error {
	var ps []provider
	err := readYAMLs(filepath.Join(s.dir, "dashboards"), func(p string, b []byte) error {
		var f struct {
			Providers []provider `json:"providers"`
		}
		if err := yaml.Unmarshal(b, &f); err != nil {
			return err
		}
		ps = append(ps, f.Providers...)
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.providers = ps
	s.mu.Unlock()
	return nil
}

func (s *store) reloadDatasources() error {
	var ds []datasource
	err := readYAMLs(filepath.Join(s.dir, "datasources"), func(p string, b []byte) error {
		var f struct {
			Datasources []datasource `json:"datasources"`
		}
		if err := yaml.Unmarshal(b, &f); err != nil {
			return err
		}
		ds = append(ds, f.Datasources...)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].Name < ds[j].Name })
	s.mu.Lock()
	s.datasources = ds
	s.mu.Unlock()
	slog.Info("datasources provisioned", "count", len(ds))
	return nil
}

var slugRe = regexp.MustCompile(`[^a-z0-9]+`)

func slug(s string) string {
	return strings.Trim(slugRe.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

func (s *store) reloadDashboards() error {
	if err := s.loadProviders(); err != nil {
		return err
	}
	s.mu.RLock()
	ps := append([]provider(nil), s.providers...)
	s.mu.RUnlock()
	found := map[string]*dashboard{}
	for _, p := range ps {
		if p.Type != "" && p.Type != "file" || p.Options.Path == "" {
			continue
		}
		root := p.Options.Path
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.IsDir() || !strings.HasSuffix(d.Name(), ".json") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			var db dashboard
			if err := json.Unmarshal(b, &db); err != nil {
				slog.Warn("failed to load dashboard from file", "file", path, "err", err)
				return nil
			}
			if db.UID == "" {
				h := sha1.Sum([]byte(path))
				db.UID = hex.EncodeToString(h[:])[:14]
			}
			db.Folder = p.Folder
			if p.Options.FoldersFromFilesStructure {
				if rel, _ := filepath.Rel(root, filepath.Dir(path)); rel != "." {
					db.Folder = rel
				}
			}
			db.Path, db.Raw = path, b
			if fi, err := d.Info(); err == nil {
				db.Updated = fi.ModTime()
			}
			found[db.UID] = &db
			return nil
		})
		if err != nil {
			return err
		}
	}
	s.mu.Lock()
	changed := len(found) != len(s.dashboards)
	s.dashboards = found
	s.mu.Unlock()
	if changed {
		slog.Info("dashboards provisioned", "count", len(found))
	}
	return nil
}

func (s *store) interval() time.Duration {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := 10 * time.Second
	for _, p := range s.providers {
		if p.UpdateIntervalSeconds > 0 && time.Duration(p.UpdateIntervalSeconds)*time.Second < d {
			d = time.Duration(p.UpdateIntervalSeconds) * time.Second
		}
	}
	return d
}

// ------------------------------------------------------------------ http

type server struct {
	cfg      *settings
	store    *store
	mu       sync.Mutex
	sessions map[string]time.Time
}

const sessionCookie = "grafana_session"

func (s *server) jsonReply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *server) unauthorized(w http.ResponseWriter) {
	s.jsonReply(w, http.StatusUnauthorized, map[string]any{"message": "Unauthorized", "messageId": "auth.unauthorized", "statusCode": 401, "traceID": ""})
}

func eq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func (s *server) signedIn(r *http.Request) bool {
	if s.cfg.anonymous {
		return true
	}
	if u, p, ok := r.BasicAuth(); ok && s.cfg.basicAuth {
		return eq(u, s.cfg.adminUser) && eq(p, s.cfg.adminPass)
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		exp, ok := s.sessions[c.Value]
		return ok && time.Now().Before(exp)
	}
	return false
}

func (s *server) cookiePath() string {
	if s.cfg.appSubURL == "" {
		return "/"
	}
	return s.cfg.appSubURL
}

// ServeHTTP: the sub-path handling of Grafana's HTTP server. With
// serve_from_sub_path the prefix is required (a request without it is
// redirected to root_url, except API requests) and then removed before
// routing.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, code: 200}
	defer func() {
		slog.Info("Request Completed", "method", r.Method, "path", r.URL.Path, "status", rec.code,
			"remote_addr", r.RemoteAddr, "duration", time.Since(start).String(), "location", rec.Header().Get("Location"))
	}()
	if s.cfg.fromSubPath && s.cfg.appSubURL != "" {
		if !strings.HasPrefix(r.RequestURI, s.cfg.appSubURL) && !strings.HasPrefix(r.RequestURI, "/api") {
			http.Redirect(rec, r, s.cfg.appURL+strings.TrimPrefix(r.RequestURI, "/"), http.StatusMovedPermanently)
			return
		}
		r.URL.Path = strings.TrimPrefix(r.URL.Path, s.cfg.appSubURL)
		r.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, s.cfg.appSubURL)
		if r.URL.Path == "" {
			r.URL.Path = "/"
		}
	}
	s.route(rec, r)
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(c int) { r.code = c; r.ResponseWriter.WriteHeader(c) }

func (s *server) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	sub := s.cfg.appSubURL
	switch {
	case p == "/api/health":
		s.jsonReply(w, 200, map[string]string{"commit": commit, "database": "ok", "version": version})
		return
	case p == "/healthz":
		w.Write([]byte("Ok"))
		return
	case p == "/login" && r.Method == http.MethodPost:
		s.login(w, r)
		return
	case p == "/login":
		if s.signedIn(r) {
			http.Redirect(w, r, sub+"/", http.StatusFound)
			return
		}
		s.page(w, 200, "Grafana", `<form method="post" action="`+html.EscapeString(sub)+`/login">
<p>Grafana stand-in (homelab e2e): log in with the admin user.</p>
<input name="user" placeholder="email or username"><input name="password" type="password"><button>Log in</button></form>`)
		return
	case p == "/logout":
		if c, err := r.Cookie(sessionCookie); err == nil {
			s.mu.Lock()
			delete(s.sessions, c.Value)
			s.mu.Unlock()
		}
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: s.cookiePath(), MaxAge: -1})
		http.Redirect(w, r, sub+"/login", http.StatusFound)
		return
	case strings.HasPrefix(p, "/public/"):
		http.NotFound(w, r)
		return
	}
	if strings.HasPrefix(p, "/api/") {
		if !s.signedIn(r) {
			s.unauthorized(w)
			return
		}
		s.api(w, r)
		return
	}
	if !s.signedIn(r) {
		http.SetCookie(w, &http.Cookie{Name: "redirect_to", Value: url.QueryEscape(sub + r.URL.RequestURI()), Path: s.cookiePath(), HttpOnly: true})
		http.Redirect(w, r, sub+"/login", http.StatusFound)
		return
	}
	s.store.mu.RLock()
	defer s.store.mu.RUnlock()
	if strings.HasPrefix(p, "/d/") {
		uid, _, _ := strings.Cut(strings.TrimPrefix(p, "/d/"), "/")
		db, ok := s.store.dashboards[uid]
		if !ok {
			s.page(w, 404, "Dashboard not found", "<p>Dashboard not found</p>")
			return
		}
		s.page(w, 200, db.Title, "<h1>"+html.EscapeString(db.Title)+"</h1><p>(the stand-in does not render panels)</p>")
		return
	}
	var b strings.Builder
	b.WriteString("<h1>Home</h1><ul>")
	for _, db := range s.sortedDashboards("") {
		fmt.Fprintf(&b, `<li><a href="%s/d/%s/%s">%s</a></li>`, html.EscapeString(sub), html.EscapeString(db.UID), slug(db.Title), html.EscapeString(db.Title))
	}
	b.WriteString("</ul>")
	s.page(w, 200, "Home", b.String())
}

func (s *server) page(w http.ResponseWriter, code int, title, body string) {
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.WriteHeader(code)
	fmt.Fprintf(w, "<!DOCTYPE html><html><head><title>%s - Grafana</title><base href=\"%s/\"></head><body>%s</body></html>\n",
		html.EscapeString(title), html.EscapeString(s.cfg.appSubURL), body)
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		_ = json.NewDecoder(r.Body).Decode(&req)
	} else {
		_ = r.ParseForm()
		req.User, req.Password = r.PostForm.Get("user"), r.PostForm.Get("password")
	}
	if !eq(req.User, s.cfg.adminUser) || !eq(req.Password, s.cfg.adminPass) {
		s.jsonReply(w, http.StatusUnauthorized, map[string]string{"message": "Invalid username or password", "messageId": "password-auth.failed"})
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	s.mu.Lock()
	s.sessions[tok] = time.Now().Add(24 * time.Hour)
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: tok, Path: s.cookiePath(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	s.jsonReply(w, 200, map[string]string{"message": "Logged in", "redirectUrl": s.cfg.appSubURL + "/"})
}

func (s *server) sortedDashboards(query string) []*dashboard {
	var out []*dashboard
	for _, db := range s.store.dashboards {
		if query == "" || strings.Contains(strings.ToLower(db.Title), strings.ToLower(query)) {
			out = append(out, db)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Title < out[j].Title })
	return out
}

func (s *server) api(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	sub := s.cfg.appSubURL
	switch {
	case p == "/api/user":
		s.jsonReply(w, 200, map[string]any{"id": 1, "login": s.cfg.adminUser, "isGrafanaAdmin": true, "orgId": 1})
	case p == "/api/search":
		q := r.URL.Query()
		if t := q.Get("type"); t != "" && t != "dash-db" {
			s.jsonReply(w, 200, []any{})
			return
		}
		s.store.mu.RLock()
		dbs := s.sortedDashboards(q.Get("query"))
		s.store.mu.RUnlock()
		out := make([]map[string]any, 0, len(dbs))
		for i, db := range dbs {
			tags := db.Tags
			if tags == nil {
				tags = []string{}
			}
			out = append(out, map[string]any{"id": i + 1, "uid": db.UID, "title": db.Title, "uri": "db/" + slug(db.Title),
				"url": sub + "/d/" + db.UID + "/" + slug(db.Title), "slug": "", "type": "dash-db", "tags": tags,
				"isStarred": false, "folderTitle": db.Folder, "sortMeta": 0})
		}
		s.jsonReply(w, 200, out)
	case strings.HasPrefix(p, "/api/dashboards/uid/"):
		uid := strings.TrimPrefix(p, "/api/dashboards/uid/")
		s.store.mu.RLock()
		db, ok := s.store.dashboards[uid]
		s.store.mu.RUnlock()
		if !ok {
			s.jsonReply(w, 404, map[string]string{"message": "Dashboard not found"})
			return
		}
		s.jsonReply(w, 200, map[string]any{"dashboard": db.Raw, "meta": map[string]any{"provisioned": true,
			"provisionedExternalId": filepath.Base(db.Path), "folderTitle": db.Folder, "slug": slug(db.Title),
			"url": sub + "/d/" + db.UID + "/" + slug(db.Title), "updated": db.Updated}})
	case p == "/api/datasources":
		s.store.mu.RLock()
		out := make([]map[string]any, 0, len(s.store.datasources))
		for i, d := range s.store.datasources {
			out = append(out, map[string]any{"id": i + 1, "uid": d.UID, "name": d.Name, "type": d.Type, "url": d.URL,
				"access": d.Access, "isDefault": d.IsDefault, "jsonData": d.JSONData, "readOnly": true, "orgId": 1})
		}
		s.store.mu.RUnlock()
		s.jsonReply(w, 200, out)
	case p == "/api/admin/provisioning/dashboards/reload" && r.Method == http.MethodPost:
		if err := s.store.reloadDashboards(); err != nil {
			s.jsonReply(w, 500, map[string]string{"message": err.Error()})
			return
		}
		s.jsonReply(w, 200, map[string]string{"message": "Dashboards config reloaded"})
	case p == "/api/admin/provisioning/datasources/reload" && r.Method == http.MethodPost:
		if err := s.store.reloadDatasources(); err != nil {
			s.jsonReply(w, 500, map[string]string{"message": err.Error()})
			return
		}
		s.jsonReply(w, 200, map[string]string{"message": "Datasources config reloaded"})
	default:
		s.jsonReply(w, 404, map[string]string{"message": "Not found (this Grafana stand-in has only a few API endpoints)"})
	}
}

// ------------------------------------------------------------------ main

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)).With("logger", "grafana-standin"))
	for _, a := range os.Args[1:] {
		if a == "-v" || a == "--version" || a == "-version" {
			fmt.Printf("grafana version %s (homelab e2e stand-in, not Grafana)\n", version)
			return
		}
	}
	cfg, err := load()
	if err != nil {
		slog.Error("config", "err", err)
		os.Exit(1)
	}
	// Grafana creates its database in the data directory first thing.
	if err := os.MkdirAll(cfg.dataDir, 0o755); err != nil {
		slog.Error("data directory not writable", "path", cfg.dataDir, "err", err)
		os.Exit(1)
	}
	marker := filepath.Join(cfg.dataDir, "grafana-standin.db")
	if err := os.WriteFile(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o640); err != nil {
		slog.Error("failed to create database", "path", marker, "err", err)
		os.Exit(1)
	}
	st := &store{dir: cfg.provisioning, dashboards: map[string]*dashboard{}}
	if err := st.reloadDatasources(); err != nil {
		slog.Error("datasources", "err", err)
	}
	if err := st.reloadDashboards(); err != nil {
		slog.Error("dashboards", "err", err)
	}
	srv := &server{cfg: cfg, store: st, sessions: map[string]time.Time{}}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(st.interval()):
				if err := st.reloadDashboards(); err != nil {
					slog.Warn("dashboards", "err", err)
				}
			}
		}
	}()
	hs := &http.Server{Addr: cfg.addr, Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	slog.Info("HTTP Server Listen", "address", cfg.addr, "root_url", cfg.appURL, "subUrl", cfg.appSubURL,
		"serve_from_sub_path", cfg.fromSubPath, "version", version)
	if err := hs.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		slog.Error("listen", "err", err)
		os.Exit(1)
	}
}
