package record

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/homelab-dev/homelab/pkg/layout"
)

// Known is everything homelab can make on a host. Uninstall acts only on
// items that fit it: a record edited by hand or corrupted must not make it
// delete any path, purge any package or copy any file over another.
type Known struct {
	// Files are the paths File items may name.
	Files []string
	// Units are the paths SystemdUnit items may name (the unit is the base name).
	Units []string
	// Links are the paths K3sLink items may name.
	Links []string
	// K3sBinary and K3sUnit are the k3s item's Path and Unit.
	K3sBinary, K3sUnit string
	// Site is the Nginx site item: its Path and Stamp, and its Link and
	// Target when homelab made the link.
	Site Item
	// Packages are the apt packages homelab installs.
	Packages []string
	// SecretSuffixes end the names of the Secrets homelab makes, by kind
	// (the prefix is the release name, which the configuration sets).
	SecretSuffixes map[Kind]string
	// CRDGroup is the API group of every CRD homelab's charts create.
	CRDGroup string
}

// systemNamespaces are Kubernetes's own: homelab never creates or deletes
// them, nor anything in them. ("default" holds the app by default, but
// homelab never creates or deletes the namespace itself.)
var systemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// UntrustedError lists the items of a record that homelab could not have
// made. It is bad input (exit 2): nothing is removed until the record is fixed.
type UntrustedError struct {
	Problems []string
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("the record %s lists what homelab could not have made, so uninstall changes nothing:\n  %s\n"+
		"The record was edited or is damaged: remove those items from it (it is JSON), or restore it from a copy, and run uninstall again.",
		layout.Record, strings.Join(e.Problems, "\n  "))
}

// BadInput marks the error as the user's input (exit 2).
func (e *UntrustedError) BadInput() bool { return true }

// Check returns an *UntrustedError naming every item that does not fit k.
func (r *Record) Check(k Known) error {
	var problems []string
	for i, it := range r.Items {
		if why := k.untrusted(it); why != "" {
			problems = append(problems, fmt.Sprintf("items[%d] (%s %q): %s", i, it.Kind, it.String(), why))
		}
	}
	if len(problems) > 0 {
		return &UntrustedError{Problems: problems}
	}
	return nil
}

// untrusted says why homelab could not have made it, or "" if it could.
func (k Known) untrusted(it Item) string {
	switch it.Kind {
	case File:
		return k.file(it, k.Files)
	case SystemdUnit:
		if why := k.file(it, k.Units); why != "" {
			return why
		}
		if it.Name != path.Base(it.Path) {
			return fmt.Sprintf("unit name %q is not the unit file's name %q", it.Name, path.Base(it.Path))
		}
	case K3sLink:
		return oneOf("path", it.Path, k.Links)
	case K3s:
		if it.Path != k.K3sBinary || it.Unit != k.K3sUnit {
			return fmt.Sprintf("k3s is installed at %s with unit %s, not %q and %q", k.K3sBinary, k.K3sUnit, it.Path, it.Unit)
		}
	case NginxSite:
		if it.Path != k.Site.Path || it.Stamp != k.Site.Stamp {
			return fmt.Sprintf("homelab's site is %s (stamp %s)", k.Site.Path, k.Site.Stamp)
		}
		if (it.Link != "" || it.Target != "") && (it.Link != k.Site.Link || it.Target != k.Site.Target) {
			return fmt.Sprintf("homelab's site link is %s -> %s", k.Site.Link, k.Site.Target)
		}
		return k.fileExtras(it)
	case AptPackage:
		return oneOf("package", it.Name, k.Packages)
	case Namespace:
		if it.Name == "default" {
			return `namespace "default" is Kubernetes's own; homelab never creates or deletes it`
		}
		return notSystem(it.Name)
	case Secret, ConfigSecret:
		if why := notSystem(it.Namespace); why != "" {
			return why
		}
		if suffix := k.SecretSuffixes[it.Kind]; suffix == "" || !strings.HasSuffix(it.Name, suffix) || it.Name == suffix {
			return fmt.Sprintf("homelab's %s Secrets are named RELEASE%s", it.Kind, suffix)
		}
	case HelmRelease:
		return notSystem(it.Namespace)
	case CRDs:
		if why := notSystem(it.Namespace); why != "" {
			return why
		}
		for _, n := range it.Names {
			if !strings.HasSuffix(n, "."+k.CRDGroup) {
				return fmt.Sprintf("CRD %q is not in %s, the group of the charts' CRDs", n, k.CRDGroup)
			}
		}
	}
	return ""
}

// file checks a file item's path against allowed and its backup, mode and
// directories against what the recorder writes.
func (k Known) file(it Item, allowed []string) string {
	if why := oneOf("path", it.Path, allowed); why != "" {
		return why
	}
	return k.fileExtras(it)
}

func (k Known) fileExtras(it Item) string {
	if it.Backup != "" && it.Backup != OriginalPath(it.Path) {
		return fmt.Sprintf("backup %q is not where homelab keeps the original (%s)", it.Backup, OriginalPath(it.Path))
	}
	if it.Mode != "" {
		if m, err := strconv.ParseUint(it.Mode, 8, 32); err != nil || m > 0o777 {
			return fmt.Sprintf("mode %q is not a permission from 0000 to 0777", it.Mode)
		}
	}
	for _, d := range it.Dirs {
		if !isParentOf(d, it.Path) && (it.Link == "" || !isParentOf(d, it.Link)) {
			return fmt.Sprintf("directory %q is not one of the file's parent directories", d)
		}
	}
	return ""
}

// isParentOf reports whether dir is a parent directory of p, other than "/".
func isParentOf(dir, p string) bool {
	return dir == path.Clean(dir) && dir != "/" && strings.HasPrefix(p, dir+"/")
}

func oneOf(what, v string, allowed []string) string {
	if slices.Contains(allowed, v) {
		return ""
	}
	return fmt.Sprintf("%s %q is not one homelab makes (%s)", what, v, strings.Join(allowed, ", "))
}

func notSystem(ns string) string {
	if slices.Contains(systemNamespaces, ns) {
		return fmt.Sprintf("namespace %q is Kubernetes's own; homelab never creates or deletes anything there", ns)
	}
	return ""
}
