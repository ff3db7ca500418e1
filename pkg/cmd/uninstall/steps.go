package uninstall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/homelab-dev/homelab/pkg/helm"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/record"
)

// Deps are what uninstall's steps act through.
type Deps struct {
	Host host.Host
	Kube func() (*kube.Client, error)
	Helm func() (*helm.Engine, error)
	// Timeout bounds each wait: a release's resources, CRDs going away.
	Timeout time.Duration
}

// Choices are the opt-in removals: without them, these items are kept.
type Choices struct {
	// CRDs deletes the CRDs homelab's chart installs created, and with
	// them every object of their kinds.
	CRDs bool
	// K3s stops and removes k3s when homelab installed it.
	K3s bool
	// DeleteData deletes the Grafana admin Secret, namespaces homelab
	// created (with Prometheus's volumes), and with K3s /var/lib/rancher/k3s.
	DeleteData bool
	// Packages removes the apt packages homelab installed.
	Packages bool
}

// Plan builds the steps that remove what rec lists, newest first within
// each phase: host files, Helm releases, CRDs, Secrets, namespaces, k3s,
// packages. Items the choices keep get a step that only says so. The last
// step removes the record, or leaves in it only what was kept, so that a
// later uninstall with more flags can remove that too. It does no I/O.
func Plan(rec *record.Record, d Deps, c Choices) plan.Plan {
	type entry struct {
		idx  int
		item record.Item
	}
	var entries []entry
	for i, it := range rec.Items {
		entries = append(entries, entry{i, it})
	}
	slices.SortStableFunc(entries, func(a, b entry) int {
		if ra, rb := rank(a.item.Kind), rank(b.item.Kind); ra != rb {
			return ra - rb
		}
		return b.idx - a.idx // newest first
	})
	p := plan.Plan{Name: "uninstall"}
	var kept []record.Item
	for _, e := range entries {
		s, keep := itemStep(e.item, d, c)
		p.Steps = append(p.Steps, s)
		if keep {
			kept = append(kept, e.item)
		}
	}
	// Kept items stay in the record in their original order.
	slices.SortStableFunc(kept, func(a, b record.Item) int {
		return slices.IndexFunc(rec.Items, func(i record.Item) bool { return i.Key() == a.Key() }) -
			slices.IndexFunc(rec.Items, func(i record.Item) bool { return i.Key() == b.Key() })
	})
	p.Steps = append(p.Steps, recordStep(d.Host, kept))
	return p
}

func rank(k record.Kind) int {
	switch k {
	case record.HelmRelease:
		return 1
	case record.CRDs:
		return 2
	case record.Secret, record.ConfigSecret:
		return 3
	case record.Namespace:
		return 4
	case record.K3s:
		return 5
	case record.AptPackage:
		return 6
	}
	return 0
}

// itemStep is the step that removes it, and whether it stays in the record.
func itemStep(it record.Item, d Deps, c Choices) (plan.Step, bool) {
	h := d.Host
	switch it.Kind {
	case record.File:
		return fileStep(h, it), false
	case record.SystemdUnit:
		return unitStep(h, it), false
	case record.NginxSite:
		return nginxStep(h, it), false
	case record.HelmRelease:
		return releaseStep(d, it), false
	case record.CRDs:
		if !c.CRDs {
			return kept("CRDs of "+it.Namespace+"/"+it.Name, fmt.Sprintf("kept %s: --crds deletes them, and with them every object of their kinds in the cluster (every Probe, PrometheusRule, ServiceMonitor, ...)",
				strings.Join(it.Names, ", "))), true
		}
		return crdsStep(d, it), false
	case record.Secret:
		if !c.DeleteData {
			return kept("Secret "+it.Namespace+"/"+it.Name, "kept: it holds the Grafana admin password (--delete-data deletes it)"), true
		}
		return secretStep(d, it, "and with it the Grafana admin password"), false
	case record.ConfigSecret:
		return secretStep(d, it, "(Alertmanager's configuration, with the alert destinations' tokens)"), false
	case record.Namespace:
		if !c.DeleteData {
			return kept("namespace "+it.Name, "kept, with what is left in it, like Prometheus's and Grafana's volumes (--delete-data deletes it)"), true
		}
		return namespaceStep(d, it), false
	case record.K3sLink:
		if !c.K3s {
			return kept(it.Path, "kept with k3s (--k3s removes both)"), true
		}
		return fileStep(h, it), false
	case record.K3s:
		if !c.K3s {
			return kept("k3s", "kept k3s "+it.Version+" and the cluster it runs (--k3s removes it)"), true
		}
		return k3sStep(h, it, c.DeleteData), false
	case record.AptPackage:
		if !c.Packages {
			return kept("apt package "+it.Name, "kept (--packages removes it)"), true
		}
		return aptStep(h, it), false
	}
	return kept(it.String(), fmt.Sprintf("left alone: this homelab does not know how to remove a %q", it.Kind)), true
}

