package portforward

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// WorkingStep waits until the forwarder run by the systemd unit at unitPath
// forwards: it says so in its status line ("forwarding ADDR to pod ..."),
// which systemd keeps. The unit is Type=exec so that it never holds up boot;
// this step is where init waits for the forward instead.
func WorkingStep(h host.Host, unitPath string, timeout time.Duration) plan.Step {
	unit := path.Base(unitPath)
	status := func(ctx context.Context) string {
		out, err := h.Run(ctx, host.Cmd{Name: "systemctl", Args: []string{"show", "--value", "-p", "StatusText", unit}})
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	return plan.Step{
		Name: "Grafana forward works",
		Check: func(ctx context.Context) (plan.Status, error) {
			st := status(ctx)
			if strings.HasPrefix(st, "forwarding ") {
				return plan.Status{Summary: st}, nil
			}
			if st == "" {
				st = "no status yet"
			}
			return plan.Status{Pending: true, Summary: fmt.Sprintf("wait until %s forwards to Grafana (now: %s)", unit, st)}, nil
		},
		Apply: func(ctx context.Context) error {
			if timeout <= 0 {
				timeout = 5 * time.Minute
			}
			deadline := time.Now().Add(timeout)
			last := ""
			for {
				st := status(ctx)
				if strings.HasPrefix(st, "forwarding ") {
					return nil
				}
				if st != last && st != "" {
					plan.Report(ctx, st)
					last = st
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("%s does not forward to Grafana after %s (its status: %q)\nsee: journalctl -u %s -n 50", unit, timeout, st, unit)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Second):
				}
			}
		},
	}
}
