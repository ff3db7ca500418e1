package doctor

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math"
	"time"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/layout"
)

const (
	certWarnDays = 14
	certFailDays = 3
)

func (d *doctor) tlsChecks() []Check {
	return []Check{
		{ID: "tls.certificate", Group: GroupTLS, Name: "certificate", Run: d.checkCertificate},
		{ID: "tls.expiry", Group: GroupTLS, Name: "days to expiry", Needs: []string{"tls.certificate"}, Run: d.checkExpiry},
	}
}

func (d *doctor) certPath() string {
	if d.cfg.TLS.Mode == config.TLSCertbot {
		return layout.LetsEncryptCert(d.cfg.Domain)
	}
	return d.cfg.TLS.CertFile
}

// obtainFix is how to get a certificate at all.
func (d *doctor) obtainFix() string {
	if d.cfg.TLS.Mode == config.TLSCertbot {
		contact := "-m " + d.cfg.Email
		if d.cfg.Email == "" {
			contact = "--register-unsafely-without-email"
		}
		return fmt.Sprintf("sudo certbot certonly --webroot -w %s -d %s %s --agree-tos -n && %s",
			layout.ACMEWebroot, d.cfg.Domain, contact, reloadNginx)
	}
	return fmt.Sprintf("put the certificate chain for %s (PEM) at %s (tls.certFile), then %s", d.cfg.Domain, d.cfg.TLS.CertFile, reloadNginx)
}

func (d *doctor) renewFix() string {
	if d.cfg.TLS.Mode == config.TLSCertbot {
		return "sudo certbot renew --cert-name " + d.cfg.Domain + " && sudo systemctl reload nginx (and check the timer: systemctl status certbot.timer)"
	}
	return fmt.Sprintf("replace %s with a renewed certificate, then %s", d.cfg.TLS.CertFile, reloadNginx)
}

// leaf reads and parses the first certificate in the chain file.
func (d *doctor) leaf() (*x509.Certificate, Finding, bool) {
	path := d.certPath()
	data, err := d.Host.ReadFile(path)
	switch {
	case notExist(err):
		return nil, Fail(d.obtainFix(), "%s is missing", path), false
	case err != nil:
		return nil, Fail("sudo homelab doctor", "cannot read %s: %v", path, err), false
	}
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, Fail(d.obtainFix(), "%s holds no PEM certificate", path), false
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, Fail(d.obtainFix(), "%s: %v", path, err), false
		}
		return cert, Finding{}, true
	}
}

func (d *doctor) checkCertificate(context.Context) Finding {
	if !d.cfg.TLS.Enabled() {
		return Skip("TLS is off (tls.mode: none)")
	}
	cert, f, ok := d.leaf()
	if !ok {
		return f
	}
	if err := cert.VerifyHostname(d.cfg.Domain); err != nil {
		names := cert.DNSNames
		if len(names) == 0 {
			names = []string{cert.Subject.CommonName}
		}
		return Fail(d.obtainFix(), "%s is for %v, not %s", d.certPath(), names, d.cfg.Domain)
	}
	return OK("%s is for %s, issued by %s", d.certPath(), d.cfg.Domain, cert.Issuer.CommonName)
}

func (d *doctor) checkExpiry(context.Context) Finding {
	if !d.cfg.TLS.Enabled() {
		return Skip("TLS is off (tls.mode: none)")
	}
	cert, f, ok := d.leaf()
	if !ok {
		return f
	}
	now := d.Now()
	if now.Before(cert.NotBefore) {
		return Fail("sudo timedatectl set-ntp true (the clock may be behind), or "+d.renewFix(),
			"not valid before %s", cert.NotBefore.UTC().Format(time.DateOnly))
	}
	left := cert.NotAfter.Sub(now)
	days := int(math.Floor(left.Hours() / 24))
	until := cert.NotAfter.UTC().Format(time.DateOnly)
	switch {
	case left <= 0:
		return Fail(d.renewFix(), "expired on %s", until)
	case days < certFailDays:
		return Fail(d.renewFix(), "expires in %d day(s), on %s", days, until)
	case days < certWarnDays:
		return Warn(d.renewFix(), "expires in %d days, on %s", days, until)
	}
	return OK("%d days left, until %s", days, until)
}
