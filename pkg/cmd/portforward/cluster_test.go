package portforward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/kube/kubetest"
	forward "github.com/homelab-dev/homelab/pkg/portforward"
	"github.com/homelab-dev/homelab/pkg/portforward/portforwardtest"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// TestAgainstTheCluster runs the command as the unit does, against the real
// API server, with the kubelet stand-in and a recorded systemd.
func TestAgainstTheCluster(t *testing.T) {
	c := kubetest.Client(t)
	kubeconfig := testutil.TestEnv(t, "HOMELAB_TEST_KUBECONFIG")
	ns := kubetest.Namespace(t, c)
	ctx := context.Background()
	grafanaService(t, c, ns)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "Grafana") }))
	defer srv.Close()
	kubelet := portforwardtest.NewKubelet(strings.TrimPrefix(srv.URL, "http://"))
	notifier := &portforwardtest.Notifier{}
	stderr := &testutil.SyncBuffer{}
	ios := &iostreams.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: stderr}

	f := cmdutil.New(ios, "test")
	f.Kubeconfig = kubeconfig // the root command's --kubeconfig
	cmd := NewCmdPortForward(f, func(ctx context.Context, o *Options) error {
		o.Dialer = func(*rest.Config) (forward.DialerFunc, error) { return kubelet.Dial, nil }
		o.Notifier = notifier
		o.Watchdog = func() (time.Duration, error) { return 200 * time.Millisecond, nil }
		return portForwardRun(ctx, o)
	})
	cmd.SetArgs([]string{"--namespace", ns, "--service", "lightweight-monitoring-grafana", "--address", "127.0.0.1",
		"--port", "0:80"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	// No Ready pod yet: the command waits and says so, without READY.
	time.Sleep(300 * time.Millisecond)
	if notifier.Count("READY=1") != 0 || !strings.Contains(stderr.String(), "waiting for a Ready pod") {
		t.Fatalf("before the pod is Ready: notified %q, logged:\n%s", notifier.States(), stderr.String())
	}
	if _, err := kubetest.MarkPodsReady(ctx, c, ns, "app.kubernetes.io/name=grafana"); err != nil {
		t.Fatal(err)
	}

	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" && time.Now().Before(deadline) {
		for _, s := range notifier.States() {
			if rest, ok := strings.CutPrefix(s, "READY=1\nSTATUS=forwarding "); ok {
				addr, _, _ = strings.Cut(rest, " ")
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if addr == "" {
		t.Fatalf("no READY=1 within 10s; notified %q, logged:\n%s", notifier.States(), stderr.String())
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "Grafana" {
		t.Errorf("GET through the forward = %q", body)
	}
	time.Sleep(500 * time.Millisecond)
	if n := notifier.Count("WATCHDOG=1"); n < 2 {
		t.Errorf("%d watchdog pings in 500ms at a 200ms WatchdogSec", n)
	}

	if err := kubetest.Typed(c).CoreV1().Pods(ns).Delete(ctx, "grafana-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after its pod was deleted; logged:\n%s", stderr.String())
	}
	if code := cmdutil.ExitCode(err); code != cmdutil.ExitError {
		t.Errorf("exit %d (%v), want 1 so that systemd restarts the unit", code, err)
	}
	logs := stderr.String()
	last := logs[strings.LastIndex(strings.TrimSuffix(logs, "\n"), "\n")+1:]
	if !strings.Contains(last, "level=ERROR") || !strings.Contains(last, "port-forward stopped") || !strings.Contains(last, ns+"/grafana-a") {
		t.Errorf("last log line %q: want an ERROR naming the pod and why", last)
	}
}

func TestUnreachableClusterExits1WithALogLine(t *testing.T) {
	ios := &iostreams.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: &testutil.SyncBuffer{}}
	cmd := NewCmdPortForward(cmdutil.New(ios, "test"), func(ctx context.Context, o *Options) error {
		o.Connect = func(string) (*kube.Client, error) {
			return nil, errors.New("read kubeconfig /etc/rancher/k3s/k3s.yaml: no such file")
		}
		return portForwardRun(ctx, o)
	})
	cmd.SetArgs(nil)
	err := cmd.ExecuteContext(context.Background())
	if cmdutil.ExitCode(err) != cmdutil.ExitError {
		t.Fatalf("exit %d, want 1", cmdutil.ExitCode(err))
	}
	if logs := ios.ErrOut.(*testutil.SyncBuffer).String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "no such file") {
		t.Errorf("logged %q", logs)
	}
}

func grafanaService(t *testing.T, c *kube.Client, ns string) {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app.kubernetes.io/name": "grafana"}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "lightweight-monitoring-grafana", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{
			{Name: "http-web", Port: 80, TargetPort: intstr.FromString("http-web")},
		}},
	}
	if _, err := kubetest.Typed(c).CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "grafana-a", Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "grafana", Image: "grafana/grafana:13.2.0",
			Ports: []corev1.ContainerPort{{Name: "http-web", ContainerPort: 3000}}}}},
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := kubetest.Typed(c).CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err == nil {
			return
		}
		// The namespace's default ServiceAccount comes a moment after it.
		if !strings.Contains(err.Error(), "serviceaccount") || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
