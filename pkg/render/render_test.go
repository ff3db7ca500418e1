package render

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/deploy"
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
		layout.ValuesStack: "-rw-r--r--", layout.ValuesBlackbox: "-rw-r--r--",
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

// TestEveryFileOfTheSetHasContent: init writes each file of the Set by
// name, so a file the Set forgot would be written empty; every one has its
// path and either content or a link target.
func TestEveryFileOfTheSetHasContent(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := renderConfig(t, "default")
	set, err := r.Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range set.Files() {
		if f.Path == "" || (len(f.Data) == 0) == (f.Link == "") {
			t.Errorf("file %d of the set: path %q, %d bytes, link %q: want a path and either content or a link", i, f.Path, len(f.Data), f.Link)
		}
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
			// Besides the modules monitoring.probe.module may name: the public
			// probe's own (deploy.PublicProbeModule), never the app's.
			if modules[deploy.PublicProbeModule] == nil || len(modules) != len(config.BlackboxModules)+1 {
				t.Errorf("blackbox modules %v, want those config accepts %v and %s", modules, config.BlackboxModules, deploy.PublicProbeModule)
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
