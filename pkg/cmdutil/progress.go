package cmdutil

import (
	"context"

	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/tui"
)

// RunPlan runs p, showing progress live on a terminal (useTUI) or as plain
// lines on ErrOut. A dry run's plan is data: it always goes to Out, with diffs.
func RunPlan(ctx context.Context, ios *iostreams.IOStreams, useTUI bool, title string, dryRun bool, p plan.Plan) (plan.Result, error) {
	if dryRun {
		return plan.Runner{DryRun: true, OnEvent: plan.TextReport{W: ios.Out, ShowDiffs: true}.Event}.Run(ctx, p)
	}
	if !useTUI {
		return plan.Runner{OnEvent: plan.TextReport{W: ios.ErrOut}.Event}.Run(ctx, p)
	}
	var res plan.Result
	err := tui.Run(ctx, ios.In, ios.ErrOut, title, func(ctx context.Context, on func(plan.Event)) error {
		var err error
		res, err = plan.Runner{OnEvent: on}.Run(ctx, p)
		return err
	}, tui.WithColor(ios.ColorEnabled()))
	return res, err
}
