// Package kubecluster answers doctor's questions about the cluster
// (doctor.Cluster and doctor.ServiceProxy) with client-go, through pkg/kube's
// client, and Helm's release storage.
package kubecluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/homelab-dev/homelab/pkg/doctor"
	"github.com/homelab-dev/homelab/pkg/kube"
)

// DefaultTimeout bounds each request that cannot take a context (Helm's
// release storage) and each proxied request, when New is given none.
const DefaultTimeout = 10 * time.Second

// Cluster is doctor's view of one cluster. Every method returns when its
// context ends; requests that cannot take a context are bounded by the
// timeout given to New as well.
type Cluster struct {
	kube *kube.Client
	// helm reads Helm's release storage (Secrets, as pkg/helm's engine
	// keeps it) with a client whose requests time out: Helm's storage
	// driver does not pass contexts on.
	helm kubernetes.Interface
	// timeout bounds each request through the service proxy.
	timeout time.Duration
}

var (
	_ doctor.Cluster      = (*Cluster)(nil)
	_ doctor.ServiceProxy = (*Cluster)(nil)
)

// New builds a Cluster on c. timeout bounds every request that does not take
// a context (DefaultTimeout when zero). It makes no request itself.
func New(c *kube.Client, timeout time.Duration) (*Cluster, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	cfg := c.RESTConfig()
	cfg.Timeout = timeout
	helmClient, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubecluster: %w", err)
	}
	return &Cluster{kube: c, helm: helmClient, timeout: timeout}, nil
}

// notFound turns the API's NotFound into doctor.ErrNotFound.
func notFound(err error, what string) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s: %w", what, doctor.ErrNotFound)
	}
	return err
}

// ServerVersion asks GET /version.
func (c *Cluster) ServerVersion(ctx context.Context) (string, error) {
	return c.kube.ServerVersion(ctx)
}

// Nodes lists the nodes, by name, with their Ready condition.
func (c *Cluster) Nodes(ctx context.Context) ([]doctor.Node, error) {
	list, err := c.kube.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	nodes := make([]doctor.Node, 0, len(list))
	for _, n := range list {
		node := doctor.Node{Name: n.Name, Reason: "NoReadyCondition", Message: "the kubelet has not reported Ready yet"}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				node.Ready = cond.Status == corev1.ConditionTrue
				node.Reason, node.Message = cond.Reason, cond.Message
			}
		}
		if node.Ready {
			node.Reason, node.Message = "", ""
		}
		nodes = append(nodes, node)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	return nodes, nil
}

// Release reads the latest revision of a Helm release from Helm's storage
// (Secrets in the release's namespace, the "secret" driver pkg/helm uses).
func (c *Cluster) Release(ctx context.Context, namespace, name string) (doctor.Release, error) {
	type answer struct {
		rel *release.Release
		err error
	}
	ch := make(chan answer, 1)
	go func() { // the storage driver takes no context: its client times out
		hist, err := storage.Init(driver.NewSecrets(c.helm.CoreV1().Secrets(namespace))).History(name)
		var last *release.Release
		for _, r := range hist {
			if last == nil || r.Version > last.Version {
				last = r
			}
		}
		if err == nil && last == nil {
			err = driver.ErrReleaseNotFound
		}
		ch <- answer{last, err}
	}()
	var a answer
	select {
	case a = <-ch:
	case <-ctx.Done():
		return doctor.Release{}, ctx.Err()
	}
	switch {
	case errors.Is(a.err, driver.ErrReleaseNotFound):
		return doctor.Release{}, fmt.Errorf("Helm release %s/%s: %w", namespace, name, doctor.ErrNotFound)
	case a.err != nil:
		return doctor.Release{}, fmt.Errorf("read Helm release %s/%s: %w", namespace, name, a.err)
	}
	r := doctor.Release{Name: a.rel.Name, Namespace: a.rel.Namespace, Revision: a.rel.Version}
	if a.rel.Info != nil {
		r.Status, r.Description = a.rel.Info.Status.String(), a.rel.Info.Description
	}
	if a.rel.Chart != nil && a.rel.Chart.Metadata != nil {
		r.Chart = a.rel.Chart.Metadata.Name + "-" + a.rel.Chart.Metadata.Version
	}
	return r, nil
}

