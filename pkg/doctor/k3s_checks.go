package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"go.yaml.in/yaml/v3"

	"github.com/homelab-dev/homelab/pkg/layout"
)

// Paths k3s's installer and k3s itself use (candidates for pkg/layout).
const (
	k3sBinary     = "/usr/local/bin/k3s"
	k3sUnit       = "/etc/systemd/system/k3s.service"
	k3sConfigFile = "/etc/rancher/k3s/config.yaml"
)

const disableAddonsFix = "printf 'disable:\\n  - traefik\\n  - servicelb\\n' | sudo tee -a /etc/rancher/k3s/config.yaml && sudo systemctl restart k3s"

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
	state := lastLine(out)
	switch {
	case err == nil && state == "active":
		return OK("%s is active", unit)
	case notInstalled(err):
		return Fail("run homelab doctor on a systemd host", "systemctl is not installed")
	case strings.Contains(out, "not been booted with systemd"), strings.Contains(out, "Failed to connect to bus"):
		return Fail("run homelab doctor on the server, where systemd is PID 1", "systemd is not running: cannot ask about %s", unit)
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
	if _, err := d.Host.Lstat(k3sBinary); notExist(err) {
		return Fail("sudo homelab init", "k3s is not installed (%s is missing)", k3sBinary)
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
		return Warn(fmt.Sprintf("sudo chmod 600 %s && printf 'write-kubeconfig-mode: \"0600\"\\n' | sudo tee -a %s", layout.K3sKubeconfig, k3sConfigFile),
			"%s is mode %04o: anyone on the machine can administer the cluster", layout.K3sKubeconfig, perm)
	}
	return OK("%s is mode %04o", layout.K3sKubeconfig, info.Mode().Perm())
}

// checkK3sAddons looks for --disable traefik/servicelb where k3s takes its
// options: the unit's ExecStart (what k3s's installer writes) and config.yaml.
func (d *doctor) checkK3sAddons(context.Context) Finding {
	disabled := map[string]bool{}
	if unit, err := d.Host.ReadFile(k3sUnit); err == nil {
		for name := range disabledInUnit(string(unit)) {
			disabled[name] = true
		}
	}
	if data, err := d.Host.ReadFile(k3sConfigFile); err == nil {
		var cfg struct {
			Disable any `yaml:"disable"`
		}
		if err := yaml.Unmarshal(data, &cfg); err != nil {
			return Fail("fix the YAML in "+k3sConfigFile+", then sudo systemctl restart k3s", "%s is not valid YAML: %v", k3sConfigFile, err)
		}
		var list []string
		switch v := cfg.Disable.(type) {
		case string:
			list = []string{v}
		case []any:
			for _, x := range v {
				list = append(list, fmt.Sprint(x))
			}
		}
		for _, s := range list {
			for _, name := range strings.Split(s, ",") {
				disabled[strings.TrimSpace(name)] = true
			}
		}
	}
	var missing []string
	for _, name := range []string{"traefik", "servicelb"} {
		if !disabled[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return Fail(disableAddonsFix, "k3s runs with %s enabled: it takes ports 80/443 from Nginx", strings.Join(missing, " and "))
	}
	return OK("k3s runs without Traefik and servicelb")
}

// disabledInUnit collects the values of --disable in a unit's ExecStart,
// which k3s's installer writes as quoted words on continuation lines.
func disabledInUnit(unit string) map[string]bool {
	var words []string
	in := false
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "ExecStart=") {
			in, line = true, strings.TrimPrefix(line, "ExecStart=")
		} else if !in {
			continue
		}
		cont := strings.HasSuffix(line, "\\")
		for _, w := range strings.Fields(strings.TrimSuffix(line, "\\")) {
			words = append(words, strings.Trim(w, `'"`))
		}
		if !cont {
			in = false
		}
	}
	out := map[string]bool{}
	for i, w := range words {
		var val string
		switch {
		case w == "--disable" && i+1 < len(words):
			val = words[i+1]
		case strings.HasPrefix(w, "--disable="):
			val = strings.TrimPrefix(w, "--disable=")
		default:
			continue
		}
		for _, name := range strings.Split(val, ",") {
			out[name] = true
		}
	}
	return out
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
