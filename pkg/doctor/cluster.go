package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"strings"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/layout"
)

// Cluster is what doctor asks the Kubernetes API (and Helm's release
// storage) about. pkg/kube and pkg/helm provide it; with none, the checks
// below are reported as skipped. Methods return ErrNotFound (wrapped or not)
// for an object that does not exist, and any other error when the API could
// not be asked. Each call is made under the check's timeout (ctx).
type Cluster interface {
	// ServerVersion asks the API server for its version: is it reachable.
	ServerVersion(ctx context.Context) (string, error)
	// Nodes lists the nodes with their Ready condition.
	Nodes(ctx context.Context) ([]Node, error)
	// Release is a Helm release's latest revision.
	Release(ctx context.Context, namespace, name string) (Release, error)
	// Pods lists the pods in namespace that match a label selector ("" for all).
	Pods(ctx context.Context, namespace, selector string) ([]Pod, error)
	// Deployment is a Deployment's rollout state and its current pods.
	Deployment(ctx context.Context, namespace, name string) (Deployment, error)
	// CRDEstablished reports whether a CustomResourceDefinition
	// ("probes.monitoring.coreos.com") exists and is Established.
	CRDEstablished(ctx context.Context, name string) (bool, error)
}

// ErrNotFound is what Cluster methods return for an object that does not exist.
var ErrNotFound = errors.New("not found")

// ServiceProxy is an optional interface of a Cluster: it reaches a Service's
// HTTP port through the API server's service proxy, so that doctor asks the
// in-cluster Prometheus and Alertmanager without a port-forward or a flag.
type ServiceProxy interface {
	// Services lists the Services in namespace that match a label selector.
	Services(ctx context.Context, namespace, selector string) ([]Service, error)
	// ProxyURL returns the base URL (no trailing slash) of port (a name or
	// a number) of Service namespace/name through the API server, and the
	// HTTP client, authenticated to the API server, that asks it. Requests
	// must carry a context with a deadline.
	ProxyURL(namespace, name, port string) (string, *http.Client, error)
}

// Service is a Kubernetes Service as doctor looks for one.
type Service struct {
	Name, Namespace string
	Labels          map[string]string
	Ports           []ServicePort
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Name string
	Port int32
}

// Node is a cluster node.
type Node struct {
	Name  string
	Ready bool
	// Reason and Message are the Ready condition's, when not Ready.
	Reason, Message string
}

// Release is a Helm release's latest revision.
type Release struct {
	Name, Namespace string
	// Status is Helm's: deployed, failed, pending-install, pending-upgrade, ...
	Status      string
	Chart       string // name-version, like kube-prometheus-stack-88.5.3
	Revision    int
	Description string
}

// Pod is a pod with what doctor reports about it.
type Pod struct {
	Name       string
	Phase      string // Pending, Running, ...
	Ready      bool
	Containers []Container
}

// Container is one container's status in a pod.
type Container struct {
	Name         string
	Ready        bool
	RestartCount int32
	// Waiting is the reason it is waiting ("CrashLoopBackOff",
	// "ImagePullBackOff", "ErrImageNeverPull"), "" when running.
	Waiting string
	// LastTermination is the reason of its previous termination
	// ("OOMKilled", "Error", "Completed"), "" when it never terminated;
	// LastExitCode goes with it.
	LastTermination string
	LastExitCode    int32
}

// Deployment is a Deployment's rollout state.
type Deployment struct {
	Name                                        string
	Replicas, ReadyReplicas, Available, Updated int32
	Pods                                        []Pod
}

// CRDs kube-prometheus-stack installs that homelab's objects and the
// operator need.
var monitoringCRDs = []string{
	"probes.monitoring.coreos.com",
	"prometheusrules.monitoring.coreos.com",
	"servicemonitors.monitoring.coreos.com",
	"podmonitors.monitoring.coreos.com",
	"prometheuses.monitoring.coreos.com",
	"alertmanagers.monitoring.coreos.com",
}

