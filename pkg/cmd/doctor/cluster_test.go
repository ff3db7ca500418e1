package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/doctor"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/kube/kubetest"
	"github.com/homelab-dev/homelab/pkg/layout"
)

// cluster is a doctor.Cluster answered from fields; pkg/doctor/kubecluster
// is the real one, tested against the API server there and below. Its
// service proxy reaches a stand-in for Prometheus and Alertmanager.
type cluster struct {
	deploy doctor.Deployment
	// probeSuccess is the app's latest probe_success.
	probeSuccess string
	proxy        *httptest.Server
}

// fakeCluster is a healthy cluster running deploy as the app.
func fakeCluster(t *testing.T, deploy doctor.Deployment) func() (doctor.Cluster, error) {
	c := &cluster{deploy: deploy, probeSuccess: "1"}
	if deploy.Available < deploy.Replicas {
		c.probeSuccess = "0"
	}
	c.proxy = httptest.NewServer(http.HandlerFunc(c.serveProxy))
	t.Cleanup(c.proxy.Close)
	return func() (doctor.Cluster, error) { return c, nil }
}

func (c *cluster) Services(_ context.Context, ns, selector string) ([]doctor.Service, error) {
	if selector != "release=lightweight-monitoring" {
		return nil, nil
	}
	ports := []doctor.ServicePort{{Name: "http-web", Port: 9090}, {Name: "reloader-web", Port: 8080}}
	return []doctor.Service{
		{Name: "lightweight-monitoring-kub-alertmanager", Namespace: ns, Labels: map[string]string{"app": "kube-prometheus-stack-alertmanager"},
			Ports: []doctor.ServicePort{{Name: "http-web", Port: 9093}}},
		{Name: "lightweight-monitoring-kub-operator", Namespace: ns, Ports: []doctor.ServicePort{{Name: "https", Port: 443}}},
		{Name: "lightweight-monitoring-kub-prometheus", Namespace: ns, Labels: map[string]string{"app": "kube-prometheus-stack-prometheus"}, Ports: ports},
	}, nil
}

func (c *cluster) ProxyURL(ns, name, port string) (string, *http.Client, error) {
	return c.proxy.URL + "/api/v1/namespaces/" + ns + "/services/" + name + ":" + port + "/proxy", c.proxy.Client(), nil
}

// serveProxy answers as the API server's service proxy to Prometheus and
// Alertmanager would.
func (c *cluster) serveProxy(w http.ResponseWriter, r *http.Request) {
	const prefix = "/api/v1/namespaces/monitoring/services/lightweight-monitoring-kub-"
	path, _ := strings.CutPrefix(r.URL.Path, prefix)
	switch path {
	case "prometheus:http-web/proxy/-/ready", "alertmanager:http-web/proxy/-/healthy":
		fmt.Fprintln(w, "OK")
	case "prometheus:http-web/proxy/api/v1/targets":
		fmt.Fprint(w, `{"status":"success","data":{"activeTargets":[{"labels":{"job":"nextjs-http","instance":"http://nextjs-app-service.default.svc.cluster.local:3000"},"health":"up","lastError":""}]}}`)
	case "prometheus:http-web/proxy/api/v1/query":
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"nextjs-http","instance":"http://nextjs-app-service.default.svc.cluster.local:3000"},"value":[1795000000,%q]}]}}`, c.probeSuccess)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server could not find the requested resource %s","code":404}`, r.URL.Path)
	}
}

func (c *cluster) ServerVersion(context.Context) (string, error) { return "v1.33.4+k3s1", nil }
func (c *cluster) Nodes(context.Context) ([]doctor.Node, error) {
	return []doctor.Node{{Name: "homelab", Ready: true}}, nil
}
func (c *cluster) Release(_ context.Context, ns, name string) (doctor.Release, error) {
	return doctor.Release{Name: name, Namespace: ns, Status: "deployed", Revision: 1}, nil
}
func (c *cluster) Pods(context.Context, string, string) ([]doctor.Pod, error) {
	return []doctor.Pod{readyPod("prometheus-lightweight-monitoring-kub-prometheus-0"), readyPod("blackbox-prometheus-blackbox-exporter-5d8f7c9b4-q7m2x")}, nil
}
func (c *cluster) Deployment(context.Context, string, string) (doctor.Deployment, error) {
	return c.deploy, nil
}
func (c *cluster) CRDEstablished(context.Context, string) (bool, error) { return true, nil }

func readyPod(name string) doctor.Pod {
	return doctor.Pod{Name: name, Phase: "Running", Ready: true, Containers: []doctor.Container{{Name: "c", Ready: true}}}
}

func healthyApp() doctor.Deployment {
	return doctor.Deployment{Name: "nextjs-app-deployment", Replicas: 1, ReadyReplicas: 1, Available: 1, Updated: 1,
		Pods: []doctor.Pod{readyPod("nextjs-app-deployment-7d9f8b6c4-x2kqp")}}
}

