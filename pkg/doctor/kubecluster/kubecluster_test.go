package kubecluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/doctor"
	"github.com/homelab-dev/homelab/pkg/doctor/doctortest"
	"github.com/homelab-dev/homelab/pkg/doctor/kubecluster"
	"github.com/homelab-dev/homelab/pkg/helm"
	"github.com/homelab-dev/homelab/pkg/helm/helmtest"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/kube/kubetest"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// env is one test's connection to the test environment's API server, with
// fresh namespaces for the monitoring stack and the app.
type env struct {
	kube     *kube.Client
	cluster  *kubecluster.Cluster
	mon, app string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := kubetest.Client(t)
	cl, err := kubecluster.New(c, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return &env{kube: c, cluster: cl, mon: kubetest.Namespace(t, c), app: kubetest.Namespace(t, c)}
}

// config is homelab's configuration for the env's namespaces, plus extra YAML
// lines under app: and monitoring:.
func (e *env) config(t *testing.T, app, monitoring string) *config.Config {
	t.Helper()
	y := fmt.Sprintf("app:\n  namespace: %s\n%smonitoring:\n  namespace: %s\n%s", e.app, app, e.mon, monitoring)
	cfg, err := config.Parse("homelab.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func refuse(ctx context.Context, network, addr string) (net.Conn, error) {
	return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

// run runs every doctor check on a healthy host and this cluster, and
// returns the results by ID.
func run(t *testing.T, cfg *config.Config, cl doctor.Cluster, timeout time.Duration) map[string]doctor.Result {
	t.Helper()
	h := doctortest.NewHost(t).Healthy(cfg, 4)
	rep, err := doctor.Run(context.Background(), doctor.Env{Config: cfg, Host: h, Cluster: cl, Dial: refuse}, doctor.Runner{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	res := map[string]doctor.Result{}
	for _, r := range rep.Results {
		res[r.ID] = r
		if (r.Status == doctor.StatusFail || r.Status == doctor.StatusWarn) && (r.Fix == "" || r.Fix == "see the finding") {
			t.Errorf("%s: %s without a fix: %s", r.ID, r.Status, r.Message)
		}
	}
	return res
}

func expect(t *testing.T, res map[string]doctor.Result, id string, status doctor.Status, msgHas string, fixHas ...string) {
	t.Helper()
	r, ok := res[id]
	switch {
	case !ok:
		t.Errorf("no result for %s", id)
		return
	case r.Status != status || !strings.Contains(r.Message, msgHas):
		t.Errorf("%s: %s %q, want %s containing %q", id, r.Status, r.Message, status, msgHas)
	}
	for _, f := range fixHas {
		if !strings.Contains(r.Fix, f) {
			t.Errorf("%s: fix %q does not contain %q", id, r.Fix, f)
		}
	}
}

// createApp creates the Deployment homelab deploy-app would for cfg and
// waits for the controller manager to create its pod.
func (e *env) createApp(t *testing.T, cfg *config.Config) string {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": cfg.App.Name}
	one := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: cfg.App.DeploymentName(), Namespace: e.app},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: cfg.App.Image, ImagePullPolicy: corev1.PullNever,
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(cfg.App.Resources.Limits.Memory)}},
				}}},
			},
		},
	}
	if _, err := kubetest.Typed(e.kube).AppsV1().Deployments(e.app).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	selector := "app=" + cfg.App.Name
	deadline := time.Now().Add(30 * time.Second)
	for {
		pods, err := kubetest.Typed(e.kube).CoreV1().Pods(e.app).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err == nil && len(pods.Items) > 0 {
			return selector
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pod of %s after 30s (is kube-controller-manager running?): %v", d.Name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestAppDeploymentHealthyAndOOMKilled(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	cfg := e.config(t, "", "")
	sel := e.createApp(t, cfg)
	go kubetest.KeepPodsReady(ctx, e.kube, e.app, sel)
	if err := e.kube.WaitRollout(ctx, e.app, cfg.App.DeploymentName(), 30*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	res := run(t, cfg, e.cluster, 5*time.Second)
	expect(t, res, "k3s.api", doctor.StatusOK, "API server v1.")
	expect(t, res, "app.deployment", doctor.StatusOK, "1/1 replicas available, no restarts")

	// Our first user's failure: the app is killed for exceeding its memory limit.
	oom := e.config(t, "  name: oomy\n", "")
	sel = e.createApp(t, oom)
	if n, err := kubetest.MarkPodsCrashLooping(ctx, e.kube, e.app, sel, "OOMKilled", 4); err != nil || n != 1 {
		t.Fatalf("marked %d pods: %v", n, err)
	}
	dep, err := e.cluster.Deployment(ctx, e.app, oom.App.DeploymentName())
	if err != nil || len(dep.Pods) != 1 || dep.Replicas != 1 || dep.Available != 0 {
		t.Fatalf("deployment %+v: %v", dep, err)
	}
	if ct := dep.Pods[0].Containers[0]; ct.Waiting != "CrashLoopBackOff" || ct.LastTermination != "OOMKilled" || ct.LastExitCode != 137 || ct.RestartCount != 4 {
		t.Errorf("container %+v", ct)
	}
	res = run(t, oom, e.cluster, 5*time.Second)
	expect(t, res, "app.deployment", doctor.StatusFail, "was OOMKilled (limit 512Mi); 4 restarts, 0/1 available",
		"raise app.resources.limits.memory (now 512Mi) in homelab.yaml, then homelab deploy-app")
	if msg := res["app.deployment"].Message; !strings.HasPrefix(msg, "pod oomy-deployment-") {
		t.Errorf("the finding does not name the pod: %q", msg)
	}

	// A crash loop for another reason points at the logs.
	crash := e.config(t, "  name: crashy\n", "")
	sel = e.createApp(t, crash)
	if _, err := kubetest.MarkPodsCrashLooping(ctx, e.kube, e.app, sel, "Error", 9); err != nil {
		t.Fatal(err)
	}
	res = run(t, crash, e.cluster, 5*time.Second)
	expect(t, res, "app.deployment", doctor.StatusFail, "is in CrashLoopBackOff; 9 restarts, 0/1 available",
		"kubectl -n "+e.app+" logs deploy/crashy-deployment --previous")

	// No Deployment at all.
	if _, err := e.cluster.Deployment(ctx, e.app, "nothing-deployment"); !errors.Is(err, doctor.ErrNotFound) {
		t.Errorf("missing Deployment: %v, want ErrNotFound", err)
	}
	res = run(t, e.config(t, "  name: nothing\n", ""), e.cluster, 5*time.Second)
	expect(t, res, "app.deployment", doctor.StatusFail, "Deployment "+e.app+"/nothing-deployment does not exist", "homelab deploy-app")
}

func TestNodeReadyAndNotReady(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	name := "node-" + e.app
	kubetest.RegisterReadyNode(t, e.kube, name)
	cfg := e.config(t, "", "")

	node := func() doctor.Node {
		t.Helper()
		nodes, err := e.cluster.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.Name == name {
				return n
			}
		}
		t.Fatalf("node %s not listed in %+v", name, nodes)
		return doctor.Node{}
	}
	if n := node(); !n.Ready {
		t.Fatalf("registered Ready, listed %+v", n)
	}
	// Other packages' tests register nodes in the same cluster at the same
	// time, each briefly without a Ready condition: only a finding about
	// this test's node, or an ok, tells anything here.
	res := run(t, cfg, e.cluster, 5*time.Second)
	switch r := res["k3s.node"]; {
	case r.Status == doctor.StatusOK:
		expect(t, res, "k3s.node", doctor.StatusOK, "node(s) Ready")
	case strings.Contains(r.Message, name):
		t.Errorf("k3s.node: %s %q about this test's Ready node", r.Status, r.Message)
	default:
		t.Logf("k3s.node: %s about another test's node: %s", r.Status, r.Message)
	}

	// The kubelet stops reporting Ready.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := kubetest.Typed(e.kube).CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		cur.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady",
			Message: "PLEG is not healthy", LastHeartbeatTime: now, LastTransitionTime: now}}
		_, err = kubetest.Typed(e.kube).CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := node(); n.Ready || n.Reason != "KubeletNotReady" || n.Message != "PLEG is not healthy" {
		t.Errorf("NotReady node listed as %+v", n)
	}
	res = run(t, cfg, e.cluster, 5*time.Second)
	expect(t, res, "k3s.node", doctor.StatusFail, "is not Ready", "journalctl -u k3s")
}

