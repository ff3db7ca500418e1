package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/helm"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// RolloutFailed is a build that did not become Ready. The release went back
// to the previous revision when there was one (Failed.RolledBackTo).
type RolloutFailed struct {
	Rollout *kube.RolloutError
	// Logs are the last lines of the failing container's log.
	Logs string
	Err  error
}

func (e *RolloutFailed) Error() string { return "the new build did not become ready: " + e.Err.Error() }
func (e *RolloutFailed) Unwrap() error { return e.Err }

// rollout is the app release's Verify: the Deployment rolled out, or the
// reason it did not with the failing container's last log lines, read
// before the rollback replaces the pod.
func rollout(cfg *config.Config, d Deps) func(context.Context) error {
	return func(ctx context.Context) error {
		client, err := d.Kube()
		if err != nil {
			return err
		}
		app := cfg.App
		werr := client.WaitRolloutWith(ctx, app.Namespace, app.DeploymentName(), kube.RolloutOptions{
			Timeout: d.Timeout, Progress: func(s string) { plan.Report(ctx, s) },
			// Three crashes make a crash loop: roll back at once instead
			// of waiting out the timeout.
			FailAfterRestarts: 2,
			// Done when the old build no longer gets requests, not when
			// it is merely told to stop.
			Service: app.ServiceName,
		})
		if werr == nil {
			return nil
		}
		failed := &RolloutFailed{Err: werr}
		if errors.As(werr, &failed.Rollout) && ctx.Err() == nil {
			failed.Logs = client.PodLogs(ctx, app.Namespace, failed.Rollout.Pod, 20)
		}
		return failed
	}
}

// Error is a failed deploy as the user reads it: why the build failed, what
// runs now, and the failing container's last log lines.
type Error struct {
	Failed  *helm.Failed
	Rollout *RolloutFailed
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Failed.Err.Error())
	switch {
	case e.Failed.RollbackErr != nil:
		fmt.Fprintf(&b, "\nrolling back failed too: %v", e.Failed.RollbackErr)
	case e.Failed.RolledBackTo > 0:
		fmt.Fprintf(&b, "\nrolled back: the build of revision %d runs again (revision %d is marked failed; see homelab deploy-app --history)",
			e.Failed.RolledBackTo, e.Failed.Revision)
	default:
		b.WriteString("\nno earlier build to roll back to")
	}
	if e.Rollout != nil && e.Rollout.Logs != "" {
		fmt.Fprintf(&b, "\nlast log lines of the failing container:\n%s", indent(e.Rollout.Logs))
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Failed }

// explainFailure turns a failed verified release into an Error.
func explainFailure(err error) error {
	var failed *helm.Failed
	if !errors.As(err, &failed) {
		return err
	}
	out := &Error{Failed: failed}
	errors.As(failed.Err, &out.Rollout)
	return out
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = "  | " + lines[i]
	}
	return strings.Join(lines, "\n")
}
