// Package portforward is `homelab port-forward`: the forwarder the Grafana
// systemd unit runs, keeping 127.0.0.1:3100 forwarded to the Grafana pod and
// exiting (so systemd restarts it) whenever the forward stops working.
package portforward

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/kube"
	forward "github.com/homelab-dev/homelab/pkg/portforward"
)

// Options are port-forward's inputs.
type Options struct {
	IO          *iostreams.IOStreams
	Namespace   string
	Service     string
	Address     string
	LocalPort   uint16
	ServicePort int32
	// Kubeconfig is the file to connect with: the factory's (--kubeconfig,
	// else k3s's under --root; $KUBECONFIG is never read, as by every
	// command: it may name another cluster).
	Kubeconfig   string
	StartTimeout time.Duration
	APIGrace     time.Duration

	// Connect, Dialer, Notifier and Watchdog reach the cluster, the kubelet
	// and systemd; tests replace them.
	Connect  func(kubeconfig string) (*kube.Client, error)
	Dialer   func(cfg *rest.Config) (forward.DialerFunc, error)
	Notifier forward.Notifier
	Watchdog func() (time.Duration, error)
}

// NewCmdPortForward builds the command; runF replaces portForwardRun in tests.
func NewCmdPortForward(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{
		IO:       f.IOStreams,
		Connect:  kube.FromKubeconfig,
		Dialer:   forward.KubeDialer,
		Notifier: forward.Systemd{},
		Watchdog: forward.SystemdWatchdog,
	}
	var port string
	cmd := &cobra.Command{
		Use:   "port-forward",
		Short: "Forward a local port to the pod behind a Service, and exit when that stops working",
		Long: heredoc.Doc(`
			Forward a loopback port to the pod behind a Kubernetes Service, like
			'kubectl port-forward svc/NAME', but fit to run under systemd: this is what the
			grafana-portforward unit runs to keep Grafana on 127.0.0.1:3100 for Nginx.

			The Service's port (REMOTE in --port) is mapped to a Ready pod's target port,
			named or numbered, the way the Service maps it. Systemd is told the service is
			ready (READY=1) only after a first connection through the forward reached the
			pod, and the watchdog is pinged only while that pod still exists, is Ready and
			the connection to it is alive. When the pod is deleted, replaced or stops being
			Ready, when the connection drops (a k3s restart, an idle timeout), when a
			connection through it fails, or when the API server stays unreachable for
			--api-grace, the command logs why and exits with status 1, and systemd's
			Restart=always starts it again on the current pod. Outside systemd it behaves
			the same and exits on the same conditions.

			Only loopback addresses are accepted for --address: what is forwarded is meant
			to be reached through Nginx, never directly from the network.
		`),
		Example: heredoc.Doc(`
			# What the grafana-portforward unit runs
			$ homelab port-forward --namespace monitoring --service lightweight-monitoring-grafana \
			    --address 127.0.0.1 --port 3100:80

			# The blackbox exporter on localhost:9115, to try a probe by hand
			$ homelab port-forward --service blackbox-prometheus-blackbox-exporter --port 9115:9115
		`),
		Args: cobra.NoArgs,
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Namespace, "namespace", "n", "monitoring", "namespace of the Service")
	fl.StringVar(&opts.Service, "service", "lightweight-monitoring-grafana", "Service whose pod to forward to")
	fl.StringVar(&opts.Address, "address", "127.0.0.1", "local address to listen on: 127.0.0.1, ::1 or localhost")
	fl.StringVar(&port, "port", "3100:80", "LOCAL:REMOTE, REMOTE being the Service's port (PORT alone means PORT:PORT; :REMOTE or 0:REMOTE picks a free local port)")
	fl.DurationVar(&opts.StartTimeout, "start-timeout", 50*time.Second, "give up starting when no Ready pod is forwarded to within this long")
	fl.DurationVar(&opts.APIGrace, "api-grace", 30*time.Second, "exit when the API server stays unreachable for this long")

	cmd.RunE = func(c *cobra.Command, args []string) error {
		if !forward.IsLoopback(opts.Address) {
			return cmdutil.FlagErrorf("invalid value %q for --address: only a loopback address is allowed (127.0.0.1, ::1 or localhost); reach the forward through Nginx instead", opts.Address)
		}
		if opts.Namespace == "" || opts.Service == "" {
			return cmdutil.FlagErrorf("--namespace and --service must not be empty")
		}
		local, remote, err := parsePort(port)
		if err != nil {
			return cmdutil.FlagErrorf("invalid value %q for --port: %v; want LOCAL:REMOTE like 3100:80", port, err)
		}
		opts.LocalPort, opts.ServicePort = local, remote
		if opts.StartTimeout <= 0 || opts.APIGrace <= 0 {
			return cmdutil.FlagErrorf("--start-timeout and --api-grace must be positive")
		}
		// A --kubeconfig that is missing or unusable is bad input (exit 2).
		// k3s's own not being there yet is k3s still starting: the
		// connection fails with exit 1, and systemd starts the forwarder
		// again.
		if err := f.CheckKubeconfig(); err != nil {
			return err
		}
		if opts.Kubeconfig, err = f.KubeconfigPath(); err != nil {
			return err
		}
		if runF != nil {
			return runF(c.Context(), opts)
		}
		return portForwardRun(c.Context(), opts)
	}
	return cmd
}

