// Package deployapp is `homelab deploy-app`: ship a freshly built image, go
// back to an earlier build, or list the builds.
package deployapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/dashboard"
	"github.com/homelab-dev/homelab/pkg/deploy"
	"github.com/homelab-dev/homelab/pkg/helm"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/images"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// Options are deploy-app's inputs.
type Options struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Loaded, error)
	Kube   func() (*kube.Client, error)
	Helm   func() (*helm.Engine, error)
	Host   host.Host
	Log    *slog.Logger
	UseTUI bool

	Archive string
	// Rollback goes back to an earlier build: Revision, or the last one
	// that ran before the current build when Revision is 0.
	Rollback            bool
	Revision            int
	History             bool
	DryRun              bool
	Timeout             time.Duration
	ContainerdSocket    string
	ContainerdNamespace string
}

// NewCmdDeployApp builds the command; runF replaces deployRun in tests.
func NewCmdDeployApp(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams}
	var force bool
	cmd := &cobra.Command{
		Use:   "deploy-app [--image IMAGE | --archive FILE | --rollback [REVISION] | --history]",
		Short: "Import a new app image into k3s and roll it out, keeping the old one if it fails",
		Long: heredoc.Doc(`
			Import the app image into k3s's containerd (namespace k8s.io, unpacked and
			pinned against garbage collection) and roll it out as a new revision of the
			app's Helm release (homelab's own chart: Deployment, Service, blackbox Probe
			and alert rules). Every build gets its own tag (homelab-<digest>), so a
			reused tag like latest still rolls out and earlier builds stay available.

			If the new pods do not become Ready in time, the release goes back to the
			previous revision and the command fails with the reason (crash loop,
			OOMKilled, failing readiness probe, missing image) and the last lines of the
			container's log. The failed revision stays in the history, marked failed.

			--history lists the builds (revision, time, status, image digest);
			--rollback runs the previous working build again, or the one of REVISION.
			Builds that no revision in the history runs any more are removed from
			containerd after each deploy.

			The image is app.image (or --image, which sets it for this run) and comes
			from the local Docker daemon (docker save, streamed), or from an image
			archive (--archive: docker save output or an OCI layout tarball), whose
			builds are kept under app.image's name.
		`),
		Example: heredoc.Doc(`
			# Deploy the image you just built with docker (app.image in homelab.yaml)
			$ sudo homelab deploy-app

			# The same for another tag, for this deploy only (sets app.image)
			$ sudo homelab deploy-app --image nextjs-app:v2

			# Deploy from an image archive (docker save or OCI layout)
			$ sudo homelab deploy-app --archive ./nextjs-app.tar

			# See what would change, without importing or applying
			$ sudo homelab deploy-app --dry-run

			# List the builds, then go back to the previous one, or to revision 3
			$ sudo homelab deploy-app --history
			$ sudo homelab deploy-app --rollback
			$ sudo homelab deploy-app --rollback 3
		`),
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			if len(args) == 1 && opts.Rollback {
				return nil // the revision: --rollback 3
			}
			return cmdutil.FlagErrorf("unexpected argument %q: deploy-app takes no arguments except the revision after --rollback", args[0])
		},
	}
	flags := cmdutil.AddConfigFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&opts.Archive, "archive", "", "image archive to import instead of asking Docker (docker save or OCI layout tar)")
	fl.BoolVar(&opts.Rollback, "rollback", false, "run an earlier build again: the previous working one, or that of the REVISION given after the flag")
	fl.BoolVar(&opts.History, "history", false, "list the app's builds: revision, time, status, image and digest")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "show what would change in the cluster, change nothing")
	fl.BoolVar(&force, "force", false, "no effect: deploys are Helm upgrades, which take over hand-made changes to the chart's fields")
	_ = fl.MarkDeprecated("force", "deploys are Helm upgrades now and always take over hand-made changes to the app's objects")
	fl.DurationVar(&opts.Timeout, "timeout", 3*time.Minute, "how long the new pods may take to become Ready before rolling back")
	fl.StringVar(&opts.ContainerdSocket, "containerd-socket", images.DefaultSocket, "k3s's containerd socket")
	fl.StringVar(&opts.ContainerdNamespace, "containerd-namespace", images.DefaultNamespace, "containerd namespace the kubelet uses")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		// Every input is checked before anything is read or asked: the
		// archive before the cluster, the same in a dry run.
		if err := validate(opts, c.Flags()); err != nil {
			return err
		}
		if err := f.CheckKubeconfig(); err != nil {
			return err
		}
		if len(args) == 1 {
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return cmdutil.FlagErrorf("invalid revision %q after --rollback: a revision number from homelab deploy-app --history, like 3", args[0])
			}
			opts.Revision = n
		}
		opts.Config = func() (*config.Loaded, error) { return f.Config(flags) }
		opts.Kube, opts.Helm = f.Kube, f.Helm
		opts.Host, opts.Log = f.Host(), f.Logger()
		opts.UseTUI = f.UseTUI()
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
	if opts.History {
		return history(ctx, opts, cfg)
	}
	deps := deploy.Deps{Host: opts.Host, Kube: opts.Kube, Helm: opts.Helm, Timeout: opts.Timeout,
		Images: &images.Importer{Socket: opts.ContainerdSocket, Namespace: opts.ContainerdNamespace, Logger: opts.Log}}
	var p plan.Plan
	if opts.Rollback {
		p = deploy.RollbackPlan(cfg, deps, opts.Revision)
	} else {
		src, err := source(opts, cfg)
		if err != nil {
			return err
		}
		p = deploy.Plan(cfg, src, deps)
		if ds, ok := src.(images.DockerSource); ok {
			// The image is the first input: asked before the cluster.
			p.Needs = append([]plan.Need{dockerImageNeed(ds)}, p.Needs...)
		}
	}
	unlock, err := cmdutil.Lock(opts.Host, opts.DryRun)
	if err != nil {
		return err
	}
	defer unlock()
	res, err := cmdutil.RunPlan(ctx, opts.IO, opts.UseTUI, "homelab "+p.Name, opts.DryRun, p)
	if err != nil {
		return explain(err)
	}
	if opts.DryRun {
		fmt.Fprintln(opts.IO.Out, "nothing was changed (dry run)")
		return nil
	}
	return summary(ctx, opts, cfg, res)
}

