// k8s-sidecar is a stand-in for kiwigrid's k8s-sidecar (Python, not
// buildable here) in the end-to-end test machine. It does what the Grafana
// chart configures its sidecar containers to do, from the same environment
// variables:
//
//	LABEL, LABEL_VALUE   select ConfigMaps/Secrets carrying this label (and value)
//	FOLDER               write each data key of a selected object as a file here
//	FOLDER_ANNOTATION    annotation naming another folder (relative to FOLDER) for one object
//	                     (default k8s-sidecar-target-directory)
//	NAMESPACE            ALL, or a comma-separated list (default: the pod's namespace)
//	RESOURCE             configmap, secret or both (default configmap)
//	METHOD               WATCH (default: list, then watch), LIST (once, then exit: the init
//	                     container form), SLEEP (list every SLEEP_TIME seconds, default 60)
//	REQ_URL, REQ_METHOD, REQ_USERNAME, REQ_PASSWORD, REQ_PAYLOAD
//	                     after files changed, call this URL (Grafana's provisioning reload API)
//	REQ_SKIP_INIT        do not call it after the first listing
//	REQ_RETRY_TOTAL      attempts for that call (default 5)
//	UNIQUE_FILENAMES     name files namespace_NS.KIND_NAME.KEY
//	DEFAULT_FILE_MODE    octal mode of written files
//	SCRIPT               run this after files changed (sh SCRIPT when not executable)
//	RESOURCE_NAME        only these objects: "configmap/a,secret/b"
//	WATCH_SERVER_TIMEOUT seconds the API server keeps a watch open (default 60)
//	HEALTH_PORT          serve GET /healthz here (200 once the first listing is done)
//	SKIP_TLS_VERIFY      do not check the API server's certificate
//	IGNORE_ALREADY_PROCESSED, LOG_LEVEL, WATCH_CLIENT_TIMEOUT, REQ_RETRY_CONNECT,
//	REQ_RETRY_READ       accepted; this stand-in always skips unchanged content
//
// Not done: data keys ending in ".url" (the real sidecar downloads them; there
// is no network here, so the key is written as is and a warning logged).
// The API server is found as in a pod (KUBERNETES_SERVICE_HOST/PORT and the
// service account); K8S_API_URL, K8S_TOKEN_FILE and K8S_CA_FILE override that
// for tests outside a cluster.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/homelab-dev/homelab/e2e/images/internal/kubeapi"
)

var version = "2.10.1"

type config struct {
	label, labelValue   string
	folder, folderAnnot string
	namespaces          []string // nil: all
	resources           []string // "configmaps", "secrets"
	method              string
	sleep               time.Duration
	reqURL, reqMethod   string
	reqUser, reqPass    string
	reqPayload          string
	reqSkipInit         bool
	reqRetries          int
	unique              bool
	fileMode            os.FileMode
	script              string
	names               map[string]bool // "configmap/name"
	watchTimeout        int
	healthPort          string
}

func env(k, def string) string {
	if v, ok := os.LookupEnv(k); ok && v != "" {
		return v
	}
	return def
}

