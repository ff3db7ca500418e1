// Package doctor is `homelab doctor`: what is broken, and the fix.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/doctor"
	"github.com/homelab-dev/homelab/pkg/doctor/kubecluster"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/tui"
)

// Options are doctor's inputs.
type Options struct {
	// In is read for Ctrl-C while the live table is shown.
	In          io.Reader
	Out, ErrOut io.Writer
	// Color colours the table's status column (stdout is a terminal and
	// NO_COLOR is unset).
	Color bool
	// Terminal is the factory's answer to "may we be interactive?" (a
	// terminal on both ends, not CI, not TERM=dumb, no --no-tui): the
	// table fills live as checks finish, and the screen is cleared between
	// --watch runs.
	Terminal bool

	Host   host.Host
	Config func() (*config.Loaded, error)
	Now    func() time.Time

	Output          string
	Watch           time.Duration
	Timeout         time.Duration
	PrometheusURL   string
	AlertmanagerURL string

	// Cluster connects to the cluster for the checks that need the
	// Kubernetes API, or says why it cannot (they then fail or are skipped,
	// naming why); nil skips them. It is called once per run until it
	// succeeds, and makes no request itself.
	Cluster func() (doctor.Cluster, error)
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

			The cluster checks use k3s's kubeconfig (/etc/rancher/k3s/k3s.yaml). Prometheus and
			Alertmanager run inside k3s: doctor asks them through the API server's service proxy
			(the Services of the monitoring release), so no port-forward is needed. Give
			--prometheus-url or --alertmanager-url to ask another address instead.

			-o json prints {"version":1,"checks":[{"id","group","name","status","message",
			"fix","durationMs"}],"summary":{"ok","warn","fail","skipped"}}; status is one of
			ok, warn, fail, skipped, and fix is set for every warn and fail.

			Exit status: 0 nothing failed (warnings allowed), 3 something failed, 1 doctor
			itself could not run. With --watch, the status of the last complete run.
		`),
		Example: heredoc.Doc(`
			$ sudo homelab doctor
			$ sudo homelab doctor --prometheus-url http://127.0.0.1:9090   # after kubectl port-forward
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
	fl.StringVar(&opts.PrometheusURL, "prometheus-url", "", "Prometheus HTTP API base URL (default: the monitoring release's Prometheus through the API server)")
	fl.StringVar(&opts.AlertmanagerURL, "alertmanager-url", "", "Alertmanager base URL (default: the monitoring release's Alertmanager through the API server)")
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
		if err := cmdutil.CheckHTTPURL("--prometheus-url", opts.PrometheusURL, "http://127.0.0.1:9090"); err != nil {
			return err
		}
		if err := cmdutil.CheckHTTPURL("--alertmanager-url", opts.AlertmanagerURL, "http://127.0.0.1:9093"); err != nil {
			return err
		}
		// A kubeconfig the user named must be usable; k3s's own missing
		// one is a finding (k3s is not installed), not bad input.
		if err := f.CheckKubeconfig(); err != nil {
			return err
		}
		ios := f.IOStreams
		opts.In, opts.Out, opts.ErrOut = ios.In, ios.Out, ios.ErrOut
		opts.Terminal = f.UseTUI()
		opts.Color = opts.Terminal && ios.ColorEnabled()
		opts.Host = f.Host()
		opts.Now = f.Now
		opts.Config = func() (*config.Loaded, error) { return f.Config(flags) }
		opts.Cluster = func() (doctor.Cluster, error) { return connect(f, opts.Host, opts.Timeout) }
		if runF != nil {
			return runF(c.Context(), opts)
		}
		return doctorRun(c.Context(), opts)
	}
	return cmd
}

// connect builds doctor's view of the cluster from the factory's client.
// A missing kubeconfig is reported as fs.ErrNotExist, for the finding that
// says k3s is not installed or not running.
func connect(f *cmdutil.Factory, h host.Host, timeout time.Duration) (doctor.Cluster, error) {
	c, err := f.Kube()
	if err != nil {
		if _, serr := h.Lstat(layout.K3sKubeconfig); errors.Is(serr, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", layout.K3sKubeconfig, fs.ErrNotExist)
		}
		return nil, err
	}
	cl, err := kubecluster.New(c, timeout)
	if err != nil {
		return nil, err
	}
	return cl, nil
}

func doctorRun(ctx context.Context, opts *Options) error {
	loaded, err := opts.Config()
	if err != nil {
		return err
	}
	cmdutil.SayConfig(opts.ErrOut, loaded)
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	env := doctor.Env{
		Config: loaded.Config, Host: opts.Host,
		PrometheusURL: opts.PrometheusURL, AlertmanagerURL: opts.AlertmanagerURL,
		NginxHTTPAddr: opts.NginxHTTPAddr, NginxHTTPSAddr: opts.NginxHTTPSAddr,
		Dial: opts.Dial, Now: now,
	}
	var checks []doctor.Check
	// build connects to the cluster (again, until it succeeds: k3s may come
	// up during --watch) and builds the checks.
	build := func() error {
		if checks != nil && env.ClusterError == nil {
			return nil
		}
		env.Cluster, env.ClusterError = nil, nil
		if opts.Cluster != nil {
			if cl, err := opts.Cluster(); err != nil {
				env.ClusterError = err
			} else if cl != nil {
				env.Cluster = cl
			}
		}
		var err error
		checks, err = doctor.Checks(env)
		return err
	}
	runner := doctor.Runner{Timeout: opts.Timeout, Now: now}
	if opts.Watch == 0 {
		if err := build(); err != nil {
			return err
		}
		if opts.Output == "text" && opts.Terminal {
			return live(ctx, opts, runner, checks)
		}
		rep, err := runner.Run(ctx, checks)
		if err != nil {
			return err
		}
		return report(opts, rep)
	}
	var last error
	for {
		if err := build(); err != nil {
			return err
		}
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

// live runs the checks with the table filling on the terminal as they
// finish, then leaves the whole table there; the verdict is report's.
func live(ctx context.Context, opts *Options, runner doctor.Runner, checks []doctor.Check) error {
	var rows []tui.CheckRow
	for _, c := range doctor.InReportOrder(checks) {
		rows = append(rows, tui.CheckRow{ID: c.ID, Group: c.Group, Name: c.Name})
	}
	var rep doctor.Report
	err := tui.RunChecks(ctx, opts.In, opts.Out, rows, func(ctx context.Context, started func(string), result func(tui.CheckResultMsg)) error {
		runner.OnStart = started
		runner.OnResult = func(r doctor.Result) {
			result(tui.CheckResultMsg{ID: r.ID, Status: string(r.Status), Message: r.Message, Fix: r.Fix})
		}
		var err error
		rep, err = runner.Run(ctx, checks)
		return err
	}, tui.WithColor(opts.Color))
	if err != nil {
		return err
	}
	if rep.Failed() {
		return &cmdutil.ExitCodeError{Code: cmdutil.ExitProblems}
	}
	return nil
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
