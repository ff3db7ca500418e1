// Package alert is `homelab alert`: prove that alerts reach the people
// they are for.
package alert

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/homelab-dev/homelab/pkg/alertmanager"
	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
)

// NewCmdAlert is the `alert` group.
func NewCmdAlert(f *cmdutil.Factory, runF func(context.Context, *TestOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alert",
		Short: "Check that alerts reach you",
		Example: heredoc.Doc(`
			$ sudo homelab alert test
		`),
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(NewCmdTest(f, runF))
	return cmd
}

// TestOptions are `alert test`'s inputs.
type TestOptions struct {
	Out, ErrOut io.Writer
	Config      func() (*config.Loaded, error)
	// API reaches Alertmanager: the URL given, or the chart's Alertmanager
	// through the API server.
	API      func(cfg *config.Config) (alertmanager.API, error)
	Timeout  time.Duration
	Hostname string
}

// NewCmdTest builds `alert test`; runF replaces testRun in tests.
func NewCmdTest(f *cmdutil.Factory, runF func(context.Context, *TestOptions) error) *cobra.Command {
	opts := &TestOptions{}
	var amURL string
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Send a test alert to every destination in alerts.notify and report which got it",
		Long: heredoc.Doc(`
			Send a test alert through the real path: the Alertmanager inside k3s, with the
			configuration init wrote from homelab.yaml's alerts section. Then wait until
			Alertmanager has delivered it to each destination, or given up, and report each
			one with the reason it failed (an SMTP login refused, a webhook answering 404...).
			The alert resolves by itself a minute later, so destinations with resolved
			messages get a second one.

			Alertmanager is asked through the API server's service proxy (k3s's kubeconfig);
			--alertmanager-url asks another address instead.

			Exit status: 0 every destination got it, 1 one did not (or none is configured),
			2 bad flags or configuration.
		`),
		Example: heredoc.Doc(`
			$ sudo homelab alert test
			$ sudo homelab alert test --timeout 5m
			$ homelab alert test --alertmanager-url http://127.0.0.1:9093 --config homelab.yaml
		`),
		Args: cobra.NoArgs,
	}
	flags := cmdutil.AddConfigFlags(cmd)
	fl := cmd.Flags()
	fl.DurationVar(&opts.Timeout, "timeout", 2*time.Minute, "how long to wait for every destination")
	fl.StringVar(&amURL, "alertmanager-url", "", "Alertmanager base URL (default: the monitoring release's Alertmanager through the API server)")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if opts.Timeout < 10*time.Second {
			return cmdutil.FlagErrorf("invalid value %s for --timeout: 10s or more (Alertmanager waits 10s before it sends)", opts.Timeout)
		}
		if err := cmdutil.CheckHTTPURL("--alertmanager-url", amURL, "http://127.0.0.1:9093"); err != nil {
			return err
		}
		if amURL == "" {
			// Alertmanager is reached through the cluster: a kubeconfig
			// the user named must be usable.
			if err := f.CheckKubeconfig(); err != nil {
				return err
			}
		}
		ios := f.IOStreams
		opts.Out, opts.ErrOut = ios.Out, ios.ErrOut
		opts.Config = func() (*config.Loaded, error) { return f.Config(flags) }
		opts.Hostname, _ = os.Hostname()
		opts.API = func(cfg *config.Config) (alertmanager.API, error) {
			if amURL != "" {
				return alertmanager.API{BaseURL: strings.TrimRight(amURL, "/"), Client: &http.Client{Timeout: 10 * time.Second}}, nil
			}
			return inCluster(f, cfg)
		}
		if runF != nil {
			return runF(c.Context(), opts)
		}
		return testRun(c.Context(), opts)
	}
	return cmd
}

// inCluster reaches the chart's Alertmanager through the API server's
// service proxy, and reads its pods' logs for the reasons of failures.
func inCluster(f *cmdutil.Factory, cfg *config.Config) (alertmanager.API, error) {
	c, err := f.Kube()
	if err != nil {
		return alertmanager.API{}, fmt.Errorf("reach k3s to find Alertmanager (%w); is k3s running? sudo homelab doctor", err)
	}
	m := cfg.Monitoring
	base, client, err := c.ServiceProxy(m.Namespace, m.AlertmanagerServiceName(), "9093", 10*time.Second)
	if err != nil {
		return alertmanager.API{}, err
	}
	logs := func(ctx context.Context) (string, error) {
		pods, err := c.Pods(ctx, m.Namespace, "app.kubernetes.io/name=alertmanager")
		if err != nil {
			return "", err
		}
		var all strings.Builder
		for _, p := range pods {
			// The pod also runs the operator's config-reloader.
			all.WriteString(c.ContainerLogs(ctx, m.Namespace, p.Name, "alertmanager", 300))
		}
		return all.String(), nil
	}
	return alertmanager.API{BaseURL: base, Client: client, Logs: logs}, nil
}

func testRun(ctx context.Context, opts *TestOptions) error {
	loaded, err := opts.Config()
	if err != nil {
		return err
	}
	cmdutil.SayConfig(opts.ErrOut, loaded)
	cfg := loaded.Config
	if len(cfg.Alerts.Notify) == 0 {
		fmt.Fprintln(opts.ErrOut, "No destinations in alerts.notify: when the app goes down, nobody is told.")
		fmt.Fprintln(opts.ErrOut, "Add one to homelab.yaml (for example `- ntfy: {url: https://ntfy.sh/SOME-LONG-SECRET-NAME}`), run sudo homelab init, then this again.")
		return &cmdutil.ExitCodeError{Code: cmdutil.ExitError}
	}
	api, err := opts.API(cfg)
	if err != nil {
		return err
	}
	var receivers []string
	where := map[string]string{}
	for i, n := range cfg.Alerts.Notify {
		r := alertmanager.ReceiverName(i, n)
		receivers = append(receivers, r)
		where[r] = fmt.Sprintf("alerts.notify[%d] %s", i, n.Kind())
	}
	fmt.Fprintf(opts.ErrOut, "Sending a test alert through Alertmanager (%s) to %d destinations; waiting up to %s...\n",
		strings.TrimPrefix(strings.TrimPrefix(api.BaseURL, "https://"), "http://"), len(receivers), opts.Timeout)
	tctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	start := time.Now()
	results, err := alertmanager.SendTest(tctx, api, receivers, opts.Hostname)
	if err != nil {
		return fmt.Errorf("alert test: %w (sudo homelab doctor checks Alertmanager)", err)
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].Delivered && !results[j].Delivered })
	failed := 0
	for _, r := range results {
		if r.Delivered {
			fmt.Fprintf(opts.Out, "ok      %-12s %s: delivered\n", r.Receiver, where[r.Receiver])
			continue
		}
		failed++
		fmt.Fprintf(opts.Out, "failed  %-12s %s: %s\n", r.Receiver, where[r.Receiver], r.Reason)
	}
	fmt.Fprintf(opts.ErrOut, "%d of %d destinations got the test alert in %s.\n", len(results)-failed, len(results), time.Since(start).Round(time.Second))
	if failed > 0 {
		fmt.Fprintln(opts.ErrOut, "Fix the failed destinations in homelab.yaml (alerts.notify), run sudo homelab init, and test again.")
		return &cmdutil.ExitCodeError{Code: cmdutil.ExitError}
	}
	return nil
}
