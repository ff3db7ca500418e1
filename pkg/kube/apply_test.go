package kube_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/kube/kubetest"
)

func manifests(t *testing.T, ns, text string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := kube.Decode([]byte(strings.ReplaceAll(text, "NS", ns)))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

const setYAML = `
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: NS}
data: {color: blue}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: extra, namespace: NS}
data: {a: b}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: NS}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:1", imagePullPolicy: Never}]
`

func count(results []kube.Result, pred func(kube.Result) bool) int {
	n := 0
	for _, r := range results {
		if pred(r) {
			n++
		}
	}
	return n
}

func changed(r kube.Result) bool { return r.Changed }

func TestApplyReapplyAndPrune(t *testing.T) {
	c := kubetest.Client(t)
	ns := kubetest.Namespace(t, c)
	ctx := context.Background()
	set := "test-" + ns
	opts := kube.ApplyOptions{Set: set, Prune: true}

	res, err := c.Apply(ctx, manifests(t, ns, setYAML), opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(res, func(r kube.Result) bool { return r.Created }); n != 3 {
		t.Fatalf("first apply created %d objects, want 3: %+v", n, res)
	}
	res, err = c.Apply(ctx, manifests(t, ns, setYAML), opts)
	if err != nil || count(res, changed) != 0 {
		t.Fatalf("re-apply changed %d objects (%v), want none: %+v", count(res, changed), err, res)
	}
	// A changed value changes exactly that object.
	res, err = c.Apply(ctx, manifests(t, ns, strings.Replace(setYAML, "color: blue", "color: red", 1)), opts)
	if err != nil || count(res, changed) != 1 {
		t.Fatalf("changed value: %d changed (%v): %+v", count(res, changed), err, res)
	}
	// Dropping an object from the set prunes it, and only it.
	without := strings.Replace(setYAML, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: NS}\ndata: {a: b}\n", "", 1)
	res, err = c.Apply(ctx, manifests(t, ns, strings.Replace(without, "color: blue", "color: red", 1)), opts)
	if err != nil {
		t.Fatal(err)
	}
	if pruned := count(res, func(r kube.Result) bool { return r.Pruned }); pruned != 1 {
		t.Fatalf("pruned %d, want 1: %+v", pruned, res)
	}
	if err := c.WaitDeleted(ctx, []kube.Ref{{GVK: schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, Namespace: ns, Name: "extra"}}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := kubetest.Typed(c).CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{}); err != nil {
		t.Fatalf("kept object was deleted: %v", err)
	}
}

func TestPruneSparesObjectsHomelabDidNotApply(t *testing.T) {
	c := kubetest.Client(t)
	ns := kubetest.Namespace(t, c)
	ctx := context.Background()
	set := "test-" + ns
	// Someone copies our label onto their own object.
	theirs := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "theirs", Namespace: ns, Labels: map[string]string{kube.SetLabel: set}}}
	if _, err := kubetest.Typed(c).CoreV1().ConfigMaps(ns).Create(ctx, theirs, metav1.CreateOptions{FieldManager: "kubectl-create"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, manifests(t, ns, setYAML), kube.ApplyOptions{Set: set, Prune: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := kubetest.Typed(c).CoreV1().ConfigMaps(ns).Get(ctx, "theirs", metav1.GetOptions{}); err != nil {
		t.Fatalf("pruned an object homelab never applied: %v", err)
	}
}

func TestApplyCreatesMissingNamespace(t *testing.T) {
	c := kubetest.Client(t)
	ctx := context.Background()
	ns := fmt.Sprintf("t-newns-%d", time.Now().UnixNano()%1_000_000)
	t.Cleanup(func() {
		_ = kubetest.Typed(c).CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	if _, err := c.Apply(ctx, manifests(t, ns, setYAML)[:1], kube.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kubetest.Typed(c).CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestApplyCRDThenItsObjectsInOneCall(t *testing.T) {
	c := kubetest.Client(t)
	ns := kubetest.Namespace(t, c)
	ctx := context.Background()
	group := strings.ReplaceAll(ns, "-", "") + ".homelab.dev"
	crd := fmt.Sprintf(`
apiVersion: example.%[1]s/v1
kind: Widget
metadata: {name: w1, namespace: %[2]s}
spec: {size: 3}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.%[1]s}
spec:
  group: example.%[1]s
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, properties: {size: {type: integer}}}
`, group, ns)
	objs, err := kube.Decode([]byte(crd))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = kubetest.Dynamic(c).Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).
			Delete(context.Background(), "widgets.example."+group, metav1.DeleteOptions{})
	})
	// The CR comes first in the file; Apply must still apply the CRD first.
	if _, err := c.Apply(ctx, objs, kube.ApplyOptions{Timeout: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Apply(ctx, objs, kube.ApplyOptions{})
	if err != nil || count(res, changed) != 0 {
		t.Fatalf("re-apply with CRD: %d changed, %v", count(res, changed), err)
	}
}

func TestConflictWithAHandEdit(t *testing.T) {
	c := kubetest.Client(t)
	ns := kubetest.Namespace(t, c)
	ctx := context.Background()
	objs := manifests(t, ns, setYAML)[:1]
	if _, err := c.Apply(ctx, objs, kube.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// Someone applies their own value for the same field.
	patch := []byte(fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":%q},"data":{"color":"green"}}`, ns))
	force := true
	if _, err := kubetest.Typed(c).CoreV1().ConfigMaps(ns).Patch(ctx, "settings", types.ApplyPatchType, patch, metav1.PatchOptions{FieldManager: "kubectl", Force: &force}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Apply(ctx, objs, kube.ApplyOptions{})
	var conflict *kube.ConflictError
	if !errors.As(err, &conflict) || !strings.Contains(err.Error(), "kubectl") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("err %v, want a ConflictError naming the other manager and --force", err)
	}
	if _, err := c.Apply(ctx, objs, kube.ApplyOptions{Force: true}); err != nil {
		t.Fatalf("forced apply: %v", err)
	}
	cm, _ := kubetest.Typed(c).CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
	if cm.Data["color"] != "blue" {
		t.Fatalf("color %q after forced apply", cm.Data["color"])
	}
}

func deployment(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: name + ":1", ImagePullPolicy: corev1.PullNever}}},
			},
		},
	}
}

func applyTyped(t *testing.T, c *kube.Client, d *appsv1.Deployment) {
	t.Helper()
	u, err := kube.ToUnstructured(d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(context.Background(), []*unstructured.Unstructured{u}, kube.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestWaitRolloutSucceedsWhenPodsBecomeReady(t *testing.T) {
	c := kubetest.Client(t)
	ns := kubetest.Namespace(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	applyTyped(t, c, deployment(ns, "web", 2))
	go kubetest.KeepPodsReady(ctx, c, ns, "app=web")
	var progress []string
	if err := c.WaitRollout(ctx, ns, "web", 30*time.Second, func(s string) { progress = append(progress, s) }); err != nil {
		t.Fatalf("%v (progress %v)", err, progress)
	}
	if len(progress) == 0 || progress[len(progress)-1] != "2 of 2 replicas available" {
		t.Errorf("progress %v", progress)
	}
}

func TestWaitRolloutExplainsCrashLoop(t *testing.T) {
	c := kubetest.Client(t)
	ns := kubetest.Namespace(t, c)
	ctx := context.Background()
	applyTyped(t, c, deployment(ns, "web", 1))
	markCrashLooping(t, c, ns, "OOMKilled", 4)
	err := c.WaitRollout(ctx, ns, "web", 2*time.Second, nil)
	var rerr *kube.RolloutError
	if !errors.As(err, &rerr) || rerr.Reason != "OOMKilled" || rerr.Pod == "" || !errors.Is(err, kube.ErrTimeout) {
		t.Fatalf("err %v, want a RolloutError with reason OOMKilled, the pod, and a timeout", err)
	}
	if !strings.Contains(err.Error(), "memory limit") {
		t.Errorf("message does not explain OOMKilled: %v", err)
	}
}

// markCrashLooping waits (at most 20s) for the controller to create the pod
// of Deployment web, then makes it crash-loop as a kubelet would report.
func markCrashLooping(t *testing.T, c *kube.Client, ns, reason string, restarts int32) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := kubetest.MarkPodsCrashLooping(context.Background(), c, ns, "app=web", reason, restarts)
		if err == nil && n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pod of deployment %s/web to mark crash-looping after 20s (last error: %v)", ns, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestWaitRolloutWithNoPodsSaysSo(t *testing.T) {
	c := kubetest.Client(t)
	ns := kubetest.Namespace(t, c)
	err := c.WaitRollout(context.Background(), ns, "missing", time.Second, nil)
	if err == nil || !apierrors.IsNotFound(errors.Unwrap(err)) && !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err %v", err)
	}
}

// TestWaitRolloutFailsFastOnACertainFailure: a crash loop ends the wait at
// once, long before its timeout, with the reason.
func TestWaitRolloutFailsFastOnACertainFailure(t *testing.T) {
	c := kubetest.Client(t)
	ns := kubetest.Namespace(t, c)
	ctx := context.Background()
	applyTyped(t, c, deployment(ns, "web", 1))
	markCrashLooping(t, c, ns, "Error", 2)
	err := c.WaitRolloutWith(ctx, ns, "web", kube.RolloutOptions{Timeout: 2 * time.Minute, FailAfterRestarts: 2})
	var rerr *kube.RolloutError
	if !errors.As(err, &rerr) || rerr.Reason != "CrashLoop" || rerr.Pod == "" || !strings.Contains(rerr.Detail, "exited with code 1") {
		t.Fatalf("err %v, want a RolloutError with reason CrashLoop, the pod and its exit code", err)
	}
	if errors.Is(err, kube.ErrTimeout) {
		t.Fatalf("the wait ran out its 2 minutes on a crash loop: %v", err)
	}
	// Without the option the same pod is waited for, until the timeout.
	err = c.WaitRollout(ctx, ns, "web", time.Second, nil)
	if !errors.Is(err, kube.ErrTimeout) {
		t.Fatalf("plain wait: err %v, want a timeout", err)
	}
}

// TestWaitRolloutWaitsForTheServiceToDropOldPods: with RolloutOptions.Service
// the rollout is done only once the Service's endpoints list no old pod as
// ready, and the progress says that this is what is waited for.
func TestWaitRolloutWaitsForTheServiceToDropOldPods(t *testing.T) {
	c := kubetest.Client(t)
	ns := kubetest.Namespace(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	applyTyped(t, c, deployment(ns, "web", 1))
	go kubetest.KeepPodsReady(ctx, c, ns, "app=web")
	if err := c.WaitRollout(ctx, ns, "web", 30*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	// An endpoint slice (as the EndpointSlice controller would keep it)
	// that still sends requests to a pod of an older ReplicaSet.
	ready := true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "web-old", Namespace: ns, Labels: map[string]string{
			"kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "homelab-test"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.42.0.9"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-0ld0ld0ld-abcde"}}},
	}
	if _, err := kubetest.Typed(c).DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- c.WaitRolloutWith(ctx, ns, "web", kube.RolloutOptions{Timeout: 30 * time.Second, Service: "web", Progress: func(s string) {
			if strings.Contains(s, "stop sending requests to 1 old pods") {
				once.Do(func() { close(waiting) })
			}
		}})
	}()
	select {
	case <-waiting:
	case err := <-done:
		t.Fatalf("the rollout ended (%v) while the Service still sent requests to an old pod", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no progress saying the old pod still gets requests within 20s")
	}
	// The endpoint goes not-ready (the pod is terminating): done.
	ready = false
	cur, err := kubetest.Typed(c).DiscoveryV1().EndpointSlices(ns).Get(ctx, "web-old", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Endpoints[0].Conditions.Ready = &ready
	if _, err := kubetest.Typed(c).DiscoveryV1().EndpointSlices(ns).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the rollout did not end within 20s after the old endpoint went not-ready")
	}
}
