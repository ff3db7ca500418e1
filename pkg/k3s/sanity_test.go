package k3s_test

import (
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/host/hosttest"
	"github.com/homelab-dev/homelab/pkg/k3s"
)

// scriptUnit is a unit as get.k3s.io's install script writes it, with the
// given server arguments.
func scriptUnit(args ...string) string {
	var b strings.Builder
	b.WriteString(`[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/%N
KillMode=process
Delegate=yes
Restart=always
ExecStartPre=/bin/sh -xc '! /usr/bin/systemctl is-enabled --quiet nm-cloud-setup.service 2>/dev/null'
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStart=/usr/local/bin/k3s \
    server \
`)
	for _, a := range args {
		b.WriteString("\t'" + a + "' \\\n")
	}
	b.WriteString("\n")
	return b.String()
}

func TestSanity(t *testing.T) {
	for _, tc := range []struct {
		name, unit, config string
		// missing is what the error must name; empty means no error.
		missing string
	}{
		{name: "no k3s yet"},
		{name: "homelab's own unit", unit: string(renderUnit(t, ""))},
		{name: "install script defaults", unit: scriptUnit(), missing: "traefik and servicelb"},
		{name: "install script with disables", unit: scriptUnit("--disable", "traefik", "--disable", "servicelb")},
		{name: "comma list flag", unit: scriptUnit("--disable=traefik,servicelb")},
		{name: "only traefik disabled", unit: scriptUnit("--disable", "traefik"), missing: "servicelb"},
		{name: "old --no-deploy", unit: scriptUnit("--no-deploy", "traefik", "--no-deploy", "servicelb")},
		{name: "config list", unit: scriptUnit(), config: "write-kubeconfig-mode: \"0600\"\ndisable:\n  - traefik\n  - servicelb\n"},
		{name: "config string", unit: scriptUnit(), config: "disable: traefik,servicelb\n"},
		{name: "config and flag together", unit: scriptUnit("--disable", "servicelb"), config: "disable: [traefik]\n"},
		{name: "config lacks servicelb", unit: scriptUnit(), config: "disable: [traefik]\n", missing: "servicelb"},
		{name: "empty config", unit: scriptUnit(), config: "", missing: "traefik and servicelb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hosttest.New(t) // no commands expected: the check only reads files
			if tc.unit != "" {
				if _, err := h.WriteFile(k3s.UnitPath, []byte(tc.unit), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.config != "" || tc.name == "empty config" {
				if _, err := h.WriteFile(k3s.ConfigPath, []byte(tc.config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			h.Reset()
			st, err := k3s.SanityStep(h).Check(ctx)
			if tc.missing == "" {
				if err != nil || st.Pending {
					t.Fatalf("%+v %v, want fine", st, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one about %s", tc.missing)
			}
			for _, want := range []string{"runs " + tc.missing + " (", "disable: [traefik, servicelb]", k3s.ConfigPath, "systemctl restart k3s", "80 and 443"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if len(h.Changes()) != 0 {
				t.Errorf("the check changed %v", h.Changes())
			}
		})
	}
}

func TestSanityBadConfig(t *testing.T) {
	h := hosttest.New(t)
	_, _ = h.WriteFile(k3s.UnitPath, []byte(scriptUnit()), 0o644)
	_, _ = h.WriteFile(k3s.ConfigPath, []byte("disable: {traefik: true}\n"), 0o600)
	_, err := k3s.SanityStep(h).Check(ctx)
	if err == nil || !strings.Contains(err.Error(), k3s.ConfigPath) || !strings.Contains(err.Error(), "disable") {
		t.Fatalf("err %v, want the file and key named", err)
	}
}
