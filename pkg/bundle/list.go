package bundle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/helm"
)

// ListImages fetches the two charts from cfg's repository, as Write does,
// and returns the images they run with cfg (ConfigImages); nothing else is
// downloaded. For mirroring the images into a registry of one's own.
func ListImages(ctx context.Context, cfg *config.Config) ([]string, error) {
	// A cache of homelab's own, kept for the next run (an archive in it is
	// checked against the repository's index before use), rather than a
	// temporary directory an interrupted run would leave in /tmp.
	cache, err := os.UserCacheDir()
	if err != nil {
		return nil, fmt.Errorf("a directory for the chart cache: %w (set XDG_CACHE_HOME or HOME)", err)
	}
	engine := &helm.Engine{Home: filepath.Join(cache, "homelab", "helm")}
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
