// Package portforward keeps one local TCP port forwarded to the pod behind a
// Kubernetes Service, and makes sure it never sits running while forwarding
// nothing — the trap of `kubectl port-forward` under systemd, which keeps
// running after the pod it forwarded to is gone.
//
// Run resolves the Service to a Ready pod, forwards with client-go's
// PortForwarder, proves the forward with a first connection through it, and
// only then reports READY=1 to systemd. From then on it pings the systemd
// watchdog only while the pod still exists, is the same pod and is Ready, and
// the connection to it is alive; it returns an error as soon as any of that
// stops being true, or when the API server stays unreachable past a grace
// period. It does not reconnect: systemd's Restart=always starts a fresh
// process, which resolves the Service again.
package portforward

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	clientpf "k8s.io/client-go/tools/portforward"
)

// Config is one forward.
type Config struct {
	Namespace string
	Service   string
	// ServicePort is the Service's port (80 for Grafana), mapped to the pod's
	// target port the way the Service maps it.
	ServicePort int32
	// Address is the local address to listen on: an IP or "localhost".
	Address string
	// LocalPort is the local port; 0 picks a free one.
	LocalPort uint16

	Pods Pods
	Dial DialerFunc
	// Notifier receives READY=1, WATCHDOG=1, STATUS= and STOPPING=1; nil
	// sends nothing.
	Notifier Notifier
	// Watchdog is systemd's WatchdogSec; pings go every half of it. Zero:
	// no pings (the forwarder still exits on the same conditions).
	Watchdog time.Duration

	// StartTimeout bounds waiting for a Ready pod and a working forward;
	// 50s when zero, under the unit's WatchdogSec=60 (the watchdog runs from
	// the start of a Type=exec unit), so that the log says why before systemd
	// gives up on it.
	StartTimeout time.Duration
	// APIGrace is how long the API server may stay unreachable before the
	// forwarder gives up, since it can no longer tell whether its pod is
	// still there; 30s when zero, under WatchdogSec=60.
	APIGrace time.Duration
	// ProbeInterval is how often a connection is made through the forward to
	// prove it still reaches the pod's port (this also keeps the connection
	// from idling out at the kubelet); 30s when zero, never when negative.
	ProbeInterval time.Duration
	// ProbeTimeout bounds one probe; 10s when zero.
	ProbeTimeout time.Duration
	// Retry is the pause between looks for a Ready pod while starting; 1s
	// when zero.
	Retry time.Duration

	// Log receives what happens, for people (journald); nil discards it.
	Log *slog.Logger
	// OnReady, when set, is called with the forward's target and listening
	// addresses just before READY=1 is sent.
	OnReady func(t Target, addrs []string)
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.StartTimeout, 50*time.Second)
	def(&c.APIGrace, 30*time.Second)
	def(&c.ProbeInterval, 30*time.Second)
	def(&c.ProbeTimeout, 10*time.Second)
	def(&c.Retry, time.Second)
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Notifier == nil {
		c.Notifier = nopNotifier{}
	}
	return c
}

type nopNotifier struct{}

func (nopNotifier) Notify(string) (bool, error) { return false, nil }

// IsLoopback reports whether addr is "localhost" or a loopback IP: the only
// addresses the forwarder listens on, since whatever it forwards to (Grafana)
// is meant to be reached through Nginx, not directly.
func IsLoopback(addr string) bool {
	if addr == "localhost" {
		return true
	}
	ip := net.ParseIP(addr)
	return ip != nil && ip.IsLoopback()
}

// Run forwards until ctx ends (nil: a requested stop) or the forward can no
// longer be trusted (an error saying why).
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if !IsLoopback(cfg.Address) {
		return fmt.Errorf("refusing to listen on %q: only loopback addresses are allowed", cfg.Address)
	}
	r := &runner{cfg: cfg, log: cfg.Log}
	return r.run(ctx)
}

type runner struct {
	cfg Config
	log *slog.Logger
	// notifyFailed keeps a broken notify socket from flooding the log.
	notifyFailed bool
}

func (r *runner) notify(state string) {
	if _, err := r.cfg.Notifier.Notify(state); err != nil && !r.notifyFailed {
		r.notifyFailed = true
		r.log.Warn("cannot notify systemd", "state", state, "err", err)
	}
}

