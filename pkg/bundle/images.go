package bundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// RenderInput is one chart as homelab installs it: the loaded chart, the
// release name and namespace, and homelab's values for it.
type RenderInput struct {
	Release   string
	Namespace string
	Chart     *chart.Chart
	Values    map[string]any
}

// KubeVersion turns a k3s release tag (v1.37.2+k3s1) into the Kubernetes
// version charts see in .Capabilities.KubeVersion (v1.37.2).
func KubeVersion(k3sVersion string) string {
	v, _, _ := strings.Cut(k3sVersion, "+")
	return v
}

// ChartImages renders every chart as `helm template` does (client-only, no
// cluster; the charts' own CRDs count as installed API versions, as they are
// on the server when homelab installs the charts) for Kubernetes kubeVersion,
// and returns every image the rendered objects reference, normalized
// (docker.io/library/busybox:1.38.0) and sorted:
//
//   - the containers, init containers and ephemeral containers of every pod
//     template (Deployments, DaemonSets, StatefulSets, Jobs, CronJobs, Pods,
//     ReplicaSets), install/upgrade hooks included;
//   - the images the prometheus-operator runs for the Prometheus,
//     Alertmanager and ThanosRuler objects: their spec.image (else the
//     operator's default base image and spec.version), their extra
//     containers, and the config reloader the operator adds (its
//     --prometheus-config-reloader argument).
//
// Hooks that run only for `helm test` are left out: homelab never runs them.
func ChartImages(ctx context.Context, inputs []RenderInput, kubeVersion string) ([]string, error) {
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		return nil, fmt.Errorf("kubernetes version %q: %w", kubeVersion, err)
	}
	var objs []map[string]any
	for _, in := range inputs {
		rendered, err := renderChart(ctx, in, kv)
		if err != nil {
			return nil, err
		}
		objs = append(objs, rendered...)
	}
	return imagesOf(objs)
}

// renderChart renders one chart client-only and returns its objects.
func renderChart(ctx context.Context, in RenderInput, kv *chartutil.KubeVersion) ([]map[string]any, error) {
	name := in.Chart.Metadata.Name + " " + in.Chart.Metadata.Version
	inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	inst.DryRun, inst.ClientOnly, inst.Replace = true, true, true
	inst.ReleaseName, inst.Namespace = in.Release, in.Namespace
	inst.KubeVersion = kv
	inst.APIVersions = crdAPIVersions(in.Chart)
	inst.IncludeCRDs = false
	values := in.Values
	if values == nil {
		values = map[string]any{}
	}
	rel, err := inst.RunWithContext(ctx, in.Chart, values)
	if err != nil {
		return nil, fmt.Errorf("render chart %s with homelab's values: %w", name, err)
	}
	var objs []map[string]any
	add := func(manifest, what string) error {
		docs, err := decodeAll(manifest)
		if err != nil {
			return fmt.Errorf("render chart %s: %s: %w", name, what, err)
		}
		objs = append(objs, docs...)
		return nil
	}
	if err := add(rel.Manifest, "manifest"); err != nil {
		return nil, err
	}
	for _, h := range rel.Hooks {
		if slices.Contains(h.Events, release.HookTest) {
			continue
		}
		if err := add(h.Manifest, "hook "+h.Path); err != nil {
			return nil, err
		}
	}
	return objs, nil
}

// crdAPIVersions lists the API versions (group/version and
// group/version/Kind) the chart's CRDs define.
func crdAPIVersions(ch *chart.Chart) chartutil.VersionSet {
	var set chartutil.VersionSet
	for _, f := range ch.CRDObjects() {
		docs, err := decodeAll(string(f.File.Data))
		if err != nil {
			continue // Helm itself would fail on it later, with a better message
		}
		for _, d := range docs {
			u := unstructured.Unstructured{Object: d}
			if u.GetKind() != "CustomResourceDefinition" {
				continue
			}
			group, _, _ := unstructured.NestedString(d, "spec", "group")
			kind, _, _ := unstructured.NestedString(d, "spec", "names", "kind")
			versions, _, _ := unstructured.NestedSlice(d, "spec", "versions")
			for _, v := range versions {
				vm, ok := v.(map[string]any)
				if !ok {
					continue
				}
				if name, ok := vm["name"].(string); ok && group != "" {
					set = append(set, group+"/"+name, group+"/"+name+"/"+kind)
				}
			}
		}
	}
	return set
}

func decodeAll(manifest string) ([]map[string]any, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(manifest)), 4096)
	var out []map[string]any
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(obj) == 0 {
			continue
		}
		if items, ok := obj["items"].([]any); ok && strings.HasSuffix(fmt.Sprint(obj["kind"]), "List") {
			for _, it := range items {
				if m, ok := it.(map[string]any); ok {
					out = append(out, m)
				}
			}
			continue
		}
		out = append(out, obj)
	}
}

