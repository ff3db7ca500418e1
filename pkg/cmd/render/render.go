// Package render is `homelab render`: every file init and deploy-app would
// write, written under --root or printed, with nothing run.
package render

import (
	"context"
	"fmt"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/deploy"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/plan"
	renderpkg "github.com/homelab-dev/homelab/pkg/render"
)

// Options are render's inputs.
type Options struct {
	IO     *iostreams.IOStreams
	Root   string
	Host   host.Host
	Config func() (*config.Loaded, error)
}

// NewCmdRender builds the command; runF replaces renderRun in tests.
func NewCmdRender(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Write every file homelab manages under a directory, or print them",
		Long: heredoc.Doc(`
			Render, from the configuration, every file that init and deploy-app write on a
			host: the Nginx site (and its sites-enabled link), the Grafana port-forward
			systemd unit, the app's Kubernetes manifests, the Helm values of both charts,
			and the effective configuration. Nothing is run and no cluster is touched.

			With --root DIR the files are written under DIR at their host paths
			(DIR/etc/nginx/sites-available/homelab.conf, ...), holding homelab's lock
			(DIR/var/lib/homelab/lock) as init does: a second render or an init on the
			same DIR at the same time is refused. Without --root they are printed to
			standard output, each after a "# ==> PATH" line.
		`),
		Example: heredoc.Doc(`
			# See what the defaults produce
			$ homelab render

			# Write the files for your domain under ./out for review
			$ homelab render --root ./out --domain blog.example.com --image blog:1.4

			# Any other key with --set (the value is YAML, as in homelab.yaml)
			$ homelab render --set app.replicas=2 --set 'app.command=[pnpm, start]'
		`),
		Args: cobra.NoArgs,
	}
	flags := cmdutil.AddConfigFlags(cmd)
	cmd.RunE = func(c *cobra.Command, args []string) error {
		opts.Root = f.Root
		opts.Host = f.Host()
		opts.Config = func() (*config.Loaded, error) { return f.Config(flags) }
		if runF != nil {
			return runF(c.Context(), opts)
		}
		return renderRun(c.Context(), opts)
	}
	return cmd
}

func renderRun(ctx context.Context, opts *Options) error {
	loaded, err := opts.Config()
	if err != nil {
		return err
	}
	cmdutil.SayConfig(opts.IO.ErrOut, loaded)
	r, err := renderpkg.New()
	if err != nil {
		return err
	}
	files, err := r.All(loaded.Config)
	if err != nil {
		return err
	}
	// What deploy-app applies: the app chart with the configured image (a
	// deploy runs a per-build tag of it instead).
	app, err := deploy.Manifests(loaded.Config, deploy.Build{Reference: loaded.Config.App.Image})
	if err != nil {
		return err
	}
	files = append(files, renderpkg.File{Path: layout.AppManifests, Mode: 0o644, Data: app})
	if opts.Root == "" {
		// A failed write is caught once for every command (pkg/app); stop
		// at the first one all the same.
		for _, f := range files {
			var err error
			if f.Link != "" {
				_, err = fmt.Fprintf(opts.IO.Out, "# ==> %s -> %s\n", f.Path, f.Link)
			} else {
				_, err = fmt.Fprintf(opts.IO.Out, "# ==> %s\n%s", f.Path, f.Data)
			}
			if err != nil {
				return fmt.Errorf("print %s: %w", f.Path, err)
			}
		}
		return nil
	}
	// Writing under --root is writing to a machine: one writer at a time,
	// or two renders (or a render and an init) leave a tree that is part
	// one configuration and part the other.
	unlock, err := cmdutil.Lock(opts.Host, false)
	if err != nil {
		return err
	}
	defer unlock()
	p := plan.Plan{Name: "render"}
	for _, f := range files {
		if f.Link != "" {
			p.Steps = append(p.Steps, plan.Symlink(opts.Host, f.Link, f.Path))
		} else {
			p.Steps = append(p.Steps, plan.WriteFile(opts.Host, f.Path, f.Data, f.Mode))
		}
	}
	res, err := plan.Runner{OnEvent: plan.TextReport{W: opts.IO.ErrOut}.Event}.Run(ctx, p)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.ErrOut, "rendered under %s: %d changed, %d up to date\n", opts.Root, len(res.Changed), len(res.UpToDate))
	return nil
}
