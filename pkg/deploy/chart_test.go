package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/deploy"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// configs are the configurations the app chart is checked over.
var configs = map[string]string{
	"default": "",
	"custom": `
app:
  name: blog
  serviceName: blog
  namespace: web
  image: registry.example.com/me/blog:1.4.2
  port: 8080
  command: ["/bin/blog", "--listen", ":8080"]
  replicas: 2
  healthPath: /api/health
  clusterIP: 10.43.0.40
  resources:
    limits: {memory: 300Mi}
  startupSeconds: 9
  preStopSleepSeconds: 0
  terminationGracePeriodSeconds: 10
monitoring:
  namespace: observability
  release: mon
  probe: {name: blog-up, interval: 1m, module: tcp_connect}
`,
}

var build = deploy.Build{Reference: "docker.io/library/nextjs-app:homelab-0123456789ab", Digest: "sha256:0123456789ab" + strings.Repeat("0", 52)}

func manifests(t *testing.T, name string) (*config.Config, [][]byte) {
	t.Helper()
	cfg, err := config.Parse(name+".yaml", []byte(configs[name]))
	if err != nil {
		t.Fatal(err)
	}
	data, err := deploy.Manifests(cfg, build)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, filepath.Join("app-chart", name+".yaml"), data)
	var docs [][]byte
	for _, d := range bytes.Split(data, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return cfg, docs
}

// only is the one document of kind among docs.
func only(t *testing.T, docs [][]byte, kind string) []byte {
	t.Helper()
	var found [][]byte
	for _, d := range docs {
		var meta struct{ Kind string }
		if err := sigsyaml.Unmarshal(d, &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind == kind {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d documents of kind %s, want 1", len(found), kind)
	}
	return found[0]
}

// TestChartRendersStrictly decodes every object of the app chart into the
// Kubernetes and prometheus-operator Go types, refusing unknown or
// duplicate fields, and checks what the API server and Prometheus rely on.
func TestChartRendersStrictly(t *testing.T) {
	for name := range configs {
		t.Run(name, func(t *testing.T) {
			cfg, docs := manifests(t, name)
			if len(docs) != 5 {
				t.Fatalf("%d documents, want ConfigMap (the dashboard), Deployment, Probe, PrometheusRule, Service", len(docs))
			}
			var dep appsv1.Deployment
			var probe monitoringv1.Probe
			var rule monitoringv1.PrometheusRule
			var svc corev1.Service
			var board corev1.ConfigMap
			for kind, into := range map[string]any{"Deployment": &dep, "Probe": &probe, "PrometheusRule": &rule, "Service": &svc, "ConfigMap": &board} {
				doc := only(t, docs, kind)
				if err := sigsyaml.UnmarshalStrict(doc, into); err != nil {
					t.Fatalf("%s does not decode strictly into %T: %v\n%s", kind, into, err, doc)
				}
			}
			checkDashboard(t, cfg, &board)
			checkDeployment(t, cfg, &dep)
			checkService(t, cfg, &svc, &dep)
			checkProbe(t, cfg, &probe)
			checkRule(t, cfg, &rule)
		})
	}
}

// TestChartNeedsAnImage: the chart refuses to render without a build, so a
// broken caller can never roll out an empty image.
func TestChartNeedsAnImage(t *testing.T) {
	cfg, err := config.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	_, err = deploy.Manifests(cfg, deploy.Build{})
	if err == nil || !strings.Contains(err.Error(), "image.reference is required") {
		t.Fatalf("rendered without an image (err %v)", err)
	}
}

func checkDeployment(t *testing.T, cfg *config.Config, dep *appsv1.Deployment) {
	t.Helper()
	if dep.APIVersion != "apps/v1" || dep.Kind != "Deployment" || dep.Name != cfg.App.DeploymentName() || dep.Namespace != cfg.App.Namespace {
		t.Errorf("deployment identity: %s %s %s/%s", dep.APIVersion, dep.Kind, dep.Namespace, dep.Name)
	}
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Fatalf("deployment has no usable selector (%v): the API server rejects it", err)
	}
	if !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("selector %s does not match pod template labels %v", sel, dep.Spec.Template.Labels)
	}
	if *dep.Spec.Replicas != int32(cfg.App.Replicas) {
		t.Errorf("replicas %d", *dep.Spec.Replicas)
	}
	if len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(dep.Spec.Template.Spec.Containers))
	}
	if got := dep.Spec.Template.Annotations[deploy.DigestAnnotation]; got != build.Digest {
		t.Errorf("pod template digest annotation %q, want %q (a new build must change the pod template)", got, build.Digest)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Image != build.Reference || c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("image %q pull policy %q", c.Image, c.ImagePullPolicy)
	}
	if fmt.Sprint(c.Command) != fmt.Sprint(cfg.App.Command) && !(len(c.Command) == 0 && len(cfg.App.Command) == 0) {
		t.Errorf("command %q, want %q", c.Command, cfg.App.Command)
	}
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != cfg.App.HealthPath || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe %+v, want HTTP GET %s on port http", name, p, cfg.App.HealthPath)
		}
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != int32(cfg.App.Port) || c.Ports[0].Name != "http" {
		t.Errorf("ports %+v", c.Ports)
	}
	if want := cfg.App.Resources.Limits.Memory; c.Resources.Limits.Memory().String() != want {
		t.Errorf("memory limit %s, want %s", c.Resources.Limits.Memory(), want)
	}
	if want := cfg.App.Resources.Requests.Memory; want != "" && c.Resources.Requests.Memory().String() != want {
		t.Errorf("memory request %s, want %s", c.Resources.Requests.Memory(), want)
	}
	// The start budget covers app.startupSeconds (rounded up to the period).
	if sp := c.StartupProbe; sp == nil || int(sp.PeriodSeconds*sp.FailureThreshold) < cfg.App.StartupSeconds ||
		int(sp.PeriodSeconds*(sp.FailureThreshold-1)) >= cfg.App.StartupSeconds {
		t.Errorf("startup probe %+v does not give the build app.startupSeconds=%d", sp, cfg.App.StartupSeconds)
	}
	// The pre-stop sleep keeps the pod serving while it leaves the Service;
	// the grace period covers it and the app's own stop.
	grace := dep.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || int(*grace) != cfg.App.TerminationGracePeriodSeconds {
		t.Errorf("terminationGracePeriodSeconds %v, want %d", grace, cfg.App.TerminationGracePeriodSeconds)
	}
	switch sleep := cfg.App.PreStopSleepSeconds; {
	case sleep == 0 && c.Lifecycle != nil:
		t.Errorf("lifecycle %+v with app.preStopSleepSeconds 0", c.Lifecycle)
	case sleep > 0 && (c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || int(c.Lifecycle.PreStop.Sleep.Seconds) != sleep):
		t.Errorf("lifecycle %+v, want a preStop sleep of %ds", c.Lifecycle, sleep)
	}
}

