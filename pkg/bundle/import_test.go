package bundle_test

import (
	"context"
	"os"
	"runtime"
	"testing"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"

	"github.com/homelab-dev/homelab/pkg/bundle"
	"github.com/homelab-dev/homelab/pkg/bundle/bundletest"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// The bundle's image tarball is what k3s imports from its agent images
// directory: the real containerd of the test environment imports it the way
// k3s does (client.Import with all platforms, namespace k8s.io), every image
// lands under the name the charts use, with the pulled config, and unpacks.
func TestImagesTarballImportsAsK3sDoes(t *testing.T) {
	sock := testutil.TestEnv(t, "HOMELAB_TEST_CONTAINERD_SOCK")
	snap := testutil.TestEnv(t, "HOMELAB_TEST_CONTAINERD_SNAPSHOTTER")
	file, src := bundletest.Make(t, runtime.GOARCH)
	b, err := bundle.Open(file, bundle.OpenOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	client, err := containerd.New(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	f, err := os.Open(b.Path(b.Manifest.ImagesFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	imported, err := client.Import(ctx, f, containerd.WithAllPlatforms(true))
	if err != nil {
		t.Fatalf("containerd refused the image tarball: %v", err)
	}
	t.Cleanup(func() {
		for _, img := range imported {
			client.ImageService().Delete(context.Background(), img.Name, images.SynchronousDelete())
		}
	})
	got := map[string]images.Image{}
	for _, img := range imported {
		got[img.Name] = img
	}
	for _, ref := range src.Refs {
		img, ok := got[ref]
		if !ok {
			t.Errorf("%s was not imported under that name (imported: %v)", ref, names(imported))
			continue
		}
		cimg := containerd.NewImage(client, img)
		cfg, err := cimg.Config(ctx)
		if err != nil {
			t.Errorf("%s: %v", ref, err)
			continue
		}
		want, _ := src.Images[runtime.GOARCH][ref].ConfigName()
		if cfg.Digest.String() != want.String() {
			t.Errorf("%s: config %s, want %s", ref, cfg.Digest, want)
		}
		if err := cimg.Unpack(ctx, snap); err != nil {
			t.Errorf("%s does not unpack: %v", ref, err)
		}
	}
}

func names(imgs []images.Image) []string {
	var out []string
	for _, i := range imgs {
		out = append(out, i.Name)
	}
	return out
}
