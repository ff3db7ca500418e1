package alerting

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Rejection is a request a stand-in refused, answered as the real service
// answers it.
type Rejection struct {
	// Request is the method and path (secrets in the path are redacted).
	Request string
	// Status and Body are what the stand-in replied.
	Status int
	Body   string
	// Reason says which documented rule the request broke.
	Reason string
}

// standIn is the part every HTTP receiver shares: a server on 127.0.0.1
// that is closed when the test ends, and the list of rejected requests.
type standIn struct {
	t        testing.TB
	name     string
	server   *httptest.Server
	mu       sync.Mutex
	tolerate bool
	rejected inbox[Rejection]
}

// ServerOption changes how an HTTP stand-in serves.
type ServerOption func(*serverOptions)

type serverOptions struct {
	ca     *CA
	bearer string
}

// ServeTLS serves HTTPS with a certificate from ca (for 127.0.0.1), as
// the real services do; a client trusts it through WithCA(ca.CertFile).
func ServeTLS(ca *CA) ServerOption {
	return func(o *serverOptions) { o.ca = ca }
}

func newStandIn(t testing.TB, name string, handler http.HandlerFunc, opts []ServerOption) (*standIn, serverOptions) {
	t.Helper()
	var o serverOptions
	for _, opt := range opts {
		opt(&o)
	}
	s := &standIn{t: t, name: name}
	// httptest servers listen on 127.0.0.1:0.
	s.server = httptest.NewUnstartedServer(handler)
	if o.ca != nil {
		s.server.TLS = o.ca.ServerConfig(t)
		s.server.StartTLS()
	} else {
		s.server.Start()
	}
	t.Cleanup(s.server.Close)
	return s, o
}

// TolerateRejections lets the test continue when this stand-in refuses a
// request. Use it for tests that send bad requests on purpose, and check
// Rejections afterwards.
func (s *standIn) TolerateRejections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tolerate = true
}

// Rejections lists the requests refused so far.
func (s *standIn) Rejections() []Rejection { return s.rejected.all() }

// WaitRejections waits until at least n requests were refused.
func (s *standIn) WaitRejections(n int, timeout time.Duration) []Rejection {
	s.t.Helper()
	return s.rejected.wait(s.t, s.name+" rejections", n, timeout)
}

// reject answers like the real service and records why. Unless the test
// tolerates rejections, it fails the test: the sender broke the service's
// documented format.
func (s *standIn) reject(w http.ResponseWriter, r *http.Request, status int, contentType, body, reason string) {
	s.rejectAs(w, redactPath(r), status, contentType, body, reason)
}

func (s *standIn) rejectAs(w http.ResponseWriter, request string, status int, contentType, body, reason string) {
	// Recorded before replying, so a client that got the reply also finds it.
	s.rejected.add(Rejection{Request: request, Status: status, Body: body, Reason: reason})
	s.mu.Lock()
	tolerate := s.tolerate
	s.mu.Unlock()
	if !tolerate {
		s.t.Errorf("%s stand-in rejected %s with %d %s: %s", s.name, request, status, body, reason)
	}
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// redactPath hides path segments that carry credentials (webhook tokens,
// bot tokens) so failure messages do not print them.
func redactPath(r *http.Request) string {
	parts := strings.Split(r.URL.Path, "/")
	for i, p := range parts {
		if len(p) > 12 || strings.HasPrefix(p, "bot") && len(p) > 3 {
			parts[i] = "<redacted>"
		}
	}
	return r.Method + " " + strings.Join(parts, "/")
}

// inbox is a list that tests can wait on.
type inbox[T any] struct {
	mu      sync.Mutex
	items   []T
	changed chan struct{}
}

func (b *inbox[T]) add(v T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.items = append(b.items, v)
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
}

func (b *inbox[T]) all() []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]T(nil), b.items...)
}

// wait returns the items once there are at least n, or fails the test after
// timeout saying what it waited for.
func (b *inbox[T]) wait(t testing.TB, what string, n int, timeout time.Duration) []T {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		if len(b.items) >= n {
			items := append([]T(nil), b.items...)
			b.mu.Unlock()
			return items
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed, got := b.changed, len(b.items)
		b.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waited %s for %d %s, got %d", timeout, n, what, got)
			return nil
		}
	}
}