// summary says what runs now.
func summary(ctx context.Context, opts *Options, cfg *config.Config, res plan.Result) error {
	e, err := opts.Helm()
	if err != nil {
		return err
	}
	hist, err := deploy.History(ctx, cfg, e)
	if err != nil || len(hist) == 0 {
		return err
	}
	cur := hist[0]
	switch {
	case !opts.Rollback && !slices.Contains(res.Changed, deploy.ReleaseStepName(cfg)), len(res.Changed) == 0:
		fmt.Fprintf(opts.IO.ErrOut, "%s already runs %s (revision %d); nothing changed\n", cfg.App.Name, cur.Build.Reference, cur.Number)
	case opts.Rollback:
		fmt.Fprintf(opts.IO.ErrOut, "rolled back: %s runs %s again as revision %d\n", cfg.App.Name, cur.Build.Reference, cur.Number)
	default:
		fmt.Fprintf(opts.IO.ErrOut, "deployed %s (%s) as revision %d of %s\n", cur.Build.Reference, cur.Build.Digest, cur.Number, cfg.App.Name)
	}
	fmt.Fprintf(opts.IO.ErrOut, "dashboard: %s\n", dashboard.URL(cfg.GrafanaURL(), cfg.App.Name))
	return nil
}

func history(ctx context.Context, opts *Options, cfg *config.Config) error {
	e, err := opts.Helm()
	if err != nil {
		return err
	}
	hist, err := deploy.History(ctx, cfg, e)
	if err != nil {
		return err
	}
	if len(hist) == 0 {
		fmt.Fprintf(opts.IO.ErrOut, "%s has not been deployed yet in namespace %s; run homelab deploy-app --image %s\n", cfg.App.Name, cfg.App.Namespace, cfg.App.Image)
		return nil
	}
	writeHistory(opts.IO.Out, hist)
	return nil
}

func writeHistory(w io.Writer, hist []deploy.Revision) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tDEPLOYED\tSTATUS\tIMAGE\tDIGEST\tDESCRIPTION")
	for _, h := range hist {
		digest := h.Build.Digest
		if len(digest) > 19 {
			digest = digest[:19] // sha256: and 12 hex digits
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", h.Number, h.Updated.UTC().Format(time.DateTime), h.Status, h.Build.Reference, digest, h.Description)
	}
	_ = tw.Flush()
}

func source(opts *Options, cfg *config.Config) (images.Source, error) {
	if opts.Archive != "" {
		return images.ArchiveSource{Path: opts.Archive}, nil
	}
	streamer, ok := opts.Host.(host.Streamer)
	if !ok {
		return nil, errors.New("this host cannot stream `docker save`; give the image as --archive FILE")
	}
	return images.DockerSource{Host: streamer, Image: cfg.App.Image}, nil
}

// dockerImageNeed asks the local Docker daemon whether it has the image,
// before anything else, so that a dry run knows as early as a real run that
// there is nothing to import.
func dockerImageNeed(ds images.DockerSource) plan.Need {
	return plan.Need{
		Name: "the image in the local Docker daemon",
		Check: func(ctx context.Context) error {
			rc, err := ds.Host.Stream(ctx, host.Cmd{Name: "docker", Args: []string{"image", "inspect", "--format", "{{.Id}}", ds.Image}})
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, io.LimitReader(rc, 1<<20))
			if cerr := rc.Close(); err == nil {
				err = cerr
			}
			return explain(err)
		},
	}
}

// explain turns a failed `docker save` or `docker image inspect` of a
// missing image into bad input.
func explain(err error) error {
	var cmdErr *host.CmdError
	if errors.As(err, &cmdErr) && cmdErr.Cmd.Name == "docker" && strings.Contains(strings.ToLower(string(cmdErr.Output)), "no such image") {
		image := cmdErr.Cmd.Args[len(cmdErr.Cmd.Args)-1]
		return cmdutil.FlagErrorf("image %s is not in the local Docker daemon (build it first, or pass --archive FILE): %v", image, err)
	}
	return err
}
