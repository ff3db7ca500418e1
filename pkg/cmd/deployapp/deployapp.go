// Package deployapp is `homelab deploy-app`: ship a freshly built image.
package deployapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/deploy"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/images"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/render"
)

// Options are deploy-app's inputs.
type Options struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Loaded, error)
	Kube   func() (*kube.Client, error)
	Host   host.Host
	Log    *slog.Logger

	Image               string
	Archive             string
	Rollback            bool
	DryRun              bool
	Force               bool
	Timeout             time.Duration
	ContainerdSocket    string
	ContainerdNamespace string
}

// NewCmdDeployApp builds the command; runF replaces deployRun in tests.
func NewCmdDeployApp(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "deploy-app",
		Short: "Import a new app image into k3s and roll it out, keeping the old one if it fails",
		Long: heredoc.Doc(`
			Import the app image into k3s's containerd (namespace k8s.io, unpacked and
			pinned against garbage collection), apply the app's Deployment, Service and
			Probe, and wait until the new pods are Ready. Every build gets its own tag
			(homelab-<digest>), so a reused tag like latest still rolls out and older
			builds stay available.

			If the new pods do not become Ready in time, the previous build is put back
			and the command fails with the reason (crash loop, OOMKilled, failing
			readiness probe, missing image) and the last lines of the container's log.

			The image comes from the local Docker daemon (docker save, streamed), or
			from an image archive: docker save output or an OCI layout tarball.
		`),
		Example: heredoc.Doc(`
			# Deploy the image you just built with docker (config app.image by default)
			$ homelab deploy-app --image nextjs-app:latest

			# Deploy from an image archive (docker save or OCI layout)
			$ homelab deploy-app --archive ./nextjs-app.tar

			# See what would change in the cluster, without importing or applying
			$ homelab deploy-app --dry-run

			# Go back to the previous build
			$ homelab deploy-app --rollback
		`),
		Args: cobra.NoArgs,
	}
	flags := cmdutil.AddConfigFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&opts.Image, "image", "", "image in the local Docker daemon (default: config app.image)")
	fl.StringVar(&opts.Archive, "archive", "", "image archive to import instead of asking Docker (docker save or OCI layout tar)")
	fl.BoolVar(&opts.Rollback, "rollback", false, "return to the previous build")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "show what would change in the cluster, change nothing")
	fl.BoolVar(&opts.Force, "force", false, "take over fields changed by hand with kubectl")
	fl.DurationVar(&opts.Timeout, "timeout", 3*time.Minute, "how long the new pods may take to become Ready before rolling back")
	fl.StringVar(&opts.ContainerdSocket, "containerd-socket", images.DefaultSocket, "k3s's containerd socket")
	fl.StringVar(&opts.ContainerdNamespace, "containerd-namespace", images.DefaultNamespace, "containerd namespace the kubelet uses")
	cmd.MarkFlagsMutuallyExclusive("image", "archive", "rollback")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if opts.Timeout <= 0 {
			return cmdutil.FlagErrorf("invalid value %s for --timeout: a positive duration like 3m", opts.Timeout)
		}
		opts.Config = func() (*config.Loaded, error) { return f.Config(flags.Overrides()) }
		opts.Kube = f.Kube
		opts.Host = f.Host()
		opts.Log = f.Logger()
		if runF != nil {
			return runF(c.Context(), opts)
		}
		return deployRun(c.Context(), opts)
	}
	return cmd
}

func deployRun(ctx context.Context, opts *Options) error {
	loaded, err := opts.Config()
	if err != nil {
		return err
	}
	cmdutil.SayConfig(opts.IO.ErrOut, loaded)
	cfg := loaded.Config
	src, err := source(opts, cfg)
	if err != nil {
		return err
	}
	client, err := opts.Kube()
	if err != nil {
		return err
	}
	r, err := render.New()
	if err != nil {
		return err
	}
	d := &deploy.Deployer{
		Config: cfg, Kube: client, Renderer: r, Timeout: opts.Timeout, Force: opts.Force,
		Images:   &images.Importer{Socket: opts.ContainerdSocket, Namespace: opts.ContainerdNamespace, Logger: opts.Log},
		Progress: func(s string) { fmt.Fprintf(opts.IO.ErrOut, "  %s\n", s) },
	}
	unlock, err := cmdutil.Lock(opts.Host, opts.DryRun)
	if err != nil {
		return err
	}
	defer unlock()
	switch {
	case opts.DryRun:
		return preview(ctx, opts, d, src)
	case opts.Rollback:
		fmt.Fprintf(opts.IO.ErrOut, "rolling %s back to its previous build\n", cfg.App.DeploymentName())
		res, err := d.Rollback(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(opts.IO.ErrOut, "rolled back: %s runs %s (revision %d)\n", cfg.App.DeploymentName(), res.Image, res.Revision)
		return nil
	}
	fmt.Fprintf(opts.IO.ErrOut, "importing %s into containerd (%s)\n", src.Name(), opts.ContainerdSocket)
	res, err := d.Deploy(ctx, src)
	if err != nil {
		return explain(err)
	}
	if !res.Changed {
		fmt.Fprintf(opts.IO.ErrOut, "%s already runs %s; nothing changed\n", cfg.App.DeploymentName(), res.Image)
		return nil
	}
	fmt.Fprintf(opts.IO.ErrOut, "deployed %s (%s) as revision %d of %s\n", res.Image, res.Digest, res.Revision, cfg.App.DeploymentName())
	return nil
}

func source(opts *Options, cfg *config.Config) (images.Source, error) {
	if opts.Rollback {
		return nil, nil
	}
	if opts.Archive != "" {
		return images.ArchiveSource{Path: opts.Archive}, nil
	}
	image := opts.Image
	if image == "" {
		image = cfg.App.Image
	}
	streamer, ok := opts.Host.(host.Streamer)
	if !ok {
		return nil, errors.New("this host cannot stream `docker save`; give the image as --archive FILE")
	}
	return images.DockerSource{Host: streamer, Image: image}, nil
}

func preview(ctx context.Context, opts *Options, d *deploy.Deployer, src images.Source) error {
	out := opts.IO.Out
	if src != nil {
		fmt.Fprintf(out, "would import %s into containerd as a new build of %s\n", src.Name(), d.Config.App.Image)
	}
	diffs, err := d.Preview(ctx)
	if err != nil {
		return err
	}
	for _, df := range diffs {
		switch {
		case df.Created:
			fmt.Fprintf(out, "would create %s\n", df.Ref)
		case strings.TrimSpace(df.Text) == "":
			fmt.Fprintf(out, "%s: no change\n", df.Ref)
		default:
			fmt.Fprintf(out, "would change %s:\n%s", df.Ref, df.Text)
		}
	}
	fmt.Fprintln(out, "nothing was changed (dry run)")
	return nil
}

// explain turns a failed `docker save` of a missing image into bad input.
func explain(err error) error {
	var cmdErr *host.CmdError
	if errors.As(err, &cmdErr) && cmdErr.Cmd.Name == "docker" && strings.Contains(strings.ToLower(string(cmdErr.Output)), "no such image") {
		return cmdutil.FlagErrorf("image %s is not in the local Docker daemon (build it first, or pass --archive FILE): %v",
			strings.Join(cmdErr.Cmd.Args[1:], " "), err)
	}
	return err
}
