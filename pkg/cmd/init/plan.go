package init

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/render"
)

// Plan builds init's steps from the configuration. It does no I/O: every
// step looks at the machine only when the runner calls its Check.
func Plan(cfg *config.Config, r *render.Renderer, h host.Host) (plan.Plan, error) {
	files, err := r.All(cfg)
	if err != nil {
		return plan.Plan{}, err
	}
	file := func(path string) plan.Step {
		for _, f := range files {
			if f.Path == path && f.Link != "" {
				return plan.Symlink(h, f.Link, f.Path)
			}
			if f.Path == path {
				return plan.WriteFile(h, f.Path, f.Data, f.Mode)
			}
		}
		panic("init plan: no rendered file " + path) // a programming error, caught by tests
	}
	m := cfg.Monitoring
	steps := []plan.Step{
		preflight(h),
		binaryStep("nginx package", h, "/usr/sbin/nginx", "install nginx with apt-get"),
		binaryStep("k3s", h, "/usr/local/bin/k3s",
			fmt.Sprintf("install k3s %s (verified download) with --disable traefik --disable servicelb --write-kubeconfig-mode 0600", cfg.K3s.Version)),
		preview("cluster ready", "wait for the k3s node to be Ready"),
		preview("Grafana admin secret", fmt.Sprintf("create namespace %s and Secret %s with a generated password (shown once, never logged)", m.Namespace, m.GrafanaAdminSecret())),
		file(layout.ValuesStack),
		preview("kube-prometheus-stack", fmt.Sprintf("helm install %s kube-prometheus-stack %s into namespace %s (CRDs applied server-side first)", m.Release, m.ChartVersion, m.Namespace)),
		file(layout.ValuesBlackbox),
		preview("blackbox exporter", fmt.Sprintf("helm install %s prometheus-blackbox-exporter %s into namespace %s", m.Blackbox.Release, m.Blackbox.ChartVersion, m.Namespace)),
		file(layout.PortForwardUnit),
		preview("Grafana port-forward", fmt.Sprintf("systemctl enable --now grafana-portforward.service (Grafana on 127.0.0.1:%d)", m.Grafana.LocalPort)),
		file(layout.NginxSite),
		file(layout.NginxSiteLink),
		preview("Nginx reload", "nginx -t, then reload (the previous site is restored if the test fails)"),
	}
	switch cfg.TLS.Mode {
	case config.TLSCertbot:
		steps = append(steps, preview("TLS certificate", "certbot certonly --webroot for "+cfg.Domain+", renewed by certbot's timer"))
	case config.TLSFiles:
		steps = append(steps, preview("TLS certificate", "use "+cfg.TLS.CertFile+" and "+cfg.TLS.KeyFile))
	}
	steps = append(steps, file(layout.EffectiveConfig))
	return plan.Plan{Name: "init", Steps: steps}, nil
}

// preview is a step this build can describe but not yet carry out: its
// Check always reports work, and a real run refuses the plan.
func preview(name, summary string) plan.Step {
	return plan.Step{Name: name, Check: func(context.Context) (plan.Status, error) {
		return plan.Status{Pending: true, Summary: summary}, nil
	}}
}

// binaryStep is present when the program's binary exists on the host.
func binaryStep(name string, h host.Host, path, todo string) plan.Step {
	return plan.Step{Name: name, Check: func(context.Context) (plan.Status, error) {
		_, err := h.Lstat(path)
		switch {
		case err == nil:
			return plan.Status{Summary: path + " is installed"}, nil
		case errors.Is(err, fs.ErrNotExist):
			return plan.Status{Pending: true, Summary: todo}, nil
		}
		return plan.Status{}, err
	}}
}

// preflight refuses hosts homelab does not support, before anything changes.
func preflight(h host.Host) plan.Step {
	return plan.Step{
		Name: "preflight",
		Check: func(context.Context) (plan.Status, error) {
			data, err := h.ReadFile("/etc/os-release")
			if errors.Is(err, fs.ErrNotExist) {
				return plan.Status{}, errors.New("/etc/os-release is missing: homelab supports Ubuntu and Debian hosts")
			}
			if err != nil {
				return plan.Status{}, err
			}
			osr := parseOSRelease(data)
			family := osr["ID"] + " " + osr["ID_LIKE"]
			if !strings.Contains(family, "ubuntu") && !strings.Contains(family, "debian") {
				return plan.Status{}, fmt.Errorf("unsupported operating system %q: homelab supports Ubuntu and Debian", osr["PRETTY_NAME"])
			}
			return plan.Status{Summary: osr["PRETTY_NAME"] + " is supported"}, nil
		},
		Apply: func(context.Context) error { return nil }, // a check only; never pending
	}
}

func parseOSRelease(data []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			m[k] = strings.Trim(v, `"'`)
		}
	}
	return m
}