func (r *runner) run(ctx context.Context) error {
	cfg := r.cfg
	startCtx, cancelStart := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancelStart()

	t, err := r.waitForPod(startCtx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	fwdCtx, stopForward := context.WithCancel(ctx)
	var watcher sync.WaitGroup
	fwdDone := make(chan error, 1)
	fwdReturned := false
	// On every way out, stop the forward and the pod watch and wait for them,
	// so the listener is closed when Run returns. The wait for the forward is
	// bounded: a dial stuck in an unresponsive API server cannot be
	// cancelled, and must not keep the process from exiting.
	defer func() {
		stopForward()
		watcher.Wait()
		if !fwdReturned {
			select {
			case <-fwdDone:
			case <-time.After(5 * time.Second):
			}
		}
	}()

	base, err := cfg.Dial(t)
	if err != nil {
		return fmt.Errorf("port-forward to pod %s: %w", t, err)
	}
	dialer := &observedDialer{Dialer: base}
	ready := make(chan struct{})
	pf, err := clientpf.NewOnAddressesWithContext(fwdCtx, dialer, []string{cfg.Address},
		[]string{fmt.Sprintf("%d:%d", cfg.LocalPort, t.Port)}, ready, io.Discard, logWriter{r.log})
	if err != nil {
		return fmt.Errorf("port-forward to pod %s: %w", t, err)
	}
	go func() { fwdDone <- pf.ForwardPorts() }()

	select {
	case <-ready:
	case err := <-fwdDone:
		fwdReturned = true
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("port-forward to pod %s: %w", t, dialer.cause(err))
	case <-startCtx.Done():
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("port-forward to pod %s: no connection through the API server within %s", t, cfg.StartTimeout)
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) == 0 {
		return fmt.Errorf("port-forward to pod %s: no local port: %v", t, err)
	}
	addrs := listenAddrs(cfg.Address, ports[0].Local)

	// Listening and connected to the kubelet is not yet forwarding: prove it
	// with a connection to the pod's port before anyone is told it works.
	if err := probe(ctx, addrs[0], dialer, cfg.ProbeTimeout); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("port-forward to pod %s does not work: %w", t, err)
	}

	if cfg.OnReady != nil {
		cfg.OnReady(t, addrs)
	}
	r.log.Info("forwarding", "listen", addrs, "service", cfg.Namespace+"/"+cfg.Service, "pod", t.Pod, "pod_port", t.Port)
	r.notify(fmt.Sprintf("READY=1\nSTATUS=forwarding %s to pod %s", addrs[0], t))

	states := make(chan PodState)
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		cfg.Pods.Watch(fwdCtx, t, states)
	}()

	var pingC, probeC <-chan time.Time
	if cfg.Watchdog > 0 {
		tk := time.NewTicker(cfg.Watchdog / 2)
		defer tk.Stop()
		pingC = tk.C
	}
	if cfg.ProbeInterval > 0 {
		tk := time.NewTicker(cfg.ProbeInterval)
		defer tk.Stop()
		probeC = tk.C
	}
	probeDone := make(chan error, 1)
	probing := false
	h := health{target: t, grace: cfg.APIGrace, log: r.log}

	for {
		select {
		case <-ctx.Done():
			r.log.Info("stopping on request")
			r.notify("STOPPING=1")
			return nil

		case err := <-fwdDone:
			fwdReturned = true
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("port-forward to pod %s ended: %w", t, dialer.cause(orLost(err)))

		case st := <-states:
			if err := h.update(st, time.Now()); err != nil {
				return err
			}

		case now := <-pingC:
			// A pod event or a dropped connection may be waiting alongside
			// the tick: look at them first, so that no ping vouches for a
			// forward that is already known to be dead.
			select {
			case st := <-states:
				if err := h.update(st, now); err != nil {
					return err
				}
			default:
			}
			if err := dialer.broken(); err != nil {
				return fmt.Errorf("port-forward to pod %s ended: %w", t, err)
			}
			if err := h.check(now); err != nil {
				return err
			}
			r.notify("WATCHDOG=1")

		case <-probeC:
			if !probing {
				probing = true
				go func() { probeDone <- probe(fwdCtx, addrs[0], dialer, cfg.ProbeTimeout) }()
			}

		case err := <-probeDone:
			probing = false
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("port-forward to pod %s stopped working: %w", t, err)
			}
		}
	}
}

