package portforward

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Target is the pod a forward goes to.
type Target struct {
	Namespace string
	Service   string
	Pod       string
	// UID tells the pod apart from a replacement of the same name (a
	// StatefulSet's), which a forward to the old one does not reach.
	UID types.UID
	// Port is the pod's port the service port maps to.
	Port uint16
}

func (t Target) String() string { return fmt.Sprintf("%s/%s:%d", t.Namespace, t.Pod, t.Port) }

// PodState is what the API server says about the target pod.
type PodState struct {
	// Healthy: the pod exists with the same UID, is not being deleted and is Ready.
	Healthy bool
	// Reason says why the pod is not healthy ("was deleted", "is not Ready: ...").
	Reason string
	// Err is set when the API server could not be asked: the state is unknown.
	Err error
}

// Pods finds the pod behind a Service and watches it. KubePods is the real
// one; tests of the lifecycle substitute their own.
type Pods interface {
	// Resolve returns a Ready pod behind the service and the pod port the
	// service port maps to. ErrNoReadyPod (wrapped) means: try again later.
	Resolve(ctx context.Context, namespace, service string, servicePort int32) (Target, error)
	// Watch sends the target's state to states whenever it may have changed,
	// and a state with Err whenever the API server cannot be reached, until
	// ctx ends.
	Watch(ctx context.Context, t Target, states chan<- PodState)
}

// ErrNoReadyPod means the service exists but no pod behind it is Ready (yet).
var ErrNoReadyPod = errors.New("no Ready pod")

// KubePods implements Pods with the API server.
type KubePods struct {
	Client kubernetes.Interface
	// Retry is the pause before asking the API server again after a failure
	// or a watch that ended early; 2s when zero.
	Retry time.Duration
	// WatchTimeout makes the API server end each watch after this long, so the
	// pod is re-read now and then even if a watch silently stalls; 5m when zero.
	WatchTimeout time.Duration
}

// NewKubePods is KubePods on its own clientset for cfg: the forward's
// watches are the one place that needs client-go's watch API itself.
func NewKubePods(cfg *rest.Config) (KubePods, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return KubePods{}, err
	}
	return KubePods{Client: cs}, nil
}

// Resolve implements Pods.
func (k KubePods) Resolve(ctx context.Context, namespace, service string, servicePort int32) (Target, error) {
	t := Target{Namespace: namespace, Service: service}
	svc, err := k.Client.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return t, fmt.Errorf("service %s/%s not found", namespace, service)
		}
		return t, fmt.Errorf("get service %s/%s: %w", namespace, service, err)
	}
	sp, err := servicePortOf(svc, servicePort)
	if err != nil {
		return t, err
	}
	if len(svc.Spec.Selector) == 0 {
		return t, fmt.Errorf("service %s/%s has no selector, so it has no pods to forward to", namespace, service)
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector).String()
	list, err := k.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return t, fmt.Errorf("list pods of service %s/%s: %w", namespace, service, err)
	}
	var ready []*corev1.Pod
	for i := range list.Items {
		if podHealthy(&list.Items[i]) == "" {
			ready = append(ready, &list.Items[i])
		}
	}
	if len(ready) == 0 {
		return t, fmt.Errorf("service %s/%s (selector %s): %w among %d pod(s)", namespace, service, sel, ErrNoReadyPod, len(list.Items))
	}
	// The oldest Ready pod has proven itself longest; during a rollout it is
	// still the one the rollout replaces last. Names break ties so the choice
	// is stable.
	sort.Slice(ready, func(i, j int) bool {
		ti, tj := ready[i].CreationTimestamp, ready[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return ready[i].Name < ready[j].Name
	})
	pod := ready[0]
	port, err := targetPort(pod, sp)
	if err != nil {
		return t, fmt.Errorf("service %s/%s: %w", namespace, service, err)
	}
	t.Pod, t.UID, t.Port = pod.Name, pod.UID, port
	return t, nil
}

func servicePortOf(svc *corev1.Service, port int32) (corev1.ServicePort, error) {
	var have []string
	for _, sp := range svc.Spec.Ports {
		if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
			continue // port-forward carries TCP only
		}
		if sp.Port == port {
			return sp, nil
		}
		have = append(have, fmt.Sprint(sp.Port))
	}
	return corev1.ServicePort{}, fmt.Errorf("service %s/%s has no TCP port %d (it has: %s)",
		svc.Namespace, svc.Name, port, strings.Join(have, ", "))
}

