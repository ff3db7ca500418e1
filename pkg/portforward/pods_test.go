package portforward_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/kube/kubetest"
	"github.com/homelab-dev/homelab/pkg/portforward"
	"github.com/homelab-dev/homelab/pkg/portforward/portforwardtest"
)

// The tests in this file run against the test environment's real API server.
// It has no kubelet: kubetest marks pods Ready, and the port-forward streams
// go to the kubelet stand-in.

const grafanaSelector = "app.kubernetes.io/name=grafana"

var grafanaLabels = map[string]string{"app.kubernetes.io/name": "grafana"}

func createPod(t *testing.T, c *kube.Client, ns, name string, labels map[string]string, ports ...corev1.ContainerPort) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "grafana", Image: "grafana/grafana:13.2.0", Ports: ports},
		}},
	}
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := kubetest.Typed(c).CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err == nil {
			return out
		}
		// A fresh namespace's default ServiceAccount appears a moment after
		// the namespace; admission refuses pods until then.
		if !strings.Contains(err.Error(), "serviceaccount") || time.Now().After(deadline) {
			t.Fatalf("create pod %s: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func createService(t *testing.T, c *kube.Client, ns, name string, selector map[string]string, port int32, target intstr.IntOrString) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports:    []corev1.ServicePort{{Name: "http-web", Port: port, TargetPort: target, Protocol: corev1.ProtocolTCP}},
		},
	}
	if _, err := kubetest.Typed(c).CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func markReady(t *testing.T, c *kube.Client, ns, selector string) {
	t.Helper()
	if n, err := kubetest.MarkPodsReady(context.Background(), c, ns, selector); err != nil || n == 0 {
		t.Fatalf("mark pods %s ready: %d, %v", selector, n, err)
	}
}

// setReady sets one pod's Ready condition, as the kubelet does when a
// readiness probe starts or stops passing.
func setReady(t *testing.T, c *kube.Client, ns, name string, ready bool) {
	t.Helper()
	ctx := context.Background()
	p, err := kubetest.Typed(c).CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			p.Status.Conditions[i].Status = corev1.ConditionFalse
			p.Status.Conditions[i].Reason = "ContainersNotReady"
			if ready {
				p.Status.Conditions[i].Status, p.Status.Conditions[i].Reason = corev1.ConditionTrue, ""
			}
		}
	}
	if _, err := kubetest.Typed(c).CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// grafanaService is the chart's shape: port 80 to the container port named
// http-web (3000).
func grafanaService(t *testing.T, c *kube.Client, ns string, pods ...string) {
	t.Helper()
	createService(t, c, ns, "lightweight-monitoring-grafana", grafanaLabels, 80, intstr.FromString("http-web"))
	for _, name := range pods {
		createPod(t, c, ns, name, grafanaLabels, corev1.ContainerPort{Name: "http-web", ContainerPort: 3000, Protocol: corev1.ProtocolTCP})
	}
}

func TestResolveMapsTheServicePortToThePod(t *testing.T) {
	c := kubetest.Client(t)
	ns := kubetest.Namespace(t, c)
	ctx := context.Background()
	pods := portforward.KubePods{Client: kubetest.Typed(c)}

	createPod(t, c, ns, "grafana-a", grafanaLabels,
		corev1.ContainerPort{Name: "metrics", ContainerPort: 9090},
		corev1.ContainerPort{Name: "http-web", ContainerPort: 3000})
	createPod(t, c, ns, "other", map[string]string{"app": "other"}, corev1.ContainerPort{Name: "http-web", ContainerPort: 4000})
	markReady(t, c, ns, grafanaSelector)
	markReady(t, c, ns, "app=other")

	for _, tc := range []struct {
		name   string
		target intstr.IntOrString
		want   uint16
	}{
		{"named", intstr.FromString("http-web"), 3000},
		{"numbered", intstr.FromInt32(3000), 3000},
		{"unset", intstr.IntOrString{}, 80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := "grafana-" + tc.name
			createService(t, c, ns, svc, grafanaLabels, 80, tc.target)
			got, err := pods.Resolve(ctx, ns, svc, 80)
			if err != nil {
				t.Fatal(err)
			}
			if got.Pod != "grafana-a" || got.Port != tc.want || got.UID == "" || got.Namespace != ns || got.Service != svc {
				t.Errorf("Resolve = %+v, want pod grafana-a port %d with its UID", got, tc.want)
			}
		})
	}
}