func loadConfig() (*config, error) {
	c := &config{
		label: os.Getenv("LABEL"), labelValue: os.Getenv("LABEL_VALUE"),
		folder: os.Getenv("FOLDER"), folderAnnot: env("FOLDER_ANNOTATION", "k8s-sidecar-target-directory"),
		method: strings.ToUpper(env("METHOD", "WATCH")), reqURL: os.Getenv("REQ_URL"),
		reqMethod: strings.ToUpper(env("REQ_METHOD", "GET")), reqUser: os.Getenv("REQ_USERNAME"),
		reqPass: os.Getenv("REQ_PASSWORD"), reqPayload: os.Getenv("REQ_PAYLOAD"),
		reqSkipInit: truthy(os.Getenv("REQ_SKIP_INIT")), unique: truthy(os.Getenv("UNIQUE_FILENAMES")),
		script: os.Getenv("SCRIPT"), healthPort: os.Getenv("HEALTH_PORT"),
	}
	if c.label == "" || c.folder == "" {
		return nil, errors.New("LABEL and FOLDER must be set")
	}
	var err error
	if c.reqRetries, err = strconv.Atoi(env("REQ_RETRY_TOTAL", "5")); err != nil {
		return nil, fmt.Errorf("REQ_RETRY_TOTAL: %w", err)
	}
	if c.watchTimeout, err = strconv.Atoi(env("WATCH_SERVER_TIMEOUT", "60")); err != nil {
		return nil, fmt.Errorf("WATCH_SERVER_TIMEOUT: %w", err)
	}
	st, err := strconv.Atoi(env("SLEEP_TIME", "60"))
	if err != nil {
		return nil, fmt.Errorf("SLEEP_TIME: %w", err)
	}
	c.sleep = time.Duration(st) * time.Second
	c.fileMode = 0o644
	if m := os.Getenv("DEFAULT_FILE_MODE"); m != "" {
		v, err := strconv.ParseUint(m, 8, 32)
		if err != nil {
			return nil, fmt.Errorf("DEFAULT_FILE_MODE: %w", err)
		}
		c.fileMode = os.FileMode(v)
	}
	switch strings.ToLower(env("RESOURCE", "configmap")) {
	case "configmap":
		c.resources = []string{"configmaps"}
	case "secret":
		c.resources = []string{"secrets"}
	case "both":
		c.resources = []string{"configmaps", "secrets"}
	default:
		return nil, fmt.Errorf("RESOURCE %q: configmap, secret or both", os.Getenv("RESOURCE"))
	}
	switch c.method {
	case "WATCH", "LIST", "SLEEP":
	default:
		return nil, fmt.Errorf("METHOD %q: WATCH, LIST or SLEEP", c.method)
	}
	ns := os.Getenv("NAMESPACE")
	switch {
	case strings.EqualFold(ns, "ALL"):
	case ns != "":
		for _, n := range strings.Split(ns, ",") {
			if n = strings.TrimSpace(n); n != "" {
				c.namespaces = append(c.namespaces, n)
			}
		}
	default:
		ns, err := kubeapi.Namespace()
		if err != nil {
			return nil, fmt.Errorf("NAMESPACE unset and no service account namespace: %w", err)
		}
		c.namespaces = []string{ns}
	}
	if rn := os.Getenv("RESOURCE_NAME"); rn != "" {
		c.names = map[string]bool{}
		for _, n := range strings.Split(rn, ",") {
			c.names[strings.ToLower(strings.TrimSpace(n))] = true
		}
	}
	return c, nil
}

func truthy(s string) bool {
	b, _ := strconv.ParseBool(strings.TrimSpace(s))
	return b
}

// ------------------------------------------------------------ API client

type api struct{ c *kubeapi.Client }

func (a *api) get(ctx context.Context, watch bool, path string, q url.Values) (*http.Response, error) {
	hc := a.c.HC
	if watch {
		hc = a.c.Watch
	}
	return a.c.Do(ctx, hc, http.MethodGet, path, q, nil, "")
}

type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name            string            `json:"name"`
		Namespace       string            `json:"namespace"`
		ResourceVersion string            `json:"resourceVersion"`
		Annotations     map[string]string `json:"annotations"`
	} `json:"metadata"`
	Data       map[string]string `json:"data"`
	BinaryData map[string]string `json:"binaryData"`
}

type list struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Items []object `json:"items"`
}

// ---------------------------------------------------------------- syncer

type syncer struct {
	cfg   *config
	api   *api
	mu    sync.Mutex
	files map[string][]string // object key -> files written for it
	ready atomic.Bool
}

func kindOf(resource string) string { return strings.TrimSuffix(resource, "s") }

func (s *syncer) selector() string {
	if s.cfg.labelValue != "" {
		return s.cfg.label + "=" + s.cfg.labelValue
	}
	return s.cfg.label
}

