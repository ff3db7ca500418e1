// listimages renders a chart archive with a values file through the Helm SDK
// (as `helm install --dry-run` would, client-side) and prints every container
// image the rendered objects reference, one per line with where it was found:
//
//	IMAGE<TAB>KIND/NAME: FIELD
//
// Besides every "image:" field (containers, init containers, and the
// Prometheus/Alertmanager custom resources' spec.image), it reads the images
// the prometheus-operator starts at run time from its arguments
// (--prometheus-config-reloader=, --*-default-base-image=).
// Helm test hooks are left out: homelab never runs `helm test`.
//
//	listimages -chart X.tgz -values V.yaml -release R -namespace NS [-kube-version v1.37.2]
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"sigs.k8s.io/yaml"
)

func main() {
	chartPath := flag.String("chart", "", "chart archive (.tgz)")
	valuesPath := flag.String("values", "", "values file")
	rel := flag.String("release", "", "release name")
	ns := flag.String("namespace", "default", "release namespace")
	kubeVersion := flag.String("kube-version", "v1.37.2", "Kubernetes version the chart is rendered for")
	manifestOut := flag.String("manifest-out", "", "also write the rendered manifests (and hooks) to this file")
	flag.Parse()
	if *chartPath == "" || *rel == "" {
		fmt.Fprintln(os.Stderr, "usage: listimages -chart X.tgz -values V.yaml -release R -namespace NS")
		os.Exit(2)
	}
	if err := run(*chartPath, *valuesPath, *rel, *ns, *kubeVersion, *manifestOut, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "listimages:", err)
		os.Exit(1)
	}
}

func run(chartPath, valuesPath, rel, ns, kubeVersion, manifestOut string, out io.Writer) error {
	ch, err := loader.Load(chartPath)
	if err != nil {
		return err
	}
	vals := map[string]any{}
	if valuesPath != "" {
		vals, err = chartutil.ReadValuesFile(valuesPath)
		if err != nil {
			return err
		}
	}
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		return err
	}
	cfg := &action.Configuration{}
	in := action.NewInstall(cfg)
	in.DryRun, in.ClientOnly, in.Replace = true, true, true
	in.ReleaseName, in.Namespace = rel, ns
	in.KubeVersion = kv
	in.IncludeCRDs = false
	// homelab applies the operator's CRDs before it installs the chart, so
	// the monitoring API is there when the chart asks for it.
	in.APIVersions = chartutil.VersionSet{"monitoring.coreos.com/v1", "monitoring.coreos.com/v1alpha1"}
	r, err := in.Run(ch, vals)
	if err != nil {
		return fmt.Errorf("render %s: %w", chartPath, err)
	}
	var all bytes.Buffer
	all.WriteString(r.Manifest)
	for _, h := range r.Hooks {
		if isTestHook(h) {
			continue
		}
		fmt.Fprintf(&all, "\n---\n# Source: %s (hook %v)\n%s\n", h.Path, h.Events, h.Manifest)
	}
	if manifestOut != "" {
		if err := os.WriteFile(manifestOut, all.Bytes(), 0o644); err != nil {
			return err
		}
	}
	found := map[string][]string{}
	// Images the operator would use only when a custom resource does not
	// name its own: flag -> image and where.
	type deflt struct{ img, where string }
	defaults := map[string]deflt{}
	crWithoutImage := map[string]bool{} // "Prometheus", "Alertmanager", "Thanos"
	for _, doc := range splitDocs(all.String()) {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return fmt.Errorf("parse rendered object: %w\n%s", err, doc)
		}
		if obj == nil {
			continue
		}
		kind, _ := obj["kind"].(string)
		name := ""
		if md, ok := obj["metadata"].(map[string]any); ok {
			name, _ = md["name"].(string)
		}
		where := kind + "/" + name
		if spec, ok := obj["spec"].(map[string]any); ok {
			switch kind {
			case "Prometheus", "Alertmanager":
				if s, _ := spec["image"].(string); s == "" {
					crWithoutImage[kind] = true
				}
				if th, ok := spec["thanos"].(map[string]any); ok && kind == "Prometheus" {
					if s, _ := th["image"].(string); s == "" {
						crWithoutImage["Thanos"] = true
					}
				}
			case "ThanosRuler":
				if s, _ := spec["image"].(string); s == "" {
					crWithoutImage["Thanos"] = true
				}
			}
		}
		walk(obj, "", func(path, img string) {
			for flag, k := range defaultFlags {
				if strings.HasSuffix(path, " "+flag) {
					defaults[k] = deflt{img, where + ": " + path}
					return
				}
			}
			found[img] = append(found[img], where+": "+path)
		})
	}
	var unused []string
	for k, d := range defaults {
		if crWithoutImage[k] {
			found[d.img] = append(found[d.img], d.where)
		} else {
			unused = append(unused, fmt.Sprintf("# not needed: %s (%s; no %s resource without its own image)", d.img, d.where, k))
		}
	}
	sort.Strings(unused)
	if len(found) == 0 {
		return errors.New("no image found in the rendered chart")
	}
	imgs := make([]string, 0, len(found))
	for k := range found {
		imgs = append(imgs, k)
	}
	sort.Strings(imgs)
	for _, img := range imgs {
		fmt.Fprintf(out, "%s\t%s\n", img, strings.Join(found[img], ", "))
	}
	for _, u := range unused {
		fmt.Fprintln(out, u)
	}
	return nil
}

func isTestHook(h *release.Hook) bool {
	for _, e := range h.Events {
		if e == release.HookTest {
			return true
		}
	}
	return false
}

func splitDocs(s string) []string {
	var docs []string
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimRight(line, " ") == "---" {
			docs = append(docs, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	docs = append(docs, cur.String())
	return docs
}

// defaultFlags are the operator flags whose image is used only for custom
// resources that do not set their own image.
var defaultFlags = map[string]string{
	"--prometheus-default-base-image":   "Prometheus",
	"--alertmanager-default-base-image": "Alertmanager",
	"--thanos-default-base-image":       "Thanos",
}

// operatorImageFlags are the prometheus-operator flags that name images it
// puts into the pods it creates.
var operatorImageFlags = []string{
	"--prometheus-config-reloader=",
	"--prometheus-default-base-image=",
	"--alertmanager-default-base-image=",
	"--thanos-default-base-image=",
}

func walk(v any, path string, add func(path, img string)) {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := path + "." + k
			if k == "image" {
				if s, ok := t[k].(string); ok && s != "" {
					add(p, s)
					continue
				}
			}
			walk(t[k], p, add)
		}
	case []any:
		for i, e := range t {
			p := fmt.Sprintf("%s[%d]", path, i)
			if s, ok := e.(string); ok && strings.HasSuffix(path, ".args") {
				for _, f := range operatorImageFlags {
					if strings.HasPrefix(s, f) {
						add(p+" "+strings.TrimSuffix(f, "="), strings.TrimPrefix(s, f))
					}
				}
				continue
			}
			walk(e, p, add)
		}
	}
}