func TestResolvePicksAReadyPodOnly(t *testing.T) {
	c := kubetest.Client(t)
	ns := kubetest.Namespace(t, c)
	ctx := context.Background()
	pods := portforward.KubePods{Client: kubetest.Typed(c)}
	grafanaService(t, c, ns, "grafana-a")

	_, err := pods.Resolve(ctx, ns, "lightweight-monitoring-grafana", 80)
	if !errors.Is(err, portforward.ErrNoReadyPod) || !strings.Contains(err.Error(), "among 1 pod(s)") {
		t.Fatalf("Resolve with only a Pending pod = %v, want ErrNoReadyPod", err)
	}

	markReady(t, c, ns, grafanaSelector)
	setReady(t, c, ns, "grafana-a", false)
	createPod(t, c, ns, "grafana-b", grafanaLabels, corev1.ContainerPort{Name: "http-web", ContainerPort: 3000})
	if _, err := pods.Resolve(ctx, ns, "lightweight-monitoring-grafana", 80); !errors.Is(err, portforward.ErrNoReadyPod) {
		t.Fatalf("Resolve with a NotReady and a Pending pod = %v, want ErrNoReadyPod", err)
	}
	if _, err := kubetest.MarkPodsReady(ctx, c, ns, grafanaSelector); err != nil {
		t.Fatal(err)
	}
	setReady(t, c, ns, "grafana-a", false)
	got, err := pods.Resolve(ctx, ns, "lightweight-monitoring-grafana", 80)
	if err != nil || got.Pod != "grafana-b" {
		t.Fatalf("Resolve = %+v, %v; want the Ready grafana-b", got, err)
	}
}

func TestResolveExplainsWhatIsWrong(t *testing.T) {
	c := kubetest.Client(t)
	ns := kubetest.Namespace(t, c)
	ctx := context.Background()
	pods := portforward.KubePods{Client: kubetest.Typed(c)}
	grafanaService(t, c, ns, "grafana-a")
	markReady(t, c, ns, grafanaSelector)
	createService(t, c, ns, "typo", grafanaLabels, 80, intstr.FromString("http"))
	noSelector := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "external", Namespace: ns},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}
	if _, err := kubetest.Typed(c).CoreV1().Services(ns).Create(ctx, noSelector, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		service string
		port    int32
		want    string
	}{
		{"missing", 80, "service " + ns + "/missing not found"},
		{"lightweight-monitoring-grafana", 8080, "has no TCP port 8080 (it has: 80)"},
		{"typo", 80, `named port "http", which no container of pod grafana-a declares`},
		{"external", 80, "has no selector"},
	} {
		_, err := pods.Resolve(ctx, ns, tc.service, tc.port)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Resolve(%s, %d) = %v, want %q", tc.service, tc.port, err, tc.want)
		}
	}
}

// forwardInCluster starts a forwarder on the real API server's view of
// grafana-a, ready.
func forwardInCluster(t *testing.T, c *kube.Client, ns string, cs kubernetes.Interface, grace time.Duration) (*run, *portforwardtest.Kubelet) {
	t.Helper()
	k := portforwardtest.NewKubelet(grafana(t))
	r := start(t, portforward.Config{
		Namespace: ns, Service: "lightweight-monitoring-grafana", ServicePort: 80,
		Pods:     portforward.KubePods{Client: cs, Retry: 100 * time.Millisecond},
		APIGrace: grace,
	}, k)
	addr := r.waitReady()
	if body, err := get(t, addr); err != nil || body != grafanaSays {
		t.Fatalf("GET through the forward: %q, %v", body, err)
	}
	if got := k.Targets(); len(got) != 1 || got[0].Pod != "grafana-a" || got[0].Port != 3000 {
		t.Fatalf("dialled %+v, want grafana-a port 3000", got)
	}
	eventually(t, 3*time.Second, "watchdog pings", func() bool { return r.notifier.Count("WATCHDOG=1") >= 2 })
	return r, k
}

