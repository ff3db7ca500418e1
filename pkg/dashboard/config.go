package dashboard

import "github.com/homelab-dev/homelab/pkg/config"

// PublicProbeJob is the job of the Probe of the public https://DOMAIN/
// through Nginx (charts/app/templates/probe.yaml names it so).
func PublicProbeJob(cfg *config.Config) string { return cfg.Monitoring.Probe.Name + "-public" }

// For is the dashboard of the app homelab.yaml describes.
func For(cfg *config.Config) App {
	return App{
		Name:           cfg.App.Name,
		Namespace:      cfg.App.Namespace,
		Deployment:     cfg.App.DeploymentName(),
		ProbeJob:       cfg.Monitoring.Probe.Name,
		PublicProbeJob: PublicProbeJob(cfg),
	}
}
