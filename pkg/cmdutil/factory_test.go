package cmdutil_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/layout"
)

// TestHostPathStaysUnderTheRoot: a path under --root is resolved as the
// machine in that tree would (links inside it followed within it); one that
// cannot be resolved is an error, not a guess that might lie outside.
func TestHostPathStaysUnderTheRoot(t *testing.T) {
	root := t.TempDir()
	ios, _, _, _ := iostreams.Test()
	f := cmdutil.New(ios, "test")
	f.Root = root

	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	// /etc/rancher -> /srv/rancher, absolute: taken under the root.
	if err := os.Symlink("/srv/rancher", filepath.Join(root, "etc/rancher")); err != nil {
		t.Fatal(err)
	}
	got, err := f.KubeconfigPath()
	if want := filepath.Join(root, "srv/rancher/k3s/k3s.yaml"); err != nil || got != want {
		t.Errorf("KubeconfigPath() = %q, %v; want %q", got, err, want)
	}

	// A loop cannot be resolved: an error naming the path.
	if err := os.Remove(filepath.Join(root, "etc/rancher")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("rancher", filepath.Join(root, "etc/rancher")); err != nil {
		t.Fatal(err)
	}
	if got, err := f.HostPath(layout.K3sKubeconfig); err == nil || !strings.Contains(err.Error(), layout.K3sKubeconfig) {
		t.Errorf("HostPath through a link loop = %q, %v; want an error naming %s", got, err, layout.K3sKubeconfig)
	}
	if _, err := f.Kube(); err == nil {
		t.Error("Kube() through a link loop: no error")
	}

	// --kubeconfig is taken as given.
	f.Kubeconfig = "/elsewhere/config"
	if got, err := f.KubeconfigPath(); err != nil || got != "/elsewhere/config" {
		t.Errorf("KubeconfigPath() with --kubeconfig = %q, %v", got, err)
	}
}
