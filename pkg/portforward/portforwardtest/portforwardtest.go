// Package portforwardtest stands in for what the test environment lacks: a
// kubelet that serves pods/portforward streams (Kubelet), and systemd's
// notify socket (Notifier). Pods gives the lifecycle a pod without an API
// server.
package portforwardtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	clientpf "k8s.io/client-go/tools/portforward"

	"github.com/homelab-dev/homelab/pkg/portforward"
)

// Kubelet serves port-forward connections the way the kubelet and containerd
// do: per forwarded connection an error stream and a data stream; the data is
// copied to and from Backend (the pod's port), and a failure to reach Backend
// is written on the error stream.
type Kubelet struct {
	mu sync.Mutex
	// backend is the address the pod's port stands for.
	backend string
	dialErr error
	conns   []*conn
	targets []portforward.Target
	served  int
	ports   []string
}

// NewKubelet forwards every pod's port to backend (host:port).
func NewKubelet(backend string) *Kubelet { return &Kubelet{backend: backend} }

// SetBackend changes where new streams go (a closed port makes them fail).
func (k *Kubelet) SetBackend(addr string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.backend = addr
}

// FailDials makes every new Dial fail with err (nil: succeed again).
func (k *Kubelet) FailDials(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dialErr = err
}

// Dial is a portforward.DialerFunc.
func (k *Kubelet) Dial(t portforward.Target) (httpstream.Dialer, error) {
	return dialer{k: k, t: t}, nil
}

// Drop closes every open connection, as a k3s restart or an idle timeout does.
func (k *Kubelet) Drop() {
	k.mu.Lock()
	conns := append([]*conn(nil), k.conns...)
	k.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// Targets lists the pods dialled, in order.
func (k *Kubelet) Targets() []portforward.Target {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]portforward.Target(nil), k.targets...)
}

// Served counts forwarded connections that reached the backend.
func (k *Kubelet) Served() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.served
}

// Ports lists the pod ports streams asked for (the port header).
func (k *Kubelet) Ports() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.ports...)
}

type dialer struct {
	k *Kubelet
	t portforward.Target
}

func (d dialer) Dial(protocols ...string) (httpstream.Connection, string, error) {
	d.k.mu.Lock()
	defer d.k.mu.Unlock()
	d.k.targets = append(d.k.targets, d.t)
	if d.k.dialErr != nil {
		return nil, "", &httpstream.UpgradeFailureError{Cause: d.k.dialErr}
	}
	ok := false
	for _, p := range protocols {
		ok = ok || p == clientpf.PortForwardProtocolV1Name
	}
	if !ok {
		return nil, "", fmt.Errorf("kubelet stand-in: no supported protocol in %v", protocols)
	}
	c := &conn{k: d.k, t: d.t, closed: make(chan bool), errStreams: map[string]*stream{}}
	d.k.conns = append(d.k.conns, c)
	return c, clientpf.PortForwardProtocolV1Name, nil
}

type conn struct {
	k *Kubelet
	t portforward.Target

	mu         sync.Mutex
	closed     chan bool
	isClosed   bool
	nextID     uint32
	errStreams map[string]*stream
	all        []*stream
	backends   []net.Conn
}

func (c *conn) CreateStream(h http.Header) (httpstream.Stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed {
		return nil, errors.New("kubelet stand-in: connection is closed")
	}
	c.nextID += 2
	s := newStream(c.nextID, h.Clone())
	c.all = append(c.all, s)
	id := h.Get(corev1.PortForwardRequestIDHeader)
	switch h.Get(corev1.StreamType) {
	case corev1.StreamTypeError:
		c.errStreams[id] = s
	case corev1.StreamTypeData:
		es := c.errStreams[id]
		delete(c.errStreams, id)
		if es == nil {
			return nil, fmt.Errorf("kubelet stand-in: data stream for request %s without an error stream", id)
		}
		go c.serve(h.Get(corev1.PortHeader), es, s)
	default:
		return nil, fmt.Errorf("kubelet stand-in: unknown stream type %q", h.Get(corev1.StreamType))
	}
	return s, nil
}

