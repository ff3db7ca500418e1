// Package config holds homelab's configuration: its types, the embedded
// defaults, strict loading from homelab.yaml and validation that reports every
// problem at once.
package config

import (
	_ "embed"
	"strconv"
	"strings"
)

// APIVersion is the only configuration version this build understands.
const APIVersion = "homelab/v1alpha1"

// TLS modes.
const (
	TLSNone    = "none"
	TLSCertbot = "certbot"
	TLSFiles   = "files"
)

// Config is the whole homelab.yaml. Field names are the YAML keys; every key
// has a default in defaults.yaml so that an empty file is a valid one.
type Config struct {
	APIVersion string     `yaml:"apiVersion"`
	Domain     string     `yaml:"domain"`
	Email      string     `yaml:"email"`
	TLS        TLS        `yaml:"tls"`
	App        App        `yaml:"app"`
	Monitoring Monitoring `yaml:"monitoring"`
	Alerts     Alerts     `yaml:"alerts"`
	K3s        K3s        `yaml:"k3s"`
}

// TLS says how the public Nginx server gets its certificate.
type TLS struct {
	Mode     string `yaml:"mode"`
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
}

// Enabled reports whether Nginx serves HTTPS.
func (t TLS) Enabled() bool { return t.Mode != TLSNone }

// App is the user's web application as it runs in k3s.
type App struct {
	Name        string    `yaml:"name"`
	Namespace   string    `yaml:"namespace"`
	ServiceName string    `yaml:"serviceName"`
	Image       string    `yaml:"image"`
	Port        int       `yaml:"port"`
	Command     []string  `yaml:"command"`
	Replicas    int       `yaml:"replicas"`
	HealthPath  string    `yaml:"healthPath"`
	ClusterIP   string    `yaml:"clusterIP"`
	Resources   Resources `yaml:"resources"`
	// StartupSeconds is how long a new build may take to answer its health
	// path; after that the kubelet restarts it and deploy-app calls the
	// build failed.
	StartupSeconds int `yaml:"startupSeconds"`
	// PreStopSleepSeconds keeps a stopping pod serving while the Service
	// stops sending it requests, so a deploy drops none.
	PreStopSleepSeconds int `yaml:"preStopSleepSeconds"`
	// TerminationGracePeriodSeconds is the whole time a stopping pod gets,
	// the pre-stop sleep included, before it is killed.
	TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
}

// DeploymentName is the Deployment's name, kept as in the reference setup.
func (a App) DeploymentName() string { return a.Name + "-deployment" }

// Resources are Kubernetes resource requests and limits as quantities.
type Resources struct {
	Requests ResourceList `yaml:"requests"`
	Limits   ResourceList `yaml:"limits"`
}

// ResourceList is a cpu/memory pair of Kubernetes quantities ("100m", "256Mi").
type ResourceList struct {
	CPU    string `yaml:"cpu"`
	Memory string `yaml:"memory"`
}

// Monitoring is the kube-prometheus-stack and blackbox exporter installation.
type Monitoring struct {
	Namespace    string     `yaml:"namespace"`
	Release      string     `yaml:"release"`
	ChartRepo    string     `yaml:"chartRepo"`
	ChartVersion string     `yaml:"chartVersion"`
	Blackbox     Blackbox   `yaml:"blackbox"`
	Grafana      Grafana    `yaml:"grafana"`
	Probe        Probe      `yaml:"probe"`
	Prometheus   Prometheus `yaml:"prometheus"`
}

// Blackbox is the prometheus-blackbox-exporter release.
type Blackbox struct {
	Release      string `yaml:"release"`
	ChartVersion string `yaml:"chartVersion"`
}

// ServiceName is the Service the chart creates for release Release.
func (b Blackbox) ServiceName() string { return b.Release + "-prometheus-blackbox-exporter" }

// Grafana is where Grafana is served: a sub-path of the public domain, and a
// loopback port on the host that the port-forward unit keeps open.
type Grafana struct {
	Path      string `yaml:"path"`
	LocalPort int    `yaml:"localPort"`
}

