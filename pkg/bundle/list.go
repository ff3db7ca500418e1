package bundle

import (
	"context"
	"fmt"
	"os"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/helm"
)

// ListImages fetches the two charts from cfg's repository, as Write does,
// and returns the images they run with cfg (ConfigImages); nothing else is
// downloaded. For mirroring the images into a registry of one's own.
func ListImages(ctx context.Context, cfg *config.Config) ([]string, error) {
	home, err := os.MkdirTemp("", "homelab-helm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(home)
	engine := &helm.Engine{Home: home}
	m := cfg.Monitoring
	var charts Charts
	for _, c := range []struct {
		src  helm.Source
		dest **chart.Chart
	}{
		{helm.Source{RepoURL: m.ChartRepo, Name: StackChart, Version: m.ChartVersion}, &charts.Stack},
		{helm.Source{RepoURL: m.ChartRepo, Name: BlackboxChart, Version: m.Blackbox.ChartVersion}, &charts.Blackbox},
	} {
		_, ch, err := engine.FetchArchive(c.src)
		if err != nil {
			return nil, fmt.Errorf("chart %s %s: %w", c.src.Name, c.src.Version, err)
		}
		*c.dest = ch
	}
	return ConfigImages(ctx, cfg, charts)
}
