// Package kubeapi is the small in-cluster Kubernetes API client the
// stand-ins share: the API server as a pod finds it (KUBERNETES_SERVICE_HOST
// and PORT, the service account's token and CA), plain JSON over HTTP.
// K8S_API_URL, K8S_TOKEN_FILE and K8S_CA_FILE override it for tests outside
// a cluster; SKIP_TLS_VERIFY=true skips the certificate check.
package kubeapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SADir is where Kubernetes mounts the pod's service account.
const SADir = "/var/run/secrets/kubernetes.io/serviceaccount"

type Client struct {
	Base      string
	tokenFile string
	// HC has a 30 s timeout; Watch has none (watches stay open).
	HC    *http.Client
	Watch *http.Client
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func New() (*Client, error) {
	base := os.Getenv("K8S_API_URL")
	if base == "" {
		h, p := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if h == "" {
			return nil, errors.New("not in a pod (KUBERNETES_SERVICE_HOST unset) and K8S_API_URL unset")
		}
		base = "https://" + net.JoinHostPort(h, p)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if b, _ := strconv.ParseBool(os.Getenv("SKIP_TLS_VERIFY")); b {
		tlsCfg.InsecureSkipVerify = true
	} else {
		caFile := env("K8S_CA_FILE", filepath.Join(SADir, "ca.crt"))
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("API server CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no certificate", caFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr := &http.Transport{TLSClientConfig: tlsCfg, Proxy: nil, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	return &Client{Base: strings.TrimSuffix(base, "/"), tokenFile: env("K8S_TOKEN_FILE", filepath.Join(SADir, "token")),
		HC: &http.Client{Transport: tr, Timeout: 30 * time.Second}, Watch: &http.Client{Transport: tr}}, nil
}

// StatusError is an answer other than 2xx.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("API server answered %d: %s", e.Code, e.Body)
}

// IsStatus reports whether err is an answer with this status code.
func IsStatus(err error, code int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == code
}

// Do sends one request; a non-2xx answer is a *StatusError. The caller
// closes the body of a successful answer.
func (c *Client) Do(ctx context.Context, hc *http.Client, method, path string, q url.Values, body []byte, contentType string) (*http.Response, error) {
	u := c.Base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	// Re-read each time: bound service account tokens are rotated.
	if tok, err := os.ReadFile(c.tokenFile); err == nil {
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		resp.Body.Close()
		return nil, &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	return resp, nil
}

// Namespace is the pod's namespace from its service account.
func Namespace() (string, error) {
	b, err := os.ReadFile(filepath.Join(SADir, "namespace"))
	return strings.TrimSpace(string(b)), err
}