// clusterChecks are the checks that need the Kubernetes API. With no
// cluster and no error they are skipped; with an error (clusterErr: why
// there is no cluster) the API check fails with it and the rest are skipped
// because of that.
func clusterChecks(cfg *config.Config, cl Cluster, clusterErr error) []Check {
	c := &clusterCheck{cfg: cfg, cl: cl, err: clusterErr}
	checks := []Check{
		{ID: "k3s.api", Group: GroupK3s, Name: "API server", Needs: []string{"k3s.service"}, Run: c.wrap(c.api),
			TimeoutFix: "sudo systemctl restart k3s (journalctl -u k3s -n 50 shows why the API is slow)"},
		{ID: "k3s.node", Group: GroupK3s, Name: "node Ready", Needs: []string{"k3s.api"}, Run: c.wrap(c.nodes)},
		{ID: "monitoring.releases", Group: GroupMonitoring, Name: "Helm releases", Needs: []string{"k3s.api"}, Run: c.wrap(c.releases)},
		{ID: "monitoring.crds", Group: GroupMonitoring, Name: "CRDs", Needs: []string{"k3s.api"}, Run: c.wrap(c.crds)},
		{ID: "monitoring.pods", Group: GroupMonitoring, Name: "pods Ready", Needs: []string{"monitoring.releases"}, Run: c.wrap(c.pods)},
		{ID: "app.deployment", Group: GroupApp, Name: "Deployment", Needs: []string{"k3s.api"}, Run: c.wrap(c.deployment)},
	}
	if cl == nil && clusterErr == nil {
		// Each says why it did not run, rather than pointing at another.
		for i := range checks {
			checks[i].Needs = nil
		}
	}
	return checks
}

type clusterCheck struct {
	cfg *config.Config
	cl  Cluster
	err error
}

func (c *clusterCheck) wrap(f func(context.Context) Finding) func(context.Context) Finding {
	return func(ctx context.Context) Finding {
		switch {
		case c.cl == nil && c.err != nil:
			return noCluster(c.err)
		case c.cl == nil:
			return Skip("cluster checks not available")
		}
		return f(ctx)
	}
}

// noCluster is the finding when doctor could not connect to the cluster at all.
func noCluster(err error) Finding {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Fail("sudo homelab init", "k3s not installed or not running: %s missing", layout.K3sKubeconfig)
	case errors.Is(err, fs.ErrPermission):
		return Fail("sudo homelab doctor (the kubeconfig is readable by root only)", "cannot read %s: %v", layout.K3sKubeconfig, err)
	}
	return Fail("sudo systemctl restart k3s (it rewrites "+layout.K3sKubeconfig+"), or sudo homelab init",
		"cannot connect to k3s: %v", err)
}

func apiFail(err error) Finding {
	return Fail("sudo systemctl restart k3s (journalctl -u k3s -n 50 shows why)", "cannot ask the API server: %v", err)
}

func (c *clusterCheck) api(ctx context.Context) Finding {
	v, err := c.cl.ServerVersion(ctx)
	if err != nil {
		return apiFail(err)
	}
	return OK("API server %s answers", v)
}

func (c *clusterCheck) nodes(ctx context.Context) Finding {
	nodes, err := c.cl.Nodes(ctx)
	if err != nil {
		return apiFail(err)
	}
	if len(nodes) == 0 {
		return Fail("sudo systemctl restart k3s (journalctl -u k3s -n 50 shows why no node registered)", "no node is registered")
	}
	for _, n := range nodes {
		if !n.Ready {
			return Fail("journalctl -u k3s -n 50 (then sudo systemctl restart k3s)", "node %s is not Ready: %s %s", n.Name, n.Reason, n.Message)
		}
	}
	return OK("%d node(s) Ready", len(nodes))
}

func (c *clusterCheck) releases(ctx context.Context) Finding {
	m := c.cfg.Monitoring
	var ok []string
	for _, rel := range []string{m.Release, m.Blackbox.Release} {
		r, err := c.cl.Release(ctx, m.Namespace, rel)
		switch {
		case errors.Is(err, ErrNotFound):
			return Fail("sudo homelab init", "Helm release %s/%s is not installed", m.Namespace, rel)
		case err != nil:
			return apiFail(err)
		case r.Status != "deployed":
			return Fail(fmt.Sprintf("sudo homelab init (helm -n %s history %s shows what went wrong)", m.Namespace, rel),
				"Helm release %s/%s is %s: %s", m.Namespace, rel, r.Status, r.Description)
		}
		ok = append(ok, rel)
	}
	return OK("%s deployed", strings.Join(ok, " and "))
}

