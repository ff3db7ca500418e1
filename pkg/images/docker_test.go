package images

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	homelabhost "github.com/homelab-dev/homelab/pkg/host"
)

// fakeDocker puts a `docker` on PATH that plays `docker save`: it streams
// archive for image want and fails like Docker for any other image.
func fakeDocker(t *testing.T, want string, archive []byte) {
	t.Helper()
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "image.tar")
	if err := os.WriteFile(tarPath, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\n[ \"$1\" = save ] || exit 64\nif [ \"$2\" = '" + want + "' ]; then exec cat '" + tarPath + "'; fi\n" +
		"echo \"Error response from daemon: reference does not exist: No such image: $2\" >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestDockerSourceStreamsDockerSave(t *testing.T) {
	e := newEnv(t)
	name := e.uniqueName(t)
	img := testImage(t, runtime.GOARCH)
	fakeDocker(t, "blog:1", dockerArchive(t, img, "blog:1"))
	res, err := e.imp.ImportFrom(context.Background(), DockerSource{Host: &homelabhost.Local{}, Image: "blog:1"}, ImportOptions{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	// docker save carries no manifest of its own: containerd writes one,
	// so compare with what containerd now holds.
	got, err := e.imp.Lookup(context.Background(), name)
	if err != nil || got.Digest != res.Digest || !got.Pinned {
		t.Fatalf("imported %+v, containerd has %+v (%v)", res, got, err)
	}
	// A missing image is Docker's error, not a "corrupt archive".
	_, err = e.imp.ImportFrom(context.Background(), DockerSource{Host: &homelabhost.Local{}, Image: "missing:1"}, ImportOptions{Name: name})
	var cmdErr *homelabhost.CmdError
	if !errors.As(err, &cmdErr) || !strings.Contains(err.Error(), "No such image: missing:1") {
		t.Fatalf("err %v, want docker's own error", err)
	}
}
