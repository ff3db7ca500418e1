// Package kube is homelab's only way to talk to the Kubernetes API (client-go):
// server-side apply with field manager "homelab", pruning of what homelab
// applied earlier and no longer wants, and waits that explain what is stuck.
package kube

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// FieldManager owns every field homelab applies.
const FieldManager = "homelab"

// SetLabel marks the objects homelab applied as one set, so that a later
// apply of the same set can prune what it no longer contains.
const SetLabel = "homelab.dev/set"

// Client is a connection to one cluster.
type Client struct {
	rest    *rest.Config
	typed   kubernetes.Interface
	dynamic dynamic.Interface
	meta    metadata.Interface // lists without the objects' bodies (CRDNames)
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	// Poll is how often waits look again; 500ms when zero.
	Poll time.Duration
}

// FromKubeconfig connects with a kubeconfig file (k3s: /etc/rancher/k3s/k3s.yaml).
func FromKubeconfig(path string) (*Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig %s: %w", path, err)
	}
	return New(cfg)
}

// New connects with a REST config.
func New(cfg *rest.Config) (*Client, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "homelab"
	}
	// Applies of many objects and waits poll often: client-go's default of
	// 5 QPS would make a no-op re-run slow for no benefit on one box.
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{
		rest: cfg, typed: typed, dynamic: dyn, meta: meta,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)),
	}, nil
}

// RESTConfig returns a copy of the client's REST config (for Helm).
func (c *Client) RESTConfig() *rest.Config { return rest.CopyConfig(c.rest) }

func (c *Client) poll() time.Duration {
	if c.Poll > 0 {
		return c.Poll
	}
	return 500 * time.Millisecond
}

// ServiceProxy returns the base URL (no trailing slash) of port (a name or
// number) of Service namespace/name through the API server's service proxy,
// /api/v1/namespaces/NS/services/NAME:PORT/proxy, and an HTTP client
// authenticated as the kubeconfig's user that times out after timeout.
func (c *Client) ServiceProxy(namespace, name, port string, timeout time.Duration) (string, *http.Client, error) {
	if namespace == "" || name == "" || port == "" {
		return "", nil, fmt.Errorf("service proxy: namespace, name and port are required (got %q, %q, %q)", namespace, name, port)
	}
	cfg := c.RESTConfig()
	cfg.Timeout = timeout
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return "", nil, fmt.Errorf("service proxy: %w", err)
	}
	return strings.TrimRight(cfg.Host, "/") + "/api/v1/namespaces/" + url.PathEscape(namespace) + "/services/" +
		url.PathEscape(name+":"+port) + "/proxy", client, nil
}
