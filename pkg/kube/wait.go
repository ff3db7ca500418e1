package kube

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
)

// DefaultTimeout bounds a wait when the caller gives none.
const DefaultTimeout = 2 * time.Minute

// ErrTimeout is wrapped by every wait that ran out of time.
var ErrTimeout = errors.New("timed out")

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// WaitEstablished waits until the named CRDs are established, so that
// objects of their kinds can be applied.
func (c *Client) WaitEstablished(ctx context.Context, names []string, timeout time.Duration) error {
	pending := ""
	err := c.pollFor(ctx, timeout, func(ctx context.Context) (bool, error) {
		for _, name := range names {
			u, err := c.Dynamic.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				pending = name + ": " + err.Error()
				return false, nil
			}
			var crd apiextv1.CustomResourceDefinition
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &crd); err != nil {
				return false, err
			}
			if !crdEstablished(&crd) {
				pending = name + " is not established yet"
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for CRDs: %w (%s)", err, pending)
	}
	c.mapper.Reset() // the new kinds must be discoverable now
	return nil
}

func crdEstablished(crd *apiextv1.CustomResourceDefinition) bool {
	for _, cond := range crd.Status.Conditions {
		if cond.Type == apiextv1.Established && cond.Status == apiextv1.ConditionTrue {
			return true
		}
	}
	return false
}

// WaitDeleted waits until none of the objects exists any more.
func (c *Client) WaitDeleted(ctx context.Context, refs []Ref, timeout time.Duration) error {
	remaining := ""
	err := c.pollFor(ctx, timeout, func(ctx context.Context) (bool, error) {
		for _, ref := range refs {
			ri, namespaced, err := c.resource(ref.GVK)
			if err != nil {
				continue // the kind is gone, and so are its objects
			}
			if namespaced {
				_, err = ri.Namespace(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			} else {
				_, err = ri.Get(ctx, ref.Name, metav1.GetOptions{})
			}
			if err == nil {
				remaining = ref.String()
				return false, nil
			}
			if !apierrors.IsNotFound(err) {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for deletion: %w (%s still exists)", err, remaining)
	}
	return nil
}

// RolloutError says why a Deployment did not become available.
type RolloutError struct {
	Deployment string
	// Reason is a short cause: CrashLoopBackOff, OOMKilled, ErrImageNeverPull,
	// Unschedulable, NotReady, ProgressDeadlineExceeded, ...
	Reason string
	Pod    string
	// Detail is the most telling message: container state, condition or event.
	Detail string
	// LastEvent is the newest event about the stuck pod.
	LastEvent string
	Err       error
}

func (e *RolloutError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "deployment %s did not roll out: %s", e.Deployment, e.Reason)
	if e.Pod != "" {
		fmt.Fprintf(&b, " (pod %s)", e.Pod)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	if e.LastEvent != "" {
		fmt.Fprintf(&b, "; last event: %s", e.LastEvent)
	}
	return b.String()
}

func (e *RolloutError) Unwrap() error { return e.Err }

// WaitRollout waits until the Deployment's latest generation is fully
// available. progress, if not nil, hears each change of state. When the
// wait fails, the error is a *RolloutError naming the stuck pod and why.
func (c *Client) WaitRollout(ctx context.Context, namespace, name string, timeout time.Duration, progress func(string)) error {
	last := ""
	var dep *appsv1.Deployment
	err := c.pollFor(ctx, timeout, func(ctx context.Context) (bool, error) {
		d, err := c.Typed.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, err
		}
		if err != nil {
			// A slow or restarting API server is not a failed rollout:
			// keep asking until the timeout says otherwise.
			return false, nil
		}
		dep = d
		done, msg := rolloutStatus(d)
		if msg != last && progress != nil {
			progress(msg)
		}
		last = msg
		if cond := deploymentCondition(d, appsv1.DeploymentProgressing); cond != nil && cond.Reason == "ProgressDeadlineExceeded" {
			return false, errors.New("ProgressDeadlineExceeded")
		}
		return done, nil
	})
	if err == nil {
		return nil
	}
	if dep == nil {
		return fmt.Errorf("deployment %s/%s: %w", namespace, name, err)
	}
	// Diagnose with a fresh context: the wait's may be spent.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	rerr := c.diagnose(dctx, dep)
	rerr.Err = err
	if err.Error() == "ProgressDeadlineExceeded" && rerr.Reason == "NotReady" {
		rerr.Reason = "ProgressDeadlineExceeded"
	}
	return rerr
}

// rolloutStatus mirrors `kubectl rollout status` for Deployments.
func rolloutStatus(d *appsv1.Deployment) (bool, string) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	switch {
	case s.ObservedGeneration < d.Generation:
		return false, "waiting for the deployment spec update to be observed"
	case s.UpdatedReplicas < want:
		return false, fmt.Sprintf("%d of %d new replicas updated", s.UpdatedReplicas, want)
	case s.Replicas > s.UpdatedReplicas:
		return false, fmt.Sprintf("%d old replicas pending termination", s.Replicas-s.UpdatedReplicas)
	case s.AvailableReplicas < s.UpdatedReplicas:
		return false, fmt.Sprintf("%d of %d updated replicas available", s.AvailableReplicas, s.UpdatedReplicas)
	}
	return true, fmt.Sprintf("%d of %d replicas available", s.AvailableReplicas, want)
}

func deploymentCondition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

// diagnose finds the most broken pod of the Deployment's newest ReplicaSet
// and says what is wrong with it.
func (c *Client) diagnose(ctx context.Context, d *appsv1.Deployment) *RolloutError {
	e := &RolloutError{Deployment: d.Namespace + "/" + d.Name, Reason: "NotReady"}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		e.Detail = err.Error()
		return e
	}
	pods, err := c.Typed.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		e.Detail = "cannot list pods: " + err.Error()
		return e
	}
	hash := c.newestTemplateHash(ctx, d)
	var worst *corev1.Pod
	worstRank := -1
	for i := range pods.Items {
		p := &pods.Items[i]
		if hash != "" && p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
			continue
		}
		if r, _, _ := podProblem(p); rankOf(r) > worstRank {
			worst, worstRank = p, rankOf(r)
		}
	}
	if worst == nil {
		e.Reason, e.Detail = "NoPods", "no pod of the new revision exists yet"
		return e
	}
	e.Pod = worst.Name
	e.Reason, e.Detail, _ = podProblem(worst)
	e.LastEvent = c.lastEvent(ctx, worst)
	return e
}

