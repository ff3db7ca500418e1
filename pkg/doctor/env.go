package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/render"
)

// Env is everything the checks look at. Only Config and Host are required.
type Env struct {
	Config *config.Config
	// Host runs commands and reads files (the real machine, or under --root).
	Host host.Host
	// Renderer renders what homelab would write, to compare with the disk.
	Renderer *render.Renderer
	// Cluster answers the checks that need the Kubernetes API (and Helm);
	// nil reports them as skipped.
	Cluster Cluster
	// ClusterError says why Cluster is nil: doctor could not connect to the
	// cluster (k3s's kubeconfig is missing, say: wrap fs.ErrNotExist). The
	// API check then fails with it, and the checks that need the API are
	// skipped naming that check.
	ClusterError error
	// PrometheusURL is Prometheus's HTTP API base URL. When "", doctor asks
	// the in-cluster Prometheus of the monitoring release through the API
	// server's service proxy if Cluster is a ServiceProxy, and skips the
	// checks that ask Prometheus otherwise. AlertmanagerURL likewise.
	PrometheusURL   string
	AlertmanagerURL string
	// NginxHTTPAddr and NginxHTTPSAddr are where Nginx is asked on this
	// machine (127.0.0.1:80 and 127.0.0.1:443 when empty).
	NginxHTTPAddr  string
	NginxHTTPSAddr string
	// Dial opens every network connection doctor makes (net.Dialer when nil).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// doctor is an Env made ready: defaults filled in, files rendered once.
type doctor struct {
	Env
	cfg      *config.Config
	rendered map[string]render.File
}

func newDoctor(env Env) (*doctor, error) {
	if env.Config == nil || env.Host == nil {
		return nil, errors.New("doctor: configuration and host are required")
	}
	if env.Renderer == nil {
		r, err := render.New()
		if err != nil {
			return nil, err
		}
		env.Renderer = r
	}
	if env.NginxHTTPAddr == "" {
		env.NginxHTTPAddr = "127.0.0.1:80"
	}
	if env.NginxHTTPSAddr == "" {
		env.NginxHTTPSAddr = "127.0.0.1:443"
	}
	if env.Dial == nil {
		env.Dial = (&net.Dialer{}).DialContext
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	env.PrometheusURL = strings.TrimRight(env.PrometheusURL, "/")
	env.AlertmanagerURL = strings.TrimRight(env.AlertmanagerURL, "/")
	files, err := env.Renderer.All(env.Config)
	if err != nil {
		return nil, fmt.Errorf("doctor: render the expected files: %w", err)
	}
	d := &doctor{Env: env, cfg: env.Config, rendered: map[string]render.File{}}
	for _, f := range files {
		d.rendered[f.Path] = f
	}
	return d, nil
}

// client returns an HTTP client that dials through Env.Dial, never uses a
// proxy from the environment, and does not follow redirects (callers that
// follow them do it themselves, to see each hop). With serverName set it
// speaks TLS to a loopback address without verifying the certificate (the
// certificate is checked by the tls checks, against the domain).
func (d *doctor) client(serverName string) *http.Client {
	tr := &http.Transport{
		DialContext:       d.Dial,
		DisableKeepAlives: true,
		ForceAttemptHTTP2: false,
	}
	if serverName != "" {
		tr.TLSClientConfig = &tls.Config{ServerName: serverName, InsecureSkipVerify: true} //nolint:gosec // loopback only
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get sends a GET and reads up to 1 MiB of the body.
func (d *doctor) get(ctx context.Context, c *http.Client, rawURL, hostHeader string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, err
	}
	if hostHeader != "" {
		req.Host = hostHeader
	}
	req.Header.Set("User-Agent", "homelab-doctor")
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, body, err
}

// netReason says in a few words why a network call failed.
func netReason(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return "connection closed without an answer"
	}
	return err.Error()
}

func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// run runs a command on the host; a non-zero exit still returns the output.
func (d *doctor) run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := d.Host.Run(ctx, host.Cmd{Name: name, Args: args})
	return strings.TrimSpace(string(out)), err
}

func notInstalled(err error) bool { return errors.Is(err, exec.ErrNotFound) }

// underRoot is the finding of a check whose command cannot run because
// --root points at a directory, not a running system.
func underRoot(err error) (Finding, bool) {
	if errors.Is(err, host.ErrCommandUnderRoot) {
		return Skip("commands are not run with --root"), true
	}
	return Finding{}, false
}

func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// firstDiff returns the 1-based line number of the first line where a and b
// differ, and b's line there.
func firstDiff(a, b []byte) (int, string) {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y || i >= len(al) || i >= len(bl) {
			return i + 1, strings.TrimSpace(y)
		}
	}
	return 0, ""
}

func gib(bytes uint64) string { return fmt.Sprintf("%.1f GiB", float64(bytes)/(1<<30)) }