func TestInClusterExitsWhenThePodGoesAway(t *testing.T) {
	c := kubetest.Client(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, ns string)
		want   []string // any of
	}{
		{"deleted", func(t *testing.T, ns string) {
			if err := kubetest.Typed(c).CoreV1().Pods(ns).Delete(ctx, "grafana-a", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}, []string{"is being deleted", "was deleted"}},
		{"not Ready", func(t *testing.T, ns string) {
			setReady(t, c, ns, "grafana-a", false)
		}, []string{"is not Ready (ContainersNotReady)"}},
		{"replaced by a pod of the same name", func(t *testing.T, ns string) {
			if err := kubetest.Typed(c).CoreV1().Pods(ns).Delete(ctx, "grafana-a", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			createPod(t, c, ns, "grafana-a", grafanaLabels, corev1.ContainerPort{Name: "http-web", ContainerPort: 3000})
			markReady(t, c, ns, grafanaSelector)
		}, []string{"is being deleted", "was deleted", "was replaced"}},
		{"rolled out", func(t *testing.T, ns string) {
			createPod(t, c, ns, "grafana-b", grafanaLabels, corev1.ContainerPort{Name: "http-web", ContainerPort: 3000})
			markReady(t, c, ns, grafanaSelector)
			if err := kubetest.Typed(c).CoreV1().Pods(ns).Delete(ctx, "grafana-a", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}, []string{"is being deleted", "was deleted"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := kubetest.Namespace(t, c)
			grafanaService(t, c, ns, "grafana-a")
			markReady(t, c, ns, grafanaSelector)
			r, _ := forwardInCluster(t, c, ns, kubetest.Typed(c), 0)

			tc.change(t, ns)
			err := r.waitExit(5 * time.Second)
			if err == nil || !containsAny(err.Error(), tc.want) || !strings.Contains(err.Error(), ns+"/grafana-a") {
				t.Fatalf("Run = %v, want an error naming %s/grafana-a and one of %q", err, ns, tc.want)
			}
		})
	}
}

func TestInClusterRestartForwardsToTheNewPod(t *testing.T) {
	// What systemd's Restart=always does after the exit: a new Run
	// resolves the Service again and reaches the pod that replaced the old one.
	c := kubetest.Client(t)
	ctx := context.Background()
	ns := kubetest.Namespace(t, c)
	grafanaService(t, c, ns, "grafana-a")
	markReady(t, c, ns, grafanaSelector)
	r, _ := forwardInCluster(t, c, ns, kubetest.Typed(c), 0)

	createPod(t, c, ns, "grafana-b", grafanaLabels, corev1.ContainerPort{Name: "http-web", ContainerPort: 3000})
	markReady(t, c, ns, grafanaSelector)
	if err := kubetest.Typed(c).CoreV1().Pods(ns).Delete(ctx, "grafana-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.waitExit(5 * time.Second); err == nil {
		t.Fatal("Run returned nil after its pod was deleted")
	}

	k := portforwardtest.NewKubelet(grafana(t))
	r2 := start(t, portforward.Config{
		Namespace: ns, Service: "lightweight-monitoring-grafana", ServicePort: 80,
		Pods: portforward.KubePods{Client: kubetest.Typed(c), Retry: 100 * time.Millisecond},
	}, k)
	addr := r2.waitReady()
	if got := k.Targets(); len(got) != 1 || got[0].Pod != "grafana-b" {
		t.Fatalf("restart dialled %+v, want grafana-b", got)
	}
	if body, err := get(t, addr); err != nil || body != grafanaSays {
		t.Fatalf("GET through the new forward: %q, %v", body, err)
	}
}

func TestInClusterAPIServerAway(t *testing.T) {
	c := kubetest.Client(t)
	ns := kubetest.Namespace(t, c)
	grafanaService(t, c, ns, "grafana-a")
	markReady(t, c, ns, grafanaSelector)

	// The forwarder reaches the API server through a proxy the test can cut,
	// standing in for k3s stopping while the forward itself still works.
	cfg := c.RESTConfig()
	p := newProxy(t, strings.TrimPrefix(cfg.Host, "https://"))
	cfg.Host = "https://" + p.addr()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := forwardInCluster(t, c, ns, cs, time.Second)

	cut := time.Now()
	p.close()
	err = r.waitExit(5 * time.Second)
	if err == nil || !strings.Contains(err.Error(), "API server unreachable") {
		t.Fatalf("Run = %v, want an API-server-unreachable error", err)
	}
	if d := time.Since(cut); d < time.Second {
		t.Errorf("gave up %s after the API server went away, before the 1s grace", d)
	}
	if !strings.Contains(r.logs.String(), "API server unreachable; still forwarding") {
		t.Errorf("log does not say the API server went away:\n%s", r.logs.String())
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// proxy relays TCP connections to the API server until closed.
type proxy struct {
	l     net.Listener
	to    string
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, to string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, to: to}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) serve() {
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.to)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(out, in); out.Close() }()
		go func() { _, _ = io.Copy(in, out); in.Close() }()
	}
}

func (p *proxy) close() {
	_ = p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func TestWatchTellsAReplacementByItsUID(t *testing.T) {
	// A StatefulSet's replacement pod has the old one's name; only the UID
	// tells that the forward's pod is gone.
	c := kubetest.Client(t)
	ns := kubetest.Namespace(t, c)
	grafanaService(t, c, ns, "grafana-a")
	markReady(t, c, ns, grafanaSelector)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods := portforward.KubePods{Client: kubetest.Typed(c), Retry: 100 * time.Millisecond}
	got, err := pods.Resolve(ctx, ns, "lightweight-monitoring-grafana", 80)
	if err != nil {
		t.Fatal(err)
	}
	states := make(chan portforward.PodState)
	go pods.Watch(ctx, got, states)
	if st := <-states; !st.Healthy {
		t.Fatalf("first state of a Ready pod = %+v", st)
	}
	cancel()

	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	old := got
	old.UID = "0d5c1c8e-0000-0000-0000-000000000000"
	states2 := make(chan portforward.PodState)
	go pods.Watch(ctx2, old, states2)
	st := <-states2
	if st.Healthy || !strings.Contains(st.Reason, "was replaced by a new pod of the same name") {
		t.Fatalf("state of a same-named pod with another UID = %+v, want replaced", st)
	}
}