// parsePort reads LOCAL:REMOTE or PORT; REMOTE must be a real port, LOCAL may
// be 0 for any free one.
func parsePort(s string) (uint16, int32, error) {
	localStr, remoteStr, found := strings.Cut(s, ":")
	if !found {
		remoteStr = localStr
	}
	if localStr == "" {
		localStr = "0" // kubectl's ":80"
	}
	local, err := strconv.ParseUint(localStr, 10, 16)
	if err != nil {
		return 0, 0, fmt.Errorf("local port %q is not a number from 0 to 65535", localStr)
	}
	remote, err := strconv.ParseUint(remoteStr, 10, 16)
	if err != nil || remote == 0 {
		return 0, 0, fmt.Errorf("service port %q is not a number from 1 to 65535", remoteStr)
	}
	return uint16(local), int32(remote), nil
}

func portForwardRun(ctx context.Context, opts *Options) error {
	// journald keeps stderr; one line per event, machine-readable.
	log := slog.New(slog.NewTextHandler(opts.IO.ErrOut, nil))
	err := run(ctx, opts, log)
	if err == nil {
		return nil
	}
	// The log line is the report, for the journal and for a person alike;
	// exit 1 tells systemd to restart the unit.
	log.Error("port-forward stopped", "err", err)
	return &cmdutil.ExitCodeError{Code: cmdutil.ExitError}
}

func run(ctx context.Context, opts *Options, log *slog.Logger) error {
	client, err := opts.Connect(opts.Kubeconfig)
	if err != nil {
		return err
	}
	dial, err := opts.Dialer(client.RESTConfig())
	if err != nil {
		return fmt.Errorf("port-forward dialer: %w", err)
	}
	pods, err := forward.NewKubePods(client.RESTConfig())
	if err != nil {
		return fmt.Errorf("port-forward pods: %w", err)
	}
	watchdog, err := opts.Watchdog()
	if err != nil {
		// A malformed WATCHDOG_USEC is systemd's business: forward anyway,
		// and let systemd's watchdog decide.
		log.Warn("cannot read the systemd watchdog interval; not pinging it", "err", err)
		watchdog = 0
	}
	return forward.Run(ctx, forward.Config{
		Namespace:    opts.Namespace,
		Service:      opts.Service,
		ServicePort:  opts.ServicePort,
		Address:      opts.Address,
		LocalPort:    opts.LocalPort,
		Pods:         pods,
		Dial:         dial,
		Notifier:     opts.Notifier,
		Watchdog:     watchdog,
		StartTimeout: opts.StartTimeout,
		APIGrace:     opts.APIGrace,
		Log:          log,
	})
}
