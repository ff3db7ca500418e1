// Package systemd installs a unit file and keeps the unit enabled and running,
// through `systemctl` on the host seam; UnitWatch records the unit and
// RemoveUnitStep takes it back on uninstall.
package systemd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/aymanbagabas/go-udiff"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// UnitStep writes the unit at unitPath and makes it enabled and active; a
// changed unit is reloaded and restarted.
func UnitStep(name string, h host.Host, unitPath string, data []byte) plan.Step {
	unit := path.Base(unitPath)
	return plan.Step{
		Name: name,
		Check: func(ctx context.Context) (plan.Status, error) {
			have, err := h.ReadFile(unitPath)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return plan.Status{}, err
			}
			if !bytes.Equal(have, data) {
				from := unitPath
				if have == nil {
					from = "/dev/null"
				}
				return plan.Status{Pending: true, Summary: fmt.Sprintf("write %s, systemctl daemon-reload, enable and (re)start %s", unitPath, unit),
					Diff: udiff.Unified(from, unitPath, string(have), string(data))}, nil
			}
			enabled := state(ctx, h, "is-enabled", unit)
			active := state(ctx, h, "is-active", unit)
			if enabled != "enabled" || active != "active" {
				return plan.Status{Pending: true, Summary: fmt.Sprintf("systemctl enable --now %s (now %s, %s)", unit, enabled, active)}, nil
			}
			return plan.Status{Summary: unit + " is enabled and active"}, nil
		},
		Apply: func(ctx context.Context) error {
			res, err := h.WriteFile(unitPath, data, 0o644)
			if err != nil {
				return err
			}
			for _, args := range [][]string{{"daemon-reload"}, {"enable", unit}} {
				if _, err := h.Run(ctx, host.Cmd{Name: "systemctl", Args: args}); err != nil {
					return err
				}
			}
			verb := "start"
			if res.Changed {
				verb = "restart" // pick up the new unit
			}
			if _, err := h.Run(ctx, host.Cmd{Name: "systemctl", Args: []string{verb, unit}}); err != nil {
				return fmt.Errorf("%w\nsee: journalctl -u %s -n 50", err, unit)
			}
			return nil
		},
	}
}

// state asks systemctl is-enabled/is-active; their exit status is non-zero
// for "disabled"/"inactive", which is an answer, not an error.
func state(ctx context.Context, h host.Host, verb, unit string) string {
	out, _ := h.Run(ctx, host.Cmd{Name: "systemctl", Args: []string{verb, unit}})
	s := strings.TrimSpace(string(out))
	if s == "" {
		return "unknown"
	}
	return strings.Fields(s)[0]
}
