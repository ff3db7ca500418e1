package init

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/homelab-dev/homelab/pkg/alertmanager"
	"github.com/homelab-dev/homelab/pkg/apt"
	"github.com/homelab-dev/homelab/pkg/certbot"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/grafana"
	"github.com/homelab-dev/homelab/pkg/helm"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/k3s"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/nginx"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/portforward"
	"github.com/homelab-dev/homelab/pkg/record"
	"github.com/homelab-dev/homelab/pkg/render"
	"github.com/homelab-dev/homelab/pkg/selfinstall"
	"github.com/homelab-dev/homelab/pkg/systemd"
)

// Deps are what init's steps act through.
type Deps struct {
	Host host.Host
	Kube func() (*kube.Client, error)
	Helm func() (*helm.Engine, error)
	// K3s installs k3s; its Host is set by Plan.
	K3s k3s.Installer
	// IsRoot reports whether homelab runs as root (the factory's answer).
	IsRoot func() bool
	// ShowPassword shows the generated Grafana password once.
	ShowPassword grafana.ShowPassword
	// StackChart and BlackboxChart are local chart archives for offline
	// installs; empty means the configured repository.
	StackChart, BlackboxChart string
	// Timeout bounds each wait: node Ready, each Helm release.
	Timeout time.Duration
	// Self is the running homelab, installed where the units run it.
	Self selfinstall.Self
	// DryRun makes preflight report what a real run would refuse (not
	// root) instead of refusing a preview.
	DryRun bool
}

// Plan builds init's steps from the configuration. It does no I/O: every
// step looks at the machine only when the runner calls its Check.
func Plan(cfg *config.Config, r *render.Renderer, d Deps) (plan.Plan, error) {
	if d.Self.Executable == "" {
		return plan.Plan{}, errors.New("init: the running homelab binary is unknown (Deps.Self)")
	}
	// The units run homelab from where the self-install step puts it.
	r = r.WithBinary(d.Self.Target())
	files, err := r.Render(cfg)
	if err != nil {
		return plan.Plan{}, err
	}
	h := d.Host
	installer := d.K3s
	installer.Host = h
	installer.Version, installer.ServiceCIDR = cfg.K3s.Version, cfg.K3s.ServiceCIDR
	k3sSteps, err := installer.Steps()
	if err != nil {
		return plan.Plan{}, err
	}
	// Every step that creates something adds it to the record uninstall
	// works from, right after it applied.
	rec := &record.Recorder{Host: h}
	file := func(f render.File) plan.Step {
		return rec.Wrap(plan.WriteFile(h, f.Path, f.Data, f.Mode), record.FileWatch(h, f.Path))
	}
	// The binary step comes first: homelab installed k3s only if it put the
	// binary where there was none.
	k3sSteps[0] = rec.Wrap(k3sSteps[0], k3s.Watch(h, cfg.K3s.Version))
	m := cfg.Monitoring
	steps := []plan.Step{preflight(h, d.IsRoot, d.DryRun), k3s.SanityStep(h),
		rec.Wrap(selfinstall.Step(h, d.Self), record.FileWatch(h, d.Self.Target()), record.FileWatch(h, selfinstall.StampPath)),
		rec.Wrap(apt.InstallStep(h, nginx.Package), apt.Watch(h, nginx.Package))}
	steps = append(steps, k3sSteps...)
	var links []record.Watch
	for _, name := range k3s.Commands {
		links = append(links, k3s.LinkWatch(h, k3s.CommandLink(name)))
	}
	steps = append(steps,
		rec.Wrap(k3s.CommandLinksStep(h), links...),
		clusterReady(d.Kube, d.Timeout),
		rec.Wrap(grafana.AdminSecretStep(d.Kube, m.Namespace, m.GrafanaAdminSecret(), d.ShowPassword),
			record.NamespaceWatch(d.Kube, m.Namespace), record.SecretWatch(d.Kube, m.Namespace, m.GrafanaAdminSecret())),
	)
	amSteps, err := alertmanagerSteps(cfg, h, d.Kube, rec, file)
	if err != nil {
		return plan.Plan{}, err
	}
	steps = append(steps, amSteps...)
	steps = append(steps,
		file(files.StackValues),
		rec.Wrap(helm.Step("kube-prometheus-stack", d.Helm, release(m.Release, m.Namespace,
			helm.Source{RepoURL: m.ChartRepo, Archive: d.StackChart, Name: "kube-prometheus-stack", Version: m.ChartVersion},
			files.StackValues.Data, d.Timeout)), helm.ReleaseWatch(d.Helm, m.Namespace, m.Release)),
		file(files.BlackboxValues),
		rec.Wrap(helm.Step("blackbox exporter", d.Helm, release(m.Blackbox.Release, m.Namespace,
			helm.Source{RepoURL: m.ChartRepo, Archive: d.BlackboxChart, Name: "prometheus-blackbox-exporter", Version: m.Blackbox.ChartVersion},
			files.BlackboxValues.Data, d.Timeout)), helm.ReleaseWatch(d.Helm, m.Namespace, m.Blackbox.Release)),
		rec.Wrap(systemd.UnitStep("Grafana port-forward", h, files.PortForwardUnit.Path, files.PortForwardUnit.Data),
			systemd.UnitWatch(h, layout.PortForwardUnit)),
		portforward.WorkingStep(h, layout.PortForwardUnit, d.Timeout),
	)
	tls, err := tlsSteps(h, cfg, r)
	if err != nil {
		return plan.Plan{}, err
	}
	site := nginx.Site{Path: files.NginxSite.Path, Data: files.NginxSite.Data, Link: files.NginxSiteLink.Path,
		LinkTarget: files.NginxSiteLink.Link, Stamp: layout.NginxStamp}
	siteWatch := nginx.SiteWatch(h, site)
	for i := range tls {
		// certbot mode: an HTTP site for the first certificate (the same
		// site file: its first write decides whether homelab created it),
		// certbot itself, the webroot and the renewal hook.
		tls[i] = rec.Wrap(tls[i], append([]record.Watch{siteWatch}, certbot.Watches(h)...)...)
	}
	steps = append(steps, tls...)
	steps = append(steps,
		rec.Wrap(nginx.Step(h, site), siteWatch),
		file(files.EffectiveConfig),
	)
	return plan.Plan{Name: "init", Steps: steps}, nil
}