// waitForPod resolves the Service until a Ready pod is found or ctx ends;
// right after `homelab init` or during a Grafana rollout there may be none
// for a while.
func (r *runner) waitForPod(ctx context.Context) (Target, error) {
	cfg := r.cfg
	svc := cfg.Namespace + "/" + cfg.Service
	var last string
	for {
		t, err := cfg.Pods.Resolve(ctx, cfg.Namespace, cfg.Service, cfg.ServicePort)
		if err == nil {
			return t, nil
		}
		if msg := err.Error(); msg != last && ctx.Err() == nil {
			last = msg
			r.log.Warn("waiting for a Ready pod behind the service", "service", svc, "err", err)
			r.notify("STATUS=waiting: " + msg)
		}
		select {
		case <-ctx.Done():
			return t, fmt.Errorf("no pod to forward to after %s: %w", cfg.StartTimeout, err)
		case <-time.After(cfg.Retry):
		}
	}
}

// health follows the pod's state as the watch reports it.
type health struct {
	target Target
	grace  time.Duration
	log    *slog.Logger
	// apiDownSince is when the API server stopped answering; zero while it does.
	apiDownSince time.Time
	apiErr       error
}

func (h *health) update(st PodState, now time.Time) error {
	if st.Err != nil {
		if h.apiDownSince.IsZero() {
			h.apiDownSince = now
			h.log.Warn("API server unreachable; still forwarding", "grace", h.grace, "err", st.Err)
		}
		h.apiErr = st.Err
		return h.check(now)
	}
	if !h.apiDownSince.IsZero() {
		h.log.Info("API server reachable again", "after", now.Sub(h.apiDownSince).Round(time.Millisecond))
		h.apiDownSince, h.apiErr = time.Time{}, nil
	}
	if !st.Healthy {
		return fmt.Errorf("pod %s/%s behind service %s %s: stopping this forward (a restart forwards to a Ready pod)",
			h.target.Namespace, h.target.Pod, h.target.Service, st.Reason)
	}
	return nil
}

func (h *health) check(now time.Time) error {
	if !h.apiDownSince.IsZero() && now.Sub(h.apiDownSince) >= h.grace {
		return fmt.Errorf("API server unreachable for %s, cannot tell whether pod %s/%s is still there: %w",
			now.Sub(h.apiDownSince).Round(time.Second), h.target.Namespace, h.target.Pod, h.apiErr)
	}
	return nil
}

// probe makes one connection through the forward and sends nothing: the
// kubelet connects to the pod's port (or reports why it cannot on the error
// stream, and client-go then closes the connection), our half-close reaches
// the pod, and the pod's side closes back. Only a clean end with the
// connection still intact proves the forward. Before the local end sees EOF,
// client-go has already read the error stream and closed the connection
// when it was not empty, so the check after EOF is not racy.
func probe(ctx context.Context, addr string, d *observedDialer, timeout time.Duration) error {
	dl := net.Dialer{Timeout: timeout}
	c, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.CloseWrite(); err != nil {
			return fmt.Errorf("probe through %s: %w", addr, err)
		}
	}
	if _, err := io.Copy(io.Discard, c); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("probe through %s: the pod's port did not answer within %s", addr, timeout)
		}
		return fmt.Errorf("probe through %s: %w", addr, err)
	}
	if err := d.broken(); err != nil {
		return err
	}
	return nil
}

func listenAddrs(address string, port uint16) []string {
	p := strconv.Itoa(int(port))
	if address == "localhost" {
		// client-go listens on both loopback addresses for "localhost".
		return []string{net.JoinHostPort("127.0.0.1", p), net.JoinHostPort("::1", p)}
	}
	return []string{net.JoinHostPort(address, p)}
}

func orLost(err error) error {
	if err == nil {
		return clientpf.ErrLostConnectionToPod
	}
	return err
}

// logWriter turns client-go's PortForwarder messages ("Unable to listen on
// port ...") into log records.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			w.log.Warn(line)
		}
	}
	return len(p), nil
}
