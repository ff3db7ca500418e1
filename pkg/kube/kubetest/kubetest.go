// Package kubetest connects tests to the real API server of the test
// environment and stands in for the kubelet, which does not run there.
package kubetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// Client connects to the test environment's kube-apiserver
// (HOMELAB_TEST_KUBECONFIG); missing, the test fails in CI and skips elsewhere.
func Client(t testing.TB) *kube.Client {
	t.Helper()
	path := testutil.TestEnv(t, "HOMELAB_TEST_KUBECONFIG")
	c, err := kube.FromKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	c.Poll = 100 * time.Millisecond
	return c
}

// Namespace creates a fresh namespace for one test, deleted at cleanup.
func Namespace(t testing.TB, c *kube.Client) string {
	t.Helper()
	name := fmt.Sprintf("t-%s-%d", strings.ToLower(sanitize(t.Name())), time.Now().UnixNano()%1_000_000)
	if len(name) > 63 {
		name = name[len(name)-63:]
		name = "t" + strings.TrimLeft(name, "-")[1:]
	}
	if err := c.EnsureNamespace(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = Typed(c).CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, s)
}

// MarkPodsReady stands in for the kubelet: every pod matching selector in
// namespace is reported Running with all containers ready. It returns how
// many pods it marked.
func MarkPodsReady(ctx context.Context, c *kube.Client, namespace, selector string) (int, error) {
	return updatePods(ctx, c, namespace, selector, markReady)
}

func markReady(p *corev1.Pod) {
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.StartTime = &now
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	p.Status.ContainerStatuses = nil
	for _, ctr := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: ctr.Name, Image: ctr.Image, ImageID: ctr.Image, Ready: true, Started: boolPtr(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
}

// MarkPodsCrashLooping stands in for the kubelet reporting containers that
// keep dying: waiting in CrashLoopBackOff after being terminated for
// lastReason ("Error", "OOMKilled").
func MarkPodsCrashLooping(ctx context.Context, c *kube.Client, namespace, selector, lastReason string, restarts int32) (int, error) {
	return updatePods(ctx, c, namespace, selector, func(p *corev1.Pod) {
		now := metav1.Now()
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", LastTransitionTime: now},
		}
		p.Status.ContainerStatuses = nil
		for _, ctr := range p.Spec.Containers {
			exit := int32(1)
			if lastReason == "OOMKilled" {
				exit = 137
			}
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: ctr.Name, Image: ctr.Image, RestartCount: restarts,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
					Reason: "CrashLoopBackOff", Message: "back-off 5m0s restarting failed container=" + ctr.Name,
				}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: exit, Reason: lastReason, FinishedAt: now,
				}},
			})
		}
	})
}

func updatePods(ctx context.Context, c *kube.Client, namespace, selector string, mutate func(*corev1.Pod)) (int, error) {
	pods, err := Typed(c).CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		mutate(p)
		if _, err := Typed(c).CoreV1().Pods(namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			return n, fmt.Errorf("kubelet stand-in: update status of pod %s: %w", p.Name, err)
		}
		n++
	}
	return n, nil
}

// KeepPodsReady marks matching pods ready every interval until ctx ends, as
// a kubelet would for pods that start fine. Run it in a goroutine.
func KeepPodsReady(ctx context.Context, c *kube.Client, namespace, selector string) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		pods, err := Typed(c).CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err == nil {
			for i := range pods.Items {
				p := &pods.Items[i]
				if p.DeletionTimestamp == nil && !isReady(p) {
					markReady(p)
					_, _ = Typed(c).CoreV1().Pods(namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func boolPtr(b bool) *bool { return &b }

// RegisterReadyNode stands in for k3s's kubelet registering its node and
// reporting it Ready. The node is deleted at cleanup.
func RegisterReadyNode(t testing.TB, c *kube.Client, name string) {
	t.Helper()
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	created, err := Typed(c).CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Typed(c).CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	// The node controller edits new nodes too: retry on conflicts.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := Typed(c).CoreV1().Nodes().Get(ctx, created.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		cur.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}}
		_, err = Typed(c).CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FreeClusterIP picks a Service address in the test cluster's service range
// (10.43.0.0/16, as k3s) that no Service holds, at random among thousands:
// tests in other packages create Services in the same cluster at the same
// time, and a namespace being deleted keeps its Services for a while.
func FreeClusterIP(t testing.TB, c *kube.Client) string {
	t.Helper()
	svcs, err := Typed(c).CoreV1().Services("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list services: %v", err)
	}
	used := map[string]bool{}
	for _, s := range svcs.Items {
		for _, ip := range s.Spec.ClusterIPs {
			used[ip] = true
		}
	}
	for {
		n := rand.IntN(100 * 254)
		ip := fmt.Sprintf("10.43.%d.%d", 100+n/254, 1+n%254)
		if !used[ip] {
			return ip
		}
	}
}

// Typed is a clientset for c's cluster, for the fixtures tests set up that
// homelab itself never makes (nodes, pod status, Deployments by hand, ...):
// homelab's own code goes through kube.Client's verbs.
func Typed(c *kube.Client) kubernetes.Interface {
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		panic(fmt.Sprintf("kubetest: clientset for %s: %v", c.RESTConfig().Host, err))
	}
	return cs
}

// Dynamic is a dynamic client for c's cluster, for test fixtures.
func Dynamic(c *kube.Client) dynamic.Interface {
	d, err := dynamic.NewForConfig(c.RESTConfig())
	if err != nil {
		panic(fmt.Sprintf("kubetest: dynamic client for %s: %v", c.RESTConfig().Host, err))
	}
	return d
}
