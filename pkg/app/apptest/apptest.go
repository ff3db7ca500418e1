// Package apptest runs homelab's whole command tree in-process, as a user
// types it (app.RunWith: flags, configuration, exit codes), on a factory a
// test may adjust first, and returns what it printed. It is the one harness
// the command tests share.
package apptest

import (
	"context"

	"github.com/homelab-dev/homelab/pkg/app"
	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/iostreams"
)

// Run runs `homelab ARGS...`; setup, when not nil, adjusts the factory
// before the command tree is built (the host to act on, a clock, ...).
func Run(ctx context.Context, setup func(*cmdutil.Factory), args ...string) (code int, stdout, stderr string) {
	ios, _, out, errOut := iostreams.Test()
	f := cmdutil.New(ios, "test")
	if setup != nil {
		setup(f)
	}
	code = app.RunWith(ctx, args, f)
	return code, out.String(), errOut.String()
}

// OnHost is a setup that makes the command act on h.
func OnHost(h host.Host) func(*cmdutil.Factory) {
	return func(f *cmdutil.Factory) { f.Host = func() host.Host { return h } }
}
