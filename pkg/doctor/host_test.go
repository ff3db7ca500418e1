package doctor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/doctor/doctortest"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/layout"
)

// routeDial sends connections for the given addresses to local servers and
// refuses the rest.
func routeDial(routes map[string]string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if to, ok := routes[addr]; ok {
			return (&net.Dialer{}).DialContext(ctx, network, to)
		}
		return refuseAll(ctx, network, addr)
	}
}

// healthyEnv is a converged default set-up whose Nginx (on 127.0.0.1:80) and
// Grafana (on 127.0.0.1:3100) are test servers reached through the dialer.
func healthyEnv(t *testing.T, cfg *config.Config, nginx, grafana http.Handler) (Env, *doctortest.Host) {
	t.Helper()
	h := doctortest.NewHost(t).Healthy(cfg, 4)
	routes := map[string]string{}
	if grafana != nil {
		routes[fmt.Sprintf("127.0.0.1:%d", cfg.Monitoring.Grafana.LocalPort)] = serve(t, grafana).Listener.Addr().String()
	}
	if nginx != nil {
		routes["127.0.0.1:80"] = serve(t, nginx).Listener.Addr().String()
	}
	return Env{Config: cfg, Host: h, Dial: routeDial(routes)}, h
}

func TestHostRAM(t *testing.T) {
	for _, c := range []struct {
		gib    float64
		status Status
		msg    string
	}{
		{8, StatusOK, "8.0 GiB of RAM, 4.0 GiB available"},
		{1.9, StatusWarn, "1.9 GiB of RAM, 0.9 GiB available: below 2 GiB"},
		{0.5, StatusFail, "0.5 GiB of RAM, 0.2 GiB available: below 1 GiB"},
	} {
		cfg := parseConfig(t, "")
		h := doctortest.NewHost(t).Healthy(cfg, c.gib)
		res, _ := runChecks(t, Env{Config: cfg, Host: h, Dial: refuseAll}, time.Second)
		expect(t, res, "host.ram", c.status, c.msg, func() []string {
			if c.status == StatusOK {
				return nil
			}
			return []string{"at least 2 GiB", "swapon"}
		}()...)
	}
}

func TestHostDisk(t *testing.T) {
	const header = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n"
	for _, c := range []struct {
		line   string
		status Status
		msg    string
	}{
		{"/dev/sda1 104857600 52428800 52428800 50% /", StatusOK, "50.0 GiB free of 100.0 GiB (50%)"},
		{"/dev/sda1 104857600 94371840 10485760 90% /", StatusWarn, "10.0 GiB free of 100.0 GiB (10%): below 15%"},
		{"/dev/sda1 104857600 101711872 3145728 97% /", StatusFail, "3.0 GiB free of 100.0 GiB (3%): below 5% k3s evicts pods"},
		{"garbage", StatusFail, "cannot read df's output"},
	} {
		cfg := parseConfig(t, "")
		h := doctortest.NewHost(t).Healthy(cfg, 4)
		h.On("df -Pk /", doctortest.Output(header+c.line+"\n"))
		res, _ := runChecks(t, Env{Config: cfg, Host: h, Dial: refuseAll}, time.Second)
		expect(t, res, "host.disk", c.status, c.msg)
	}
}

func TestHostClock(t *testing.T) {
	cfg := parseConfig(t, "")
	h := doctortest.NewHost(t).Healthy(cfg, 4)
	res, _ := runChecks(t, Env{Config: cfg, Host: h, Dial: refuseAll, Now: func() time.Time { return time.Unix(0, 0) }}, time.Second)
	expect(t, res, "host.clock", StatusFail, "the clock says 1970-01-01 00:00 UTC", "timedatectl set-ntp true")
	res, _ = runChecks(t, Env{Config: cfg, Host: h, Dial: refuseAll}, time.Second)
	expect(t, res, "host.clock", StatusOK, "2026-11-24 12:00 UTC")
}

func TestHostPorts(t *testing.T) {
	cfg := parseConfig(t, "")
	traefik := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }) // no Server header
	caddy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Server", "Caddy") })
	for name, c := range map[string]struct {
		nginx  http.Handler
		status Status
		msg    string
	}{
		"nginx":   {doctortest.Nginx(http.NotFoundHandler()), StatusOK, "Nginx answers on 80"},
		"traefik": {traefik, StatusFail, "127.0.0.1:80 is answered by a server without a Server header (k3s's Traefik answers like that), not Nginx"},
		"other":   {caddy, StatusFail, `127.0.0.1:80 is answered by "Caddy", not Nginx`},
		"nothing": {nil, StatusFail, "nothing listens on 127.0.0.1:80"},
	} {
		t.Run(name, func(t *testing.T) {
			env, _ := healthyEnv(t, cfg, c.nginx, nil)
			res, _ := runChecks(t, env, time.Second)
			expect(t, res, "host.ports", c.status, c.msg)
			if name == "traefik" {
				expect(t, res, "host.ports", c.status, c.msg, "disable:", "traefik", "servicelb", "systemctl restart k3s")
			}
		})
	}
}