// Probe is the blackbox Probe that watches the app.
type Probe struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval"`
	Module   string `yaml:"module"`
}

// Prometheus sizes Prometheus for a small box.
type Prometheus struct {
	Retention     string `yaml:"retention"`
	RetentionSize string `yaml:"retentionSize"`
	StorageSize   string `yaml:"storageSize"`
}

// Alerts says who is told when the app breaks, and when. The thresholds
// become the app's alerting rules; Notify becomes Alertmanager's receivers.
type Alerts struct {
	// Notify lists the destinations; empty means alerts are only seen in
	// Grafana and Alertmanager.
	Notify []Notify `yaml:"notify"`
	// AppDownFor is how long the probe must fail before AppDown fires.
	AppDownFor string `yaml:"appDownFor"`
	// RepeatInterval re-sends an alert that is still firing.
	RepeatInterval string `yaml:"repeatInterval"`
	// Restarts is the crash-loop threshold: more than Count restarts of the
	// app's container within Window.
	Restarts Restarts `yaml:"restarts"`
	// SlowAfter is the probe duration above which the app counts as slow.
	SlowAfter string `yaml:"slowAfter"`
	// CertificateDays warns this many days before the public certificate expires.
	CertificateDays int `yaml:"certificateDays"`
	// DiskFreePercent warns when a host filesystem has less free space.
	DiskFreePercent int `yaml:"diskFreePercent"`
	// DeadMansSwitchURL receives the always-firing Watchdog alert, so that an
	// outside service notices when alerting itself is dead. Empty silences it.
	DeadMansSwitchURL string `yaml:"deadMansSwitchURL" secret:"true"`
}

// Restarts is the AppRestarting threshold.
type Restarts struct {
	Count  int    `yaml:"count"`
	Window string `yaml:"window"`
}

// Notify is one destination: exactly one of its fields is set. Fields
// tagged secret:"true" never appear in errors, plans or logs.
type Notify struct {
	Ntfy     *NtfyNotify     `yaml:"ntfy"`
	Discord  *DiscordNotify  `yaml:"discord"`
	Slack    *SlackNotify    `yaml:"slack"`
	Telegram *TelegramNotify `yaml:"telegram"`
	Email    *EmailNotify    `yaml:"email"`
	Webhook  *WebhookNotify  `yaml:"webhook"`
}

// Kind is the destination's key in homelab.yaml ("ntfy", "email"...), or ""
// when none is set.
func (n Notify) Kind() string {
	if kinds := n.Kinds(); len(kinds) > 0 {
		return kinds[0]
	}
	return ""
}

// Kinds are the keys set in the entry, in NotifyKinds order; valid entries
// have exactly one.
func (n Notify) Kinds() []string {
	var set []string
	for i, on := range []bool{n.Ntfy != nil, n.Discord != nil, n.Slack != nil, n.Telegram != nil, n.Email != nil, n.Webhook != nil} {
		if on {
			set = append(set, NotifyKinds[i])
		}
	}
	return set
}

// NotifyKinds are the destination kinds, in the order the docs list them.
var NotifyKinds = []string{"ntfy", "discord", "slack", "telegram", "email", "webhook"}

// NtfyNotify publishes to an ntfy topic (ntfy.sh or self-hosted). Anyone
// who knows a public topic's name can read it, so its URL is a secret too;
// Token is for protected topics.
type NtfyNotify struct {
	URL   string `yaml:"url" secret:"true"`
	Token string `yaml:"token" secret:"true"`
}

// DiscordNotify posts to a Discord channel webhook; the URL holds its token.
type DiscordNotify struct {
	WebhookURL string `yaml:"webhookURL" secret:"true"`
}

// SlackNotify posts to a Slack incoming webhook; the URL holds its token.
type SlackNotify struct {
	WebhookURL string `yaml:"webhookURL" secret:"true"`
	Channel    string `yaml:"channel"`
}

