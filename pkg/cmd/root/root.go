// Package root assembles the homelab command tree.
package root

import (
	"github.com/MakeNowJust/heredoc"
	"github.com/homelab-dev/homelab/pkg/cmd/alert"
	"github.com/spf13/cobra"

	bundlecmd "github.com/homelab-dev/homelab/pkg/cmd/bundle"
	"github.com/homelab-dev/homelab/pkg/cmd/deployapp"
	"github.com/homelab-dev/homelab/pkg/cmd/doctor"
	initcmd "github.com/homelab-dev/homelab/pkg/cmd/init"
	"github.com/homelab-dev/homelab/pkg/cmd/portforward"
	"github.com/homelab-dev/homelab/pkg/cmd/render"
	"github.com/homelab-dev/homelab/pkg/cmd/uninstall"
	"github.com/homelab-dev/homelab/pkg/cmd/version"
	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/host"
)

// NewCmdRoot returns `homelab` with every subcommand.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "homelab <command> [flags]",
		Short: "Turn a spare Ubuntu box into a monitored home server",
		Long: heredoc.Doc(`
			homelab installs k3s, kube-prometheus-stack and the blackbox exporter on a fresh
			Ubuntu server, serves Grafana at https://DOMAIN/grafana behind Nginx, deploys
			your web app from a freshly built image, and tells you what is broken.

			Configuration comes from --config, else ./homelab.yaml, else built-in defaults
			(see 'homelab render'); flags override single keys.
		`),
		Example: heredoc.Doc(`
			# Preview everything init would do on this machine, changing nothing
			$ homelab init --dry-run --domain blog.example.com

			# Write every managed file under ./out for review
			$ homelab render --root ./out

			# After building a new image of your app
			$ homelab deploy-app --image nextjs-app:latest
		`),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	addVersionFlag(cmd, f)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &cmdutil.FlagError{Err: err}
	})
	// --root is resolved once, before any command reads or writes: every
	// host path is then taken under one absolute directory, never the
	// machine's own "/" by accident.
	cmd.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		if !c.Flags().Changed("root") {
			return nil
		}
		root, err := host.ResolveRoot(f.Root)
		if err != nil {
			return &cmdutil.FlagError{Err: err}
		}
		f.Root = root
		return nil
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.ConfigPath, "config", "", "configuration file (default ./homelab.yaml if present, else built-in defaults)")
	pf.StringVar(&f.Root, "root", "", "take every host path under this directory instead of / (and run no commands)")
	pf.BoolVarP(&f.Verbose, "verbose", "v", false, "debug logs (Helm, containerd) on stderr")
	pf.BoolVar(&f.NoTUI, "no-tui", false, "plain progress lines instead of the interactive display (also off when not on a terminal or in CI)")
	pf.StringVar(&f.Kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default: k3s's /etc/rancher/k3s/k3s.yaml)")

	cmd.AddCommand(
		initcmd.NewCmdInit(f, nil),
		deployapp.NewCmdDeployApp(f, nil),
		doctor.NewCmdDoctor(f, nil),
		portforward.NewCmdPortForward(f, nil),
		render.NewCmdRender(f, nil),
		uninstall.NewCmdUninstall(f, nil),
		alert.NewCmdAlert(f, nil),
		version.NewCmdVersion(f),
		bundlecmd.NewCmdBundle(f, nil),
	)
	return cmd
}