// oomKilledApp is our first user's failure: the app keeps using more than
// its memory limit.
func oomKilledApp() doctor.Deployment {
	return doctor.Deployment{Name: "nextjs-app-deployment", Replicas: 1, Updated: 1, Pods: []doctor.Pod{{
		Name: "nextjs-app-deployment-7d9f8b6c4-x2kqp", Phase: "Running",
		Containers: []doctor.Container{{Name: "app", RestartCount: 6, Waiting: "CrashLoopBackOff", LastTermination: "OOMKilled", LastExitCode: 137}},
	}}}
}

// checks runs doctor -o json on s and returns the checks by ID.
func (s *scenario) checks(t *testing.T, args ...string) (int, map[string]doctor.JSONCheck) {
	t.Helper()
	code, out, stderr := s.run(t, context.Background(), append([]string{"-o", "json"}, args...)...)
	var rep doctor.JSONReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("exit %d, not a JSON report: %v\n%s%s", code, err, out, stderr)
	}
	byID := map[string]doctor.JSONCheck{}
	for _, c := range rep.Checks {
		byID[c.ID] = c
	}
	return code, byID
}

func want(t *testing.T, checks map[string]doctor.JSONCheck, id string, status doctor.Status, msgHas string, fixHas ...string) {
	t.Helper()
	c, ok := checks[id]
	switch {
	case !ok:
		t.Errorf("no check %s", id)
		return
	case c.Status != status || !strings.Contains(c.Message, msgHas):
		t.Errorf("%s: %s %q, want %s containing %q", id, c.Status, c.Message, status, msgHas)
	}
	for _, f := range fixHas {
		if !strings.Contains(c.Fix, f) {
			t.Errorf("%s: fix %q does not contain %q", id, c.Fix, f)
		}
	}
}

// A box without k3s's kubeconfig: the factory's client cannot be built, and
// doctor says so instead of failing to run.
func TestMissingKubeconfigFailsTheClusterChecks(t *testing.T) {
	s := healthy(t)
	s.cluster = nil // the factory's, under --root at the host's root
	if err := os.Remove(s.host.Path(layout.K3sKubeconfig)); err != nil {
		t.Fatal(err)
	}
	code, checks := s.checks(t)
	if code != cmdutil.ExitProblems {
		t.Errorf("exit %d, want 3", code)
	}
	want(t, checks, "k3s.api", doctor.StatusFail, "k3s not installed or not running: /etc/rancher/k3s/k3s.yaml missing", "sudo homelab init")
	for _, id := range []string{"k3s.node", "monitoring.releases", "monitoring.crds", "app.deployment", "monitoring.prometheus", "monitoring.alertmanager"} {
		want(t, checks, id, doctor.StatusSkipped, "needs k3s.api, which failed")
	}
	want(t, checks, "monitoring.pods", doctor.StatusSkipped, "needs monitoring.releases, which was skipped")
	want(t, checks, "grafana.nginx", doctor.StatusOK, "Grafana answers")

	// An explicit Prometheus URL does not need the cluster.
	_, checks = s.checks(t, "--prometheus-url", "http://127.0.0.1:9")
	want(t, checks, "monitoring.prometheus", doctor.StatusFail, "Prometheus is not ready: http://127.0.0.1:9: connection refused", "give its address with --prometheus-url")
}

func TestBrokenKubeconfig(t *testing.T) {
	s := healthy(t)
	s.cluster = nil // the host's kubeconfig is "kind: Config" and nothing else
	_, checks := s.checks(t)
	want(t, checks, "k3s.api", doctor.StatusFail, "cannot connect to k3s: read kubeconfig", "sudo systemctl restart k3s")
}

// The factory's connection to the real API server of the test environment:
// the checks ask it, and find nothing of homelab's in fresh namespaces.
func TestClusterChecksThroughTheFactory(t *testing.T) {
	c := kubetest.Client(t)
	mon, app := kubetest.Namespace(t, c), kubetest.Namespace(t, c)
	s := healthy(t)
	s.cluster = nil
	s.kube = func() (*kube.Client, error) { return c, nil }
	path := filepath.Join(t.TempDir(), "homelab.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf("monitoring:\n  namespace: %s\napp:\n  namespace: %s\n", mon, app)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.configPath = path
	code, checks := s.checks(t, "--timeout", "5s")
	if code != cmdutil.ExitProblems {
		t.Errorf("exit %d, want 3", code)
	}
	want(t, checks, "k3s.api", doctor.StatusOK, "API server v1.")
	want(t, checks, "monitoring.releases", doctor.StatusFail, "Helm release "+mon+"/lightweight-monitoring is not installed", "sudo homelab init")
	want(t, checks, "monitoring.prometheus", doctor.StatusFail,
		"no Prometheus Service of Helm release "+mon+"/lightweight-monitoring: looked for lightweight-monitoring-kub-prometheus", "sudo homelab init")
	want(t, checks, "monitoring.alertmanager", doctor.StatusFail, "no Alertmanager Service of Helm release "+mon+"/lightweight-monitoring")
	want(t, checks, "app.deployment", doctor.StatusFail, "Deployment "+app+"/nextjs-app-deployment does not exist", "homelab deploy-app")
}
