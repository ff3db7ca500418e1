package portforward_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/kube/kubetest"
	"github.com/homelab-dev/homelab/pkg/portforward"
	"github.com/homelab-dev/homelab/pkg/portforward/portforwardtest"
)

// TestKubeDialerReachesTheAPIServer runs the real dialer as far as the test
// environment allows: the API server accepts the pods/portforward request
// for the pod and then has no kubelet to hand it to. Run must fail the start
// with the API server's reason, send no READY, and close its listener.
func TestKubeDialerReachesTheAPIServer(t *testing.T) {
	c := kubetest.Client(t)
	ns := kubetest.Namespace(t, c)
	grafanaService(t, c, ns, "grafana-a")
	markReady(t, c, ns, grafanaSelector)
	dial, err := portforward.KubeDialer(c.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	n := &portforwardtest.Notifier{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = portforward.Run(ctx, portforward.Config{
		Namespace: ns, Service: "lightweight-monitoring-grafana", ServicePort: 80, Address: "127.0.0.1",
		Pods: portforward.KubePods{Client: kubetest.Typed(c)}, Dial: dial, Notifier: n, Watchdog: time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), ns+"/grafana-a:3000") || !strings.Contains(err.Error(), "does not have a host assigned") {
		t.Fatalf("Run = %v, want the API server's refusal for the unscheduled pod", err)
	}
	if n.Count("READY=1") != 0 {
		t.Errorf("READY sent without a kubelet: %q", n.States())
	}
}
