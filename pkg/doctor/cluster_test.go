package doctor

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/doctor/doctortest"
)

// fakeCluster answers Cluster from fields; pkg/kube's real implementation is
// tested against the API server.
type fakeCluster struct {
	version  string
	err      error
	nodes    []Node
	releases map[string]Release
	pods     []Pod
	deploy   *Deployment
	crds     map[string]bool
	delay    time.Duration
}

func (f *fakeCluster) wait(ctx context.Context) error {
	select {
	case <-time.After(f.delay):
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeCluster) ServerVersion(ctx context.Context) (string, error) {
	return f.version, f.wait(ctx)
}
func (f *fakeCluster) Nodes(ctx context.Context) ([]Node, error) { return f.nodes, f.wait(ctx) }
func (f *fakeCluster) Release(ctx context.Context, ns, name string) (Release, error) {
	r, ok := f.releases[ns+"/"+name]
	if !ok {
		return Release{}, fmt.Errorf("release %s: %w", name, ErrNotFound)
	}
	return r, f.wait(ctx)
}
func (f *fakeCluster) Pods(ctx context.Context, ns, sel string) ([]Pod, error) {
	return f.pods, f.wait(ctx)
}
func (f *fakeCluster) Deployment(ctx context.Context, ns, name string) (Deployment, error) {
	if f.deploy == nil {
		return Deployment{}, ErrNotFound
	}
	return *f.deploy, f.wait(ctx)
}
func (f *fakeCluster) CRDEstablished(ctx context.Context, name string) (bool, error) {
	est, ok := f.crds[name]
	if !ok {
		return false, ErrNotFound
	}
	return est, f.wait(ctx)
}

func healthyCluster() *fakeCluster {
	crds := map[string]bool{}
	for _, n := range monitoringCRDs {
		crds[n] = true
	}
	running := Pod{Name: "p", Phase: "Running", Ready: true, Containers: []Container{{Name: "c", Ready: true}}}
	return &fakeCluster{
		version: "v1.37.2+k3s1",
		nodes:   []Node{{Name: "box", Ready: true}},
		releases: map[string]Release{
			"monitoring/lightweight-monitoring": {Status: "deployed"},
			"monitoring/blackbox":               {Status: "deployed"},
		},
		pods:   []Pod{running, running},
		deploy: &Deployment{Name: "nextjs-app-deployment", Replicas: 1, ReadyReplicas: 1, Available: 1, Updated: 1, Pods: []Pod{running}},
		crds:   crds,
	}
}

func TestClusterChecks(t *testing.T) {
	cfg := parseConfig(t, "")
	run := func(cl Cluster) map[string]Result {
		h := doctortest.NewHost(t).Healthy(cfg, 4)
		res, _ := runChecks(t, Env{Config: cfg, Host: h, Dial: refuseAll, Cluster: cl}, 500*time.Millisecond)
		return res
	}
	res := run(healthyCluster())
	expect(t, res, "k3s.api", StatusOK, "API server v1.37.2+k3s1 answers")
	expect(t, res, "k3s.node", StatusOK, "1 node(s) Ready")
	expect(t, res, "monitoring.releases", StatusOK, "lightweight-monitoring and blackbox deployed")
	expect(t, res, "monitoring.crds", StatusOK, "6 prometheus-operator CRDs Established")
	expect(t, res, "monitoring.pods", StatusOK, "2 pods Ready in monitoring")
	expect(t, res, "app.deployment", StatusOK, "1/1 replicas available, no restarts")

	sick := healthyCluster()
	sick.nodes[0] = Node{Name: "box", Ready: false, Reason: "KubeletNotReady", Message: "PLEG is not healthy"}
	sick.releases["monitoring/blackbox"] = Release{Status: "failed", Description: "timed out waiting for the condition"}
	sick.crds["probes.monitoring.coreos.com"] = false
	sick.pods = append(sick.pods, Pod{Name: "prometheus-0", Phase: "Running", Containers: []Container{{Waiting: "CrashLoopBackOff", LastTermination: "OOMKilled", RestartCount: 7}}})
	sick.deploy = &Deployment{Replicas: 1, Pods: []Pod{{Name: "app-1", Containers: []Container{{Waiting: "CrashLoopBackOff", LastTermination: "OOMKilled", RestartCount: 4}}}}}
	res = run(sick)
	expect(t, res, "k3s.node", StatusFail, "node box is not Ready: KubeletNotReady PLEG is not healthy")
	expect(t, res, "monitoring.releases", StatusFail, "Helm release monitoring/blackbox is failed: timed out", "helm -n monitoring history blackbox")
	expect(t, res, "monitoring.crds", StatusFail, "missing or not Established: probes.monitoring.coreos.com", "homelab init")
	expect(t, res, "monitoring.pods", StatusSkipped, "needs monitoring.releases, which failed")
	expect(t, res, "app.deployment", StatusFail, "pod app-1 was OOMKilled (limit 512Mi); 4 restarts, 0/1 available", "raise app.resources.limits.memory (now 512Mi)")

	sick.releases["monitoring/blackbox"] = Release{Status: "deployed"}
	sick.deploy = &Deployment{Replicas: 2, Available: 1, Pods: []Pod{{Name: "app-2", Containers: []Container{{Waiting: "CrashLoopBackOff", LastTermination: "Error", RestartCount: 9}}}}}
	res = run(sick)
	expect(t, res, "monitoring.pods", StatusFail, "1 of 3 pods in monitoring not Ready: prometheus-0 (CrashLoopBackOff, last OOMKilled)", "kubectl -n monitoring describe pod prometheus-0")
	expect(t, res, "app.deployment", StatusFail, "pod app-2 is in CrashLoopBackOff; 9 restarts, 1/2 available", "kubectl -n default logs deploy/nextjs-app-deployment --previous")

	sick.deploy = nil
	res = run(sick)
	expect(t, res, "app.deployment", StatusFail, "Deployment default/nextjs-app-deployment does not exist", "homelab deploy-app")

	down := healthyCluster()
	down.err = errors.New("connection refused")
	res = run(down)
	expect(t, res, "k3s.api", StatusFail, "cannot ask the API server: connection refused", "systemctl restart k3s")
	expect(t, res, "app.deployment", StatusSkipped, "needs k3s.api, which failed")

	hung := healthyCluster()
	hung.delay = time.Hour
	res = run(hung)
	expect(t, res, "k3s.api", StatusFail, "no answer within 500ms", "systemctl restart k3s")
}
