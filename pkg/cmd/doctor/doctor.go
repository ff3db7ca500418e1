// Package doctor is `homelab doctor`: what is broken, and the fix.
package doctor

import (
	"context"
	"errors"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
)

// Options are doctor's inputs.
type Options struct {
	Config func() (*config.Loaded, error)
	Output string
}

// NewCmdDoctor builds the command; runF replaces doctorRun in tests.
func NewCmdDoctor(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Find what is wrong with the server and print the command that fixes it",
		Long: heredoc.Doc(`
			Check the host, k3s, the monitoring stack, the app, Grafana, Nginx and TLS, and
			for every warning or failure print the exact command or configuration change
			that fixes it. Exit status: 0 nothing failed, 3 something failed, 1 doctor
			itself could not run.
		`),
		Example: heredoc.Doc(`
			$ homelab doctor
			$ homelab doctor -o json | jq '.checks[] | select(.status != "ok")'
		`),
		Args: cobra.NoArgs,
	}
	flags := cmdutil.AddConfigFlags(cmd)
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if opts.Output != "text" && opts.Output != "json" {
			return cmdutil.FlagErrorf("invalid value %q for --output: one of text, json", opts.Output)
		}
		opts.Config = func() (*config.Loaded, error) { return f.Config(flags.Overrides()) }
		if runF != nil {
			return runF(c.Context(), opts)
		}
		return doctorRun(c.Context(), opts)
	}
	return cmd
}

func doctorRun(ctx context.Context, opts *Options) error {
	if _, err := opts.Config(); err != nil {
		return err
	}
	return errors.New("doctor: checks are not available in this build yet")
}
