package images

import (
	"context"
	"io"

	homelabhost "github.com/homelab-dev/homelab/pkg/host"
)

// DockerSource streams an image out of the local Docker daemon with
// `docker save`, without a temporary file.
type DockerSource struct {
	Host  homelabhost.Streamer
	Image string
}

func (s DockerSource) Open(ctx context.Context) (io.ReadCloser, error) {
	return s.Host.Stream(ctx, homelabhost.Cmd{Name: "docker", Args: []string{"save", s.Image}})
}

func (s DockerSource) Name() string { return "docker save " + s.Image }
