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
	"k8s.io/apimachinery/pkg/util/wait"
)

// DefaultTimeout bounds a wait when the caller gives none.
const DefaultTimeout = 2 * time.Minute

// ErrTimeout is wrapped by every wait that ran out of time.
var ErrTimeout = errors.New("timed out")

// WaitEstablished waits until the named CRDs are established, so that
// objects of their kinds can be applied.
func (c *Client) WaitEstablished(ctx context.Context, names []string, timeout time.Duration) error {
	pending := ""
	err := c.pollFor(ctx, timeout, func(ctx context.Context) (bool, error) {
		for _, name := range names {
			u, err := c.dynamic.Resource(CRDResource).Get(ctx, name, metav1.GetOptions{})
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
			presence, err := c.Lookup(ctx, ref)
			if err != nil {
				// While CRDs go, discovery and reads can fail for a moment:
				// keep waiting, and say why if the time runs out.
				remaining = fmt.Sprintf("%s (%v)", ref, err)
				return false, nil
			}
			if presence != Absent {
				remaining = ref.String()
				return false, nil
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
	return c.WaitRolloutWith(ctx, namespace, name, RolloutOptions{Timeout: timeout, Progress: progress})
}

// RolloutOptions tune WaitRolloutWith.
type RolloutOptions struct {
	Timeout time.Duration
	// Progress, if not nil, hears each change of state: what is waited for.
	Progress func(string)
	// FailAfterRestarts, when above 0, ends the wait as soon as a new pod's
	// container has restarted this often (a crash loop), was restarted for
	// failing its startup probe, or waits for something that never comes by
	// itself (an image that is not there or cannot run): the outcome is
	// certain, waiting out the timeout only delays the rollback.
	FailAfterRestarts int32
	// Service, when set, is the Service in front of the pods: the rollout
	// is done only once it no longer sends requests to old pods (its
	// EndpointSlices list none of them as ready).
	Service string
}

// WaitRolloutWith waits until the Deployment's latest generation is fully
// available (and, with opts.Service, alone behind its Service). When the
// wait fails, the error is a *RolloutError naming the stuck pod and why.
func (c *Client) WaitRolloutWith(ctx context.Context, namespace, name string, opts RolloutOptions) error {
	last := ""
	var dep *appsv1.Deployment
	err := c.pollFor(ctx, opts.Timeout, func(ctx context.Context) (bool, error) {
		d, err := c.typed.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
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
		if opts.FailAfterRestarts > 0 || opts.Service != "" {
			var certain *RolloutError
			done, msg, certain = c.lookCloser(ctx, d, done, msg, opts)
			if certain != nil {
				return false, certain
			}
		}
		if msg != last && opts.Progress != nil {
			opts.Progress(msg)
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
	var certain *RolloutError
	if errors.As(err, &certain) {
		certain.LastEvent = c.lastEventOf(dctx, namespace, certain.Pod)
		certain.Err = errors.New("decided before the timeout: " + certain.Reason)
		return certain
	}
	rerr := c.diagnose(dctx, dep)
	rerr.Err = err
	if err.Error() == "ProgressDeadlineExceeded" && rerr.Reason == "NotReady" {
		rerr.Reason = "ProgressDeadlineExceeded"
	}
	return rerr
}

// lookCloser looks at the new revision's pods (for a certain failure and
// to say what is really waited for) and, when the Deployment is done, at
// the Service's endpoints.
func (c *Client) lookCloser(ctx context.Context, d *appsv1.Deployment, done bool, msg string, opts RolloutOptions) (bool, string, *RolloutError) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return done, msg, nil
	}
	hash := c.newestTemplateHash(ctx, d)
	pods, err := c.typed.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil || hash == "" || d.Status.ObservedGeneration < d.Generation {
		return done, msg, nil
	}
	var newPods []*corev1.Pod
	old, newReady := 0, 0
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
			if p.DeletionTimestamp == nil {
				old++
			}
			continue
		}
		newPods = append(newPods, p)
		if _, _, ready := podProblem(p); ready {
			newReady++
		}
		if opts.FailAfterRestarts > 0 {
			if e := c.certainFailure(ctx, d, p, opts.FailAfterRestarts); e != nil {
				return false, msg, e
			}
		}
	}
	want := 1
	if d.Spec.Replicas != nil {
		want = int(*d.Spec.Replicas)
	}
	switch {
	case newReady < want:
		msg = fmt.Sprintf("new build: %d of %d pods ready", newReady, want)
		for _, p := range newPods {
			if reason, detail, ready := podProblem(p); !ready && detail != "" {
				msg += fmt.Sprintf(" (%s: %s)", reason, detail)
				break
			}
		}
		if old > 0 {
			msg += fmt.Sprintf("; the old build keeps serving (%d pods)", old)
		}
	case old > 0:
		msg = fmt.Sprintf("new build ready; stopping %d old pods", old)
	case !done:
		msg = "new build ready; waiting for the stopping pods to leave"
	}
	if !done || opts.Service == "" {
		return done, msg, nil
	}
	if stale := c.oldEndpoints(ctx, d.Namespace, opts.Service, d.Name+"-"+hash+"-"); stale > 0 {
		return false, fmt.Sprintf("new build ready; waiting for Service %s to stop sending requests to %d old pods", opts.Service, stale), nil
	}
	return true, msg, nil
}

// certainFailure says why p can never become Ready, or nil while it still may.
func (c *Client) certainFailure(ctx context.Context, d *appsv1.Deployment, p *corev1.Pod, restarts int32) *RolloutError {
	fail := func(reason, detail string) *RolloutError {
		return &RolloutError{Deployment: d.Namespace + "/" + d.Name, Reason: reason, Pod: p.Name, Detail: detail}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && neverResolves[w.Reason] {
			detail := fmt.Sprintf("container %s: %s", cs.Name, w.Reason)
			if w.Message != "" {
				detail += ": " + w.Message
			}
			return fail(w.Reason, detail)
		}
		if cs.RestartCount >= restarts {
			reason, detail, _ := podProblem(p)
			if t := cs.LastTerminationState.Terminated; t != nil && reason != "OOMKilled" {
				// Between two crashes the container may be running: say
				// how it ended last time, not that it is not ready.
				reason = "CrashLoop"
				detail = fmt.Sprintf("container %s exited with code %d (%s)", cs.Name, t.ExitCode, t.Reason)
			} else if reason == "NotReady" || reason == "Ready" || reason == "Pending" {
				reason = "CrashLoop"
			}
			return fail(reason, fmt.Sprintf("%s, restarted %d times while rolling out", detail, cs.RestartCount))
		}
		if cs.RestartCount > 0 {
			// Killed for failing its startup probe: the build did not answer
			// its health path within app.startupSeconds.
			evs := c.podEvents(ctx, p.Namespace, p.Name)
			if killed := eventMatching(evs, "failed startup probe"); killed != "" {
				probe := eventMatching(evs, "Startup probe failed")
				if probe == "" {
					probe = killed
				}
				return fail("StartupProbeFailed", fmt.Sprintf("container %s did not answer its health check in time: %s", cs.Name, probe))
			}
		}
	}
	return nil
}

// neverResolves lists the waiting reasons a rollout cannot outwait: the
// image is not on the node (and is never pulled) or cannot be started.
var neverResolves = map[string]bool{
	"ErrImageNeverPull": true, "InvalidImageName": true, "CreateContainerConfigError": true,
	"CreateContainerError": true, "RunContainerError": true, "ErrImagePull": true, "ImagePullBackOff": true,
}

// oldEndpoints counts the ready endpoints of service whose pod's name does
// not start with newPrefix: old pods the Service still sends requests to.
func (c *Client) oldEndpoints(ctx context.Context, namespace, service, newPrefix string) int {
	slices, err := c.typed.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + service})
	if err != nil {
		return 0 // not knowable: the Deployment's own status decides
	}
	n := 0
	for _, s := range slices.Items {
		for _, ep := range s.Endpoints {
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			if ready && ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" && !strings.HasPrefix(ep.TargetRef.Name, newPrefix) {
				n++
			}
		}
	}
	return n
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
	pods, err := c.typed.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
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
	e.LastEvent = c.lastEventOf(ctx, worst.Namespace, worst.Name)
	return e
}

