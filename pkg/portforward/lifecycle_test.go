package portforward_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/portforward"
	"github.com/homelab-dev/homelab/pkg/portforward/portforwardtest"
	"github.com/homelab-dev/homelab/pkg/testutil"
	_ "github.com/homelab-dev/homelab/pkg/testutil" // defines -update for every test package
)

// The tests in this file run the whole lifecycle without an API server: the
// pod's states come from portforwardtest.Pods, the streams from the kubelet
// stand-in, which forwards to a real HTTP server standing in for Grafana.

const grafanaSays = "Grafana is here"

// grafana is the pod's port: a real HTTP server on loopback.
func grafana(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, grafanaSays)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

var grafanaPod = portforward.Target{Namespace: "monitoring", Service: "lightweight-monitoring-grafana", Pod: "grafana-7d9c-abcde", UID: "uid-1", Port: 3000}

// run is one Run in the background.
type run struct {
	t        *testing.T
	notifier *portforwardtest.Notifier
	kubelet  *portforwardtest.Kubelet
	logs     *testutil.SyncBuffer
	ready    chan []string
	done     chan error
	cancel   context.CancelFunc
}

// start runs the forwarder with fast timings; cfg fields already set win.
func start(t *testing.T, cfg portforward.Config, k *portforwardtest.Kubelet) *run {
	t.Helper()
	r := &run{t: t, notifier: &portforwardtest.Notifier{}, kubelet: k, logs: &testutil.SyncBuffer{},
		ready: make(chan []string, 1), done: make(chan error, 1)}
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1"
	}
	if cfg.Namespace == "" {
		cfg.Namespace, cfg.Service, cfg.ServicePort = "monitoring", "lightweight-monitoring-grafana", 80
	}
	if cfg.Dial == nil {
		cfg.Dial = k.Dial
	}
	if cfg.Notifier == nil {
		cfg.Notifier = r.notifier
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.Watchdog, 100*time.Millisecond)
	def(&cfg.StartTimeout, 5*time.Second)
	def(&cfg.APIGrace, 2*time.Second)
	def(&cfg.ProbeInterval, -1)
	def(&cfg.ProbeTimeout, 2*time.Second)
	def(&cfg.Retry, 20*time.Millisecond)
	cfg.Log = slog.New(slog.NewTextHandler(r.logs, nil))
	cfg.OnReady = func(_ portforward.Target, addrs []string) { r.ready <- addrs }
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- portforward.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
		if t.Failed() {
			t.Logf("forwarder log:\n%s", r.logs.String())
		}
	})
	return r
}

// waitReady returns the listening address once the forwarder is ready.
func (r *run) waitReady() string {
	r.t.Helper()
	select {
	case addrs := <-r.ready:
		return addrs[0]
	case err := <-r.done:
		r.t.Fatalf("Run ended before it was ready: %v\nlog:\n%s", err, r.logs.String())
	case <-time.After(10 * time.Second):
		r.t.Fatalf("not ready after 10s\nlog:\n%s", r.logs.String())
	}
	return ""
}

// waitExit returns Run's error, failing if Run does not end in time.
func (r *run) waitExit(within time.Duration) error {
	r.t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(within):
		r.t.Fatalf("Run still running after %s\nlog:\n%s", within, r.logs.String())
	}
	return nil
}

func get(t *testing.T, addr string) (string, error) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/api/health")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestForwardsPingsAndStopsCleanly(t *testing.T) {
	pods := portforwardtest.NewPods(grafanaPod)
	k := portforwardtest.NewKubelet(grafana(t))
	r := start(t, portforward.Config{Pods: pods}, k)
	addr := r.waitReady()

	for i := 0; i < 3; i++ { // several connections over one forward
		body, err := get(t, addr)
		if err != nil || body != grafanaSays {
			t.Fatalf("GET through the forward: %q, %v", body, err)
		}
	}
	if ports := k.Ports(); len(ports) == 0 || ports[0] != "3000" {
		t.Errorf("streams asked for pod ports %v, want the target port 3000", ports)
	}
	eventually(t, 3*time.Second, "watchdog pinged 3 times", func() bool { return r.notifier.Count("WATCHDOG=1") >= 3 })

	states := r.notifier.States()
	if !strings.HasPrefix(states[0], "READY=1\n") || !strings.Contains(states[0], "STATUS=forwarding "+addr) {
		t.Errorf("first notification = %q, want READY=1 with a STATUS naming %s", states[0], addr)
	}

	r.cancel()
	if err := r.waitExit(5 * time.Second); err != nil {
		t.Fatalf("a requested stop returned %v, want nil (exit 0)", err)
	}
	if r.notifier.Count("STOPPING=1") != 1 {
		t.Errorf("notifications %q: want STOPPING=1 on a requested stop", r.notifier.States())
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Run returned", addr)
	}
}