func (c *clusterCheck) crds(ctx context.Context) Finding {
	var missing []string
	for _, name := range monitoringCRDs {
		est, err := c.cl.CRDEstablished(ctx, name)
		switch {
		case errors.Is(err, ErrNotFound) || (err == nil && !est):
			missing = append(missing, name)
		case err != nil:
			return apiFail(err)
		}
	}
	if len(missing) > 0 {
		return Fail("sudo homelab init (applies the chart's CRDs server-side)", "missing or not Established: %s", strings.Join(missing, ", "))
	}
	return OK("%d prometheus-operator CRDs Established", len(monitoringCRDs))
}

func (c *clusterCheck) pods(ctx context.Context) Finding {
	ns := c.cfg.Monitoring.Namespace
	pods, err := c.cl.Pods(ctx, ns, "")
	if err != nil {
		return apiFail(err)
	}
	var bad []string
	for _, p := range pods {
		if !p.Ready && p.Phase != "Succeeded" {
			bad = append(bad, p.Name+" ("+podProblem(p)+")")
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		return Fail(fmt.Sprintf("sudo kubectl -n %s describe pod %s", ns, strings.SplitN(bad[0], " ", 2)[0]),
			"%d of %d pods in %s not Ready: %s", len(bad), len(pods), ns, strings.Join(bad, ", "))
	}
	if len(pods) == 0 {
		return Fail("sudo homelab init", "no pods in namespace %s", ns)
	}
	return OK("%d pods Ready in %s", len(pods), ns)
}

// podProblem says in a word or two why a pod is not Ready.
func podProblem(p Pod) string {
	for _, ct := range p.Containers {
		if ct.Waiting != "" {
			if ct.LastTermination != "" {
				return ct.Waiting + ", last " + ct.LastTermination
			}
			return ct.Waiting
		}
	}
	for _, ct := range p.Containers {
		if ct.LastTermination != "" {
			return "last " + ct.LastTermination
		}
	}
	return p.Phase
}

func (c *clusterCheck) deployment(ctx context.Context) Finding {
	a := c.cfg.App
	dep, err := c.cl.Deployment(ctx, a.Namespace, a.DeploymentName())
	logs := fmt.Sprintf("sudo kubectl -n %s logs deploy/%s --previous", a.Namespace, a.DeploymentName())
	switch {
	case errors.Is(err, ErrNotFound):
		return Fail("homelab deploy-app", "Deployment %s/%s does not exist", a.Namespace, a.DeploymentName())
	case err != nil:
		return apiFail(err)
	}
	var restarts int32
	var oom, crash string
	for _, p := range dep.Pods {
		for _, ct := range p.Containers {
			restarts += ct.RestartCount
			if ct.LastTermination == "OOMKilled" {
				oom = p.Name
			}
			if ct.Waiting == "CrashLoopBackOff" {
				crash = p.Name
			}
		}
	}
	switch {
	case oom != "":
		return Fail(fmt.Sprintf("raise app.resources.limits.memory (now %s) in homelab.yaml, then homelab deploy-app", a.Resources.Limits.Memory),
			"pod %s was OOMKilled (limit %s); %d restarts, %d/%d available", oom, a.Resources.Limits.Memory, restarts, dep.Available, dep.Replicas)
	case crash != "":
		return Fail(logs, "pod %s is in CrashLoopBackOff; %d restarts, %d/%d available", crash, restarts, dep.Available, dep.Replicas)
	case dep.Available < dep.Replicas:
		return Fail(fmt.Sprintf("sudo kubectl -n %s describe deploy/%s", a.Namespace, a.DeploymentName()),
			"%d of %d replicas available", dep.Available, dep.Replicas)
	case restarts > 0:
		return Warn(logs, "%d/%d available, but containers restarted %d times", dep.Available, dep.Replicas, restarts)
	}
	return OK("%d/%d replicas available, no restarts", dep.Available, dep.Replicas)
}