func checkService(t *testing.T, cfg *config.Config, svc *corev1.Service, dep *appsv1.Deployment) {
	t.Helper()
	if svc.Name != cfg.App.ServiceName || svc.Namespace != cfg.App.Namespace || svc.Spec.ClusterIP != cfg.App.ClusterIP {
		t.Errorf("service %s/%s clusterIP %s", svc.Namespace, svc.Name, svc.Spec.ClusterIP)
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("service selector %v does not select the app's pods %v", svc.Spec.Selector, dep.Spec.Template.Labels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != int32(cfg.App.Port) || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("service ports %+v", svc.Spec.Ports)
	}
}

func checkProbe(t *testing.T, cfg *config.Config, p *monitoringv1.Probe) {
	t.Helper()
	m := cfg.Monitoring
	if p.Name != m.Probe.Name || p.Namespace != m.Namespace || p.Labels["release"] != m.Release {
		t.Errorf("probe %s/%s labels %v: want %s/%s labelled release=%s", p.Namespace, p.Name, p.Labels, m.Namespace, m.Probe.Name, m.Release)
	}
	if string(p.Spec.Interval) != m.Probe.Interval || p.Spec.Module != m.Probe.Module || p.Spec.ProberSpec.URL != cfg.BlackboxURL() {
		t.Errorf("probe spec interval %q module %q prober %q", p.Spec.Interval, p.Spec.Module, p.Spec.ProberSpec.URL)
	}
	if p.Spec.Targets.StaticConfig == nil || len(p.Spec.Targets.StaticConfig.Targets) != 1 || p.Spec.Targets.StaticConfig.Targets[0] != cfg.AppTarget() {
		t.Errorf("probe targets %+v, want %s", p.Spec.Targets.StaticConfig, cfg.AppTarget())
	}
}

func checkRule(t *testing.T, cfg *config.Config, r *monitoringv1.PrometheusRule) {
	t.Helper()
	if r.Namespace != cfg.Monitoring.Namespace || r.Labels["release"] != cfg.Monitoring.Release {
		t.Errorf("rule %s/%s labels %v", r.Namespace, r.Name, r.Labels)
	}
	if len(r.Spec.Groups) != 1 || len(r.Spec.Groups[0].Rules) == 0 {
		t.Fatalf("rule groups %+v", r.Spec.Groups)
	}
	// The rules themselves are proven in rules_test.go; here: AppDown is
	// there, on the Probe's job.
	for _, rule := range r.Spec.Groups[0].Rules {
		if rule.Alert == "AppDown" {
			if rule.Expr.String() != `probe_success{job="`+cfg.Monitoring.Probe.Name+`"} == 0` {
				t.Errorf("AppDown expr %s: want it on the Probe's job", rule.Expr.String())
			}
			return
		}
	}
	t.Errorf("no AppDown rule in %+v", r.Spec.Groups[0].Rules)
}

func TestDefaultProbeMatchesReferenceSetup(t *testing.T) {
	_, docs := manifests(t, "default")
	var probe monitoringv1.Probe
	if err := sigsyaml.UnmarshalStrict(only(t, docs, "Probe"), &probe); err != nil {
		t.Fatal(err)
	}
	// DESIGN.md section 2: the reference setup's names.
	if probe.Name != "nextjs-http" || probe.Namespace != "monitoring" || probe.Spec.Module != "http_2xx" || probe.Spec.Interval != "30s" ||
		probe.Spec.ProberSpec.URL != "blackbox-prometheus-blackbox-exporter.monitoring.svc:9115" ||
		probe.Spec.Targets.StaticConfig.Targets[0] != "http://nextjs-app-service.default.svc.cluster.local:3000" {
		t.Errorf("default probe differs from the reference setup: %+v", probe.Spec)
	}
}

// TestAlertRulesPassPromtool checks the alert rules with Prometheus's own
// checker, as the operator would hand them to Prometheus.
func TestAlertRulesPassPromtool(t *testing.T) {
	promtool := testutil.NeedProgram(t, "promtool")
	for name := range configs {
		t.Run(name, func(t *testing.T) {
			_, docs := manifests(t, name)
			var rule monitoringv1.PrometheusRule
			if err := sigsyaml.UnmarshalStrict(only(t, docs, "PrometheusRule"), &rule); err != nil {
				t.Fatal(err)
			}
			data, err := sigsyaml.Marshal(rule.Spec)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "rules.yaml")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
				t.Fatalf("promtool check rules: %v\n%s", err, out)
			}
		})
	}
}
