// Package doctortest owns doctor's test doubles: a host set up like a
// converged server (doctor's way of answering commands on hosttest's fake
// host, which it builds on), the recorded socket tables of a k3s server, and
// HTTP servers that behave like Grafana and Nginx under a sub-path.
package doctortest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/host/hosttest"
	"github.com/homelab-dev/homelab/pkg/render"
)

// Answer answers one command.
type Answer func(ctx context.Context, cmd host.Cmd) ([]byte, error)

// Output answers with out and exit status 0.
func Output(out string) Answer {
	return func(context.Context, host.Cmd) ([]byte, error) { return []byte(out), nil }
}

// Failure answers with out and a non-zero exit; the fake host makes it a
// *host.CmdError carrying out, as host.Local does.
func Failure(out string, code int) Answer {
	return func(context.Context, host.Cmd) ([]byte, error) { return []byte(out), hosttest.Exit(code) }
}

// Host is hosttest's fake host answered the way doctor's tests want: one
// answer per command line, run any number of times (doctor only reads, so
// how often it asks is not what its tests check), and a later On replaces
// the answer (Healthy answers everything, a test then breaks one thing). A
// command nobody answers fails the test: a check that runs something new
// must say so in its tests. Files written with Write and Link are the test's
// arrangement: they are not backed up and not in Changes.
type Host struct {
	*hosttest.Host
	t       testing.TB
	mu      sync.Mutex
	answers map[string]Answer
}

// NewHost returns a host over a new temporary root.
func NewHost(t testing.TB) *Host {
	t.Helper()
	return &Host{Host: hosttest.New(t), t: t, answers: map[string]Answer{}}
}

// On answers the command line, spelled as hosttest.CommandLine spells it
// (for doctor's commands: name and arguments joined by spaces), replacing
// an earlier answer to it.
func (h *Host) On(cmdline string, a Answer) *Host {
	h.mu.Lock()
	_, declared := h.answers[cmdline]
	h.answers[cmdline] = a
	h.mu.Unlock()
	if !declared {
		h.ExpectFunc(cmdline, func(c host.Cmd) bool { return hosttest.CommandLine(c) == cmdline }).
			AnyTimes().
			DoContext(func(ctx context.Context, c host.Cmd) ([]byte, error) {
				h.mu.Lock()
				answer := h.answers[cmdline]
				h.mu.Unlock()
				return answer(ctx, c)
			})
	}
	return h
}

// Write puts a file at host path p.
func (h *Host) Write(p string, data []byte, mode os.FileMode) {
	h.t.Helper()
	local := h.Path(p)
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(local, data, mode); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Chmod(local, mode); err != nil {
		h.t.Fatal(err)
	}
}

// Link makes host path link a symbolic link to target.
func (h *Host) Link(target, link string) {
	h.t.Helper()
	local := h.Path(link)
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		h.t.Fatal(err)
	}
	_ = os.Remove(local)
	if err := os.Symlink(target, local); err != nil {
		h.t.Fatal(err)
	}
}

// WriteRendered writes every file homelab renders for cfg, as init would.
func (h *Host) WriteRendered(cfg *config.Config) {
	h.t.Helper()
	r, err := render.New()
	if err != nil {
		h.t.Fatal(err)
	}
	files, err := r.All(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, f := range files {
		if f.Link != "" {
			h.Link(f.Link, f.Path)
			continue
		}
		h.Write(f.Path, f.Data, f.Mode)
	}
}

// Healthy makes the host look like a converged server with ramGiB of memory:
// meminfo, df, k3s files, every systemd unit active, nginx -t passing, the
// app image imported and pinned, k3s's sockets with ufw closing them.
// Files rendered from cfg are written too.
func (h *Host) Healthy(cfg *config.Config, ramGiB float64) *Host {
	h.t.Helper()
	h.WriteRendered(cfg)
	kb := int64(ramGiB * (1 << 20))
	h.Write("/proc/meminfo", []byte(fmt.Sprintf("MemTotal:       %d kB\nMemFree:        %d kB\nMemAvailable:   %d kB\n", kb, kb/4, kb/2)), 0o444)
	h.Write("/usr/local/bin/k3s", []byte("#!/bin/sh\n"), 0o755)
	h.Write("/etc/rancher/k3s/k3s.yaml", []byte("apiVersion: v1\nkind: Config\n"), 0o600)
	h.Write("/etc/systemd/system/k3s.service", []byte(K3sUnit), 0o644)
	h.On("df -Pk /", Output("Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/sda1         61255492 20418496  40837000      34% /\n"))
	h.On("systemctl is-active k3s.service", Output("active\n"))
	h.On("systemctl is-active grafana-portforward.service", Output("active\n"))
	h.WriteSockets(NotOnAPlainServer...)
	h.On("ufw status verbose", Output(UFWActive))
	h.On("nginx -t", Output("nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\nnginx: configuration file /etc/nginx/nginx.conf test is successful\n"))
	ref := "docker.io/library/" + cfg.App.Image
	if strings.Contains(strings.SplitN(cfg.App.Image, "/", 2)[0], ".") {
		ref = cfg.App.Image
	}
	h.On("k3s ctr -n k8s.io images ls name=="+ref, Output(
		"REF TYPE DIGEST SIZE PLATFORMS LABELS\n"+ref+" application/vnd.oci.image.manifest.v1+json sha256:4f1c 61.2 MiB linux/amd64 io.cri-containerd.image=managed,io.cri-containerd.pinned=pinned\n"))
	return h
}

// K3sUnit is the unit k3s's installer writes for `--disable traefik --disable servicelb`.
const K3sUnit = `[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
ExecStart=/usr/local/bin/k3s \
    server \
	'--disable' \
	'traefik' \
	'--disable' \
	'servicelb' \
	'--write-kubeconfig-mode' \
	'0600' \

KillMode=process
Restart=always
`

// Grafana behaves like Grafana with root_url .../prefix/ and
// serve_from_sub_path = true: the health endpoint answers under the prefix,
// and a request without the prefix is redirected to the prefixed path. Behind
// a proxy that strips the prefix this redirects in a loop.
func Grafana(prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case !strings.HasPrefix(r.URL.Path, prefix+"/"):
			http.Redirect(w, r, prefix+r.URL.Path, http.StatusMovedPermanently)
		case r.URL.Path == prefix+"/api/health":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"commit":"abc","database":"ok","version":"13.2.0"}`)
		default:
			http.NotFound(w, r)
		}
	})
}

// LoopingGrafana redirects between two pages forever, like Grafana whose
// root_url disagrees with the path it is served at.
func LoopingGrafana(prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == prefix+"/login" {
			http.Redirect(w, r, prefix+"/api/health", http.StatusFound)
			return
		}
		http.Redirect(w, r, prefix+"/login", http.StatusFound)
	})
}

// StrippingNginx stands in for Nginx with `proxy_pass http://grafana/;`: it
// answers with Server: nginx and passes /prefix/x to next as /x.
func StrippingNginx(prefix string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nginx/1.22.1")
		if rest, ok := strings.CutPrefix(r.URL.Path, prefix); ok {
			r2 := r.Clone(r.Context())
			r2.URL.Path = rest
			next.ServeHTTP(w, r2)
			return
		}
		http.NotFound(w, r)
	})
}

// Nginx stands in for Nginx with the rendered site: Server: nginx, the
// prefix kept.
func Nginx(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nginx/1.22.1")
		next.ServeHTTP(w, r)
	})
}
