// Command baseline prints the objects of a second Prometheus that scrapes
// like kube-prometheus-stack with the chart's own default values: its
// Prometheus, its ServiceMonitors and PodMonitors and all its rules, as
// `helm template` renders them with no values. The journey (e2e/run) applies
// them beside homelab's release, so homelab's scrape profile and the
// chart's defaults are measured in the same run on the same node (issue 17).
//
// The copies are renamed (prefix "baseline-") and carry the label
// homelab-e2e=baseline instead of the release label, so homelab's Prometheus
// does not select them and the baseline Prometheus selects only them. The
// baseline runs homelab's Prometheus image (the machine has no other) under
// homelab's service account, sends no alerts, and has no memory limit, as
// the chart's defaults have none.
//
//	go run ./e2e/baseline -chart e2e/charts/kube-prometheus-stack-88.5.3.tgz \
//	    -release lightweight-monitoring -namespace monitoring -image IMAGE -version VERSION
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	sigsyaml "sigs.k8s.io/yaml"
)

// Marker is the label every baseline object carries, and the baseline
// Prometheus selects on.
const (
	markerKey   = "homelab-e2e"
	markerValue = "baseline"
	namePrefix  = "baseline-"
	// PrometheusName is the baseline Prometheus's name: its pod is
	// prometheus-baseline-0.
	PrometheusName = "baseline"
)

// copied are the kinds that make up the scrape set and the rules; everything
// else (exporters, Services, RBAC) is homelab's release's own, shared.
var copied = map[string]bool{"ServiceMonitor": true, "PodMonitor": true, "PrometheusRule": true}

func main() {
	chartPath := flag.String("chart", "", "kube-prometheus-stack chart archive")
	release := flag.String("release", "", "homelab's release name (the chart's objects select its Services by it)")
	namespace := flag.String("namespace", "", "the monitoring namespace")
	image := flag.String("image", "", "the Prometheus image homelab's Prometheus runs")
	version := flag.String("version", "", "the Prometheus version homelab's Prometheus declares")
	flag.Parse()
	if *chartPath == "" || *release == "" || *namespace == "" || *image == "" {
		fmt.Fprintln(os.Stderr, "usage: baseline -chart FILE -release NAME -namespace NS -image IMAGE [-version V]")
		os.Exit(2)
	}
	objs, err := baseline(*chartPath, *release, *namespace, *image, *version)
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
	out, err := json.MarshalIndent(map[string]any{"apiVersion": "v1", "kind": "List", "items": objs}, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
	os.Stdout.Write(append(out, '\n'))
}

// baseline renders the chart with its default values and returns the
// baseline Prometheus and the copies of its monitors and rules.
func baseline(chartPath, release, namespace, image, version string) ([]map[string]any, error) {
	objs, err := render(chartPath, release, namespace)
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	var prom map[string]any
	for _, o := range objs {
		kind, _ := o["kind"].(string)
		switch {
		case kind == "Prometheus":
			if prom != nil {
				return nil, fmt.Errorf("the chart rendered two Prometheus objects")
			}
			prom = o
		case copied[kind]:
			mark(o)
			out = append(out, o)
		}
	}
	if prom == nil {
		return nil, fmt.Errorf("the chart rendered no Prometheus with its default values")
	}
	mark(prom)
	// The operator names the StatefulSet prometheus-NAME; the chart's own
	// name with the prefix would pass the 52 characters a StatefulSet's
	// name may have.
	prom["metadata"].(map[string]any)["name"] = PrometheusName
	spec, _ := prom["spec"].(map[string]any)
	if spec == nil {
		return nil, fmt.Errorf("the chart's Prometheus has no spec")
	}
	only := map[string]any{"matchLabels": map[string]any{markerKey: markerValue}}
	for _, sel := range []string{"serviceMonitorSelector", "podMonitorSelector", "probeSelector", "scrapeConfigSelector", "ruleSelector"} {
		spec[sel] = only
	}
	for _, ns := range []string{"serviceMonitorNamespaceSelector", "podMonitorNamespaceSelector", "probeNamespaceSelector", "scrapeConfigNamespaceSelector", "ruleNamespaceSelector"} {
		spec[ns] = map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": namespace}}
	}
	delete(spec, "alerting") // homelab's Alertmanager must not hear from it
	spec["image"] = image
	if version != "" {
		spec["version"] = version
	}
	return append([]map[string]any{prom}, out...), nil
}

// mark renames o and swaps its release label for the baseline marker.
func mark(o map[string]any) {
	meta, _ := o["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		o["metadata"] = meta
	}
	meta["name"] = namePrefix + fmt.Sprint(meta["name"])
	labels, _ := meta["labels"].(map[string]any)
	if labels == nil {
		labels = map[string]any{}
	}
	delete(labels, "release")
	labels[markerKey] = markerValue
	meta["labels"] = labels
}

// render is `helm template` of the chart with its default values for
// Kubernetes v1.37.2 with the monitoring CRDs present.
func render(chartPath, release, namespace string) ([]map[string]any, error) {
	ch, err := loader.Load(chartPath)
	if err != nil {
		return nil, err
	}
	vals := chartutil.Values{}
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		return nil, fmt.Errorf("dependencies: %w", err)
	}
	caps := *chartutil.DefaultCapabilities
	caps.KubeVersion = chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}
	caps.APIVersions = append(append(chartutil.VersionSet{}, caps.APIVersions...),
		"monitoring.coreos.com/v1", "monitoring.coreos.com/v1alpha1")
	opts := chartutil.ReleaseOptions{Name: release, Namespace: namespace, IsInstall: true, Revision: 1}
	rv, err := chartutil.ToRenderValues(ch, vals, opts, &caps)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		if strings.HasSuffix(n, ".yaml") && !strings.Contains(n, "/crds/") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	sep := regexp.MustCompile(`(?m)^---\s*$`)
	var objs []map[string]any
	for _, n := range names {
		for _, doc := range sep.Split(files[n], -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var o map[string]any
			if err := sigsyaml.Unmarshal([]byte(doc), &o); err != nil {
				return nil, fmt.Errorf("%s: %w", n, err)
			}
			if o != nil {
				objs = append(objs, o)
			}
		}
	}
	return objs, nil
}
