package init

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/nginx"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/render"
)

// RenewHook reloads Nginx after certbot renews the certificate (certbot's
// own timer runs the renewals).
const RenewHook = layout.CertbotRenewHook

// tlsSteps make sure the certificate the HTTPS site loads is there before
// the site is written.
func tlsSteps(h host.Host, cfg *config.Config, r *render.Renderer) ([]plan.Step, error) {
	switch cfg.TLS.Mode {
	case config.TLSFiles:
		return []plan.Step{{
			Name: "TLS certificate",
			Check: func(context.Context) (plan.Status, error) {
				for _, p := range []string{cfg.TLS.CertFile, cfg.TLS.KeyFile} {
					if _, err := h.Lstat(p); err != nil {
						return plan.Status{}, fmt.Errorf("tls.mode files: %s is not readable (%v); put the certificate there or change tls.certFile/tls.keyFile", p, err)
					}
				}
				return plan.Status{Summary: "using " + cfg.TLS.CertFile}, nil
			},
			Apply: func(context.Context) error { return nil },
		}}, nil
	case config.TLSCertbot:
		bootstrap, err := r.CertbotBootstrapSite(cfg)
		if err != nil {
			return nil, err
		}
		return []plan.Step{bootstrapSite(h, cfg, bootstrap), certbot(h, cfg)}, nil
	}
	return nil, nil
}

func haveCert(h host.Host, cfg *config.Config) (bool, error) {
	_, err := h.Lstat(layout.LetsEncryptCert(cfg.Domain))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// bootstrapSite serves the ACME challenge over HTTP until the first
// certificate exists; afterwards it has nothing to do.
func bootstrapSite(h host.Host, cfg *config.Config, data []byte) plan.Step {
	site := nginx.Step(h, nginx.Site{Path: layout.NginxSite, Data: data, Link: layout.NginxSiteLink,
		LinkTarget: layout.NginxSiteTarget, Stamp: layout.NginxStamp})
	return plan.Step{
		Name: "Nginx site for the first certificate",
		Check: func(ctx context.Context) (plan.Status, error) {
			if ok, err := haveCert(h, cfg); ok || err != nil {
				return plan.Status{Summary: "not needed: the certificate exists"}, err
			}
			st, err := site.Check(ctx)
			st.Summary = "serve " + cfg.Domain + " over HTTP with the ACME challenge directory: " + st.Summary
			return st, err
		},
		Apply: site.Apply,
	}
}

// certbot obtains the Let's Encrypt certificate with the webroot method,
// which needs no downtime, and installs the hook that reloads Nginx on
// renewal.
func certbot(h host.Host, cfg *config.Config) plan.Step {
	hook := []byte("#!/bin/sh\n# Installed by homelab: load renewed certificates.\nexec systemctl reload nginx\n")
	return plan.Step{
		Name: "TLS certificate",
		Check: func(context.Context) (plan.Status, error) {
			ok, err := haveCert(h, cfg)
			if err != nil {
				return plan.Status{}, err
			}
			if !ok {
				return plan.Status{Pending: true, Summary: "certbot certonly --webroot for " + cfg.Domain + " (Let's Encrypt; renewed by certbot's timer)"}, nil
			}
			if cur, err := h.ReadFile(RenewHook); err != nil || string(cur) != string(hook) {
				return plan.Status{Pending: true, Summary: "install the renewal hook that reloads Nginx"}, nil
			}
			return plan.Status{Summary: "Let's Encrypt certificate for " + cfg.Domain + " is present and renews itself"}, nil
		},
		Apply: func(ctx context.Context) error {
			ok, err := haveCert(h, cfg)
			if err != nil {
				return err
			}
			if !ok {
				if _, err := h.Lstat("/usr/bin/certbot"); err != nil {
					if err := aptPackage(h, "certbot", "/usr/bin/certbot").Apply(ctx); err != nil {
						return err
					}
				}
				if _, err := h.WriteFile(layout.ACMEMarker, nil, 0o644); err != nil {
					return err
				}
				if _, err := h.Run(ctx, host.Cmd{Name: "certbot", Args: []string{"certonly", "--webroot", "-w", layout.ACMEWebroot,
					"-d", cfg.Domain, "-m", cfg.Email, "--agree-tos", "--non-interactive", "--keep-until-expiring"}}); err != nil {
					return fmt.Errorf("Let's Encrypt could not issue a certificate for %s: check that %s points at this server and port 80 is reachable from the internet: %w",
						cfg.Domain, cfg.Domain, err)
				}
			}
			_, err = h.WriteFile(RenewHook, hook, 0o755)
			return err
		},
	}
}
