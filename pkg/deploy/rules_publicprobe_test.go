package deploy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/deploy"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/render"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// TestPublicProbeModuleReadsAnExpiredCertificate runs the real blackbox
// exporter (Debian's, 0.23) with the modules homelab renders for it, against
// an HTTPS server whose certificate expired yesterday. The public module
// must still report the expiry date (so CertificateExpiring keeps firing
// after the date), while a verifying module reports nothing: the reason the
// public module skips verification. It must also refuse plain HTTP.
func TestPublicProbeModuleReadsAnExpiredCertificate(t *testing.T) {
	exporter := testutil.NeedProgram(t, "prometheus-blackbox-exporter", "/usr/bin/prometheus-blackbox-exporter")

	cfg, err := config.Parse("tls.yaml", []byte(ruleConfigs["tls"]))
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New()
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.Named(cfg, layout.ValuesBlackbox)
	if err != nil {
		t.Fatal(err)
	}
	// The chart hands values.config to the exporter as its configuration.
	var values struct {
		Config map[string]any `json:"config"`
	}
	if err := sigsyaml.Unmarshal(f.Data, &values); err != nil {
		t.Fatal(err)
	}
	exporterConfig, err := sigsyaml.Marshal(values.Config)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	configFile := filepath.Join(dir, "blackbox.yaml")
	if err := os.WriteFile(configFile, exporterConfig, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(exporter, "--config.check", "--config.file="+configFile).CombinedOutput(); err != nil {
		t.Fatalf("the blackbox exporter rejects the rendered modules: %v\n%s\n%s", err, out, exporterConfig)
	}
	addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	testutil.StartDaemon(t, exec.Command(exporter, "--config.file="+configFile, "--web.listen-address="+addr), addr)

	expired := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	site := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "the app, through Nginx")
	}))
	site.Config.ErrorLog = log.New(io.Discard, "", 0) // the verifying probe's refused handshake
	site.TLS = &tls.Config{Certificates: []tls.Certificate{certificate(t, cfg.Domain, expired)}}
	site.StartTLS()
	t.Cleanup(site.Close)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(plain.Close)

	got := probe(t, addr, deploy.PublicProbeModule, site.URL+"/")
	if got["probe_success"] != 1 {
		t.Errorf("module %s on a site with an expired certificate: probe_success %v, want 1 (metrics %v)", deploy.PublicProbeModule, got["probe_success"], got)
	}
	if v, ok := got["probe_ssl_earliest_cert_expiry"]; !ok || int64(v) != expired.Unix() {
		t.Errorf("module %s: probe_ssl_earliest_cert_expiry %v (present %v), want the certificate's date %d", deploy.PublicProbeModule, v, ok, expired.Unix())
	}

	verifying := probe(t, addr, "http_2xx", site.URL+"/")
	if _, ok := verifying["probe_ssl_earliest_cert_expiry"]; ok || verifying["probe_success"] != 0 {
		t.Errorf("a verifying module reported %v for an expired certificate: then skipping verification would not be needed", verifying)
	}

	if got := probe(t, addr, deploy.PublicProbeModule, plain.URL+"/"); got["probe_success"] != 0 {
		t.Errorf("module %s over plain HTTP: probe_success %v, want 0 (the public site must be HTTPS)", deploy.PublicProbeModule, got["probe_success"])
	}
}

// probe asks the exporter at addr to probe target with module, as
// Prometheus does for a Probe, and returns its unlabelled gauges.
func probe(t *testing.T, addr, module, target string) map[string]float64 {
	t.Helper()
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/probe?" + url.Values{"module": {module}, "target": {target}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("probe %s %s: %s", module, target, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	gauges := map[string]float64{}
	for name, fam := range families {
		for _, m := range fam.GetMetric() {
			if m.GetGauge() != nil && len(m.GetLabel()) == 0 {
				gauges[name] = m.GetGauge().GetValue()
			}
		}
	}
	return gauges
}

// certificate is a self-signed certificate for name that expires at notAfter.
func certificate(t *testing.T, name string, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    notAfter.Add(-90 * 24 * time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
