package render

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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// configs are the configurations every rendered file is checked over.
var configs = map[string]string{
	"default": "",
	"certbot": `
domain: blog.example.com
email: me@example.com
tls: {mode: certbot}
app:
  name: blog
  serviceName: blog
  namespace: web
  image: registry.example.com/me/blog:1.4.2
  port: 8080
  command: []
  replicas: 2
  healthPath: /api/health
  clusterIP: 10.43.0.40
`,
	"files": `
domain: home.example.org
tls:
  mode: files
  certFile: /etc/ssl/homelab/fullchain.pem
  keyFile: /etc/ssl/homelab/privkey.pem
monitoring:
  namespace: observability
  release: mon
  grafana: {path: /dash/grafana, localPort: 3200}
  probe: {name: blog-up, interval: 1m, module: tcp_connect}
  prometheus: {retention: 3d, retentionSize: 1GB, storageSize: 2Gi}
  blackbox: {release: bb}
k3s:
  serviceCIDR: 10.96.0.0/12
app:
  clusterIP: 10.96.0.50
`,
}

func renderConfig(t *testing.T, name string) (*config.Config, []File) {
	t.Helper()
	cfg, err := config.Parse(name+".yaml", []byte(configs[name]))
	if err != nil {
		t.Fatal(err)
	}
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	files, err := r.All(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, files
}

func fileAt(t *testing.T, files []File, path string) []byte {
	t.Helper()
	for _, f := range files {
		if f.Path == path {
			return f.Data
		}
	}
	t.Fatalf("no file rendered at %s", path)
	return nil
}

func TestGolden(t *testing.T) {
	for name := range configs {
		t.Run(name, func(t *testing.T) {
			_, files := renderConfig(t, name)
			for _, f := range files {
				data := f.Data
				if f.Link != "" {
					data = []byte("symlink -> " + f.Link + "\n")
				}
				testutil.Golden(t, filepath.Join("render", name, f.Path), data)
			}
		})
	}
}

func TestEveryFileHasItsHostPathAndMode(t *testing.T) {
	_, files := renderConfig(t, "default")
	want := map[string]string{
		layout.NginxSite: "-rw-r--r--", layout.NginxSiteLink: "Lrwxrwxrwx", layout.PortForwardUnit: "-rw-r--r--",
		layout.AppManifests: "-rw-r--r--", layout.ValuesStack: "-rw-r--r--", layout.ValuesBlackbox: "-rw-r--r--",
		layout.EffectiveConfig: "-rw-------",
	}
	if len(files) != len(want) {
		t.Errorf("rendered %d files, want %d", len(files), len(want))
	}
	for _, f := range files {
		mode := f.Mode.String()
		if f.Link != "" {
			mode = "L" + mode[1:]
		}
		if want[f.Path] != mode {
			t.Errorf("%s: mode %s, want %s", f.Path, mode, want[f.Path])
		}
	}
}

// splitDocs splits multi-document YAML.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(data, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

// TestManifestsDecodeStrictly decodes every manifest into the Kubernetes and
// prometheus-operator Go types, refusing unknown or duplicate fields, and
// checks what the API server and Prometheus rely on.
func TestManifestsDecodeStrictly(t *testing.T) {
	for name := range configs {
		t.Run(name, func(t *testing.T) {
			cfg, files := renderConfig(t, name)
			docs := splitDocs(fileAt(t, files, layout.AppManifests))
			if len(docs) != 4 {
				t.Fatalf("%d documents, want Deployment, Service, Probe, PrometheusRule", len(docs))
			}
			var dep appsv1.Deployment
			var svc corev1.Service
			var probe monitoringv1.Probe
			var rule monitoringv1.PrometheusRule
			for i, into := range []any{&dep, &svc, &probe, &rule} {
				if err := sigsyaml.UnmarshalStrict(docs[i], into); err != nil {
					t.Fatalf("document %d does not decode strictly into %T: %v", i+1, into, err)
				}
			}
			checkDeployment(t, cfg, &dep)
			checkService(t, cfg, &svc, &dep)
			checkProbe(t, cfg, &probe)
			checkRule(t, cfg, &rule)
		})
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
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Image != cfg.App.Image || c.ImagePullPolicy != corev1.PullNever {
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
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("resources %+v: want memory requests and limits", c.Resources)
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
	if len(r.Spec.Groups) != 1 || len(r.Spec.Groups[0].Rules) != 1 {
		t.Fatalf("rule groups %+v", r.Spec.Groups)
	}
	rule := r.Spec.Groups[0].Rules[0]
	if rule.Alert != "AppDown" || rule.Expr.String() != `probe_success{job="`+cfg.Monitoring.Probe.Name+`"} == 0` {
		t.Errorf("alert %s expr %s: want AppDown on the Probe's job", rule.Alert, rule.Expr.String())
	}
}

func TestDefaultProbeMatchesReferenceSetup(t *testing.T) {
	cfg, files := renderConfig(t, "default")
	var probe monitoringv1.Probe
	if err := sigsyaml.UnmarshalStrict(splitDocs(fileAt(t, files, layout.AppManifests))[2], &probe); err != nil {
		t.Fatal(err)
	}
	// DESIGN.md section 2: the reference setup's names.
	if probe.Name != "nextjs-http" || probe.Namespace != "monitoring" || probe.Spec.Module != "http_2xx" || probe.Spec.Interval != "30s" ||
		probe.Spec.ProberSpec.URL != "blackbox-prometheus-blackbox-exporter.monitoring.svc:9115" ||
		probe.Spec.Targets.StaticConfig.Targets[0] != "http://nextjs-app-service.default.svc.cluster.local:3000" {
		t.Errorf("default probe differs from the reference setup: %+v", probe.Spec)
	}
	if cfg.Monitoring.GrafanaServiceName() != "lightweight-monitoring-grafana" {
		t.Errorf("grafana service %s", cfg.Monitoring.GrafanaServiceName())
	}
}

// TestValues checks the chart values that avoid the known traps.
func TestValues(t *testing.T) {
	for name := range configs {
		t.Run(name, func(t *testing.T) {
			cfg, files := renderConfig(t, name)
			var stack, bb map[string]any
			if err := sigsyaml.UnmarshalStrict(fileAt(t, files, layout.ValuesStack), &stack); err != nil {
				t.Fatal(err)
			}
			if err := sigsyaml.UnmarshalStrict(fileAt(t, files, layout.ValuesBlackbox), &bb); err != nil {
				t.Fatal(err)
			}
			for path, want := range map[string]any{
				"grafana.ingress.enabled":                                                         false,
				"prometheus.ingress.enabled":                                                      false,
				"alertmanager.ingress.enabled":                                                    false,
				"grafana.grafana\\.ini.server.root_url":                                           cfg.GrafanaURL(),
				"grafana.grafana\\.ini.server.serve_from_sub_path":                                true,
				"grafana.grafana\\.ini.server.domain":                                             cfg.Domain,
				"grafana.admin.existingSecret":                                                    cfg.Monitoring.GrafanaAdminSecret(),
				"prometheus.prometheusSpec.probeSelectorNilUsesHelmValues":                        false,
				"prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues":               false,
				"prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues":                   false,
				"prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues":                         false,
				"prometheus.prometheusSpec.retention":                                             cfg.Monitoring.Prometheus.Retention,
				"prometheus.prometheusSpec.retentionSize":                                         cfg.Monitoring.Prometheus.RetentionSize,
				"prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec.storageClassName": "local-path",
				"grafana.persistence.storageClassName":                                            "local-path",
				"kubeControllerManager.enabled":                                                   false,
				"kubeScheduler.enabled":                                                           false,
				"kubeProxy.enabled":                                                               false,
				"kubeEtcd.enabled":                                                                false,
			} {
				if got := lookup(stack, path); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("kube-prometheus-stack %s = %v, want %v", path, got, want)
				}
			}
			if cfg.GrafanaURL() != strings.TrimSuffix(cfg.GrafanaURL(), "/")+"/" || !strings.Contains(cfg.GrafanaURL(), cfg.Domain+cfg.Monitoring.Grafana.Path) {
				t.Errorf("root_url %s must be the public URL with the sub-path and a trailing slash", cfg.GrafanaURL())
			}
			if _, ok := lookup(stack, "grafana.adminPassword").(string); ok {
				t.Error("values set grafana.adminPassword: the password must only live in the Secret")
			}
			modules, _ := lookup(bb, "config.modules").(map[string]any)
			for _, m := range config.BlackboxModules {
				if modules[m] == nil {
					t.Errorf("blackbox values lack module %s that config accepts", m)
				}
			}
			if len(modules) != len(config.BlackboxModules) {
				t.Errorf("blackbox modules %v, config accepts %v", modules, config.BlackboxModules)
			}
		})
	}
}

// containerMemory lists where each long-running container of both charts
// takes its resources, with how many containers share the setting.
var containerMemory = []struct {
	values, path string
	containers   int
}{
	{"stack", "prometheus.prometheusSpec.resources", 1},
	{"stack", "alertmanager.alertmanagerSpec.resources", 1},
	{"stack", "prometheusOperator.resources", 1},
	{"stack", "prometheusOperator.prometheusConfigReloader.resources", 2}, // in the Prometheus and Alertmanager pods
	{"stack", "grafana.resources", 1},
	{"stack", "grafana.sidecar.resources", 2}, // dashboards and datasources sidecars
	{"stack", "kube-state-metrics.resources", 1},
	{"stack", "prometheus-node-exporter.resources", 1},
	{"blackbox", "resources", 1},
}

// TestHomeProfileFitsInOneGiB: no container without a memory limit, and the
// whole monitoring stack within 1 GiB of limits (DESIGN.md section 2).
func TestHomeProfileFitsInOneGiB(t *testing.T) {
	_, files := renderConfig(t, "default")
	values := map[string]map[string]any{}
	for key, path := range map[string]string{"stack": layout.ValuesStack, "blackbox": layout.ValuesBlackbox} {
		var v map[string]any
		if err := sigsyaml.Unmarshal(fileAt(t, files, path), &v); err != nil {
			t.Fatal(err)
		}
		values[key] = v
	}
	total := resource.MustParse("0")
	for _, c := range containerMemory {
		limit, _ := lookup(values[c.values], c.path+".limits.memory").(string)
		request, _ := lookup(values[c.values], c.path+".requests.memory").(string)
		if limit == "" || request == "" {
			t.Errorf("%s: %s has no memory request and limit", c.values, c.path)
			continue
		}
		q := resource.MustParse(limit)
		for i := 0; i < c.containers; i++ {
			total.Add(q)
		}
	}
	if max := resource.MustParse("1Gi"); total.Cmp(max) > 0 {
		t.Errorf("memory limits add up to %s, more than 1Gi", total.String())
	}
	t.Logf("monitoring stack memory limits: %dMi", total.Value()>>20)
	for _, short := range []string{"prometheusOperator.admissionWebhooks.patch.resources", "grafana.initChownData.resources"} {
		if lookup(values["stack"], short+".limits.memory") == nil {
			t.Errorf("%s has no memory limit", short)
		}
	}
}

// lookup follows a dotted path; "\." escapes a dot inside a key.
func lookup(m map[string]any, path string) any {
	var cur any = m
	for _, key := range strings.Split(strings.ReplaceAll(path, `\.`, "\x00"), ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[strings.ReplaceAll(key, "\x00", ".")]
	}
	return cur
}

// TestAlertRulesPassPromtool checks the alert rules with Prometheus's own
// checker, as the operator would hand them to Prometheus.
func TestAlertRulesPassPromtool(t *testing.T) {
	promtool := testutil.NeedProgram(t, "promtool")
	for name := range configs {
		t.Run(name, func(t *testing.T) {
			_, files := renderConfig(t, name)
			var rule monitoringv1.PrometheusRule
			if err := sigsyaml.UnmarshalStrict(splitDocs(fileAt(t, files, layout.AppManifests))[3], &rule); err != nil {
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