func (c *Client) newestTemplateHash(ctx context.Context, d *appsv1.Deployment) string {
	sel, _ := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	rss, err := c.typed.AppsV1().ReplicaSets(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
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

func (c *Client) lastEventOf(ctx context.Context, namespace, pod string) string {
	evs := c.podEvents(ctx, namespace, pod)
	if len(evs) == 0 {
		return ""
	}
	ev := evs[len(evs)-1]
	return ev.Reason + ": " + ev.Message
}

// eventMatching returns the newest message among evs (oldest first)
// containing text.
func eventMatching(evs []corev1.Event, text string) string {
	for i := len(evs) - 1; i >= 0; i-- {
		if strings.Contains(evs[i].Message, text) {
			return evs[i].Message
		}
	}
	return ""
}

// podEvents lists the events about a pod, oldest first.
func (c *Client) podEvents(ctx context.Context, namespace, pod string) []corev1.Event {
	if pod == "" {
		return nil
	}
	evs, err := c.typed.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + pod,
	})
	if err != nil {
		return nil
	}
	sort.Slice(evs.Items, func(i, j int) bool { return eventTime(&evs.Items[i]).Before(eventTime(&evs.Items[j])) })
	return evs.Items
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

// PodLogs returns the last lines of pod's container log: its previous run's
// when it has restarted (a crash), else the current one's; empty when no
// kubelet can give it.
func (c *Client) PodLogs(ctx context.Context, namespace, pod string, lines int64) string {
	for _, previous := range []bool{true, false} {
		if log := c.logs(ctx, namespace, pod, corev1.PodLogOptions{TailLines: &lines, Previous: previous}); log != "" {
			return log
		}
	}
	return ""
}

// ContainerLogs returns the last lines of the current run of one container
// of a pod with several (the API server refuses a log request that does not
// name one); empty when no kubelet can give it.
func (c *Client) ContainerLogs(ctx context.Context, namespace, pod, container string, lines int64) string {
	return c.logs(ctx, namespace, pod, corev1.PodLogOptions{Container: container, TailLines: &lines})
}

func (c *Client) logs(ctx context.Context, namespace, pod string, opts corev1.PodLogOptions) string {
	if pod == "" {
		return ""
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	data, err := c.typed.CoreV1().Pods(namespace).GetLogs(pod, &opts).DoRaw(lctx)
	if err != nil {
		return ""
	}
	return string(data)
}
