package init

import (
	"context"
	"fmt"

	"github.com/homelab-dev/homelab/pkg/certbot"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/nginx"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/render"
)

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
		return []plan.Step{bootstrapSite(h, cfg, bootstrap), certbot.Step(h, cfg.Domain, cfg.Email)}, nil
	}
	return nil, nil
}

// bootstrapSite serves the ACME challenge over HTTP until the first
// certificate exists; afterwards it has nothing to do.
func bootstrapSite(h host.Host, cfg *config.Config, data []byte) plan.Step {
	site := nginx.Step(h, nginx.Site{Path: layout.NginxSite, Data: data, Link: layout.NginxSiteLink,
		LinkTarget: layout.NginxSiteTarget, Stamp: layout.NginxStamp})
	return plan.Step{
		Name: "Nginx site for the first certificate",
		Check: func(ctx context.Context) (plan.Status, error) {
			if ok, err := certbot.HaveCert(h, cfg.Domain); ok || err != nil {
				return plan.Status{Summary: "not needed: the certificate exists"}, err
			}
			st, err := site.Check(ctx)
			st.Summary = "serve " + cfg.Domain + " over HTTP with the ACME challenge directory: " + st.Summary
			return st, err
		},
		Apply: site.Apply,
	}
}