// podSpecPaths is where each workload kind keeps its pod spec.
var podSpecPaths = map[string][]string{
	"Pod":                   {"spec"},
	"Deployment":            {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
}

// operator defaults, used when the operator's arguments do not name them.
const (
	defaultPrometheusBase   = "quay.io/prometheus/prometheus"
	defaultAlertmanagerBase = "quay.io/prometheus/alertmanager"
	defaultThanosBase       = "quay.io/thanos/thanos"
)

// imagesOf collects the images of rendered objects (see ChartImages).
func imagesOf(objs []map[string]any) ([]string, error) {
	found := map[string]bool{}
	var errs []error
	add := func(img, where string) {
		if img == "" {
			return
		}
		ref, err := NormalizeImage(img)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: image %q: %w", where, img, err))
			return
		}
		found[ref] = true
	}
	// The operator's arguments say which images it runs for its objects.
	opArgs := map[string]string{}
	operators := 0
	for _, o := range objs {
		kind, name := str(o, "kind"), str(o, "metadata", "name")
		path, ok := podSpecPaths[kind]
		if !ok {
			continue
		}
		spec, _, _ := unstructured.NestedMap(o, path...)
		for _, c := range containers(spec) {
			add(str(c, "image"), kind+" "+name)
			if isOperator(c) {
				operators++
				for k, v := range flagArgs(c) {
					opArgs[k] = v
				}
			}
		}
	}
	var crs []map[string]any
	for _, o := range objs {
		if strings.HasPrefix(str(o, "apiVersion"), "monitoring.coreos.com/") {
			switch str(o, "kind") {
			case "Prometheus", "Alertmanager", "ThanosRuler":
				crs = append(crs, o)
			}
		}
	}
	if len(crs) > 0 && operators == 0 {
		errs = append(errs, errors.New("the charts create Prometheus/Alertmanager objects but no prometheus-operator Deployment: cannot tell which images the operator would run for them"))
	}
	reloader := opArgs["prometheus-config-reloader"]
	if len(crs) > 0 && operators > 0 && reloader == "" {
		errs = append(errs, errors.New("the prometheus-operator has no --prometheus-config-reloader argument: cannot tell which config-reloader image it adds to Prometheus and Alertmanager"))
	}
	for _, o := range crs {
		kind, name := str(o, "kind"), str(o, "metadata", "name")
		where := kind + " " + name
		spec, _, _ := unstructured.NestedMap(o, "spec")
		img := str(spec, "image")
		if img == "" {
			base := map[string]string{
				"Prometheus":   or(opArgs["prometheus-default-base-image"], defaultPrometheusBase),
				"Alertmanager": or(opArgs["alertmanager-default-base-image"], defaultAlertmanagerBase),
				"ThanosRuler":  or(opArgs["thanos-default-base-image"], defaultThanosBase),
			}[kind]
			if v := str(spec, "version"); v != "" {
				img = base + ":" + v
			} else {
				errs = append(errs, fmt.Errorf("%s: neither spec.image nor spec.version is set, and the operator's default version is not known here", where))
			}
		}
		add(img, where)
		for _, c := range containers(spec) {
			add(str(c, "image"), where)
		}
		if kind != "ThanosRuler" {
			add(reloader, where+" (config reloader)")
		}
		if thanos, ok, _ := unstructured.NestedMap(spec, "thanos"); ok && kind == "Prometheus" {
			ti := str(thanos, "image")
			if ti == "" {
				if v := str(thanos, "version"); v != "" {
					ti = or(opArgs["thanos-default-base-image"], defaultThanosBase) + ":" + v
				}
			}
			if ti == "" {
				errs = append(errs, fmt.Errorf("%s: the Thanos sidecar has neither image nor version", where))
			}
			add(ti, where+" (thanos sidecar)")
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(found))
	for ref := range found {
		out = append(out, ref)
	}
	sort.Strings(out)
	return out, nil
}

func containers(spec map[string]any) []map[string]any {
	var out []map[string]any
	for _, field := range []string{"initContainers", "containers", "ephemeralContainers"} {
		list, _, _ := unstructured.NestedSlice(spec, field)
		for _, c := range list {
			if m, ok := c.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

// isOperator recognises the prometheus-operator container by its flags.
func isOperator(c map[string]any) bool {
	_, ok := flagArgs(c)["prometheus-config-reloader"]
	return ok || strings.Contains(str(c, "image"), "/prometheus-operator:")
}

// flagArgs reads a container's --name=value arguments.
func flagArgs(c map[string]any) map[string]string {
	out := map[string]string{}
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	for i, a := range args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			v = args[i+1]
		}
		out[k] = v
	}
	return out
}

func str(m map[string]any, fields ...string) string {
	s, _, _ := unstructured.NestedString(m, fields...)
	return s
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// NormalizeImage returns the fully qualified form of an image reference, as
// containerd and the kubelet name it: busybox:1.38 → docker.io/library/busybox:1.38.
// A reference without tag or digest gets :latest.
func NormalizeImage(img string) (string, error) {
	named, err := reference.ParseNormalizedNamed(strings.TrimSpace(img))
	if err != nil {
		return "", err
	}
	return reference.TagNameOnly(named).String(), nil
}