func (s *syncer) path(resource, ns string) string {
	if ns == "" {
		return "/api/v1/" + resource
	}
	return "/api/v1/namespaces/" + url.PathEscape(ns) + "/" + resource
}

// contents returns the files an object should produce: name -> bytes.
func (s *syncer) contents(resource string, o *object) (string, map[string][]byte) {
	dir := s.cfg.folder
	if d := o.Metadata.Annotations[s.cfg.folderAnnot]; d != "" {
		if filepath.IsAbs(d) {
			dir = d
		} else {
			dir = filepath.Join(s.cfg.folder, d)
		}
	}
	out := map[string][]byte{}
	add := func(key string, b []byte) {
		if strings.HasSuffix(key, ".url") {
			slog.Warn("data key ends in .url: the stand-in does not download it (no network)", "object", o.Metadata.Name, "key", key)
		}
		name := key
		if s.cfg.unique {
			name = fmt.Sprintf("namespace_%s.%s_%s.%s", o.Metadata.Namespace, kindOf(resource), o.Metadata.Name, key)
		}
		out[filepath.Join(dir, filepath.Base(name))] = b
	}
	for k, v := range o.Data {
		if resource == "secrets" {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				slog.Warn("secret value is not base64", "object", o.Metadata.Name, "key", k)
				continue
			}
			add(k, b)
		} else {
			add(k, []byte(v))
		}
	}
	for k, v := range o.BinaryData {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			continue
		}
		add(k, b)
	}
	return dir, out
}

func (s *syncer) wanted(resource string, o *object) bool {
	if s.cfg.names == nil {
		return true
	}
	return s.cfg.names[kindOf(resource)+"/"+strings.ToLower(o.Metadata.Name)]
}

func objKey(resource string, o *object) string {
	return resource + "/" + o.Metadata.Namespace + "/" + o.Metadata.Name
}

// apply writes an object's files and removes files it no longer has;
// it reports whether anything on disk changed.
func (s *syncer) apply(resource string, o *object) bool {
	key := objKey(resource, o)
	_, want := s.contents(resource, o)
	changed := false
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, old := range s.files[key] {
		if _, keep := want[old]; !keep {
			if err := os.Remove(old); err == nil {
				changed = true
				slog.Info("removed file", "file", old, "object", key)
			}
		}
	}
	var names []string
	for p, b := range want {
		names = append(names, p)
		if cur, err := os.ReadFile(p); err == nil && bytes.Equal(cur, b) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			slog.Error("cannot create folder", "folder", filepath.Dir(p), "err", err)
			continue
		}
		tmp := p + ".tmp-sidecar"
		if err := os.WriteFile(tmp, b, s.cfg.fileMode); err != nil {
			slog.Error("cannot write file", "file", p, "err", err)
			continue
		}
		if err := os.Rename(tmp, p); err != nil {
			slog.Error("cannot write file", "file", p, "err", err)
			continue
		}
		_ = os.Chmod(p, s.cfg.fileMode)
		changed = true
		slog.Info("wrote file", "file", p, "object", key)
	}
	s.files[key] = names
	return changed
}

func (s *syncer) remove(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, p := range s.files[key] {
		if err := os.Remove(p); err == nil {
			changed = true
			slog.Info("removed file", "file", p, "object", key)
		}
	}
	delete(s.files, key)
	return changed
}

