// Package uninstall is `homelab uninstall`: remove what homelab installed,
// from the record init keeps of what it created, and nothing else.
package uninstall

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/record"
)

// Options are uninstall's inputs.
type Options struct {
	IO      *iostreams.IOStreams
	Deps    Deps
	Choices Choices
	DryRun  bool
	// UseTUI shows live progress on a terminal.
	UseTUI bool
}

// NewCmdUninstall builds the command; runF replaces uninstallRun in tests.
func NewCmdUninstall(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove what homelab installed, and only that",
		Long: heredoc.Docf(`
			Remove what 'homelab init' created on this server, newest first, as listed in
			the record it keeps, %[1]s: the Nginx site (then nginx -t
			and a reload; if nginx -t fails without it, the site is put back), the Grafana
			port-forward unit, the Helm releases (waiting until their resources are gone)
			and the files homelab wrote. A file that existed before homelab overwrote it is
			put back from the copy of its original kept in %[2]s.

			Nothing homelab did not create is touched: an Nginx, k3s or Helm release that
			was there before stays. What holds data or serves other things stays unless
			you ask:

			  --delete-data  the Grafana admin Secret (it holds the password), namespaces
			                 homelab created with what is left in them (Prometheus's and
			                 Grafana's volumes), and with --k3s /var/lib/rancher/k3s
			  --crds         the CRDs the chart installs created (Probe, PrometheusRule,
			                 ServiceMonitor, ...): deleting them deletes every object of
			                 those kinds in the cluster, including ones you made
			  --k3s          k3s, when homelab installed it: stopped, disabled, its unit and
			                 binary removed (pods it started run on until a reboot)
			  --packages     the apt packages homelab installed (nginx when it was missing)

			What is kept stays in the record, so a later uninstall with more flags removes
			it; when nothing is left the record is removed. Running uninstall again is
			safe: what is already gone is skipped. --dry-run shows every step and changes
			nothing.
		`, layout.Record, layout.BackupDir),
		Example: heredoc.Doc(`
			# See what would be removed, changing nothing
			$ homelab uninstall --dry-run

			# Remove the site, the port-forward unit and the monitoring releases; keep k3s
			$ sudo homelab uninstall

			# Remove everything homelab installed, data and k3s included
			$ sudo homelab uninstall --crds --k3s --delete-data --packages
		`),
		Args: cobra.NoArgs,
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.DryRun, "dry-run", false, "show what would be removed, change nothing")
	fl.BoolVar(&opts.Choices.CRDs, "crds", false, "also delete the CRDs homelab's chart installs created, and every Probe, PrometheusRule, ... in the cluster with them")
	fl.BoolVar(&opts.Choices.K3s, "k3s", false, "also stop and remove k3s, when homelab installed it")
	fl.BoolVar(&opts.Choices.DeleteData, "delete-data", false, "also delete the Grafana admin Secret, namespaces homelab created, and with --k3s /var/lib/rancher/k3s")
	fl.BoolVar(&opts.Choices.Packages, "packages", false, "also remove the apt packages homelab installed")
	fl.DurationVar(&opts.Deps.Timeout, "timeout", 5*time.Minute, "how long to wait for each release's resources and the CRDs to be gone")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if err := cmdutil.CheckPositive("--timeout", opts.Deps.Timeout, "5m"); err != nil {
			return err
		}
		if err := f.CheckKubeconfig(); err != nil {
			return err
		}
		opts.UseTUI = f.UseTUI()
		opts.Deps.Host = f.Host()
		opts.Deps.Kube, opts.Deps.Helm = f.Kube, f.Helm
		if runF != nil {
			return runF(c.Context(), opts)
		}
		return uninstallRun(c.Context(), opts)
	}
	return cmd
}

func uninstallRun(ctx context.Context, opts *Options) error {
	h := opts.Deps.Host
	unlock, err := cmdutil.Lock(h, opts.DryRun)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := record.Load(h)
	if err == nil && len(rec.Items) == 0 {
		err = record.ErrNoRecord
	}
	if err != nil {
		return err
	}
	if err := rec.Check(known()); err != nil {
		return err
	}
	p := Plan(rec, opts.Deps, opts.Choices)
	out := opts.IO.ErrOut
	if opts.DryRun {
		out = opts.IO.Out // the plan is the data a dry run produces
		fmt.Fprintf(out, "homelab uninstall --dry-run (record: %s, %d items)\n", layout.Record, len(rec.Items))
	}
	res, err := cmdutil.RunPlan(ctx, opts.IO, opts.UseTUI, "homelab uninstall", opts.DryRun, p)
	if err != nil {
		return err
	}
	if opts.DryRun {
		fmt.Fprintf(out, "\n%d of %d steps would change; nothing was changed.\n", len(res.Pending), len(p.Steps))
		return nil
	}
	summary(out, rec, opts.Choices, len(res.Changed) > 0)
	return nil
}

// summary says what happened and what was kept, with the flags that remove it.
func summary(w io.Writer, rec *record.Record, c Choices, changed bool) {
	if changed {
		fmt.Fprintln(w, "\nRemoved what homelab installed.")
	} else {
		fmt.Fprintln(w, "\nNothing to remove: everything recorded is already gone.")
	}
	var keptItems []string
	removedK3s := false
	for _, it := range rec.Items {
		_, keep := itemStep(it, Deps{}, c)
		if keep {
			keptItems = append(keptItems, it.String()+flagFor(it.Kind))
		}
		removedK3s = removedK3s || (it.Kind == record.K3s && c.K3s)
	}
	if len(keptItems) > 0 {
		fmt.Fprintf(w, "Kept: %s.\nRun 'homelab uninstall' again with those flags to remove them too.\n", strings.Join(keptItems, ", "))
	}
	if removedK3s && changed {
		fmt.Fprintln(w, "k3s is stopped; the containers it started keep running until the next reboot.")
	}
}

func flagFor(k record.Kind) string {
	switch k {
	case record.CRDs:
		return " (--crds)"
	case record.Secret, record.Namespace:
		return " (--delete-data)"
	case record.K3s:
		return " (--k3s)"
	case record.AptPackage:
		return " (--packages)"
	}
	return ""
}
