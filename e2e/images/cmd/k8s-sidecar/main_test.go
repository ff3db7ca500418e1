package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/e2e/images/internal/kubeapi"
)

// fakeAPI serves a list and then one watch stream per resource.
type fakeAPI struct {
	mu      sync.Mutex
	lists   map[string]string   // resource -> list JSON
	watches map[string][]string // resource -> watch event lines, served once
	queries []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.queries = append(f.queries, r.URL.Path+"?"+r.URL.RawQuery)
	res := filepath.Base(r.URL.Path)
	if r.URL.Query().Get("labelSelector") != "grafana_dashboard=1" {
		f.mu.Unlock()
		http.Error(w, "bad selector "+r.URL.Query().Get("labelSelector"), 400)
		return
	}
	if r.URL.Query().Get("watch") == "true" {
		evs := f.watches[res]
		f.watches[res] = nil
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		for _, e := range evs {
			fmt.Fprintln(w, e)
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
		if evs == nil { // later watches: hold until the client goes
			<-r.Context().Done()
		}
		return
	}
	l := f.lists[res]
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(l))
}

func cm(name, rv string, data map[string]string) string {
	var kv []string
	for k, v := range data {
		kv = append(kv, fmt.Sprintf("%q:%q", k, v))
	}
	return fmt.Sprintf(`{"kind":"ConfigMap","metadata":{"name":%q,"namespace":"monitoring","resourceVersion":%q},"data":{%s}}`,
		name, rv, strings.Join(kv, ","))
}

func TestSyncWritesUpdatesAndRemoves(t *testing.T) {
	dir := t.TempDir()
	var reloads atomic.Int32
	grafana := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		if r.Method != http.MethodPost || r.URL.Path != "/api/admin/provisioning/dashboards/reload" || u != "admin" || p != "pw" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, 400)
			return
		}
		reloads.Add(1)
	}))
	defer grafana.Close()
	secretVal := base64.StdEncoding.EncodeToString([]byte(`{"title":"from secret"}`))
	f := &fakeAPI{
		lists: map[string]string{
			"configmaps": `{"metadata":{"resourceVersion":"10"},"items":[` + cm("a", "5", map[string]string{"a.json": `{"title":"A"}`}) + `]}`,
			"secrets": `{"metadata":{"resourceVersion":"11"},"items":[{"kind":"Secret","metadata":{"name":"s","namespace":"monitoring",` +
				`"resourceVersion":"6"},"data":{"s.json":"` + secretVal + `"}}]}`,
		},
		watches: map[string][]string{
			"configmaps": {
				`{"type":"MODIFIED","object":` + cm("a", "12", map[string]string{"a2.json": `{"title":"A2"}`}) + `}`,
				`{"type":"ADDED","object":` + cm("b", "13", map[string]string{"b.json": `{"title":"B"}`}) + `}`,
				`{"type":"DELETED","object":` + cm("b", "14", nil) + `}`,
			},
		},
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("t0ken"), 0o600)
	t.Setenv("K8S_API_URL", srv.URL)
	t.Setenv("K8S_TOKEN_FILE", tok)
	t.Setenv("SKIP_TLS_VERIFY", "true")
	kc, err := kubeapi.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config{label: "grafana_dashboard", labelValue: "1", folder: dir, folderAnnot: "k8s-sidecar-target-directory",
		resources: []string{"configmaps", "secrets"}, method: "WATCH", reqURL: grafana.URL + "/api/admin/provisioning/dashboards/reload",
		reqMethod: "POST", reqUser: "admin", reqPass: "pw", reqRetries: 2, fileMode: 0o644, watchTimeout: 60}
	s := &syncer{cfg: cfg, api: &api{c: kc}, files: map[string][]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if cond() {
				return
			}
		}
		t.Fatalf("timed out waiting for %s; files: %v; queries: %v", what, ls(dir), f.queries)
	}
	exists := func(n string) bool { _, err := os.Stat(filepath.Join(dir, n)); return err == nil }
	waitFor("s.json from the secret", func() bool { return exists("s.json") })
	if b, _ := os.ReadFile(filepath.Join(dir, "s.json")); string(b) != `{"title":"from secret"}` {
		t.Errorf("s.json = %q", b)
	}
	waitFor("a.json replaced by a2.json, b.json gone", func() bool { return exists("a2.json") && !exists("a.json") && !exists("b.json") && s.ready.Load() })
	waitFor("reload calls", func() bool { return reloads.Load() >= 2 })
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("syncer did not stop")
	}
}

func ls(dir string) []string {
	es, _ := os.ReadDir(dir)
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}
