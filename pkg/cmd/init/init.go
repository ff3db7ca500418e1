// Package init is `homelab init`: a fresh Ubuntu box to a monitored server.
package init

import (
	"context"
	"fmt"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/render"
)

// Options are init's inputs.
type Options struct {
	IO     *iostreams.IOStreams
	Host   host.Host
	Config func() (*config.Loaded, error)
	DryRun bool
}

// NewCmdInit builds the command; runF replaces initRun in tests.
func NewCmdInit(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Install k3s, monitoring, Grafana and Nginx on this server",
		Long: heredoc.Doc(`
			Turn this Ubuntu server into a monitored one: install Nginx and k3s (without
			Traefik and servicelb, which would take ports 80/443), Helm-install
			kube-prometheus-stack and the blackbox exporter with a small-box profile, keep
			Grafana reachable on 127.0.0.1 with a systemd port-forward unit, and write the
			Nginx site that serves the app at / and Grafana at /grafana/.

			Every step checks first and does only what is missing, so init is safe to run
			again. --dry-run shows each step and, for files, the diff against what is on
			the machine now, and changes nothing.
		`),
		Example: heredoc.Doc(`
			# Preview the whole job on the built-in defaults
			$ homelab init --dry-run

			# Preview with your domain and Let's Encrypt
			$ homelab init --dry-run --domain blog.example.com --tls-mode certbot --email you@example.com

			# Preview against a directory instead of /
			$ homelab init --dry-run --root ./sandbox
		`),
		Args: cobra.NoArgs,
	}
	flags := cmdutil.AddConfigFlags(cmd)
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "show what would change, change nothing")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		opts.Host = f.Host()
		opts.Config = func() (*config.Loaded, error) { return f.Config(flags.Overrides()) }
		if runF != nil {
			return runF(c.Context(), opts)
		}
		return initRun(c.Context(), opts)
	}
	return cmd
}

func initRun(ctx context.Context, opts *Options) error {
	loaded, err := opts.Config()
	if err != nil {
		return err
	}
	r, err := render.New()
	if err != nil {
		return err
	}
	p, err := Plan(loaded.Config, r, opts.Host)
	if err != nil {
		return err
	}
	out := opts.IO.ErrOut
	if opts.DryRun {
		// The plan is the data a dry run produces: stdout.
		out = opts.IO.Out
		src := "built-in defaults"
		if loaded.Source != "" {
			src = loaded.Source
		}
		fmt.Fprintf(out, "homelab init --dry-run (configuration: %s)\n", src)
	}
	res, err := plan.Runner{DryRun: opts.DryRun, OnEvent: plan.TextReport{W: out, ShowDiffs: opts.DryRun}.Event}.Run(ctx, p)
	if err != nil {
		return err
	}
	if opts.DryRun {
		fmt.Fprintf(out, "\n%d of %d steps would change; nothing was changed.\n", len(res.Pending), len(p.Steps))
		return nil
	}
	if len(res.Changed) == 0 {
		fmt.Fprintln(out, "Everything is up to date; nothing changed.")
	}
	return nil
}
