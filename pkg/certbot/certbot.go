// Package certbot obtains the Let's Encrypt certificate for the domain with
// certbot's webroot method (no downtime: Nginx keeps serving the ACME
// challenge directory), installs certbot when it is missing, and installs the
// hook that reloads Nginx after certbot's own timer renews the certificate.
// Watches records what it creates, so uninstall takes it back.
package certbot

import (
	"context"
	"fmt"

	"github.com/homelab-dev/homelab/pkg/apt"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/record"
)

// Package is the Debian package Step installs when certbot is missing.
var Package = apt.Package{Name: "certbot", Binary: "/usr/bin/certbot"}

// RenewHook reloads Nginx after certbot renews the certificate.
const RenewHook = layout.CertbotRenewHook

// renewHook is RenewHook's content.
var renewHook = []byte("#!/bin/sh\n# Installed by homelab: load renewed certificates.\nexec systemctl reload nginx\n")

// HaveCert reports whether Let's Encrypt's certificate for domain is there.
func HaveCert(h host.Host, domain string) (bool, error) {
	return record.Exists(h, layout.LetsEncryptCert(domain))
}

// Watches record what Step creates: certbot's package, the ACME marker and
// the renewal hook.
func Watches(h host.Host) []record.Watch {
	return []record.Watch{apt.Watch(h, Package), record.FileWatch(h, layout.ACMEMarker), record.FileWatch(h, RenewHook)}
}

// Step obtains the certificate for domain (registering email with Let's
// Encrypt) when there is none, and keeps the renewal hook installed.
func Step(h host.Host, domain, email string) plan.Step {
	return plan.Step{
		Name: "TLS certificate",
		Check: func(context.Context) (plan.Status, error) {
			ok, err := HaveCert(h, domain)
			if err != nil {
				return plan.Status{}, err
			}
			if !ok {
				return plan.Status{Pending: true, Summary: "certbot certonly --webroot for " + domain + " (Let's Encrypt; renewed by certbot's timer)"}, nil
			}
			if cur, err := h.ReadFile(RenewHook); err != nil || string(cur) != string(renewHook) {
				return plan.Status{Pending: true, Summary: "install the renewal hook that reloads Nginx"}, nil
			}
			return plan.Status{Summary: "Let's Encrypt certificate for " + domain + " is present and renews itself"}, nil
		},
		Apply: func(ctx context.Context) error {
			ok, err := HaveCert(h, domain)
			if err != nil {
				return err
			}
			if !ok {
				if _, err := h.Lstat(Package.Binary); err != nil {
					if err := apt.Install(ctx, h, Package); err != nil {
						return err
					}
				}
				if _, err := h.WriteFile(layout.ACMEMarker, nil, 0o644); err != nil {
					return err
				}
				if _, err := h.Run(ctx, host.Cmd{Name: "certbot", Args: []string{"certonly", "--webroot", "-w", layout.ACMEWebroot,
					"-d", domain, "-m", email, "--agree-tos", "--non-interactive", "--keep-until-expiring"}}); err != nil {
					return fmt.Errorf("Let's Encrypt could not issue a certificate for %s: check that %s points at this server and port 80 is reachable from the internet: %w",
						domain, domain, err)
				}
			}
			_, err = h.WriteFile(RenewHook, renewHook, 0o755)
			return err
		},
	}
}
