package systemd

import (
	"context"
	"fmt"
	"path"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/record"
)

// UnitWatch records the unit file the step it wraps (UnitStep) writes at p:
// created, or modified with its original kept (record.BeforeWrite).
func UnitWatch(h host.Host, p string) record.Watch {
	return record.PathWatch(h, record.Item{Kind: record.SystemdUnit, Path: p, Name: path.Base(p)})
}

// RemoveUnitStep takes back what UnitStep did, as the record item it left
// says: a unit homelab created is disabled, stopped and removed; a unit it
// modified gets its original back and is restarted if it runs.
func RemoveUnitStep(h host.Host, it record.Item) plan.Step {
	return plan.Step{
		Name: "systemd unit " + it.Name,
		Check: func(context.Context) (plan.Status, error) {
			st, err := record.CheckUndoFile(h, it)
			if st.Pending && !it.Modified {
				st.Summary = fmt.Sprintf("systemctl disable --now %s, remove %s, systemctl daemon-reload", it.Name, it.Path)
			} else if st.Pending {
				st.Summary += ", systemctl daemon-reload and try-restart " + it.Name
			}
			return st, err
		},
		Apply: func(ctx context.Context) error {
			if !it.Modified {
				if err := Systemctl(ctx, h, "disable", "--now", it.Name); err != nil {
					return err
				}
			}
			if err := record.UndoFile(h, it); err != nil {
				return err
			}
			if err := Systemctl(ctx, h, "daemon-reload"); err != nil {
				return err
			}
			if it.Modified {
				return Systemctl(ctx, h, "try-restart", it.Name)
			}
			return nil
		},
	}
}

// Systemctl runs systemctl with args on h.
func Systemctl(ctx context.Context, h host.Host, args ...string) error {
	_, err := h.Run(ctx, host.Cmd{Name: "systemctl", Args: args})
	return err
}
