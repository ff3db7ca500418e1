package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/distribution/reference"

	"github.com/homelab-dev/homelab/pkg/k3s"
	"github.com/homelab-dev/homelab/pkg/layout"
)

// disableAddonsFix keeps k3s's Traefik and servicelb off ports 80/443.
const disableAddonsFix = "add `disable: [traefik, servicelb]` to " + k3s.ConfigPath +
	" (merged with any disable list there), then sudo systemctl restart k3s && sudo systemctl restart nginx"

func (d *doctor) k3sChecks() []Check {
	return []Check{
		{ID: "k3s.service", Group: GroupK3s, Name: "k3s service", Run: d.checkK3sService},
		{ID: "k3s.kubeconfig", Group: GroupK3s, Name: "kubeconfig permissions", Needs: []string{"k3s.service"}, Run: d.checkKubeconfig},
		{ID: "k3s.addons", Group: GroupK3s, Name: "Traefik/servicelb disabled", Needs: []string{"k3s.service"}, Run: d.checkK3sAddons},
	}
}

func (d *doctor) appChecks() []Check {
	return []Check{
		{ID: "app.image", Group: GroupApp, Name: "image in containerd", Needs: []string{"k3s.service"}, Run: d.checkAppImage,
			TimeoutFix: "containerd is slow to answer: sudo systemctl status k3s"},
	}
}

// systemdActive asks systemctl whether unit is active.
func (d *doctor) systemdActive(ctx context.Context, unit, startFix string) Finding {
	out, err := d.run(ctx, "systemctl", "is-active", unit)
	if f, ok := underRoot(err); ok {
		return f
	}
	state := lastLine(out)
	switch {
	case err == nil && state == "active":
		return OK("%s is active", unit)
	case notInstalled(err):
		return Fail("run homelab doctor on a systemd host", "systemctl is not installed")
	case strings.Contains(out, "not been booted with systemd"), strings.Contains(out, "Failed to connect to bus"):
		return Fail("run homelab doctor on the server, where systemd is PID 1", "systemd is not running: cannot ask about %s", unit)
	case state == "" && err != nil:
		return Fail("run homelab doctor on the server, where systemd is PID 1", "cannot ask systemctl about %s: %v", unit, err)
	case state == "":
		state = "unknown"
	}
	return Fail(startFix, "%s is %s", unit, state)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[i+1:])
	}
	return s
}

func (d *doctor) checkK3sService(ctx context.Context) Finding {
	if _, err := d.Host.Lstat(k3s.BinaryPath); notExist(err) {
		return Fail("sudo homelab init", "k3s is not installed (%s is missing)", k3s.BinaryPath)
	}
	return d.systemdActive(ctx, "k3s.service",
		"sudo systemctl enable --now k3s.service (journalctl -u k3s -n 50 shows why it stopped)")
}

func (d *doctor) checkKubeconfig(context.Context) Finding {
	info, err := d.Host.Lstat(layout.K3sKubeconfig)
	switch {
	case notExist(err):
		return Fail("sudo systemctl restart k3s (k3s writes it at start)", "%s is missing", layout.K3sKubeconfig)
	case err != nil:
		return Fail("sudo homelab doctor", "cannot look at %s: %v", layout.K3sKubeconfig, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return Warn(fmt.Sprintf("sudo chmod 600 %s, and add `write-kubeconfig-mode: \"0600\"` to %s so k3s keeps it so", layout.K3sKubeconfig, k3s.ConfigPath),
			"%s is mode %04o: anyone on the machine can administer the cluster", layout.K3sKubeconfig, perm)
	}
	return OK("%s is mode %04o", layout.K3sKubeconfig, info.Mode().Perm())
}

// checkK3sAddons looks for --disable traefik/servicelb where k3s takes its
// options (the unit's ExecStart and config.yaml), as init's preflight does.
func (d *doctor) checkK3sAddons(context.Context) Finding {
	summary, err := k3s.CheckExisting(d.Host)
	if err != nil {
		msg := err.Error()
		if i := strings.Index(msg, ": add `disable"); i > 0 {
			msg = msg[:i] // the rest is the fix
		}
		return Fail(disableAddonsFix, "%s", msg)
	}
	if summary == "no k3s service yet" {
		return Fail("sudo homelab init", "%s is missing", k3s.UnitPath)
	}
	return OK("%s", summary)
}

// checkAppImage asks k3s's containerd (namespace k8s.io, where the kubelet
// looks) for the app's image and whether it is pinned against garbage
// collection.
func (d *doctor) checkAppImage(ctx context.Context) Finding {
	named, err := reference.ParseNormalizedNamed(d.cfg.App.Image)
	if err != nil {
		return Fail("set app.image in homelab.yaml to an image reference like nextjs-app:latest", "app.image %q is not an image reference: %v", d.cfg.App.Image, err)
	}
	ref := reference.TagNameOnly(named).String()
	out, err := d.run(ctx, "k3s", "ctr", "-n", "k8s.io", "images", "ls", "name=="+ref)
	if f, ok := underRoot(err); ok {
		return f
	}
	if err != nil {
		return Fail("sudo systemctl status k3s (containerd runs inside k3s)", "cannot list k3s's images: %s", lastLine(out))
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != ref {
			continue
		}
		if strings.Contains(line, "io.cri-containerd.pinned=pinned") {
			return OK("%s is imported and pinned", ref)
		}
		return Warn(fmt.Sprintf("sudo k3s ctr -n k8s.io images label %s io.cri-containerd.pinned=pinned", ref),
			"%s is imported but not pinned: containerd may delete it when the disk fills", ref)
	}
	return Fail("build the image, then homelab deploy-app", "%s is not in k3s's containerd (namespace k8s.io)", ref)
}