func TestCRDs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if est, err := e.cluster.CRDEstablished(ctx, "probes.monitoring.coreos.com"); err != nil || !est {
		t.Errorf("probes CRD: %v %v, want established (the test environment applies it)", est, err)
	}
	if _, err := e.cluster.CRDEstablished(ctx, "gadgets.nowhere.homelab.dev"); !errors.Is(err, doctor.ErrNotFound) {
		t.Errorf("made-up CRD: %v, want ErrNotFound", err)
	}
	res := run(t, e.config(t, "", ""), e.cluster, 5*time.Second)
	// The test environment has the prometheus-operator CRDs homelab's
	// objects use, but not necessarily the Alertmanager one.
	am, _ := e.cluster.CRDEstablished(ctx, "alertmanagers.monitoring.coreos.com")
	if am {
		expect(t, res, "monitoring.crds", doctor.StatusOK, "6 prometheus-operator CRDs Established")
	} else {
		expect(t, res, "monitoring.crds", doctor.StatusFail, "missing or not Established: alertmanagers.monitoring.coreos.com", "sudo homelab init")
		if strings.Contains(res["monitoring.crds"].Message, "probes.") {
			t.Errorf("the Probe CRD is reported missing: %s", res["monitoring.crds"].Message)
		}
	}
}

