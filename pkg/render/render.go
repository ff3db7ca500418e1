// Package render turns a configuration into the files homelab writes on a
// host. It does no I/O: callers write the result through pkg/host.
package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"text/template"

	"go.yaml.in/yaml/v3"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/templates"
)

// File is one rendered file at its host path. A File with Link set is a
// symbolic link to Link (relative to the link's directory) and has no Data.
type File struct {
	Path string
	Mode fs.FileMode
	Data []byte
	Link string
}

// Renderer executes the embedded templates. Parse them once with New.
type Renderer struct {
	tmpl *template.Template
	// binary is the host path the systemd units run homelab from.
	binary string
}

// New parses the embedded templates.
func New() (*Renderer, error) {
	t, err := template.New("homelab").
		Option("missingkey=error").
		Funcs(template.FuncMap{"quote": jsonString, "json": jsonString}).
		ParseFS(templates.FS, "*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("parse templates: %w", err)
	}
	return &Renderer{tmpl: t, binary: layout.Binary}, nil
}

// WithBinary returns a Renderer whose units run homelab from path: where
// init really installed it (see pkg/selfinstall), not where it might be.
func (r *Renderer) WithBinary(path string) *Renderer {
	c := *r
	c.binary = path
	return &c
}

// Set is every file init writes, each by what it is, so that a step takes
// the file it writes by name and a file that is not rendered cannot be
// written empty.
type Set struct {
	StackValues     File
	BlackboxValues  File
	PortForwardUnit File
	NginxSite       File
	// NginxSiteLink enables the site (a link, no data).
	NginxSiteLink File
	// EffectiveConfig is the applied configuration, secrets left out (0600).
	EffectiveConfig File
}

// Files are s's files in the order init writes them.
func (s Set) Files() []File {
	return []File{s.StackValues, s.BlackboxValues, s.PortForwardUnit, s.NginxSite, s.NginxSiteLink, s.EffectiveConfig}
}

// Render renders every file init writes. The app's objects come from its
// chart (pkg/deploy).
func (r *Renderer) Render(cfg *config.Config) (Set, error) {
	var s Set
	for _, f := range []struct {
		into     *File
		path     string
		template string
		data     any
	}{
		{&s.StackValues, layout.ValuesStack, "kube-prometheus-stack.yaml.tmpl", valuesView(cfg)},
		{&s.BlackboxValues, layout.ValuesBlackbox, "prometheus-blackbox-exporter.yaml.tmpl", valuesView(cfg)},
		{&s.PortForwardUnit, layout.PortForwardUnit, "grafana-portforward.service.tmpl", unitView(cfg, r.binary)},
		{&s.NginxSite, layout.NginxSite, "nginx-site.conf.tmpl", nginxView(cfg)},
	} {
		data, err := r.execute(f.template, f.data)
		if err != nil {
			return Set{}, err
		}
		*f.into = File{Path: f.path, Mode: 0o644, Data: data}
	}
	s.NginxSiteLink = File{Path: layout.NginxSiteLink, Mode: 0o777, Link: layout.NginxSiteTarget}
	eff, err := EffectiveConfig(cfg)
	if err != nil {
		return Set{}, err
	}
	s.EffectiveConfig = File{Path: layout.EffectiveConfig, Mode: 0o600, Data: eff}
	return s, nil
}

// All renders every file init writes, in the order it writes them.
func (r *Renderer) All(cfg *config.Config) ([]File, error) {
	s, err := r.Render(cfg)
	if err != nil {
		return nil, err
	}
	return s.Files(), nil
}

// CertbotBootstrapSite is the Nginx site used in tls.mode certbot before the
// first certificate exists: plain HTTP, serving the ACME challenge directory
// so certbot --webroot can prove the domain, and the app and Grafana.
func (r *Renderer) CertbotBootstrapSite(cfg *config.Config) ([]byte, error) {
	v := nginxView(cfg)
	v.TLS, v.CertFile, v.KeyFile = false, "", ""
	return r.execute("nginx-site.conf.tmpl", v)
}

// Named renders one template by file name, for steps that write one file.
func (r *Renderer) Named(cfg *config.Config, path string) (File, error) {
	files, err := r.All(cfg)
	if err != nil {
		return File{}, err
	}
	for _, f := range files {
		if f.Path == path {
			return f, nil
		}
	}
	return File{}, fmt.Errorf("render: no file is rendered at %s", path)
}

func (r *Renderer) execute(name string, data any) ([]byte, error) {
	var buf bytes.Buffer
	if err := r.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// EffectiveConfig is the resolved configuration as YAML, as written to
// /etc/homelab/homelab.yaml so that doctor and later runs know what was
// applied. It holds no secrets: the Grafana password lives only in a
// Kubernetes Secret, and the alert destinations' tokens and passwords only
// in /etc/homelab/alertmanager.yaml and its Secret (here they read
// <secret>).
func EffectiveConfig(cfg *config.Config) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# The configuration homelab last applied (defaults, file and flags merged).\n")
	if len(cfg.Alerts.Notify) > 0 || cfg.Alerts.DeadMansSwitchURL != "" {
		buf.WriteString("# Secrets read " + config.RedactedSecret + ": they are kept only in " + layout.AlertmanagerConfig + ".\n")
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(config.WithoutSecrets(cfg)); err != nil {
		return nil, fmt.Errorf("render effective configuration: %w", err)
	}
	return buf.Bytes(), enc.Close()
}

// jsonString quotes a value as JSON, which YAML reads as the same value:
// safe for strings holding ':' or '#'.
func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

type nginxData struct {
	Domain      string
	App         config.App
	Grafana     config.Grafana
	TLS         bool
	Certbot     bool
	CertFile    string
	KeyFile     string
	ACMEWebroot string
}

func nginxView(c *config.Config) nginxData {
	v := nginxData{
		Domain: c.Domain, App: c.App, Grafana: c.Monitoring.Grafana,
		TLS: c.TLS.Enabled(), Certbot: c.TLS.Mode == config.TLSCertbot,
		CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, ACMEWebroot: layout.ACMEWebroot,
	}
	if v.Certbot {
		v.CertFile, v.KeyFile = layout.LetsEncryptCert(c.Domain), layout.LetsEncryptKey(c.Domain)
	}
	return v
}

type unitData struct {
	Grafana   config.Grafana
	Namespace string
	Service   string
	Binary    string
}

func unitView(c *config.Config, binary string) unitData {
	return unitData{
		Grafana: c.Monitoring.Grafana, Namespace: c.Monitoring.Namespace,
		Service: c.Monitoring.GrafanaServiceName(), Binary: binary,
	}
}

type valuesData struct {
	*config.Config
	GrafanaURL         string
	AdminSecret        string
	AlertmanagerSecret string
}

func valuesView(c *config.Config) valuesData {
	return valuesData{Config: c, GrafanaURL: c.GrafanaURL(), AdminSecret: c.Monitoring.GrafanaAdminSecret(),
		AlertmanagerSecret: c.Monitoring.AlertmanagerConfigSecret()}
}
