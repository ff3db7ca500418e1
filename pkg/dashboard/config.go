package dashboard

import (
	"time"

	"github.com/prometheus/common/model"

	"github.com/homelab-dev/homelab/pkg/config"
)

// PublicProbeJob is the job of the Probe of the public https://DOMAIN/
// through Nginx (charts/app/templates/probe.yaml names it so).
func PublicProbeJob(cfg *config.Config) string { return cfg.Monitoring.Probe.Name + "-public" }

// For is the dashboard of the app homelab.yaml describes, with the alert
// thresholds drawn on its panels.
func For(cfg *config.Config) App {
	al := cfg.Alerts
	return App{
		Name:            cfg.App.Name,
		Namespace:       cfg.App.Namespace,
		Deployment:      cfg.App.DeploymentName(),
		ProbeJob:        cfg.Monitoring.Probe.Name,
		PublicProbeJob:  PublicProbeJob(cfg),
		SlowAfter:       time.Duration(duration(al.SlowAfter)),
		CertificateDays: al.CertificateDays,
		Restarts:        al.Restarts.Count,
		RestartsWindow:  duration(al.Restarts.Window),
	}
}

// duration reads a Prometheus duration config.Validate has accepted; a bad
// one (never, after validation) only leaves a panel without its line.
func duration(s string) model.Duration {
	d, err := model.ParseDuration(s)
	if err != nil {
		return 0
	}
	return d
}
