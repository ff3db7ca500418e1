package k3s

import (
	"context"
	"strings"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/record"
	"github.com/homelab-dev/homelab/pkg/systemd"
)

// DataDirs are what k3s keeps besides its binary and unit: the cluster's
// state, images and volumes, and its configuration and kubeconfig.
var DataDirs = []string{"/var/lib/rancher/k3s", "/etc/rancher/k3s"}

// RemoveStep stops and removes the k3s the record item it (of kind
// record.K3s) says homelab installed; with deleteData its state too.
// rm --one-file-system never descends into the mounts of containers that
// still run.
func RemoveStep(h host.Host, it record.Item, deleteData bool) plan.Step {
	return plan.Step{
		Name:  "k3s",
		Check: func(context.Context) (plan.Status, error) { return checkRemove(h, it, deleteData) },
		Apply: func(ctx context.Context) error { return remove(ctx, h, it, deleteData) },
	}
}

func checkRemove(h host.Host, it record.Item, deleteData bool) (plan.Status, error) {
	var todo []string
	unit, err := record.Exists(h, it.Unit)
	if err != nil {
		return plan.Status{}, err
	}
	if unit {
		todo = append(todo, "systemctl disable --now k3s, remove "+it.Unit+", systemctl daemon-reload")
	}
	if ok, err := record.Exists(h, it.Path); err != nil {
		return plan.Status{}, err
	} else if ok {
		todo = append(todo, "remove "+it.Path)
	}
	if deleteData {
		for _, dir := range DataDirs {
			if ok, err := record.Exists(h, dir); err != nil {
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

func remove(ctx context.Context, h host.Host, it record.Item, deleteData bool) error {
	systemctl := func(args ...string) error { return systemd.Systemctl(ctx, h, args...) }
	if ok, err := record.Exists(h, it.Unit); err != nil {
		return err
	} else if ok {
		if err := systemctl("disable", "--now", "k3s"); err != nil {
			return err
		}
		if err := h.Remove(it.Unit); err != nil {
			return err
		}
		if err := systemctl("daemon-reload"); err != nil {
			return err
		}
	}
	if err := h.Remove(it.Path); err != nil {
		return err
	}
	if deleteData {
		args := append([]string{"-rf", "--one-file-system"}, DataDirs...)
		if _, err := h.Run(ctx, host.Cmd{Name: "rm", Args: args}); err != nil {
			return err
		}
	}
	return nil
}
