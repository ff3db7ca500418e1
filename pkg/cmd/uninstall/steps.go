package uninstall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/homelab-dev/homelab/pkg/alertmanager"
	"github.com/homelab-dev/homelab/pkg/apt"
	"github.com/homelab-dev/homelab/pkg/grafana"
	"github.com/homelab-dev/homelab/pkg/helm"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/k3s"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/nginx"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/record"
	"github.com/homelab-dev/homelab/pkg/systemd"
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
	var keptAt []entry
	for _, e := range entries {
		s, keep := itemStep(e.item, d, c)
		p.Steps = append(p.Steps, s)
		if keep {
			keptAt = append(keptAt, e)
		}
	}
	// Kept items stay in the record in their original order.
	slices.SortFunc(keptAt, func(a, b entry) int { return a.idx - b.idx })
	kept := make([]record.Item, len(keptAt))
	for i, e := range keptAt {
		kept[i] = e.item
	}
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

// itemStep is the step that removes it, and whether it stays in the record:
// the keep policy (the opt-in flags) here, the removal itself in the package
// that made the item.
func itemStep(it record.Item, d Deps, c Choices) (plan.Step, bool) {
	h := d.Host
	switch it.Kind {
	case record.File:
		return record.UndoFileStep(h, it), false
	case record.SystemdUnit:
		return systemd.RemoveUnitStep(h, it), false
	case record.NginxSite:
		return nginx.RemoveStep(h, it), false
	case record.HelmRelease:
		return helm.UninstallStep(d.Helm, it.Namespace, it.Name, d.Timeout), false
	case record.CRDs:
		if !c.CRDs {
			return kept("CRDs of "+it.Namespace+"/"+it.Name, fmt.Sprintf("kept %s: --crds deletes them, and with them every object of their kinds in the cluster (every Probe, PrometheusRule, ServiceMonitor, ...)",
				strings.Join(it.Names, ", "))), true
		}
		return helm.RemoveCRDsStep(d.Kube, it.Namespace, it.Name, it.Names, timeoutOr(d.Timeout)), false
	case record.Secret:
		if !c.DeleteData {
			return kept("Secret "+it.Namespace+"/"+it.Name, "kept: it holds the Grafana admin password (--delete-data deletes it)"), true
		}
		return grafana.RemoveAdminSecretStep(d.Kube, it.Namespace, it.Name), false
	case record.ConfigSecret:
		return alertmanager.RemoveSecretStep(d.Kube, it.Namespace, it.Name), false
	case record.Namespace:
		if !c.DeleteData {
			return kept("namespace "+it.Name, "kept, with what is left in it, like Prometheus's and Grafana's volumes (--delete-data deletes it)"), true
		}
		return kube.DeleteStep(d.Kube, kube.Deletion{Name: "namespace " + it.Name,
			Refs: []kube.Ref{{GVK: kube.NamespaceKind, Name: it.Name}},
			Noun: "namespace", Consequence: " and everything left in it (Prometheus's and Grafana's volumes)"}), false
	case record.K3sLink:
		if !c.K3s {
			return kept(it.Path, "kept with k3s (--k3s removes both)"), true
		}
		return record.UndoFileStep(h, it), false
	case record.K3s:
		if !c.K3s {
			return kept("k3s", "kept k3s "+it.Version+" and the cluster it runs (--k3s removes it)"), true
		}
		return k3s.RemoveStep(h, it, c.DeleteData), false
	case record.AptPackage:
		if !c.Packages {
			return kept("apt package "+it.Name, "kept (--packages removes it)"), true
		}
		return apt.RemoveStep(h, it.Name), false
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

// timeoutOr is t, or 5 minutes for a plan built without one: deleted CRDs
// are always waited for, since their objects go with them.
func timeoutOr(t time.Duration) time.Duration {
	if t <= 0 {
		return 5 * time.Minute
	}
	return t
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
