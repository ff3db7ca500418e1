package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/distribution/reference"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/images"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// BuildTagPrefix starts the tag each deployed build gets in containerd, so
// that an older build stays available (and pinned) for a rollback after the
// app's own tag, like latest, has moved on.
const BuildTagPrefix = "homelab-"

// importBuild imports src under the app's image name and tags it as a build.
func importBuild(ctx context.Context, imgs Images, src images.Source, name string) (Build, error) {
	imported, err := imgs.ImportFrom(ctx, withProgress(src, func(s string) { plan.Report(ctx, s) }), images.ImportOptions{Name: name})
	if err != nil {
		return Build{}, err
	}
	tag, err := buildTag(name, imported.Digest.Encoded())
	if err != nil {
		return Build{}, err
	}
	if err := imgs.Tag(ctx, name, tag); err != nil {
		return Build{}, err
	}
	return Build{Reference: tag, Digest: imported.Digest.String()}, nil
}

func buildTag(name, encodedDigest string) (string, error) {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "", err
	}
	return named.Name() + ":" + BuildTagPrefix + encodedDigest[:12], nil
}

// pruneStep removes the build tags no revision in the release's history
// runs: those a rollback can no longer reach.
func pruneStep(cfg *config.Config, d Deps, name string) plan.Step {
	stale := func(ctx context.Context) ([]string, error) {
		named, err := reference.ParseNormalizedNamed(name)
		if err != nil {
			return nil, err
		}
		e, err := d.Helm()
		if err != nil {
			return nil, err
		}
		hist, err := e.History(ctx, ReleaseName(cfg), cfg.App.Namespace)
		if err != nil {
			return nil, err
		}
		used := map[string]bool{}
		for _, h := range hist {
			if ref := buildOf(h.Values).Reference; ref != "" {
				if n, err := images.NormalizeName(ref); err == nil {
					used[n] = true
				}
			}
		}
		tags, err := d.Images.Tags(ctx, named.Name(), BuildTagPrefix)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, t := range tags {
			if !used[t.Name] {
				out = append(out, t.Name)
			}
		}
		return out, nil
	}
	return plan.Step{
		Name: "old builds",
		Check: func(ctx context.Context) (plan.Status, error) {
			old, err := stale(ctx)
			if err != nil {
				return plan.Status{}, err
			}
			if len(old) == 0 {
				return plan.Status{Summary: "every build in containerd is one the history can roll back to"}, nil
			}
			return plan.Status{Pending: true, Summary: fmt.Sprintf("remove %d build(s) no revision runs any more: %s", len(old), strings.Join(old, ", "))}, nil
		},
		Apply: func(ctx context.Context) error {
			old, err := stale(ctx)
			if err != nil {
				return err
			}
			for _, n := range old {
				if err := d.Images.Remove(ctx, n); err != nil {
					return fmt.Errorf("remove old build %s: %w", n, err)
				}
			}
			return nil
		},
	}
}