func TestReadyOnlyAfterAStreamReachedThePod(t *testing.T) {
	pods := portforwardtest.NewPods(grafanaPod)
	k := portforwardtest.NewKubelet(grafana(t))
	var servedAtReady atomic.Int64
	servedAtReady.Store(-1)
	n := &portforwardtest.Notifier{OnNotify: func(s string) {
		if strings.HasPrefix(s, "READY=1") {
			servedAtReady.Store(int64(k.Served()))
		}
	}}
	r := start(t, portforward.Config{Pods: pods, Notifier: n}, k)
	r.waitReady()
	eventually(t, 2*time.Second, "READY=1 sent", func() bool { return n.Count("READY=1") == 1 })
	if got := servedAtReady.Load(); got < 1 {
		t.Errorf("READY=1 was sent when %d connection(s) had reached the pod; want a proven forward first", got)
	}
}

func TestNeverReadyWhenThePodPortRefuses(t *testing.T) {
	pods := portforwardtest.NewPods(grafanaPod)
	k := portforwardtest.NewKubelet(closedPort(t))
	r := start(t, portforward.Config{Pods: pods}, k)
	err := r.waitExit(5 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "does not work") {
		t.Fatalf("Run = %v, want an error saying the forward does not work because the port refused", err)
	}
	if got := r.notifier.Count("READY=1") + r.notifier.Count("WATCHDOG=1"); got != 0 {
		t.Errorf("notifications %q: a forward that never worked must send neither READY nor WATCHDOG", r.notifier.States())
	}
}

func TestNeverReadyWhenTheDialFails(t *testing.T) {
	pods := portforwardtest.NewPods(grafanaPod)
	k := portforwardtest.NewKubelet(grafana(t))
	k.FailDials(errors.New("pod not found on this node"))
	r := start(t, portforward.Config{Pods: pods}, k)
	err := r.waitExit(5 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "pod not found on this node") {
		t.Fatalf("Run = %v, want the dial's error", err)
	}
	if r.notifier.Count("READY=1") != 0 {
		t.Errorf("READY=1 sent although the dial failed: %q", r.notifier.States())
	}
}

func TestExitsWhenThePodStopsBeingTheOne(t *testing.T) {
	for _, reason := range []string{
		"was deleted",
		"is not Ready (ContainersNotReady)",
		"was replaced by a new pod of the same name (uid uid-2, was uid-1)",
		"is being deleted",
	} {
		t.Run(reason, func(t *testing.T) {
			pods := portforwardtest.NewPods(grafanaPod)
			k := portforwardtest.NewKubelet(grafana(t))
			r := start(t, portforward.Config{Pods: pods}, k)
			addr := r.waitReady()
			pods.States <- portforward.PodState{Healthy: true}
			eventually(t, 3*time.Second, "a watchdog ping", func() bool { return r.notifier.Count("WATCHDOG=1") >= 1 })

			pods.States <- portforward.PodState{Reason: reason}
			err := r.waitExit(3 * time.Second)
			if err == nil || !strings.Contains(err.Error(), reason) || !strings.Contains(err.Error(), grafanaPod.Pod) {
				t.Fatalf("Run = %v, want an error naming the pod and %q", err, reason)
			}
			pings := r.notifier.Count("WATCHDOG=1")
			time.Sleep(300 * time.Millisecond)
			if r.notifier.Count("WATCHDOG=1") != pings {
				t.Error("watchdog pinged after Run returned")
			}
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				t.Errorf("%s still accepts connections after the pod went away", addr)
			}
		})
	}
}

func TestExitsWhenTheConnectionDrops(t *testing.T) {
	pods := portforwardtest.NewPods(grafanaPod)
	k := portforwardtest.NewKubelet(grafana(t))
	r := start(t, portforward.Config{Pods: pods}, k)
	r.waitReady()
	k.Drop() // k3s restarted, or the kubelet's idle timeout
	err := r.waitExit(3 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "lost connection to pod") {
		t.Fatalf("Run = %v, want a lost-connection error", err)
	}
}

func TestExitsWhenAConnectionIsRefusedAfterReady(t *testing.T) {
	// Grafana's container restarted in place: the pod is still there and
	// Ready again soon, but this connection is told "connection refused".
	pods := portforwardtest.NewPods(grafanaPod)
	k := portforwardtest.NewKubelet(grafana(t))
	r := start(t, portforward.Config{Pods: pods}, k)
	addr := r.waitReady()
	k.SetBackend(closedPort(t))
	if body, err := get(t, addr); err == nil {
		t.Errorf("GET through a forward to a closed port answered %q", body)
	}
	err := r.waitExit(3 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Run = %v, want the kubelet's connection refused", err)
	}
}

func TestPeriodicProbeCatchesAForwardThatStoppedWorking(t *testing.T) {
	pods := portforwardtest.NewPods(grafanaPod)
	k := portforwardtest.NewKubelet(grafana(t))
	r := start(t, portforward.Config{Pods: pods, ProbeInterval: 100 * time.Millisecond}, k)
	r.waitReady()
	eventually(t, 3*time.Second, "probes reach the pod", func() bool { return k.Served() >= 3 })
	k.SetBackend(closedPort(t)) // nobody uses the forward: only a probe can tell
	err := r.waitExit(3 * time.Second)
	// The probe's stream fails, client-go closes the connection: either may
	// be reported first, both carry the kubelet's message.
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Run = %v, want the probe's failure", err)
	}
}