// serve mirrors containerd's PortForward: connect to the port, copy both
// ways, half-close towards the pod when the client is done sending.
func (c *conn) serve(port string, errS, data *stream) {
	c.k.mu.Lock()
	backend := c.k.backend
	c.k.ports = append(c.k.ports, port)
	c.k.mu.Unlock()

	b, err := net.DialTimeout("tcp", backend, 5*time.Second)
	if err != nil {
		fmt.Fprintf(errS.srvW, "error forwarding port %s to pod %s, uid %s: %v", port, c.t.Pod, c.t.UID, err)
		_ = errS.srvW.Close()
		_ = data.srvW.Close()
		return
	}
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		_ = b.Close()
		return
	}
	c.backends = append(c.backends, b)
	c.mu.Unlock()
	c.k.mu.Lock()
	c.k.served++
	c.k.mu.Unlock()

	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(b, data.srvR)
		if tc, ok := b.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(data.srvW, b)
		done <- struct{}{}
	}()
	// Like containerd: once one direction ends, the other gets a second to
	// finish before everything is closed.
	<-done
	select {
	case <-done:
	case <-time.After(time.Second):
	}
	_ = b.Close()
	_ = data.srvW.Close()
	_ = errS.srvW.Close()
}

func (c *conn) Close() error {
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return nil
	}
	c.isClosed = true
	close(c.closed)
	streams, backends := c.all, c.backends
	c.mu.Unlock()
	for _, s := range streams {
		_ = s.Reset()
	}
	for _, b := range backends {
		_ = b.Close()
	}
	return nil
}

func (c *conn) CloseChan() <-chan bool             { return c.closed }
func (c *conn) SetIdleTimeout(time.Duration)       {}
func (c *conn) RemoveStreams(...httpstream.Stream) {}

var errReset = errors.New("kubelet stand-in: stream reset")

// stream is one direction-aware stream: the client reads what the server
// writes and vice versa; Close ends only the client's sending side, as on
// SPDY.
type stream struct {
	id      uint32
	headers http.Header
	cliR    *io.PipeReader // client reads server's writes
	srvW    *io.PipeWriter
	srvR    *io.PipeReader // server reads client's writes
	cliW    *io.PipeWriter
}

func newStream(id uint32, h http.Header) *stream {
	cliR, srvW := io.Pipe()
	srvR, cliW := io.Pipe()
	return &stream{id: id, headers: h, cliR: cliR, srvW: srvW, srvR: srvR, cliW: cliW}
}

func (s *stream) Read(p []byte) (int, error)  { return s.cliR.Read(p) }
func (s *stream) Write(p []byte) (int, error) { return s.cliW.Write(p) }
func (s *stream) Close() error                { return s.cliW.Close() }
func (s *stream) Reset() error {
	_ = s.cliR.CloseWithError(errReset)
	_ = s.cliW.CloseWithError(errReset)
	_ = s.srvR.CloseWithError(errReset)
	_ = s.srvW.CloseWithError(errReset)
	return nil
}
func (s *stream) Headers() http.Header { return s.headers }
func (s *stream) Identifier() uint32   { return s.id }

// Notifier records what would have been sent to systemd.
type Notifier struct {
	mu     sync.Mutex
	states []string
	// OnNotify, when set, is called with each state as it is sent.
	OnNotify func(state string)
}

// Notify implements portforward.Notifier.
func (n *Notifier) Notify(state string) (bool, error) {
	n.mu.Lock()
	n.states = append(n.states, state)
	hook := n.OnNotify
	n.mu.Unlock()
	if hook != nil {
		hook(state)
	}
	return true, nil
}

// States returns everything sent so far.
func (n *Notifier) States() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.states...)
}

// Count counts the notifications that contain the assignment kv ("READY=1").
func (n *Notifier) Count(kv string) int {
	c := 0
	for _, s := range n.States() {
		for _, line := range strings.Split(s, "\n") {
			if line == kv {
				c++
			}
		}
	}
	return c
}

// Pods is a portforward.Pods without an API server: Resolve returns Target
// (or the next of ResolveErrs first, or ResolveErr always), Watch relays what
// the test sends on States.
type Pods struct {
	Target      portforward.Target
	ResolveErrs []error
	ResolveErr  error
	States      chan portforward.PodState

	mu       sync.Mutex
	resolves int
}

// NewPods returns Pods resolving to t.
func NewPods(t portforward.Target) *Pods {
	return &Pods{Target: t, States: make(chan portforward.PodState)}
}

// Resolve implements portforward.Pods.
func (p *Pods) Resolve(ctx context.Context, namespace, service string, servicePort int32) (portforward.Target, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resolves++
	if p.ResolveErr != nil {
		return portforward.Target{}, p.ResolveErr
	}
	if len(p.ResolveErrs) > 0 {
		err := p.ResolveErrs[0]
		p.ResolveErrs = p.ResolveErrs[1:]
		return portforward.Target{}, err
	}
	return p.Target, nil
}

// Resolves counts calls of Resolve.
func (p *Pods) Resolves() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resolves
}

// Watch implements portforward.Pods.
func (p *Pods) Watch(ctx context.Context, t portforward.Target, states chan<- portforward.PodState) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-p.States:
			select {
			case states <- s:
			case <-ctx.Done():
				return
			}
		}
	}
}