func (c *Client) newestTemplateHash(ctx context.Context, d *appsv1.Deployment) string {
	sel, _ := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	rss, err := c.Typed.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return ""
	}
	best, bestRev := "", -1
	for _, rs := range rss.Items {
		var rev int
		fmt.Sscan(rs.Annotations["deployment.kubernetes.io/revision"], &rev)
		if rev > bestRev {
			best, bestRev = rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey], rev
		}
	}
	return best
}

// podProblem names what keeps a pod from being Ready, most specific first.
func podProblem(p *corev1.Pod) (reason, detail string, ready bool) {
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.LastTerminationState.Terminated; t != nil && t.Reason == "OOMKilled" {
			return "OOMKilled", fmt.Sprintf("container %s was killed for using more than its memory limit (restarts: %d)", cs.Name, cs.RestartCount), false
		}
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" {
			detail := fmt.Sprintf("container %s: %s", cs.Name, w.Reason)
			if w.Message != "" {
				detail += ": " + w.Message
			}
			if t := cs.LastTerminationState.Terminated; t != nil {
				detail += fmt.Sprintf(" (last exit code %d, %s; restarts: %d)", t.ExitCode, t.Reason, cs.RestartCount)
			}
			return w.Reason, detail, false
		}
	}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse {
			return "Unschedulable", cond.Message, false
		}
	}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			if cond.Status == corev1.ConditionTrue {
				return "Ready", "", true
			}
			msg := cond.Message
			if msg == "" {
				msg = "readiness probe has not succeeded"
			}
			return "NotReady", msg, false
		}
	}
	return "Pending", fmt.Sprintf("pod is %s and not started", p.Status.Phase), false
}

func rankOf(reason string) int {
	switch reason {
	case "Ready":
		return 0
	case "Pending":
		return 1
	case "NotReady":
		return 2
	}
	return 3 // a named failure: CrashLoopBackOff, OOMKilled, ErrImageNeverPull, ...
}

func (c *Client) lastEvent(ctx context.Context, p *corev1.Pod) string {
	evs, err := c.Typed.CoreV1().Events(p.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + p.Name,
	})
	if err != nil || len(evs.Items) == 0 {
		return ""
	}
	sort.Slice(evs.Items, func(i, j int) bool { return eventTime(&evs.Items[i]).Before(eventTime(&evs.Items[j])) })
	ev := evs.Items[len(evs.Items)-1]
	return ev.Reason + ": " + ev.Message
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func (c *Client) pollFor(ctx context.Context, timeout time.Duration, cond wait.ConditionWithContextFunc) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	err := wait.PollUntilContextTimeout(ctx, c.poll(), timeout, true, cond)
	if err != nil && wait.Interrupted(err) && ctx.Err() == nil {
		return fmt.Errorf("%w after %s", ErrTimeout, timeout)
	}
	return err
}