// afterChange runs SCRIPT and calls REQ_URL, as the real sidecar does.
func (s *syncer) afterChange(ctx context.Context) {
	if s.cfg.script != "" {
		cmd := exec.CommandContext(ctx, s.cfg.script)
		if st, err := os.Stat(s.cfg.script); err == nil && st.Mode()&0o111 == 0 {
			cmd = exec.CommandContext(ctx, "sh", s.cfg.script)
		}
		out, err := cmd.CombinedOutput()
		slog.Info("script ran", "script", s.cfg.script, "err", err, "output", strings.TrimSpace(string(out)))
	}
	if s.cfg.reqURL == "" {
		return
	}
	for i := 1; i <= max(1, s.cfg.reqRetries); i++ {
		var body io.Reader
		if s.cfg.reqMethod == http.MethodPost && s.cfg.reqPayload != "" {
			body = strings.NewReader(s.cfg.reqPayload)
		}
		req, err := http.NewRequestWithContext(ctx, s.cfg.reqMethod, s.cfg.reqURL, body)
		if err != nil {
			slog.Error("REQ_URL", "err", err)
			return
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if s.cfg.reqUser != "" || s.cfg.reqPass != "" {
			req.SetBasicAuth(s.cfg.reqUser, s.cfg.reqPass)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			slog.Info("reload request sent", "url", s.cfg.reqURL, "status", resp.StatusCode, "response", strings.TrimSpace(string(b)))
			if resp.StatusCode < 500 {
				return
			}
		} else {
			slog.Warn("reload request failed", "url", s.cfg.reqURL, "attempt", i, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(i) * time.Second):
		}
	}
}

// listOnce lists one resource in one namespace (or all), applies what it
// found and drops objects that disappeared.
func (s *syncer) listOnce(ctx context.Context, resource, ns string) (string, bool, error) {
	resp, err := s.api.get(ctx, false, s.path(resource, ns), url.Values{"labelSelector": {s.selector()}})
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	var l list
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return "", false, err
	}
	changed := false
	seen := map[string]bool{}
	for i := range l.Items {
		o := &l.Items[i]
		if !s.wanted(resource, o) {
			continue
		}
		seen[objKey(resource, o)] = true
		if s.apply(resource, o) {
			changed = true
		}
	}
	prefix := resource + "/"
	if ns != "" {
		prefix += ns + "/"
	}
	s.mu.Lock()
	var gone []string
	for k := range s.files {
		if strings.HasPrefix(k, prefix) && !seen[k] {
			gone = append(gone, k)
		}
	}
	s.mu.Unlock()
	for _, k := range gone {
		if s.remove(k) {
			changed = true
		}
	}
	return l.Metadata.ResourceVersion, changed, nil
}

type event struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

// watch follows one resource in one namespace from rv until the server ends
// the watch; it returns "" when a fresh listing is needed.
func (s *syncer) watch(ctx context.Context, resource, ns, rv string) (string, error) {
	q := url.Values{"labelSelector": {s.selector()}, "watch": {"true"}, "resourceVersion": {rv},
		"allowWatchBookmarks": {"true"}, "timeoutSeconds": {strconv.Itoa(s.cfg.watchTimeout)}}
	resp, err := s.api.get(ctx, true, s.path(resource, ns), q)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 32<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return "", err
		}
		if ev.Type == "ERROR" {
			return "", nil // usually 410 Gone: list again
		}
		var o object
		if err := json.Unmarshal(ev.Object, &o); err != nil {
			return "", err
		}
		rv = o.Metadata.ResourceVersion
		if ev.Type == "BOOKMARK" || !s.wanted(resource, &o) {
			continue
		}
		changed := false
		switch ev.Type {
		case "ADDED", "MODIFIED":
			changed = s.apply(resource, &o)
		case "DELETED":
			changed = s.remove(objKey(resource, &o))
		}
		if changed {
			s.afterChange(ctx)
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return rv, err
	}
	return rv, nil
}

func (s *syncer) scopes() []string {
	if s.cfg.namespaces == nil {
		return []string{""}
	}
	return s.cfg.namespaces
}

