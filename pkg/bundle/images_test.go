package bundle

import (
	"context"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/homelab-dev/homelab/pkg/config"
)

// upstreamCharts loads the real charts committed as test data.
func upstreamCharts(t testing.TB) Charts {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "e2e", "charts")
	stack, err := loader.Load(filepath.Join(dir, "kube-prometheus-stack-88.5.3.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	bb, err := loader.Load(filepath.Join(dir, "prometheus-blackbox-exporter-11.17.2.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	return Charts{Stack: stack, Blackbox: bb}
}

func defaultConfig(t testing.TB) *config.Config {
	t.Helper()
	l, err := config.Load(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Config
}

func TestConfigImagesOfTheUpstreamCharts(t *testing.T) {
	got, err := ConfigImages(context.Background(), defaultConfig(t), upstreamCharts(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("images:\n%s", strings.Join(got, "\n"))
	want := []string{
		"quay.io/prometheus/prometheus:v3.14.0-distroless",
		"quay.io/prometheus/alertmanager:v0.34.0",
		"quay.io/prometheus-operator/prometheus-operator:v0.93.1",
		"quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1",
		"quay.io/prometheus/node-exporter:v1.12.1-distroless",
		"registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0",
		"docker.io/grafana/grafana:13.2.0",
		"quay.io/kiwigrid/k8s-sidecar:2.10.1",
		"docker.io/library/busybox:1.38.0",
		"ghcr.io/jkroepke/kube-webhook-certgen:1.8.7",
		"quay.io/prometheus/blackbox-exporter:v0.28.0",
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing %s", w)
		}
	}
	// Nothing else: the helm-test-only image (bats) is not carried.
	if len(got) != len(want) {
		t.Errorf("got %d images, want exactly the %d above", len(got), len(want))
	}
}

func TestOperatorDefaultsAndReloader(t *testing.T) {
	objs, err := decodeAll(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: op}
spec:
  template:
    spec:
      containers:
      - name: operator
        image: quay.io/prometheus-operator/prometheus-operator:v1.0.0
        args: ["--prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v1.0.0", "--alertmanager-default-base-image", "mirror.example/am"]
---
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata: {name: p}
spec:
  version: v3.0.0
  containers:
  - name: extra
    image: busybox
---
apiVersion: monitoring.coreos.com/v1
kind: Alertmanager
metadata: {name: a}
spec: {version: v0.30.0}
`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := imagesOf(objs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"docker.io/library/busybox:latest",
		"mirror.example/am:v0.30.0",
		"quay.io/prometheus-operator/prometheus-config-reloader:v1.0.0",
		"quay.io/prometheus-operator/prometheus-operator:v1.0.0",
		"quay.io/prometheus/prometheus:v3.0.0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	// A Prometheus object without an operator to run it cannot be resolved.
	if _, err := imagesOf(objs[1:]); err == nil || !strings.Contains(err.Error(), "no prometheus-operator") {
		t.Errorf("without the operator: %v", err)
	}
}
