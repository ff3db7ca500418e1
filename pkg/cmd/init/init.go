// Package init is `homelab init`: a fresh Ubuntu box to a monitored server.
package init

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/dashboard"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/render"
	"github.com/homelab-dev/homelab/pkg/selfinstall"
	"github.com/homelab-dev/homelab/pkg/wizard"
)

// Options are init's inputs.
type Options struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Loaded, error)
	Deps   Deps
	DryRun bool
	// UseTUI shows live progress on a terminal.
	UseTUI bool
	// Bundle is an offline bundle from `homelab bundle` (--bundle).
	Bundle string
	// BundleTempDir is where the bundle is extracted: beside it on the
	// machine, homelab's state directory under --root (nothing is written
	// outside the root).
	BundleTempDir string
	// Wizard asks for a first configuration on a terminal; nil never asks.
	Wizard Wizard
	// ConfigPath makes Config read this file, as --config would.
	ConfigPath func(string)
	// notices holds the one-time password while the live display runs.
	notices *heldNotices
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

			init installs this homelab binary at /usr/local/bin/homelab (the Grafana unit
			runs it) and links kubectl, crictl and ctr to k3s where none exist. The applied
			configuration is kept in /etc/homelab/homelab.yaml; later commands use it unless
			--config or ./homelab.yaml is given. A real run refuses the placeholder domain
			homelab.example.com.

			On a terminal with no configuration at all (no --config, no ./homelab.yaml,
			nothing applied), init first asks a few questions: domain, HTTPS, the app, where
			alerts go. It shows the homelab.yaml they make, writes it to the current
			directory and goes on with it; Esc goes back, Ctrl-C leaves with nothing
			written. Never in a pipe, in CI, with --no-tui or TERM=dumb: there the flags
			and the configuration file must say everything.

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

			# Set up this server for real (a real run needs your domain and root)
			$ sudo homelab init --domain blog.example.com --tls-mode certbot --email you@example.com

			# Later runs reuse what was applied (/etc/homelab/homelab.yaml)
			$ sudo homelab init
		`),
		Args: cobra.NoArgs,
	}
	flags := cmdutil.AddConfigFlags(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&opts.DryRun, "dry-run", false, "show what would change, change nothing")
	fl.StringVar(&opts.Deps.K3s.BinaryFile, "k3s-binary", "", "offline: a local k3s binary instead of downloading it (verified with --k3s-sha256 or --k3s-sums)")
	fl.StringVar(&opts.Deps.K3s.ImagesFile, "k3s-images", "", "offline: a local k3s airgap image tarball")
	fl.StringVar(&opts.Deps.K3s.SumsFile, "k3s-sums", "", "offline: a local copy of the release's sha256sum-<arch>.txt")
	fl.StringVar(&opts.Deps.K3s.PinnedSHA256, "k3s-sha256", "", "pinned sha256 of the k3s binary, instead of the release's checksum list")
	fl.StringVar(&opts.Deps.K3s.BaseURL, "k3s-base-url", "", "k3s release download URL (a mirror with the GitHub release layout)")
	fl.StringVar(&opts.Deps.StackChart, "stack-chart", "", "offline: a local kube-prometheus-stack chart archive (.tgz)")
	fl.StringVar(&opts.Deps.BlackboxChart, "blackbox-chart", "", "offline: a local prometheus-blackbox-exporter chart archive (.tgz)")
	fl.StringVar(&opts.Bundle, "bundle", "", "offline: install from a bundle made by 'homelab bundle' (k3s, charts and every image; verified first)")
	fl.DurationVar(&opts.Deps.Timeout, "timeout", 10*time.Minute, "how long to wait for the node and for each chart's pods to be ready")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		// The flags are checked before anything is read or changed, and
		// the same in a dry run (exit 2 naming the flag).
		if err := validate(opts, c.Flags()); err != nil {
			return err
		}
		if err := f.CheckKubeconfig(); err != nil {
			return err
		}
		opts.UseTUI = f.UseTUI()
		opts.Deps.Host = f.Host()
		opts.Deps.Kube, opts.Deps.Helm = f.Kube, f.Helm
		opts.Deps.K3s.HTTP = f.HTTP
		if opts.Deps.IsRoot == nil {
			opts.Deps.IsRoot = f.IsRoot
		}
		opts.notices = &heldNotices{w: opts.IO.ErrOut}
		opts.Deps.ShowPassword = showPasswordOnce(opts.IO, opts.notices)
		opts.Deps.DryRun = opts.DryRun
		exe, err := f.Executable()
		if err != nil {
			return fmt.Errorf("find the running homelab binary (init installs it for its units): %w", err)
		}
		opts.Deps.Self = selfinstall.Self{Executable: exe, Version: f.Version, OnRealRoot: f.OnRealRoot()}
		if !f.OnRealRoot() {
			if opts.BundleTempDir, err = f.HostPath(layout.StateDir); err != nil {
				return err
			}
		}
		opts.Config = func() (*config.Loaded, error) { return f.Config(flags) }
		opts.ConfigPath = func(p string) { f.ConfigPath = p }
		if opts.UseTUI {
			opts.Wizard = func(ctx context.Context, base *config.Config) (wizard.Result, error) {
				return wizard.Run(ctx, wizard.Options{In: opts.IO.In, Out: opts.IO.ErrOut, Base: base,
					DNS: wizard.SystemDNS(), Path: wizardFile})
			}
		}
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
	loaded, done, err := firstRun(ctx, opts, loaded)
	if done || err != nil {
		return err
	}
	if err := realDomain(loaded, opts.DryRun); err != nil {
		return err
	}
	// What the flags and the configuration name is read and verified
	// before the first step, as a real run would: a preview that never
	// looked at the k3s binary must not say it would install it.
	if err := checkInputs(ctx, opts, loaded); err != nil {
		return err
	}
	b, err := useBundle(opts, loaded.Config)
	if err != nil {
		return err
	}
	defer b.Close()
	r, err := render.New()
	if err != nil {
		return err
	}
	p, err := b.plan(loaded.Config, r, opts.Deps)
	if err != nil {
		return err
	}
	unlock, err := cmdutil.Lock(opts.Deps.Host, opts.DryRun)
	if err != nil {
		return err
	}
	defer unlock()
	out := opts.IO.ErrOut
	if opts.DryRun {
		// The plan is the data a dry run produces: stdout.
		out = opts.IO.Out
		fmt.Fprintf(out, "homelab init --dry-run (configuration: %s)\n", loaded.Describe())
	} else {
		cmdutil.SayConfig(out, loaded)
	}
	res, err := runPlan(ctx, opts, p)
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
	summary(out, loaded.Config)
	return nil
}

// realDomain stops a real run on the placeholder domain of the defaults:
// served as is, the site would answer for a name that is not the user's and
// Grafana's root_url would point at it. A preview may use it.
func realDomain(loaded *config.Loaded, dryRun bool) error {
	if dryRun || loaded.Config.Domain != config.PlaceholderDomain {
		return nil
	}
	src := "the built-in defaults"
	if loaded.Source != "" {
		src = loaded.Source
	}
	return &config.Error{Problems: []config.Problem{{Key: "domain", Source: src, Msg: fmt.Sprintf(
		"%s is the placeholder; a real init needs your server's public DNS name: homelab init --domain blog.example.com, or domain: in homelab.yaml (--dry-run previews without one)",
		config.PlaceholderDomain)}}}
}

// summary tells the user where things are and what to do next.
func summary(w io.Writer, cfg *config.Config) {
	m := cfg.Monitoring
	fmt.Fprintf(w, "\nYour server is monitored.\n")
	fmt.Fprintf(w, "  app:      %s/\n", cfg.PublicURL())
	fmt.Fprintf(w, "  Grafana:  %s (user admin)\n", cfg.GrafanaURL())
	fmt.Fprintf(w, "  Dashboard: %s (your app's, once deploy-app has run)\n", dashboard.URL(cfg.GrafanaURL(), cfg.App.Name))
	fmt.Fprintf(w, "  password: in Secret %s/%s; show it with\n", m.Namespace, m.GrafanaAdminSecret())
	fmt.Fprintf(w, "            sudo k3s kubectl -n %s get secret %s -o jsonpath='{.data.admin-password}' | base64 -d\n", m.Namespace, m.GrafanaAdminSecret())
	fmt.Fprintf(w, "Next: build your app's image and run 'homelab deploy-app --image %s'; 'homelab doctor' checks everything.\n", cfg.App.Image)
}
