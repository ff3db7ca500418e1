package helm

import (
	"fmt"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
)

// Template renders a chart built into homelab (src.Files) client-side, as
// `helm template` does: the manifests an install would apply, in file
// order, each after a "# Source:" line. It needs no cluster.
func Template(src Source, name, namespace string, values map[string]any) ([]byte, error) {
	if src.Files == nil {
		return nil, fmt.Errorf("chart %s: only charts built into homelab are rendered without a cluster", src.Name)
	}
	ch, err := loadFS(src.Files)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", src.Name, err)
	}
	opts := chartutil.ReleaseOptions{Name: name, Namespace: namespace, IsInstall: true, Revision: 1}
	vals, err := chartutil.ToRenderValues(ch, values, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(ch, vals)
	if err != nil {
		return nil, fmt.Errorf("render chart %s: %w", src.Name, err)
	}
	names := make([]string, 0, len(out))
	for n, body := range out {
		if strings.TrimSpace(body) != "" && strings.HasSuffix(n, ".yaml") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString("---\n")
		}
		fmt.Fprintf(&b, "# Source: %s\n%s\n", n, strings.TrimSpace(out[n]))
	}
	return []byte(b.String()), nil
}
