package portforward

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	clientpf "k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// DialerFunc opens the streaming connection to one pod's port-forward
// endpoint. KubeDialer is the real one; tests stand in for the kubelet.
type DialerFunc func(t Target) (httpstream.Dialer, error)

// KubeDialer dials pods/portforward through the API server the way kubectl
// 1.37 does: SPDY tunnelled over a WebSocket first (it passes proxies and
// carries pings), plain SPDY when the server cannot upgrade to WebSockets.
func KubeDialer(cfg *rest.Config) (DialerFunc, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return func(t Target) (httpstream.Dialer, error) {
		u := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(t.Namespace).Name(t.Pod).SubResource("portforward").URL()
		transport, upgrader, err := spdy.RoundTripperFor(cfg)
		if err != nil {
			return nil, err
		}
		spdyDialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
		wsDialer, err := clientpf.NewSPDYOverWebsocketDialer(u, cfg)
		if err != nil {
			return nil, err
		}
		return clientpf.NewFallbackDialer(wsDialer, spdyDialer, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		}), nil
	}, nil
}

// observedDialer wraps the dialer handed to client-go's PortForwarder so the
// forwarder can see what the PortForwarder only logs through klog: that the
// connection was closed (client-go closes it on the first stream error) and
// the error the kubelet sent back for a stream ("connection refused" from
// the pod's port, "failed to find sandbox" after a pod restart).
type observedDialer struct {
	httpstream.Dialer

	mu     sync.Mutex
	conn   *observedConn
	failed error // first stream failure, kept for the exit message
	closed bool
}

func (d *observedDialer) Dial(protocols ...string) (httpstream.Connection, string, error) {
	c, proto, err := d.Dialer.Dial(protocols...)
	if err != nil {
		return nil, proto, err
	}
	oc := &observedConn{Connection: c, d: d}
	d.mu.Lock()
	d.conn = oc
	d.mu.Unlock()
	return oc, proto, nil
}

func (d *observedDialer) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failed == nil {
		d.failed = err
	}
}

// broken returns why the connection is no longer usable, or nil while it is.
func (d *observedDialer) broken() error {
	d.mu.Lock()
	conn, failed, closed := d.conn, d.failed, d.closed
	d.mu.Unlock()
	if failed != nil {
		return failed
	}
	if closed {
		return clientpf.ErrLostConnectionToPod
	}
	if conn != nil {
		select {
		case <-conn.CloseChan():
			return clientpf.ErrLostConnectionToPod
		default:
		}
	}
	return nil
}

// cause is the most telling reason the forward ended: the kubelet's own
// message when there was one.
func (d *observedDialer) cause(err error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failed != nil {
		return d.failed
	}
	return err
}

type observedConn struct {
	httpstream.Connection
	d *observedDialer
}

func (c *observedConn) CreateStream(h http.Header) (httpstream.Stream, error) {
	s, err := c.Connection.CreateStream(h)
	if err != nil {
		c.d.fail(fmt.Errorf("open a stream to the pod: %w", err))
		return nil, err
	}
	if h.Get(corev1.StreamType) == corev1.StreamTypeError {
		return &errorStream{Stream: s, d: c.d, port: h.Get(corev1.PortHeader)}, nil
	}
	return s, nil
}

func (c *observedConn) Close() error {
	c.d.mu.Lock()
	c.d.closed = true
	c.d.mu.Unlock()
	return c.Connection.Close()
}

// errorStream records what the kubelet writes on a connection's error
// stream; client-go reads it to the end, then closes the connection when
// it was not empty.
type errorStream struct {
	httpstream.Stream
	d    *observedDialer
	port string
	mu   sync.Mutex
	msg  strings.Builder
}

func (s *errorStream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	s.mu.Lock()
	s.msg.Write(p[:n])
	if errors.Is(err, io.EOF) && s.msg.Len() > 0 {
		s.d.fail(fmt.Errorf("the kubelet could not forward to pod port %s: %s", s.port, strings.TrimSpace(s.msg.String())))
	}
	s.mu.Unlock()
	return n, err
}