// targetPort maps a service port to the pod's port the way the Service does:
// a number is used as is (none means the service port), a name is looked up
// among the pod's container ports (Grafana's chart names it "http-web" or
// "grafana" depending on the version).
func targetPort(pod *corev1.Pod, sp corev1.ServicePort) (uint16, error) {
	tp := sp.TargetPort
	if tp.Type == intstr.String && tp.StrVal != "" {
		for _, c := range pod.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name == tp.StrVal && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) {
					return uint16(p.ContainerPort), nil
				}
			}
		}
		return 0, fmt.Errorf("port %d targets the named port %q, which no container of pod %s declares", sp.Port, tp.StrVal, pod.Name)
	}
	n := tp.IntValue()
	if n == 0 {
		n = int(sp.Port)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d targets port %d, which is not a valid port", sp.Port, n)
	}
	return uint16(n), nil
}

// podHealthy returns "" for a Ready pod that is not being deleted, else why not.
func podHealthy(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "is being deleted"
	}
	if p.Status.Phase != corev1.PodRunning {
		return fmt.Sprintf("is %s, not Running", p.Status.Phase)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			if c.Status == corev1.ConditionTrue {
				return ""
			}
			if c.Reason != "" {
				return "is not Ready (" + c.Reason + ")"
			}
			return "is not Ready"
		}
	}
	return "is not Ready"
}

func stateOf(t Target, p *corev1.Pod) PodState {
	if p.UID != t.UID {
		return PodState{Reason: fmt.Sprintf("was replaced by a new pod of the same name (uid %s, was %s)", p.UID, t.UID)}
	}
	if why := podHealthy(p); why != "" {
		return PodState{Reason: why}
	}
	return PodState{Healthy: true}
}

// Watch implements Pods: a Get, then a watch on that one pod from the Get's
// resource version, again and again. Every round trip that fails is
// reported, so the caller can tell an API server that stays away.
func (k KubePods) Watch(ctx context.Context, t Target, states chan<- PodState) {
	retry, timeout := k.Retry, k.WatchTimeout
	if retry <= 0 {
		retry = 2 * time.Second
	}
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	send := func(s PodState) bool {
		select {
		case states <- s:
			return true
		case <-ctx.Done():
			return false
		}
	}
	pause := func() bool {
		select {
		case <-time.After(retry):
			return true
		case <-ctx.Done():
			return false
		}
	}
	pods := k.Client.CoreV1().Pods(t.Namespace)
	for ctx.Err() == nil {
		pod, err := pods.Get(ctx, t.Pod, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			send(PodState{Reason: "was deleted"})
			return
		case err != nil:
			if ctx.Err() != nil || !send(PodState{Err: err}) || !pause() {
				return
			}
			continue
		}
		if !send(stateOf(t, pod)) {
			return
		}
		secs := int64(timeout / time.Second)
		w, err := pods.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", t.Pod).String(),
			ResourceVersion: pod.ResourceVersion,
			TimeoutSeconds:  &secs,
		})
		if err != nil {
			if ctx.Err() != nil || !send(PodState{Err: err}) || !pause() {
				return
			}
			continue
		}
		started := time.Now()
		if !k.follow(ctx, t, w, send) {
			return
		}
		// The watch ended (its timeout, an API server restart, an expired
		// resource version): read the pod afresh. Pause first if it ended
		// at once, so a misbehaving server is not hammered.
		if time.Since(started) < retry && !pause() {
			return
		}
	}
}

// follow relays one watch's events; false means stop watching altogether.
func (k KubePods) follow(ctx context.Context, t Target, w watch.Interface, send func(PodState) bool) bool {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case ev, ok := <-w.ResultChan():
			if !ok {
				return true
			}
			switch ev.Type {
			case watch.Deleted:
				send(PodState{Reason: "was deleted"})
				return false
			case watch.Added, watch.Modified:
				if p, ok := ev.Object.(*corev1.Pod); ok && !send(stateOf(t, p)) {
					return false
				}
			case watch.Error:
				return true // typically 410 Gone: the Get that follows starts over
			}
		}
	}
}