// kept is a step that only says an item stays.
func kept(name, summary string) plan.Step {
	return plan.Step{
		Name:  name,
		Check: func(context.Context) (plan.Status, error) { return plan.Status{Summary: summary}, nil },
		Apply: func(context.Context) error { return nil },
	}
}

func exists(h host.Host, p string) (bool, error) {
	_, err := h.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// removeDirs removes the directories homelab created, deepest first, when
// they are empty; a directory with something in it is kept.
func removeDirs(h host.Host, dirs []string) {
	for _, d := range dirs {
		_ = h.Remove(d)
	}
}

// original is the content and mode a modified file had before homelab.
type original struct {
	data []byte
	mode fs.FileMode
}

// readOriginal reads a modified item's backup; nil when there is none.
func readOriginal(h host.Host, it record.Item) (*original, error) {
	if !it.Modified || it.Backup == "" {
		return nil, nil
	}
	data, err := h.ReadFile(it.Backup)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	mode := fs.FileMode(0o644)
	if m, err := strconv.ParseUint(it.Mode, 8, 32); err == nil {
		mode = fs.FileMode(m)
	}
	return &original{data: data, mode: mode}, nil
}

// restored reports whether p holds o.
func restored(h host.Host, p string, o *original) (bool, error) {
	info, err := h.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil || !info.Mode().IsRegular() {
		return false, err
	}
	have, err := h.ReadFile(p)
	if err != nil {
		return false, err
	}
	return bytes.Equal(have, o.data) && info.Mode().Perm() == o.mode.Perm(), nil
}

const noOriginal = "left as it is: it existed before homelab and no copy of the original was kept"

// fileCheck says what removing or restoring a file item would do.
func fileCheck(h host.Host, it record.Item) (plan.Status, *original, error) {
	if it.Modified {
		o, err := readOriginal(h, it)
		if err != nil || o == nil {
			return plan.Status{Summary: noOriginal}, nil, err
		}
		same, err := restored(h, it.Path, o)
		if err != nil || same {
			return plan.Status{Summary: "as it was before homelab"}, o, err
		}
		return plan.Status{Pending: true, Summary: "put back the original from " + it.Backup}, o, nil
	}
	ok, err := exists(h, it.Path)
	if err != nil || !ok {
		return plan.Status{Summary: "already gone"}, nil, err
	}
	return plan.Status{Pending: true, Summary: "remove " + it.Path}, nil, nil
}

// fileApply removes a created file (and its empty directories) or puts a
// modified one's original back.
func fileApply(h host.Host, it record.Item) error {
	if it.Modified {
		o, err := readOriginal(h, it)
		if err != nil || o == nil {
			return err
		}
		_, err = h.WriteFile(it.Path, o.data, o.mode)
		return err
	}
	if err := h.Remove(it.Path); err != nil {
		return err
	}
	removeDirs(h, it.Dirs)
	return nil
}

func fileStep(h host.Host, it record.Item) plan.Step {
	return plan.Step{
		Name: it.Path,
		Check: func(context.Context) (plan.Status, error) {
			st, _, err := fileCheck(h, it)
			return st, err
		},
		Apply: func(context.Context) error { return fileApply(h, it) },
	}
}

func systemctl(ctx context.Context, h host.Host, args ...string) error {
	_, err := h.Run(ctx, host.Cmd{Name: "systemctl", Args: args})
	return err
}

// unitStep disables and removes a unit homelab created, or puts back the
// original of one it modified and restarts it if it runs.
func unitStep(h host.Host, it record.Item) plan.Step {
	return plan.Step{
		Name: "systemd unit " + it.Name,
		Check: func(context.Context) (plan.Status, error) {
			st, _, err := fileCheck(h, it)
			if st.Pending && !it.Modified {
				st.Summary = fmt.Sprintf("systemctl disable --now %s, remove %s, systemctl daemon-reload", it.Name, it.Path)
			} else if st.Pending {
				st.Summary += ", systemctl daemon-reload and try-restart " + it.Name
			}
			return st, err
		},
		Apply: func(ctx context.Context) error {
			if !it.Modified {
				if err := systemctl(ctx, h, "disable", "--now", it.Name); err != nil {
					return err
				}
			}
			if err := fileApply(h, it); err != nil {
				return err
			}
			if err := systemctl(ctx, h, "daemon-reload"); err != nil {
				return err
			}
			if it.Modified {
				return systemctl(ctx, h, "try-restart", it.Name)
			}
			return nil
		},
	}
}

// nginxBinary is where Debian's nginx package puts Nginx.
const nginxBinary = "/usr/sbin/nginx"

// nginxStep disables and removes homelab's site (or puts back the original
// site homelab replaced), tests the configuration and reloads Nginx. If
// nginx -t rejects what is left, the site is put back and Nginx keeps
// serving what it served.
func nginxStep(h host.Host, it record.Item) plan.Step {
	check := func() (plan.Status, error) {
		site, _, err := fileCheck(h, it)
		if err != nil {
			return plan.Status{}, err
		}
		var todo []string
		if it.Link != "" {
			if target, err := h.Readlink(it.Link); err == nil && target == it.Target {
				todo = append(todo, "disable the site (remove "+it.Link+")")
			}
		}
		if site.Pending {
			todo = append(todo, site.Summary)
		}
		if len(todo) > 0 {
			todo = append(todo, "nginx -t, reload (put back if nginx -t fails)")
		}
		if it.Stamp != "" {
			if ok, err := exists(h, it.Stamp); err != nil {
				return plan.Status{}, err
			} else if ok {
				todo = append(todo, "remove "+it.Stamp)
			}
		}
		if len(todo) == 0 {
			if it.Modified {
				return plan.Status{Summary: it.Path + ": " + site.Summary}, nil
			}
			return plan.Status{Summary: "already removed"}, nil
		}
		return plan.Status{Pending: true, Summary: strings.Join(todo, "; ")}, nil
	}
	return plan.Step{
		Name:  "Nginx site",
		Check: func(context.Context) (plan.Status, error) { return check() },
		Apply: func(ctx context.Context) error {
			// What to put back if nginx -t fails.
			oldSite, readErr := h.ReadFile(it.Path)
			hadSite := readErr == nil
			if readErr != nil && !errors.Is(readErr, fs.ErrNotExist) {
				return readErr
			}
			siteMode := fs.FileMode(0o644)
			if info, err := h.Lstat(it.Path); err == nil {
				siteMode = info.Mode().Perm()
			}
			oldTarget, linkErr := h.Readlink(it.Link)
			hadLink := it.Link != "" && linkErr == nil && oldTarget == it.Target

			changed := hadLink
			if hadLink {
				if err := h.Remove(it.Link); err != nil {
					return err
				}
			}
			if st, _, err := fileCheck(h, it); err != nil {
				return err
			} else if st.Pending {
				changed = true
				if it.Modified {
					err = fileApply(h, it) // put the original back
				} else {
					err = h.Remove(it.Path)
				}
				if err != nil {
					return err
				}
			}
			if changed {
				if ok, err := exists(h, nginxBinary); err != nil {
					return err
				} else if ok {
					if out, err := h.Run(ctx, host.Cmd{Name: "nginx", Args: []string{"-t"}}); err != nil {
						var errs []error
						if hadSite {
							_, err := h.WriteFile(it.Path, oldSite, siteMode)
							errs = append(errs, err)
						}
						if hadLink {
							_, err := h.Symlink(it.Target, it.Link)
							errs = append(errs, err)
						}
						msg := fmt.Sprintf("nginx -t rejected the configuration without homelab's site, so the site was put back and Nginx was not reloaded; fix the rest of the Nginx configuration, then run uninstall again:\n%s",
							bytes.TrimSpace(out))
						if err := errors.Join(errs...); err != nil {
							msg += "\nputting the site back also failed: " + err.Error()
						}
						return errors.New(msg)
					}
					// Reload only a running Nginx: uninstall starts nothing.
					if err := systemctl(ctx, h, "try-reload-or-restart", "nginx"); err != nil {
						return fmt.Errorf("reload nginx: %w", err)
					}
				}
			}
			if it.Stamp != "" {
				if err := h.Remove(it.Stamp); err != nil {
					return err
				}
			}
			removeDirs(h, it.Dirs)
			return nil
		},
	}
}

// releaseStep uninstalls a Helm release and waits for its resources to go.
func releaseStep(d Deps, it record.Item) plan.Step {
	return plan.Step{
		Name: "Helm release " + it.Namespace + "/" + it.Name,
		Check: func(ctx context.Context) (plan.Status, error) {
			e, err := d.Helm()
			if err != nil {
				return plan.Status{Pending: true, Summary: fmt.Sprintf("helm uninstall %s (the cluster could not be asked: %v)", it.Name, err)}, nil
			}
			last, ok, err := e.Last(ctx, it.Name, it.Namespace)
			if err != nil {
				return plan.Status{}, err
			}
			if !ok {
				return plan.Status{Summary: "already uninstalled"}, nil
			}
			return plan.Status{Pending: true, Summary: fmt.Sprintf("helm uninstall %s from namespace %s (revision %d, %s) and wait until its resources are gone",
				it.Name, it.Namespace, last.Number, last.Status)}, nil
		},
		Apply: func(ctx context.Context) error {
			e, err := d.Helm()
			if err != nil {
				return err
			}
			return e.Uninstall(ctx, it.Name, it.Namespace, d.Timeout)
		},
	}
}

func timeoutOr(t time.Duration) time.Duration {
	if t <= 0 {
		return 5 * time.Minute
	}
	return t
}

var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// crdsStep deletes CRDs homelab created, and so every object of their kinds.
func crdsStep(d Deps, it record.Item) plan.Step {
	present := func(ctx context.Context, c *kube.Client) ([]string, error) {
		var names []string
		for _, n := range it.Names {
			crd, err := c.Dynamic.Resource(record.CRDResource).Get(ctx, n, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read CRD %s: %w", n, err)
			}
			if crd.GetDeletionTimestamp() == nil {
				names = append(names, n)
			}
		}
		return names, nil
	}
	return plan.Step{
		Name: "CRDs of " + it.Namespace + "/" + it.Name,
		Check: func(ctx context.Context) (plan.Status, error) {
			c, err := d.Kube()
			if err != nil {
				return plan.Status{Pending: true, Summary: fmt.Sprintf("delete CRDs %s (the cluster could not be asked: %v)", strings.Join(it.Names, ", "), err)}, nil
			}
			names, err := present(ctx, c)
			if err != nil || len(names) == 0 {
				return plan.Status{Summary: "already deleted"}, err
			}
			return plan.Status{Pending: true, Summary: fmt.Sprintf("delete CRDs %s: this deletes every object of their kinds in every namespace (every Probe, PrometheusRule, ServiceMonitor, ...)",
				strings.Join(names, ", "))}, nil
		},
		Apply: func(ctx context.Context) error {
			c, err := d.Kube()
			if err != nil {
				return err
			}
			names, err := present(ctx, c)
			if err != nil {
				return err
			}
			var refs []kube.Ref
			for _, n := range names {
				if err := c.Dynamic.Resource(record.CRDResource).Delete(ctx, n, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					return fmt.Errorf("delete CRD %s: %w", n, err)
				}
				refs = append(refs, kube.Ref{GVK: crdGVK, Name: n})
			}
			return c.WaitDeleted(ctx, refs, timeoutOr(d.Timeout))
		},
	}
}

func secretStep(d Deps, it record.Item, holds string) plan.Step {
	ref := it.Namespace + "/" + it.Name
	return plan.Step{
		Name: "Secret " + ref,
		Check: func(ctx context.Context) (plan.Status, error) {
			c, err := d.Kube()
			if err != nil {
				return plan.Status{Pending: true, Summary: fmt.Sprintf("delete Secret %s (the cluster could not be asked: %v)", ref, err)}, nil
			}
			_, err = c.Typed.CoreV1().Secrets(it.Namespace).Get(ctx, it.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				return plan.Status{Summary: "already deleted"}, nil
			case err != nil:
				return plan.Status{}, fmt.Errorf("read Secret %s: %w", ref, err)
			}
			return plan.Status{Pending: true, Summary: "delete Secret " + ref + " " + holds}, nil
		},
		Apply: func(ctx context.Context) error {
			c, err := d.Kube()
			if err != nil {
				return err
			}
			if err := c.Typed.CoreV1().Secrets(it.Namespace).Delete(ctx, it.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete Secret %s: %w", ref, err)
			}
			return nil
		},
	}
}

func namespaceStep(d Deps, it record.Item) plan.Step {
	return plan.Step{
		Name: "namespace " + it.Name,
		Check: func(ctx context.Context) (plan.Status, error) {
			c, err := d.Kube()
			if err != nil {
				return plan.Status{Pending: true, Summary: fmt.Sprintf("delete namespace %s (the cluster could not be asked: %v)", it.Name, err)}, nil
			}
			ns, err := c.Typed.CoreV1().Namespaces().Get(ctx, it.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				return plan.Status{Summary: "already deleted"}, nil
			case err != nil:
				return plan.Status{}, fmt.Errorf("read namespace %s: %w", it.Name, err)
			case ns.DeletionTimestamp != nil:
				return plan.Status{Summary: "being deleted"}, nil
			}
			return plan.Status{Pending: true, Summary: "delete namespace " + it.Name + " and everything left in it (Prometheus's and Grafana's volumes)"}, nil
		},
		Apply: func(ctx context.Context) error {
			c, err := d.Kube()
			if err != nil {
				return err
			}
			if err := c.Typed.CoreV1().Namespaces().Delete(ctx, it.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete namespace %s: %w", it.Name, err)
			}
			return nil
		},
	}
}

// K3sDataDirs are what k3s keeps besides its binary and unit: the cluster's
// state, images and volumes, and its configuration and kubeconfig.
var K3sDataDirs = []string{"/var/lib/rancher/k3s", "/etc/rancher/k3s"}

// k3sStep stops and removes a k3s homelab installed; with deleteData its
// state too. rm --one-file-system never descends into the mounts of
// containers that still run.
func k3sStep(h host.Host, it record.Item, deleteData bool) plan.Step {
	check := func() (plan.Status, error) {
		var todo []string
		unit, err := exists(h, it.Unit)
		if err != nil {
			return plan.Status{}, err
		}
		if unit {
			todo = append(todo, "systemctl disable --now k3s, remove "+it.Unit+", systemctl daemon-reload")
		}
		if ok, err := exists(h, it.Path); err != nil {
			return plan.Status{}, err
		} else if ok {
			todo = append(todo, "remove "+it.Path)
		}
		if deleteData {
			for _, dir := range K3sDataDirs {
				if ok, err := exists(h, dir); err != nil {
					return plan.Status{}, err
				} else if ok {
					todo = append(todo, "delete "+dir)
				}
			}
		}
		if len(todo) == 0 {
			return plan.Status{Summary: "already removed"}, nil
		}
		if !deleteData {
			todo = append(todo, "keep /var/lib/rancher/k3s (--delete-data deletes it)")
		}
		return plan.Status{Pending: true, Summary: strings.Join(todo, "; ")}, nil
	}
	return plan.Step{
		Name:  "k3s",
		Check: func(context.Context) (plan.Status, error) { return check() },
		Apply: func(ctx context.Context) error {
			if ok, err := exists(h, it.Unit); err != nil {
				return err
			} else if ok {
				if err := systemctl(ctx, h, "disable", "--now", "k3s"); err != nil {
					return err
				}
				if err := h.Remove(it.Unit); err != nil {
					return err
				}
				if err := systemctl(ctx, h, "daemon-reload"); err != nil {
					return err
				}
			}
			if err := h.Remove(it.Path); err != nil {
				return err
			}
			if deleteData {
				args := append([]string{"-rf", "--one-file-system"}, K3sDataDirs...)
				if _, err := h.Run(ctx, host.Cmd{Name: "rm", Args: args}); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

var aptEnv = []string{"DEBIAN_FRONTEND=noninteractive"}

// aptStep removes a package homelab installed (and the dependencies it
// pulled in); its configuration files stay, as apt-get remove leaves them.
func aptStep(h host.Host, it record.Item) plan.Step {
	installed := func(ctx context.Context) (bool, error) {
		out, err := h.Run(ctx, host.Cmd{Name: "dpkg-query", Args: []string{"-W", "-f=${db:Status-Status}", it.Name}})
		if err != nil {
			var cmdErr *host.CmdError
			if errors.As(err, &cmdErr) && !errors.Is(err, host.ErrCommandUnderRoot) {
				return false, nil // dpkg-query exits 1 for a package it does not know
			}
			return false, err
		}
		return strings.TrimSpace(string(out)) == "installed", nil
	}
	return plan.Step{
		Name: "apt package " + it.Name,
		Check: func(ctx context.Context) (plan.Status, error) {
			ok, err := installed(ctx)
			switch {
			case ctx.Err() != nil:
				return plan.Status{}, ctx.Err()
			case err != nil:
				return plan.Status{Pending: true, Summary: fmt.Sprintf("apt-get remove %s (dpkg could not be asked: %v)", it.Name, err)}, nil
			case !ok:
				return plan.Status{Summary: "not installed"}, nil
			}
			return plan.Status{Pending: true, Summary: "apt-get remove " + it.Name}, nil
		},
		Apply: func(ctx context.Context) error {
			_, err := h.Run(ctx, host.Cmd{Name: "apt-get", Args: []string{"remove", "-y", "-q", it.Name}, Env: aptEnv})
			return err
		},
	}
}

// recordStep leaves in the record only what was kept, or removes it when
// nothing was.
func recordStep(h host.Host, keep []record.Item) plan.Step {
	rest := record.New()
	rest.Add(keep...)
	want, marshalErr := rest.Marshal()
	var names []string
	for _, it := range keep {
		names = append(names, it.String())
	}
	return plan.Step{
		Name: "record",
		Check: func(context.Context) (plan.Status, error) {
			if marshalErr != nil {
				return plan.Status{}, marshalErr
			}
			have, err := h.ReadFile(layout.Record)
			missing := errors.Is(err, fs.ErrNotExist)
			if err != nil && !missing {
				return plan.Status{}, err
			}
			switch {
			case len(keep) == 0 && missing:
				return plan.Status{Summary: "removed"}, nil
			case len(keep) == 0:
				return plan.Status{Pending: true, Summary: "remove " + layout.Record + ": everything it listed is gone"}, nil
			case bytes.Equal(have, want):
				return plan.Status{Summary: "lists only what was kept: " + strings.Join(names, ", ")}, nil
			}
			return plan.Status{Pending: true, Summary: "keep listing only what was kept, for a later uninstall: " + strings.Join(names, ", ")}, nil
		},
		Apply: func(context.Context) error {
			if len(keep) == 0 {
				return h.Remove(layout.Record)
			}
			return rest.Save(h)
		},
	}
}