func withoutCRDs(ch *chart.Chart) {
	var files []*chart.File
	for _, f := range ch.Files {
		if !strings.HasPrefix(f.Name, "crds/") {
			files = append(files, f)
		}
	}
	ch.Files = files
}

func TestHelmReleasesDeployedMissingFailed(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := e.config(t, "", "")
	m := cfg.Monitoring

	if _, err := e.cluster.Release(ctx, e.mon, m.Release); !errors.Is(err, doctor.ErrNotFound) {
		t.Fatalf("release before install: %v, want ErrNotFound", err)
	}
	res := run(t, cfg, e.cluster, 5*time.Second)
	expect(t, res, "monitoring.releases", doctor.StatusFail, "Helm release "+e.mon+"/lightweight-monitoring is not installed", "sudo homelab init")
	expect(t, res, "monitoring.pods", doctor.StatusSkipped, "needs monitoring.releases, which failed")

	// Install the fixture charts as init would (the stack's shared fixture
	// CRD is left to pkg/helm's tests).
	go kubetest.KeepPodsReady(ctx, e.kube, e.mon, helmtest.ReadySelector)
	charts := helmtest.Package(t, helmtest.Variant{Name: "kube-prometheus-stack", Mutate: withoutCRDs}, helmtest.Variant{Name: "prometheus-blackbox-exporter"})
	engine := &helm.Engine{Kubeconfig: testutil.TestEnv(t, "HOMELAB_TEST_KUBECONFIG"), Kube: e.kube, Home: t.TempDir()}
	for _, r := range []struct{ release, chart, version string }{
		{m.Release, "kube-prometheus-stack", "88.5.3"},
		{m.Blackbox.Release, "prometheus-blackbox-exporter", "11.17.2"},
	} {
		src := helm.Source{Archive: charts.Archive(t, r.chart, r.version), Name: r.chart, Version: r.version}
		if _, err := engine.Apply(ctx, helm.Release{Name: r.release, Namespace: e.mon, Chart: src, Timeout: 60 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	rel, err := e.cluster.Release(ctx, e.mon, m.Release)
	if err != nil || rel.Status != "deployed" || rel.Chart != "kube-prometheus-stack-88.5.3" || rel.Revision != 1 || rel.Namespace != e.mon {
		t.Fatalf("release %+v: %v", rel, err)
	}
	res = run(t, cfg, e.cluster, 5*time.Second)
	expect(t, res, "monitoring.releases", doctor.StatusOK, "lightweight-monitoring and blackbox deployed")
	expect(t, res, "monitoring.pods", doctor.StatusOK, "pods Ready in "+e.mon)

	// A failed upgrade leaves a failed latest revision.
	store := storage.Init(driver.NewSecrets(kubetest.Typed(e.kube).CoreV1().Secrets(e.mon)))
	last, err := store.Last(m.Blackbox.Release)
	if err != nil {
		t.Fatal(err)
	}
	failed := *last
	info := *last.Info
	failed.Info, failed.Version = &info, last.Version+1
	failed.Info.Status, failed.Info.Description = release.StatusFailed, "Upgrade \"blackbox\" failed: context deadline exceeded"
	if err := store.Create(&failed); err != nil {
		t.Fatal(err)
	}
	res = run(t, cfg, e.cluster, 5*time.Second)
	expect(t, res, "monitoring.releases", doctor.StatusFail, "Helm release "+e.mon+"/blackbox is failed: Upgrade \"blackbox\" failed",
		"helm -n "+e.mon+" history blackbox")
}

// serviceAt creates a selectorless Service with empty Endpoints: what the
// API server's proxy sees while no pod behind the Service is Ready.
func (e *env) serviceAt(t *testing.T, name string, labels map[string]string, svcPort int32) {
	t.Helper()
	ctx := context.Background()
	core := kubetest.Typed(e.kube).CoreV1()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http-web", Port: svcPort}}}}
	if _, err := core.Services(e.mon).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eps := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: name}}                       //nolint:staticcheck // the API server's service proxy reads Endpoints
	if _, err := core.Endpoints(e.mon).Create(ctx, eps, metav1.CreateOptions{}); err != nil { //nolint:staticcheck
		t.Fatal(err)
	}
}

// TestPrometheusThroughTheServiceProxy finds Prometheus and Alertmanager
// through the real API server's service proxy and reports why they cannot
// be reached.
func TestPrometheusThroughTheServiceProxy(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(t, "", "  probe: {name: blackbox}\n") // the test Prometheus's job
	ns := e.mon

	res := run(t, cfg, e.cluster, 5*time.Second)
	expect(t, res, "monitoring.prometheus", doctor.StatusFail,
		"no Prometheus Service of Helm release "+ns+"/lightweight-monitoring: looked for lightweight-monitoring-kub-prometheus", "sudo homelab init")
	expect(t, res, "monitoring.probe-selected", doctor.StatusSkipped, "needs monitoring.prometheus, which failed")

	release := map[string]string{"release": cfg.Monitoring.Release}
	// Found by its label, not its name (a fullnameOverride, say).
	e.serviceAt(t, "custom-prometheus", map[string]string{"release": cfg.Monitoring.Release, "app": "kube-prometheus-stack-prometheus"},
		9090)
	// Alertmanager's Service, with no Ready pod behind it.
	e.serviceAt(t, "lightweight-monitoring-kub-alertmanager", release, 9093)

	res = run(t, cfg, e.cluster, 5*time.Second)
	// Found by its label, reached through the API server, which says why
	// it cannot be asked. (Proxying to a real Prometheus needs a pod address
	// off loopback, which tests here must not use; the Prometheus checks
	// themselves run against the real Prometheus with --prometheus-url.)
	expect(t, res, "monitoring.prometheus", doctor.StatusFail, "service "+ns+"/custom-prometheus:http-web")
	expect(t, res, "monitoring.prometheus", doctor.StatusFail, "no endpoints available")
	expect(t, res, "monitoring.alertmanager", doctor.StatusFail,
		`Alertmanager is not healthy: the API server cannot reach service `+ns+`/lightweight-monitoring-kub-alertmanager:http-web (HTTP 503): no endpoints available for service "lightweight-monitoring-kub-alertmanager": no pod behind it is Ready`,
		"kubectl -n "+ns+" describe pods -l app.kubernetes.io/name=alertmanager")
}

// An API server that never answers delays no check beyond its timeout,
// Helm's release storage (which takes no context) included.
func TestHungAPIServer(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs first: let the handlers end
	c, err := kube.New(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kubecluster.New(c, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := cl.Release(ctx, "monitoring", "blackbox"); err == nil || time.Since(start) > time.Second {
		t.Errorf("Release on a hung API server: %v after %s", err, time.Since(start))
	}

	cfg, err := config.Parse("homelab.yaml", []byte(""))
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	res := run(t, cfg, cl, 300*time.Millisecond)
	if took := time.Since(start); took > time.Second {
		t.Errorf("doctor took %s with a 300ms timeout", took)
	}
	expect(t, res, "k3s.api", doctor.StatusFail, "no answer within 300ms", "systemctl restart k3s")
	expect(t, res, "monitoring.prometheus", doctor.StatusSkipped, "needs k3s.api, which failed")

	// Each method on its own returns when its context ends.
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err1 := cl.Services(ctx, "monitoring", "")
	_, err2 := cl.Deployment(ctx, "default", "x")
	if err1 == nil || err2 == nil || time.Since(start) > time.Second {
		t.Errorf("hung: %v, %v after %s", err1, err2, time.Since(start))
	}
}