// alertmanagerSteps write Alertmanager's configuration (the destinations in
// alerts.notify, with their secrets) to its 0600 file and to the Secret the
// chart's Alertmanager reads, before the chart is installed. A re-run from
// the applied copy of homelab.yaml, which holds no secrets, keeps the file
// the last init wrote.
func alertmanagerSteps(cfg *config.Config, h host.Host, client func() (*kube.Client, error), rec *record.Recorder,
	file func(render.File) plan.Step) ([]plan.Step, error) {
	m := cfg.Monitoring
	secret := func(src alertmanager.Source) plan.Step {
		return rec.Wrap(alertmanager.SecretStep(client, m.Namespace, m.AlertmanagerConfigSecret(), src, len(cfg.Alerts.Notify)),
			record.ConfigSecretWatch(client, m.Namespace, m.AlertmanagerConfigSecret()))
	}
	if config.HasRedactedSecrets(cfg) {
		return []plan.Step{secret(alertmanager.FromFile(h, layout.AlertmanagerConfig))}, nil
	}
	data, err := alertmanager.Render(cfg)
	if err != nil {
		return nil, err
	}
	return []plan.Step{file(render.File{Path: layout.AlertmanagerConfig, Mode: 0o600, Data: data}), secret(alertmanager.Rendered(data))}, nil
}

func release(name, namespace string, src helm.Source, values []byte, timeout time.Duration) func() (helm.Release, error) {
	return func() (helm.Release, error) {
		v, err := helm.ValuesFromYAML(values)
		if err != nil {
			return helm.Release{}, fmt.Errorf("values of %s: %w", name, err)
		}
		return helm.Release{Name: name, Namespace: namespace, Chart: src, Values: v, Timeout: timeout}, nil
	}
}

// clusterReady waits for the k3s node. Its Check asks once; Apply waits.
func clusterReady(client func() (*kube.Client, error), timeout time.Duration) plan.Step {
	return plan.Step{
		Name: "cluster ready",
		Check: func(ctx context.Context) (plan.Status, error) {
			c, err := client()
			if err != nil {
				return plan.Status{Pending: true, Summary: "wait for the k3s node to be Ready (" + err.Error() + ")"}, nil
			}
			if err := c.WaitNodeReady(ctx, time.Second); err != nil {
				return plan.Status{Pending: true, Summary: "wait for the k3s node to be Ready"}, nil
			}
			return plan.Status{Summary: "the k3s node is Ready"}, nil
		},
		Apply: func(ctx context.Context) error {
			c, err := client()
			if err != nil {
				return err
			}
			return c.WaitNodeReady(ctx, timeout)
		},
	}
}
