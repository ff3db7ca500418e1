// Package doctor is `homelab doctor`: what is broken, and the fix.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/doctor"
	"github.com/homelab-dev/homelab/pkg/host"
)

// Options are doctor's inputs.
type Options struct {
	Out, ErrOut io.Writer
	// Color colours the table's status column (stdout is a terminal and
	// NO_COLOR is unset).
	Color bool
	// Terminal clears the screen between --watch runs.
	Terminal bool

	Host   host.Host
	Config func() (*config.Loaded, error)
	Now    func() time.Time

	Output          string
	Watch           time.Duration
	Timeout         time.Duration
	PrometheusURL   string
	AlertmanagerURL string

	// Cluster answers the checks that need the Kubernetes API; nil skips them.
	Cluster doctor.Cluster
	// NginxHTTPAddr, NginxHTTPSAddr and Dial override where and how Nginx
	// and the other endpoints are reached (tests).
	NginxHTTPAddr, NginxHTTPSAddr string
	Dial                          func(ctx context.Context, network, addr string) (net.Conn, error)
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
			that fixes it.

			Checks run at the same time, each within --timeout; a check whose prerequisite
			failed is skipped and names it. Every check reads the machine, changes nothing.

			Prometheus runs inside k3s: give its address with --prometheus-url (for example
			after kubectl -n monitoring port-forward svc/lightweight-monitoring-kube-prom-prometheus 9090)
			to check that it scrapes the app's Probe and that the probe succeeds; without it
			those checks are skipped. Checks that need the Kubernetes API are skipped in this build.

			-o json prints {"version":1,"checks":[{"id","group","name","status","message",
			"fix","durationMs"}],"summary":{"ok","warn","fail","skipped"}}; status is one of
			ok, warn, fail, skipped, and fix is set for every warn and fail.

			Exit status: 0 nothing failed (warnings allowed), 3 something failed, 1 doctor
			itself could not run. With --watch, the status of the last complete run.
		`),
		Example: heredoc.Doc(`
			$ sudo homelab doctor
			$ sudo homelab doctor --prometheus-url http://127.0.0.1:9090
			$ homelab doctor -o json | jq '.checks[] | select(.status != "ok")'

			# Re-run every 30 seconds until Ctrl-C, allowing slow endpoints 5s each
			$ sudo homelab doctor --watch 30s --timeout 5s
		`),
		Args: cobra.NoArgs,
	}
	flags := cmdutil.AddConfigFlags(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	fl.DurationVar(&opts.Watch, "watch", 0, "re-run on this interval (like 30s) until interrupted")
	fl.DurationVar(&opts.Timeout, "timeout", doctor.DefaultTimeout, "time each check may take")
	fl.StringVar(&opts.PrometheusURL, "prometheus-url", "", "Prometheus HTTP API base URL (checks that ask Prometheus are skipped without it)")
	fl.StringVar(&opts.AlertmanagerURL, "alertmanager-url", "", "Alertmanager base URL (its check is skipped without it)")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if opts.Output != "text" && opts.Output != "json" {
			return cmdutil.FlagErrorf("invalid value %q for --output: one of text, json", opts.Output)
		}
		if opts.Timeout <= 0 {
			return cmdutil.FlagErrorf("invalid value %s for --timeout: a positive duration like 2s", opts.Timeout)
		}
		if opts.Watch < 0 || (opts.Watch > 0 && opts.Watch < time.Second) {
			return cmdutil.FlagErrorf("invalid value %s for --watch: 1s or more (0 runs once)", opts.Watch)
		}
		ios := f.IOStreams
		opts.Out, opts.ErrOut = ios.Out, ios.ErrOut
		opts.Terminal = isTerminal(ios.Out)
		opts.Color = opts.Terminal && ios.ColorEnabled()
		opts.Host = f.Host()
		opts.Now = f.Now
		opts.Config = func() (*config.Loaded, error) { return f.Config(flags.Overrides()) }
		if runF != nil {
			return runF(c.Context(), opts)
		}
		return doctorRun(c.Context(), opts)
	}
	return cmd
}

// isTerminal reports whether w is a terminal (iostreams only says so for stderr).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func doctorRun(ctx context.Context, opts *Options) error {
	loaded, err := opts.Config()
	if err != nil {
		return err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	env := doctor.Env{
		Config: loaded.Config, Host: opts.Host, Cluster: opts.Cluster,
		PrometheusURL: opts.PrometheusURL, AlertmanagerURL: opts.AlertmanagerURL,
		NginxHTTPAddr: opts.NginxHTTPAddr, NginxHTTPSAddr: opts.NginxHTTPSAddr,
		Dial: opts.Dial, Now: now,
	}
	checks, err := doctor.Checks(env)
	if err != nil {
		return err
	}
	runner := doctor.Runner{Timeout: opts.Timeout, Now: now}
	if opts.Watch == 0 {
		rep, err := runner.Run(ctx, checks)
		if err != nil {
			return err
		}
		return report(opts, rep)
	}
	var last error
	for {
		rep, err := runner.Run(ctx, checks)
		if err != nil {
			return err
		}
		if ctx.Err() != nil { // interrupted during the run: its report is partial
			return last
		}
		if opts.Output == "text" && opts.Terminal {
			fmt.Fprint(opts.Out, "\x1b[H\x1b[2J")
		}
		fmt.Fprintf(opts.ErrOut, "homelab doctor at %s, every %s (Ctrl-C stops)\n", now().Format(time.TimeOnly), opts.Watch)
		last = report(opts, rep)
		var code *cmdutil.ExitCodeError
		if last != nil && !errors.As(last, &code) {
			return last
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(opts.Watch):
		}
	}
}

// report prints rep and returns the verdict: nil, exit 3 when a check
// failed, or the error that kept the report from being written (exit 1).
func report(opts *Options, rep doctor.Report) error {
	var err error
	if opts.Output == "json" {
		err = rep.WriteJSON(opts.Out)
	} else {
		err = rep.WriteText(opts.Out, doctor.TextOptions{Color: opts.Color})
	}
	if err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	if rep.Failed() {
		return &cmdutil.ExitCodeError{Code: cmdutil.ExitProblems}
	}
	return nil
}
