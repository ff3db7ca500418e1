package deploy

import (
	"context"
	"encoding/json"
	"time"

	"github.com/prometheus/common/model"

	"github.com/homelab-dev/homelab/charts"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/dashboard"
	"github.com/homelab-dev/homelab/pkg/helm"
)

// ChartName and ChartVersion name the app chart built into homelab
// (charts/app).
const (
	ChartName    = "homelab-app"
	ChartVersion = "1.0.0"
)

// Build is one image build of the app, as the pods reference it.
type Build struct {
	// Reference is the per-build tag in containerd (name:homelab-<digest>).
	Reference string `json:"reference"`
	// Digest is the image's manifest digest.
	Digest string `json:"digest"`
}

// values is the app chart's values.yaml, typed: the chart and this struct
// change together (chart_test renders every field).
type values struct {
	App struct {
		Name           string   `json:"name"`
		DeploymentName string   `json:"deploymentName"`
		ServiceName    string   `json:"serviceName"`
		Replicas       int      `json:"replicas"`
		Port           int      `json:"port"`
		Command        []string `json:"command"`
		HealthPath     string   `json:"healthPath"`
		ClusterIP      string   `json:"clusterIP"`
		Resources      struct {
			Requests map[string]string `json:"requests"`
			Limits   map[string]string `json:"limits"`
		} `json:"resources"`
		StartupSeconds                int `json:"startupSeconds"`
		PreStopSleepSeconds           int `json:"preStopSleepSeconds"`
		TerminationGracePeriodSeconds int `json:"terminationGracePeriodSeconds"`
	} `json:"app"`
	Image      Build `json:"image"`
	Monitoring struct {
		Namespace string `json:"namespace"`
		Release   string `json:"release"`
	} `json:"monitoring"`
	Probe struct {
		Name     string `json:"name"`
		Interval string `json:"interval"`
		Module   string `json:"module"`
		Prober   string `json:"prober"`
		Target   string `json:"target"`
		Public   struct {
			Name   string `json:"name"`
			Module string `json:"module"`
			Target string `json:"target"` // empty: TLS is off, no public probe
		} `json:"public"`
	} `json:"probe"`
	Alerts struct {
		AppDownFor string `json:"appDownFor"`
		Restarts   struct {
			Count  int    `json:"count"`
			Window string `json:"window"`
		} `json:"restarts"`
		SlowAfterSeconds float64 `json:"slowAfterSeconds"`
		CertificateDays  int     `json:"certificateDays"`
		DiskFreePercent  int     `json:"diskFreePercent"`
	} `json:"alerts"`
	Dashboard struct {
		UID  string `json:"uid"`
		JSON string `json:"json"`
	} `json:"dashboard"`
}

// PublicProbeModule is the blackbox exporter module of the public probe
// (templates/prometheus-blackbox-exporter.yaml.tmpl defines it).
const PublicProbeModule = "https_public"

// Values are the chart values that run build with cfg's app settings.
func Values(cfg *config.Config, build Build) map[string]any {
	var v values
	a := cfg.App
	v.App.Name, v.App.DeploymentName, v.App.ServiceName = a.Name, a.DeploymentName(), a.ServiceName
	v.App.Replicas, v.App.Port, v.App.Command = a.Replicas, a.Port, a.Command
	v.App.HealthPath, v.App.ClusterIP = a.HealthPath, a.ClusterIP
	v.App.Resources.Requests = quantities(a.Resources.Requests)
	v.App.Resources.Limits = quantities(a.Resources.Limits)
	v.App.StartupSeconds, v.App.PreStopSleepSeconds = a.StartupSeconds, a.PreStopSleepSeconds
	v.App.TerminationGracePeriodSeconds = a.TerminationGracePeriodSeconds
	v.Image = build
	v.Monitoring.Namespace, v.Monitoring.Release = cfg.Monitoring.Namespace, cfg.Monitoring.Release
	p := cfg.Monitoring.Probe
	v.Probe.Name, v.Probe.Interval, v.Probe.Module = p.Name, p.Interval, p.Module
	v.Probe.Prober, v.Probe.Target = cfg.BlackboxURL(), cfg.AppTarget()
	if cfg.TLS.Enabled() {
		v.Probe.Public.Name, v.Probe.Public.Module = dashboard.PublicProbeJob(cfg), PublicProbeModule
		v.Probe.Public.Target = cfg.PublicURL() + "/"
	}
	al := cfg.Alerts
	v.Alerts.AppDownFor, v.Alerts.Restarts.Count, v.Alerts.Restarts.Window = al.AppDownFor, al.Restarts.Count, al.Restarts.Window
	v.Alerts.SlowAfterSeconds = seconds(al.SlowAfter)
	v.Alerts.CertificateDays, v.Alerts.DiskFreePercent = al.CertificateDays, al.DiskFreePercent
	v.Dashboard.UID = dashboard.UID(a.Name)
	board, err := dashboard.JSON(dashboard.For(cfg))
	if err != nil {
		panic(err) // built from validated names and numbers (pkg/dashboard tests every panel)
	}
	v.Dashboard.JSON = string(board)
	// Through JSON, as Helm stores values, so that comparing with a stored
	// release sees equal values as equal.
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain strings and ints
	}
	out := map[string]any{}
	if err := json.Unmarshal(data, &out); err != nil {
		panic(err)
	}
	return out
}

// seconds reads a Prometheus duration config.Validate has accepted, for a
// PromQL comparison with a value in seconds.
func seconds(d string) float64 {
	parsed, err := model.ParseDuration(d)
	if err != nil {
		panic(err) // validated: config rejects what does not parse
	}
	return time.Duration(parsed).Seconds()
}

func quantities(l config.ResourceList) map[string]string {
	m := map[string]string{}
	if l.CPU != "" {
		m["cpu"] = l.CPU
	}
	if l.Memory != "" {
		m["memory"] = l.Memory
	}
	return m
}

// buildOf reads the build back from a release's stored values.
func buildOf(v map[string]any) Build {
	var b Build
	img, _ := v["image"].(map[string]any)
	b.Reference, _ = img["reference"].(string)
	b.Digest, _ = img["digest"].(string)
	return b
}

// ReleaseName is the app's Helm release: the app's name, in its namespace.
func ReleaseName(cfg *config.Config) string { return cfg.App.Name }

// release is the app's wanted release running build.
func release(cfg *config.Config, build Build, timeout time.Duration, verify func(context.Context) error) helm.Release {
	return helm.Release{
		Name: ReleaseName(cfg), Namespace: cfg.App.Namespace,
		Chart:  helm.Source{Files: charts.App(), Name: ChartName, Version: ChartVersion},
		Values: Values(cfg, build), Timeout: timeout, Verify: verify,
	}
}

// Manifests renders the app chart for cfg and build without a cluster, as
// the objects a deploy would apply (homelab render, tests).
func Manifests(cfg *config.Config, build Build) ([]byte, error) {
	r := release(cfg, build, 0, nil)
	return helm.Template(r.Chart, r.Name, r.Namespace, r.Values)
}
