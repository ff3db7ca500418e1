package main

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/homelab-dev/homelab/e2e/images/internal/kubeapi"
)

// fakeAPI keeps one Secret and the two webhook configurations.
type fakeAPI struct {
	mu      sync.Mutex
	secret  map[string]any
	patches map[string][]map[string]any
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer t0ken" {
		http.Error(w, "no token", 401)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/namespaces/monitoring/secrets/x-admission":
		if f.secret == nil {
			http.Error(w, `{"reason":"NotFound"}`, 404)
			return
		}
		json.NewEncoder(w).Encode(f.secret)
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/namespaces/monitoring/secrets":
		json.NewDecoder(r.Body).Decode(&f.secret)
		w.WriteHeader(201)
		json.NewEncoder(w).Encode(f.secret)
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "webhookconfigurations/x-admission"):
		io.WriteString(w, `{"webhooks":[{"name":"a"},{"name":"b"}]}`)
	case r.Method == http.MethodPatch && strings.HasSuffix(r.URL.Path, "webhookconfigurations/x-admission"):
		if r.Header.Get("Content-Type") != "application/json-patch+json" {
			http.Error(w, "bad content type", 415)
			return
		}
		var ops []map[string]any
		json.NewDecoder(r.Body).Decode(&ops)
		f.patches[r.URL.Path] = ops
		io.WriteString(w, `{}`)
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, 400)
	}
}

func TestCreateThenPatch(t *testing.T) {
	f := &fakeAPI{patches: map[string][]map[string]any{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("t0ken\n"), 0o600)
	t.Setenv("K8S_API_URL", srv.URL)
	t.Setenv("K8S_TOKEN_FILE", tok)
	t.Setenv("SKIP_TLS_VERIFY", "true")
	c, err := kubeapi.New()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hosts := []string{"x-operator", "x-operator.monitoring.svc"}
	if err := create(ctx, c, "monitoring", "x-admission", hosts, "ca", "cert", "key"); err != nil {
		t.Fatal(err)
	}
	data := f.secret["data"].(map[string]any)
	dec := func(k string) []byte {
		b, err := base64.StdEncoding.DecodeString(data[k].(string))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	caBlock, _ := pem.Decode(dec("ca"))
	certBlock, _ := pem.Decode(dec("cert"))
	ca, err := x509.ParseCertificate(caBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "x-operator.monitoring.svc"}); err != nil {
		t.Fatalf("serving cert does not verify against the CA: %v", err)
	}
	if k, _ := pem.Decode(dec("key")); k == nil || k.Type != "EC PRIVATE KEY" {
		t.Fatalf("key is not a PEM EC key")
	}
	// A second create keeps the Secret.
	before := data["ca"]
	if err := create(ctx, c, "monitoring", "x-admission", hosts, "ca", "cert", "key"); err != nil {
		t.Fatal(err)
	}
	if f.secret["data"].(map[string]any)["ca"] != before {
		t.Fatal("second create replaced the Secret")
	}
	if err := patch(ctx, c, "monitoring", "x-admission", "ca", "x-admission", "Fail", true, true); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"validating", "mutating"} {
		ops := f.patches["/apis/admissionregistration.k8s.io/v1/"+kind+"webhookconfigurations/x-admission"]
		if len(ops) != 4 {
			t.Fatalf("%s: %d patch ops, want 4: %v", kind, len(ops), ops)
		}
		if ops[0]["path"] != "/webhooks/0/clientConfig/caBundle" || ops[0]["value"] != before ||
			ops[3]["path"] != "/webhooks/1/failurePolicy" || ops[3]["value"] != "Fail" {
			t.Fatalf("%s: unexpected ops %v", kind, ops)
		}
	}
}