// initial lists everything once, retrying until the API server answers.
func (s *syncer) initial(ctx context.Context) (map[string]string, error) {
	rvs := map[string]string{}
	changed := false
	for _, r := range s.cfg.resources {
		for _, ns := range s.scopes() {
			for attempt := 1; ; attempt++ {
				rv, ch, err := s.listOnce(ctx, r, ns)
				if err == nil {
					rvs[r+"/"+ns] = rv
					changed = changed || ch
					break
				}
				slog.Warn("list failed, retrying", "resource", r, "namespace", ns, "attempt", attempt, "err", err)
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(min(time.Duration(attempt)*time.Second, 10*time.Second)):
				}
			}
		}
	}
	if changed && !s.cfg.reqSkipInit {
		s.afterChange(ctx)
	}
	s.ready.Store(true)
	return rvs, nil
}

func (s *syncer) run(ctx context.Context) error {
	rvs, err := s.initial(ctx)
	if err != nil {
		return err
	}
	switch s.cfg.method {
	case "LIST":
		return nil
	case "SLEEP":
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(s.cfg.sleep):
			}
			changed := false
			for _, r := range s.cfg.resources {
				for _, ns := range s.scopes() {
					_, ch, err := s.listOnce(ctx, r, ns)
					if err != nil {
						slog.Warn("list failed", "resource", r, "namespace", ns, "err", err)
					}
					changed = changed || ch
				}
			}
			if changed {
				s.afterChange(ctx)
			}
		}
	}
	var wg sync.WaitGroup
	for _, r := range s.cfg.resources {
		for _, ns := range s.scopes() {
			wg.Add(1)
			go func(r, ns, rv string) {
				defer wg.Done()
				for backoff := time.Second; ctx.Err() == nil; {
					if rv == "" {
						var changed bool
						var err error
						rv, changed, err = s.listOnce(ctx, r, ns)
						if err != nil {
							slog.Warn("list failed", "resource", r, "namespace", ns, "err", err)
							rv = ""
							sleepCtx(ctx, backoff)
							backoff = min(2*backoff, 30*time.Second)
							continue
						}
						if changed {
							s.afterChange(ctx)
						}
					}
					next, err := s.watch(ctx, r, ns, rv)
					if err != nil && ctx.Err() == nil {
						slog.Warn("watch ended", "resource", r, "namespace", ns, "err", err)
						sleepCtx(ctx, backoff)
						backoff = min(2*backoff, 30*time.Second)
					} else {
						backoff = time.Second
					}
					rv = next
				}
			}(r, ns, rvs[r+"/"+ns])
		}
	}
	wg.Wait()
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func main() {
	lvl := slog.LevelInfo
	switch strings.ToUpper(os.Getenv("LOG_LEVEL")) {
	case "DEBUG":
		lvl = slog.LevelDebug
	case "WARN", "WARNING":
		lvl = slog.LevelWarn
	case "ERROR", "CRITICAL":
		lvl = slog.LevelError
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})).With("logger", "k8s-sidecar-standin"))
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "-v") {
		fmt.Printf("k8s-sidecar %s (homelab e2e stand-in, not kiwigrid's)\n", version)
		return
	}
	cfg, err := loadConfig()
	if err != nil {
		slog.Error("configuration", "err", err)
		os.Exit(1)
	}
	kc, err := kubeapi.New()
	a := &api{c: kc}
	if err != nil {
		slog.Error("API server", "err", err)
		os.Exit(1)
	}
	if err := os.MkdirAll(cfg.folder, 0o755); err != nil {
		slog.Error("folder", "err", err)
		os.Exit(1)
	}
	s := &syncer{cfg: cfg, api: a, files: map[string][]string{}}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if cfg.healthPort != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
			if !s.ready.Load() {
				http.Error(w, "not synced yet", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "OK")
		})
		go func() {
			if err := http.ListenAndServe(":"+cfg.healthPort, mux); err != nil {
				slog.Error("health server", "err", err)
			}
		}()
	}
	slog.Info("starting", "version", version, "label", s.selector(), "folder", cfg.folder, "resources", cfg.resources,
		"namespaces", cfg.namespaces, "method", cfg.method, "req_url", cfg.reqURL)
	if err := s.run(ctx); err != nil && ctx.Err() == nil {
		slog.Error("stopped", "err", err)
		os.Exit(1)
	}
}