// Pods lists the pods in namespace that match selector, by name.
func (c *Cluster) Pods(ctx context.Context, namespace, selector string) ([]doctor.Pod, error) {
	list, err := c.kube.Pods(ctx, namespace, selector)
	if err != nil {
		return nil, err
	}
	pods := make([]doctor.Pod, 0, len(list))
	for i := range list {
		pods = append(pods, convertPod(&list[i]))
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods, nil
}

func convertPod(p *corev1.Pod) doctor.Pod {
	pod := doctor.Pod{Name: p.Name, Phase: string(p.Status.Phase)}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			pod.Ready = cond.Status == corev1.ConditionTrue
		}
	}
	statuses := append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		ct := doctor.Container{Name: cs.Name, Ready: cs.Ready, RestartCount: cs.RestartCount}
		if w := cs.State.Waiting; w != nil {
			ct.Waiting = w.Reason
		}
		term := cs.LastTerminationState.Terminated
		if term == nil && cs.State.Terminated != nil && cs.State.Terminated.Reason != "Completed" {
			term = cs.State.Terminated // dead now, not restarted yet
		}
		if term != nil {
			ct.LastTermination, ct.LastExitCode = term.Reason, term.ExitCode
			if ct.LastTermination == "" {
				ct.LastTermination = fmt.Sprintf("exit code %d", term.ExitCode)
			}
		}
		pod.Containers = append(pod.Containers, ct)
	}
	return pod
}

// Deployment is a Deployment's rollout state and the pods its selector matches.
func (c *Cluster) Deployment(ctx context.Context, namespace, name string) (doctor.Deployment, error) {
	d, err := c.kube.Deployment(ctx, namespace, name)
	if err != nil {
		return doctor.Deployment{}, notFound(err, "Deployment "+namespace+"/"+name)
	}
	dep := doctor.Deployment{
		Name: d.Name, Replicas: 1,
		ReadyReplicas: d.Status.ReadyReplicas, Available: d.Status.AvailableReplicas, Updated: d.Status.UpdatedReplicas,
	}
	if d.Spec.Replicas != nil {
		dep.Replicas = *d.Spec.Replicas
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return doctor.Deployment{}, fmt.Errorf("Deployment %s/%s: selector: %w", namespace, name, err)
	}
	if dep.Pods, err = c.Pods(ctx, namespace, sel.String()); err != nil {
		return doctor.Deployment{}, err
	}
	return dep, nil
}

// CRDEstablished reports whether the CustomResourceDefinition exists and is
// Established.
func (c *Cluster) CRDEstablished(ctx context.Context, name string) (bool, error) {
	ok, err := c.kube.CRDEstablished(ctx, name)
	if err != nil {
		return false, notFound(err, "CustomResourceDefinition "+name)
	}
	return ok, nil
}

// Services lists the Services in namespace that match selector.
func (c *Cluster) Services(ctx context.Context, namespace, selector string) ([]doctor.Service, error) {
	list, err := c.kube.Services(ctx, namespace, selector)
	if err != nil {
		return nil, err
	}
	svcs := make([]doctor.Service, 0, len(list))
	for _, s := range list {
		svc := doctor.Service{Name: s.Name, Namespace: s.Namespace, Labels: s.Labels}
		for _, p := range s.Spec.Ports {
			svc.Ports = append(svc.Ports, doctor.ServicePort{Name: p.Name, Port: p.Port})
		}
		svcs = append(svcs, svc)
	}
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Name < svcs[j].Name })
	return svcs, nil
}

// ProxyURL is the API server's proxy for a Service port (kube.Client.ServiceProxy).
func (c *Cluster) ProxyURL(namespace, name, port string) (string, *http.Client, error) {
	return c.kube.ServiceProxy(namespace, name, port, c.timeout)
}
