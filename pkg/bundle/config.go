package bundle

import (
	"context"
	"fmt"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/helm"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/render"
)

// Charts are the two charts homelab installs, loaded.
type Charts struct {
	Stack, Blackbox *chart.Chart
}

// ConfigImages lists the images the two charts reference when rendered with
// homelab's own values for cfg (pkg/render, as init writes them) and the
// Kubernetes version of cfg's k3s release.
func ConfigImages(ctx context.Context, cfg *config.Config, charts Charts) ([]string, error) {
	inputs, err := renderInputs(cfg, charts)
	if err != nil {
		return nil, err
	}
	return ChartImages(ctx, inputs, KubeVersion(cfg.K3s.Version))
}

func renderInputs(cfg *config.Config, charts Charts) ([]RenderInput, error) {
	r, err := render.New()
	if err != nil {
		return nil, err
	}
	m := cfg.Monitoring
	var inputs []RenderInput
	for _, c := range []struct {
		path, release string
		chart         *chart.Chart
	}{
		{layout.ValuesStack, m.Release, charts.Stack},
		{layout.ValuesBlackbox, m.Blackbox.Release, charts.Blackbox},
	} {
		f, err := r.Named(cfg, c.path)
		if err != nil {
			return nil, err
		}
		v, err := helm.ValuesFromYAML(f.Data)
		if err != nil {
			return nil, fmt.Errorf("values %s: %w", c.path, err)
		}
		if c.chart == nil {
			return nil, fmt.Errorf("no chart loaded for release %s", c.release)
		}
		inputs = append(inputs, RenderInput{Release: c.release, Namespace: m.Namespace, Chart: c.chart, Values: v})
	}
	return inputs, nil
}