func TestAPIServerAwayWithinGraceKeepsForwarding(t *testing.T) {
	pods := portforwardtest.NewPods(grafanaPod)
	k := portforwardtest.NewKubelet(grafana(t))
	r := start(t, portforward.Config{Pods: pods, APIGrace: time.Second}, k)
	addr := r.waitReady()
	pods.States <- portforward.PodState{Err: errors.New("connect: connection refused")}
	time.Sleep(300 * time.Millisecond)
	pings := r.notifier.Count("WATCHDOG=1")
	time.Sleep(300 * time.Millisecond)
	if r.notifier.Count("WATCHDOG=1") <= pings {
		t.Error("no watchdog ping within the grace period")
	}
	pods.States <- portforward.PodState{Healthy: true} // back
	time.Sleep(time.Second)                            // past the grace of the first error
	if body, err := get(t, addr); err != nil || body != grafanaSays {
		t.Fatalf("forward after the API server came back: %q, %v", body, err)
	}
	if !strings.Contains(r.logs.String(), "API server reachable again") {
		t.Errorf("log does not say the API server is back:\n%s", r.logs.String())
	}
}

func TestAPIServerAwayPastGraceExits(t *testing.T) {
	pods := portforwardtest.NewPods(grafanaPod)
	k := portforwardtest.NewKubelet(grafana(t))
	r := start(t, portforward.Config{Pods: pods, APIGrace: 500 * time.Millisecond}, k)
	r.waitReady()
	pods.States <- portforward.PodState{Err: errors.New("connect: connection refused")}
	err := r.waitExit(3 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "API server unreachable") {
		t.Fatalf("Run = %v, want an API-server-unreachable error", err)
	}
}

func TestWaitsForAReadyPod(t *testing.T) {
	pods := portforwardtest.NewPods(grafanaPod)
	notReady := fmt.Errorf("service monitoring/lightweight-monitoring-grafana: %w among 1 pod(s)", portforward.ErrNoReadyPod)
	pods.ResolveErrs = []error{notReady, notReady, notReady}
	k := portforwardtest.NewKubelet(grafana(t))
	r := start(t, portforward.Config{Pods: pods}, k)
	r.waitReady()
	if pods.Resolves() != 4 {
		t.Errorf("resolved %d times, want 4", pods.Resolves())
	}
	states := r.notifier.States()
	if len(states) == 0 || !strings.HasPrefix(states[0], "STATUS=waiting: ") || strings.Contains(states[0], "READY") {
		t.Errorf("notifications %q: want a waiting STATUS (once) before READY", states)
	}
	if got := strings.Count(r.logs.String(), "waiting for a Ready pod"); got != 1 {
		t.Errorf("logged the same wait %d times, want once", got)
	}
}

func TestGivesUpWithoutAReadyPod(t *testing.T) {
	pods := portforwardtest.NewPods(grafanaPod)
	pods.ResolveErr = fmt.Errorf("service monitoring/lightweight-monitoring-grafana: %w among 0 pod(s)", portforward.ErrNoReadyPod)
	k := portforwardtest.NewKubelet(grafana(t))
	r := start(t, portforward.Config{Pods: pods, StartTimeout: 300 * time.Millisecond}, k)
	err := r.waitExit(3 * time.Second)
	if !errors.Is(err, portforward.ErrNoReadyPod) || !strings.Contains(err.Error(), "after 300ms") {
		t.Fatalf("Run = %v, want no Ready pod after 300ms", err)
	}
	if len(k.Targets()) != 0 || r.notifier.Count("READY=1") != 0 {
		t.Errorf("dialled %v / notified %q without a pod", k.Targets(), r.notifier.States())
	}
}

func TestNoWatchdogNoPings(t *testing.T) {
	pods := portforwardtest.NewPods(grafanaPod)
	k := portforwardtest.NewKubelet(grafana(t))
	r := start(t, portforward.Config{Pods: pods, Watchdog: -1}, k)
	r.waitReady()
	time.Sleep(200 * time.Millisecond)
	if r.notifier.Count("WATCHDOG=1") != 0 {
		t.Error("pinged a watchdog that is not enabled")
	}
	pods.States <- portforward.PodState{Reason: "was deleted"}
	if err := r.waitExit(3 * time.Second); err == nil {
		t.Fatal("without a watchdog the forwarder must still exit when the pod goes away")
	}
}

func TestListensOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0", "192.168.1.10", "::", "example.com", ""} {
		err := portforward.Run(context.Background(), portforward.Config{Address: addr, Pods: portforwardtest.NewPods(grafanaPod)})
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Address %q: Run = %v, want a loopback-only refusal", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1", "127.0.0.53", "::1", "localhost"} {
		if !portforward.IsLoopback(addr) {
			t.Errorf("IsLoopback(%q) = false", addr)
		}
	}
}