// TelegramNotify sends through a Telegram bot to one chat.
type TelegramNotify struct {
	BotToken string `yaml:"botToken" secret:"true"`
	ChatID   int64  `yaml:"chatID"`
	// APIURL is the Bot API server, for a self-hosted one; empty means
	// Telegram's own.
	APIURL string `yaml:"apiURL"`
}

// EmailNotify sends mail through an SMTP server.
type EmailNotify struct {
	To        string `yaml:"to"`
	From      string `yaml:"from"`
	Smarthost string `yaml:"smarthost"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password" secret:"true"`
	// RequireTLS refuses to send without STARTTLS; unset means true.
	RequireTLS *bool `yaml:"requireTLS"`
}

// WebhookNotify posts Alertmanager's JSON to any URL; the URL may hold a
// token, so it is treated as a secret.
type WebhookNotify struct {
	URL         string `yaml:"url" secret:"true"`
	BearerToken string `yaml:"bearerToken" secret:"true"`
}

// K3s is the Kubernetes distribution homelab installs.
type K3s struct {
	Version     string `yaml:"version"`
	ServiceCIDR string `yaml:"serviceCIDR"`
}

//go:embed defaults.yaml
var defaultsYAML []byte

// DefaultsYAML returns the embedded default configuration, as a user would
// write it in homelab.yaml.
func DefaultsYAML() []byte { return append([]byte(nil), defaultsYAML...) }

// Derived names, kept in one place so templates and checks agree.

// GrafanaServiceName is the Service the kube-prometheus-stack chart creates for Grafana.
func (m Monitoring) GrafanaServiceName() string { return m.Release + "-grafana" }

// GrafanaAdminSecret is the Secret holding Grafana's generated admin credentials.
func (m Monitoring) GrafanaAdminSecret() string { return m.Release + "-grafana-admin" }

// StackFullname is kube-prometheus-stack's "kube-prometheus-stack.fullname"
// for the release (homelab sets no name overrides): the prefix of its
// Services' names.
func (m Monitoring) StackFullname() string {
	const chart = "kube-prometheus-stack"
	name := m.Release + "-" + chart
	if strings.Contains(m.Release, chart) {
		name = m.Release
	}
	if len(name) > 26 {
		name = name[:26]
	}
	return strings.TrimSuffix(name, "-")
}

// AlertmanagerServiceName is the chart's Alertmanager Service (port 9093).
func (m Monitoring) AlertmanagerServiceName() string { return m.StackFullname() + "-alertmanager" }

// AlertmanagerConfigSecret is the Secret homelab keeps Alertmanager's
// configuration in; the chart's Alertmanager reads it (configSecret).
func (m Monitoring) AlertmanagerConfigSecret() string { return m.Release + "-alertmanager-homelab" }

// AppTarget is the in-cluster URL the Probe asks the blackbox exporter to
// check: the app's health path on its Service.
func (c *Config) AppTarget() string {
	target := "http://" + c.App.ServiceName + "." + c.App.Namespace + ".svc.cluster.local:" + strconv.Itoa(c.App.Port)
	if c.App.HealthPath != "/" {
		target += c.App.HealthPath
	}
	return target
}

// BlackboxURL is the in-cluster address of the blackbox exporter.
func (c *Config) BlackboxURL() string {
	return c.Monitoring.Blackbox.ServiceName() + "." + c.Monitoring.Namespace + ".svc:9115"
}

// PublicURL is the base URL users type in a browser.
func (c *Config) PublicURL() string {
	if c.TLS.Enabled() {
		return "https://" + c.Domain
	}
	return "http://" + c.Domain
}

// GrafanaURL is Grafana's root_url: the public URL with the sub-path and a
// trailing slash, exactly what Grafana needs with serve_from_sub_path.
func (c *Config) GrafanaURL() string { return c.PublicURL() + c.Monitoring.Grafana.Path + "/" }
