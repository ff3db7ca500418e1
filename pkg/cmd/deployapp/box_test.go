package deployapp_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homelab-dev/homelab/pkg/app/apptest"
	"github.com/homelab-dev/homelab/pkg/deploy"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/images"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/kube/kubetest"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// box is a k3s node as deploy-app sees it: the test cluster's API server, the
// test containerd, and a kubelet stand-in that starts pods of good builds and
// crash-loops pods of builds listed in crashing.
type box struct {
	t        *testing.T
	kube     *kube.Client
	ns       string
	root     string
	config   string
	image    string // the app's image reference (a reused tag)
	sock     string
	importer *images.Importer
	crashing map[string]bool // image tags whose pods crash
}

func newBox(t *testing.T) *box {
	t.Helper()
	b := &box{t: t, kube: kubetest.Client(t), sock: testutil.TestEnv(t, "HOMELAB_TEST_CONTAINERD_SOCK"), crashing: map[string]bool{}}
	b.ns = kubetest.Namespace(t, b.kube)
	b.root = t.TempDir()
	b.image = "deploytest-" + b.ns[len(b.ns)-6:] + ":latest"
	b.importer = &images.Importer{Socket: b.sock, Snapshotter: os.Getenv("HOMELAB_TEST_CONTAINERD_SNAPSHOTTER")}
	kc, err := os.ReadFile(testutil.TestEnv(t, "HOMELAB_TEST_KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(b.root, layout.K3sKubeconfig)
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(local, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	b.config = filepath.Join(t.TempDir(), "homelab.yaml")
	cfg := fmt.Sprintf("app:\n  name: web\n  namespace: %s\n  image: %s\n  clusterIP: %s\nmonitoring:\n  namespace: %s\n",
		b.ns, b.image, kubetest.FreeClusterIP(t, b.kube), b.ns)
	if err := os.WriteFile(b.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go b.kubelet(ctx)
	t.Cleanup(b.removeImages)
	return b
}

// kubelet marks pods Ready, or crash-looping (OOMKilled) for crashing builds.
func (b *box) kubelet(ctx context.Context) {
	for ctx.Err() == nil {
		pods, err := kubetest.Typed(b.kube).CoreV1().Pods(b.ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			for i := range pods.Items {
				p := &pods.Items[i]
				if len(p.Status.ContainerStatuses) > 0 || p.DeletionTimestamp != nil {
					continue
				}
				if b.crashing[p.Spec.Containers[0].Image] {
					_, _ = kubetest.MarkPodsCrashLooping(ctx, b.kube, b.ns, "pod-template-hash="+p.Labels["pod-template-hash"], "OOMKilled", 3)
				} else {
					_, _ = kubetest.MarkPodsReady(ctx, b.kube, b.ns, "pod-template-hash="+p.Labels["pod-template-hash"])
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *box) removeImages() {
	ctx := context.Background()
	tags, _ := b.importer.Tags(ctx, strings.TrimSuffix(b.image, ":latest"), "")
	for _, t := range tags {
		_ = b.importer.Remove(ctx, t.Name)
	}
}

// archive writes a new random image build for arch as a docker-save tarball.
func (b *box) archive(arch string) string {
	b.t.Helper()
	img, err := random.Image(4096, 2)
	if err != nil {
		b.t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		b.t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config = v1.Config{Cmd: []string{"/app"}}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		b.t.Fatal(err)
	}
	ref, err := name.ParseReference(b.image)
	if err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(b.t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		b.t.Fatal(err)
	}
	return path
}

func (b *box) deploy(args ...string) (int, string, string) {
	b.t.Helper()
	all := append([]string{"deploy-app", "--root", b.root, "--config", b.config, "--containerd-socket", b.sock, "--timeout", "10s"}, args...)
	return apptest.Run(context.Background(), nil, all...)
}

func (b *box) deployment() *appsv1.Deployment {
	b.t.Helper()
	d, err := kubetest.Typed(b.kube).AppsV1().Deployments(b.ns).Get(context.Background(), "web-deployment", metav1.GetOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	return d
}

func digestOf(d *appsv1.Deployment) string {
	return d.Spec.Template.Annotations[deploy.DigestAnnotation]
}

// historyRows splits --history output into its fields, without the header.
func historyRows(t *testing.T, out string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "REVISION") {
		t.Fatalf("history has no header:\n%s", out)
	}
	var rows [][]string
	for _, l := range lines[1:] {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

// machineHost keeps homelab's files (lock, record) under a temporary root
// but streams `docker save` on this machine, as a real host would.
type machineHost struct {
	*host.Local
}

func (m machineHost) Stream(ctx context.Context, c host.Cmd) (io.ReadCloser, error) {
	return (&host.Local{}).Stream(ctx, c)
}