func TestK3sHostChecks(t *testing.T) {
	cfg := parseConfig(t, "")
	t.Run("healthy", func(t *testing.T) {
		h := doctortest.NewHost(t).Healthy(cfg, 4)
		res, _ := runChecks(t, Env{Config: cfg, Host: h, Dial: refuseAll}, time.Second)
		expect(t, res, "k3s.service", StatusOK, "k3s.service is active")
		expect(t, res, "k3s.kubeconfig", StatusOK, "mode 0600")
		expect(t, res, "k3s.addons", StatusOK, "the installed k3s disables traefik and servicelb")
		expect(t, res, "app.image", StatusOK, "docker.io/library/nextjs-app:latest is imported and pinned")
	})
	t.Run("addons in config.yaml, kubeconfig open, image unpinned", func(t *testing.T) {
		h := doctortest.NewHost(t).Healthy(cfg, 4)
		h.Write("/etc/systemd/system/k3s.service", []byte("[Service]\nExecStart=/usr/local/bin/k3s server\n"), 0o644)
		h.Write("/etc/rancher/k3s/config.yaml", []byte("disable: traefik,servicelb\n"), 0o644)
		h.Write(layout.K3sKubeconfig, []byte("x"), 0o644)
		h.On("k3s ctr -n k8s.io images ls name==docker.io/library/nextjs-app:latest", doctortest.Output(
			"REF TYPE DIGEST SIZE PLATFORMS LABELS\ndocker.io/library/nextjs-app:latest application/vnd.oci.image.manifest.v1+json sha256:4f1c 61.2 MiB linux/amd64 io.cri-containerd.image=managed\n"))
		res, _ := runChecks(t, Env{Config: cfg, Host: h, Dial: refuseAll}, time.Second)
		expect(t, res, "k3s.addons", StatusOK, "the installed k3s disables traefik and servicelb")
		expect(t, res, "k3s.kubeconfig", StatusWarn, "mode 0644: anyone on the machine", "chmod 600 /etc/rancher/k3s/k3s.yaml")
		expect(t, res, "app.image", StatusWarn, "not pinned", "sudo k3s ctr -n k8s.io images label docker.io/library/nextjs-app:latest io.cri-containerd.pinned=pinned")
	})
	t.Run("traefik on, image missing", func(t *testing.T) {
		h := doctortest.NewHost(t).Healthy(cfg, 4)
		h.Write("/etc/systemd/system/k3s.service", []byte(strings.Replace(doctortest.K3sUnit, "'traefik'", "'local-storage'", 1)), 0o644)
		h.On("k3s ctr -n k8s.io images ls name==docker.io/library/nextjs-app:latest", doctortest.Output("REF TYPE DIGEST SIZE PLATFORMS LABELS\n"))
		res, _ := runChecks(t, Env{Config: cfg, Host: h, Dial: refuseAll}, time.Second)
		expect(t, res, "k3s.addons", StatusFail, "the installed k3s runs traefik (not disabled in /etc/systemd/system/k3s.service)", "disable: [traefik, servicelb]", "systemctl restart k3s")
		expect(t, res, "app.image", StatusFail, "is not in k3s's containerd (namespace k8s.io)", "homelab deploy-app")
	})
	t.Run("k3s stopped", func(t *testing.T) {
		h := doctortest.NewHost(t).Healthy(cfg, 4)
		h.On("systemctl is-active k3s.service", doctortest.Failure("inactive\n", 3))
		res, _ := runChecks(t, Env{Config: cfg, Host: h, Dial: refuseAll}, time.Second)
		expect(t, res, "k3s.service", StatusFail, "k3s.service is inactive", "systemctl enable --now k3s.service")
		for _, id := range []string{"k3s.kubeconfig", "k3s.addons", "app.image"} {
			expect(t, res, id, StatusSkipped, "needs k3s.service, which failed")
		}
		for _, c := range h.CommandLines() {
			if strings.HasPrefix(c, "k3s ") {
				t.Errorf("ran %q although k3s is down", c)
			}
		}
	})
	t.Run("no systemd", func(t *testing.T) {
		h := doctortest.NewHost(t).Healthy(cfg, 4)
		h.On("systemctl is-active grafana-portforward.service", doctortest.Failure("System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n", 1))
		res, _ := runChecks(t, Env{Config: cfg, Host: h, Dial: refuseAll}, time.Second)
		expect(t, res, "grafana.portforward", StatusFail, "systemd is not running")
	})
}

// TestUnderRoot: with --root no command runs; their checks say so instead
// of failing, and file checks still look under the root.
func TestUnderRoot(t *testing.T) {
	cfg := parseConfig(t, "")
	files := doctortest.NewHost(t)
	files.WriteRendered(cfg)
	res, _ := runChecks(t, Env{Config: cfg, Host: &host.Local{Root: files.Root()}, Dial: refuseAll}, time.Second)
	for _, id := range []string{"host.disk", "nginx.config", "grafana.portforward"} {
		expect(t, res, id, StatusSkipped, "commands are not run with --root")
	}
	expect(t, res, "nginx.drift", StatusOK, "")
	expect(t, res, "grafana.root-url", StatusOK, "")
}
