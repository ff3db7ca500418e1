// Package deployapp is `homelab deploy-app`: ship a freshly built image.
package deployapp

import (
	"context"
	"errors"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
)

// Options are deploy-app's inputs.
type Options struct {
	Config   func() (*config.Loaded, error)
	Image    string
	Archive  string
	Rollback bool
	DryRun   bool
}

// NewCmdDeployApp builds the command; runF replaces deployRun in tests.
func NewCmdDeployApp(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "deploy-app",
		Short: "Import a new app image into k3s and roll it out, keeping the old one if it fails",
		Long: heredoc.Doc(`
			Import the app image into k3s's containerd (namespace k8s.io, pinned against
			garbage collection), apply the app's Deployment, Service and Probe, and wait
			for the rollout. If the new pods do not become Ready, roll back and say why.
		`),
		Example: heredoc.Doc(`
			# Deploy the image you just built with docker
			$ homelab deploy-app --image nextjs-app:latest

			# Deploy from an image archive (docker save or OCI layout)
			$ homelab deploy-app --archive ./nextjs-app.tar

			# Go back to the previous image
			$ homelab deploy-app --rollback
		`),
		Args: cobra.NoArgs,
	}
	flags := cmdutil.AddConfigFlags(cmd)
	cmd.Flags().StringVar(&opts.Image, "image", "", "image reference in the local Docker daemon (default: config app.image)")
	cmd.Flags().StringVar(&opts.Archive, "archive", "", "image archive to import instead of asking Docker")
	cmd.Flags().BoolVar(&opts.Rollback, "rollback", false, "return to the previous image")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "show what would change, change nothing")
	cmd.MarkFlagsMutuallyExclusive("image", "archive", "rollback")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		opts.Config = func() (*config.Loaded, error) { return f.Config(flags.Overrides()) }
		if runF != nil {
			return runF(c.Context(), opts)
		}
		return deployRun(c.Context(), opts)
	}
	return cmd
}

func deployRun(ctx context.Context, opts *Options) error {
	if _, err := opts.Config(); err != nil {
		return err
	}
	return errors.New("deploy-app: importing and rolling out images is not available in this build yet; 'homelab render' shows the manifests it will apply")
}
