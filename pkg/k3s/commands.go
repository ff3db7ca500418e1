package k3s

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// Commands are the tools k3s's own installer (get.k3s.io) links to the k3s
// binary: k3s answers to each name as that tool, with k3s's kubeconfig and
// containerd socket as defaults. doctor's fixes and the reference setup use
// `kubectl`, so a box set up by homelab must have it.
var Commands = []string{"kubectl", "crictl", "ctr"}

// CommandDir is where the links go, beside the k3s binary.
const CommandDir = "/usr/local/bin"

// searchPath is the PATH of a root shell (and of sudo's secure_path) on
// Ubuntu and Debian: a tool found in any of these is already available.
var searchPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", "/snap/bin"}

// CommandLink is the link for one tool: CommandDir/name -> BinaryPath.
func CommandLink(name string) string { return path.Join(CommandDir, name) }

// CommandLinksStep links kubectl, crictl and ctr to k3s, as get.k3s.io does,
// but only those that no directory on root's PATH has already: a kubectl
// the user installed is never shadowed or replaced.
func CommandLinksStep(h host.Host) plan.Step {
	// missing lists the tools to link, and those found elsewhere.
	missing := func() (link, found []string, err error) {
		for _, name := range Commands {
			where := lookPath(h, name)
			switch {
			case where == "":
				link = append(link, name)
			case where == CommandLink(name):
				if target, err := h.Readlink(where); err == nil && target == BinaryPath {
					found = append(found, name+" -> k3s")
					continue
				}
				found = append(found, where)
			default:
				found = append(found, where)
			}
		}
		return link, found, nil
	}
	return plan.Step{
		Name: "kubectl, crictl, ctr",
		Check: func(context.Context) (plan.Status, error) {
			link, found, err := missing()
			if err != nil {
				return plan.Status{}, err
			}
			var say []string
			if len(link) > 0 {
				say = append(say, "link "+strings.Join(link, ", ")+" to "+BinaryPath)
			}
			if len(found) > 0 {
				say = append(say, "have "+strings.Join(found, ", "))
			}
			return plan.Status{Pending: len(link) > 0, Summary: strings.Join(say, "; ")}, nil
		},
		Apply: func(context.Context) error {
			link, _, err := missing()
			if err != nil {
				return err
			}
			for _, name := range link {
				if _, err := h.Symlink(BinaryPath, CommandLink(name)); err != nil {
					return fmt.Errorf("link %s to k3s: %w", CommandLink(name), err)
				}
			}
			return nil
		},
	}
}

// lookPath finds name in root's PATH on the host; "" when it is nowhere
// (a directory that is missing or unreadable has nothing to offer).
func lookPath(h host.Host, name string) string {
	for _, dir := range searchPath {
		p := path.Join(dir, name)
		if _, err := h.Lstat(p); err == nil {
			return p
		}
	}
	return ""
}
