package doctor

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/doctor/doctortest"
	"github.com/homelab-dev/homelab/pkg/layout"
)

// writeCert writes a self-signed certificate and its key at host paths.
func writeCert(t testing.TB, h *doctortest.Host, certPath, keyPath string, names []string, notBefore, notAfter time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: names[0]}, Issuer: pkix.Name{CommonName: "test CA"},
		DNSNames: names, NotBefore: notBefore, NotAfter: notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	h.Write(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	if keyPath != "" {
		h.Write(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	}
}

func TestTLSCertificate(t *testing.T) {
	const certbot = "domain: blog.example.com\nemail: me@example.com\ntls: {mode: certbot}\n"
	day := 24 * time.Hour
	cases := []struct {
		name     string
		names    []string
		from, to time.Duration // relative to fixedNow
		noFile   bool
		id       string
		status   Status
		msg, fix string
	}{
		{"valid", []string{"blog.example.com"}, -10 * day, 80 * day, false, "tls.expiry", StatusOK, "80 days left", ""},
		{"expiring soon", []string{"blog.example.com"}, -80 * day, 10*day + time.Hour, false, "tls.expiry", StatusWarn, "expires in 10 days", "certbot renew --cert-name blog.example.com"},
		{"about to expire", []string{"blog.example.com"}, -88 * day, 2*day + time.Hour, false, "tls.expiry", StatusFail, "expires in 2 day(s)", "certbot renew"},
		{"expired", []string{"blog.example.com"}, -100 * day, -day, false, "tls.expiry", StatusFail, "expired on 2026-11-23", "certbot renew"},
		{"not yet valid", []string{"blog.example.com"}, day, 90 * day, false, "tls.expiry", StatusFail, "not valid before 2026-11-25", "timedatectl"},
		{"wildcard", []string{"*.example.com"}, -day, 60 * day, false, "tls.certificate", StatusOK, "is for blog.example.com", ""},
		{"wrong name", []string{"other.example.com"}, -day, 60 * day, false, "tls.certificate", StatusFail, "is for [other.example.com], not blog.example.com", "certbot certonly --webroot -w /var/www/letsencrypt -d blog.example.com -m me@example.com"},
		{"missing", nil, 0, 0, true, "tls.certificate", StatusFail, "/etc/letsencrypt/live/blog.example.com/fullchain.pem is missing", "certbot certonly"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := parseConfig(t, certbot)
			h := doctortest.NewHost(t).Healthy(cfg, 4)
			if !c.noFile {
				writeCert(t, h, layout.LetsEncryptCert(cfg.Domain), "", c.names, fixedNow.Add(c.from), fixedNow.Add(c.to))
			}
			res, _ := runChecks(t, Env{Config: cfg, Host: h, Dial: refuseAll}, time.Second)
			expect(t, res, c.id, c.status, c.msg, c.fix)
			if c.noFile {
				expect(t, res, "tls.expiry", StatusSkipped, "needs tls.certificate, which failed")
			}
		})
	}
}
