package deployapp_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homelab-dev/homelab/pkg/app/apptest"
	"github.com/homelab-dev/homelab/pkg/dashboard"
	"github.com/homelab-dev/homelab/pkg/deploy"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/images"
	"github.com/homelab-dev/homelab/pkg/kube/kubetest"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

func TestDeployRedeployAndRollback(t *testing.T) {
	b := newBox(t)
	arch := runtime.GOARCH
	v1archive, v2archive := b.archive(arch), b.archive(arch)

	code, _, stderr := b.deploy("--archive", v1archive)
	if code != 0 || !strings.Contains(stderr, "deployed") {
		t.Fatalf("first deploy: exit %d\n%s", code, stderr)
	}
	if want := "/grafana/d/" + dashboard.UID("web") + "\n"; !strings.Contains(stderr, "dashboard: ") || !strings.Contains(stderr, want) {
		t.Errorf("first deploy does not print the app's dashboard URL (ending %q):\n%s", want, stderr)
	}
	// The dashboard is in the cluster where Grafana's sidecar finds it: it
	// lists ConfigMaps with its label in every namespace.
	sel := metav1.ListOptions{LabelSelector: dashboard.SidecarLabel + "=" + dashboard.SidecarLabelValue}
	cms, err := kubetest.Typed(b.kube).CoreV1().ConfigMaps(metav1.NamespaceAll).List(context.Background(), sel)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, cm := range cms.Items {
		found = found || (cm.Namespace == b.ns && cm.Data[dashboard.UID("web")+".json"] != "")
	}
	if !found {
		t.Errorf("no ConfigMap labelled %s holds the app's dashboard in %s", sel.LabelSelector, b.ns)
	}
	d1 := b.deployment()
	digest1 := digestOf(d1)
	c := d1.Spec.Template.Spec.Containers[0]
	if !strings.HasPrefix(digest1, "sha256:") || !strings.Contains(c.Image, ":homelab-"+strings.TrimPrefix(digest1, "sha256:")[:12]) || c.ImagePullPolicy != corev1.PullNever {
		t.Fatalf("pod template: image %s pull %s digest %s", c.Image, c.ImagePullPolicy, digest1)
	}
	// The image is in k8s.io, unpacked and pinned, under the app's tag and the build tag.
	for _, ref := range []string{b.image, c.Image} {
		img, err := b.importer.Lookup(context.Background(), ref)
		if err != nil || !img.Pinned || !img.Unpacked || img.Digest.String() != digest1 {
			t.Fatalf("containerd image %s: %+v %v", ref, img, err)
		}
	}
	// The same build again changes nothing.
	if code, _, stderr := b.deploy("--archive", v1archive); code != 0 || !strings.Contains(stderr, "nothing changed") {
		t.Fatalf("same build: exit %d\n%s", code, stderr)
	}
	// A new build under the same tag (latest) changes the pod template.
	if code, _, stderr := b.deploy("--archive", v2archive); code != 0 {
		t.Fatalf("second build: exit %d\n%s", code, stderr)
	}
	digest2 := digestOf(b.deployment())
	if digest2 == digest1 || digest2 == "" {
		t.Fatalf("reused tag did not change the pod template: %s vs %s", digest2, digest1)
	}
	// And an explicit rollback returns to the first build.
	if code, _, stderr := b.deploy("--rollback"); code != 0 || !strings.Contains(stderr, "rolled back") {
		t.Fatalf("rollback: exit %d\n%s", code, stderr)
	}
	if got := digestOf(b.deployment()); got != digest1 {
		t.Fatalf("after rollback the pods run %s, want %s", got, digest1)
	}
	// Each deploy is a revision: 1 and 2 ran before, 3 runs the first build again.
	code, out, stderr := b.deploy("--history")
	if code != 0 {
		t.Fatalf("history: exit %d\n%s", code, stderr)
	}
	rows := historyRows(t, out)
	if len(rows) != 3 || rows[0][0] != "3" || rows[0][3] != "deployed" || rows[1][3] != "superseded" || rows[2][3] != "superseded" ||
		rows[0][4] != rows[2][4] || rows[1][4] == rows[0][4] || !strings.HasPrefix(digest1, rows[0][5]) {
		t.Fatalf("history after two builds and a rollback:\n%s", out)
	}
	// A named revision: back to the second build.
	if code, _, stderr := b.deploy("--rollback", "2"); code != 0 || !strings.Contains(stderr, "rolled back") {
		t.Fatalf("rollback 2: exit %d\n%s", code, stderr)
	}
	if got := digestOf(b.deployment()); got != digest2 {
		t.Fatalf("after rollback to 2 the pods run %s, want %s", got, digest2)
	}
	if code, _, stderr := b.deploy("--rollback", "9"); code != 1 || !strings.Contains(stderr, "no revision 9") {
		t.Fatalf("rollback to a revision that does not exist: exit %d\n%s", code, stderr)
	}
	// A build no revision runs is removed from containerd by the next deploy;
	// the builds of the history stay.
	ctx := context.Background()
	stray := "docker.io/library/" + strings.TrimSuffix(b.image, ":latest") + ":" + deploy.BuildTagPrefix + "000000000000"
	if err := b.importer.Tag(ctx, c.Image, stray); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := b.deploy("--archive", b.archive(arch)); code != 0 || !strings.Contains(stderr, "old builds") {
		t.Fatalf("third build: exit %d\n%s", code, stderr)
	}
	if _, err := b.importer.Lookup(ctx, stray); err == nil {
		t.Error("a build no revision runs was kept")
	}
	if _, err := b.importer.Lookup(ctx, c.Image); err != nil {
		t.Errorf("the first build, which the history can roll back to, was removed: %v", err)
	}
}

func TestFailedRolloutIsRolledBack(t *testing.T) {
	b := newBox(t)
	good, bad := b.archive(runtime.GOARCH), b.archive(runtime.GOARCH)
	if code, _, stderr := b.deploy("--archive", good); code != 0 {
		t.Fatalf("first deploy: exit %d\n%s", code, stderr)
	}
	goodDigest := digestOf(b.deployment())
	// The next build is killed for memory as soon as it starts.
	res, err := b.importer.ImportFrom(context.Background(), images.ArchiveSource{Path: bad}, images.ImportOptions{Name: "docker.io/library/" + b.image})
	if err != nil {
		t.Fatal(err)
	}
	b.crashing["docker.io/library/"+strings.TrimSuffix(b.image, ":latest")+":homelab-"+res.Digest.Encoded()[:12]] = true
	code, _, stderr := b.deploy("--archive", bad)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, stderr)
	}
	for _, want := range []string{"OOMKilled", "memory limit", "rolled back"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("error does not mention %q:\n%s", want, stderr)
		}
	}
	if got := digestOf(b.deployment()); got != goodDigest {
		t.Fatalf("after the failed rollout the pods run %s, want the previous build %s", got, goodDigest)
	}
	// The failed build stays in the history, marked failed; revision 3 runs the good one.
	_, out, _ := b.deploy("--history")
	rows := historyRows(t, out)
	if len(rows) != 3 || rows[0][3] != "deployed" || rows[1][3] != "failed" || rows[0][4] != rows[2][4] {
		t.Fatalf("history after a failed build:\n%s", out)
	}
	t.Logf("deploy-app output of the failed build:\n%s", stderr)
}

func TestBadInputChangesNothing(t *testing.T) {
	b := newBox(t)
	corrupt := filepath.Join(t.TempDir(), "corrupt.tar")
	data, err := os.ReadFile(b.archive(runtime.GOARCH))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(corrupt, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"corrupt archive", []string{"--archive", corrupt}, 2, "corrupt.tar"},
		{"wrong architecture", []string{"--archive", b.archive(other)}, 2, other},
		{"missing archive", []string{"--archive", "/nonexistent/app.tar"}, 2, "/nonexistent/app.tar"},
		{"no containerd", []string{"--archive", corrupt, "--containerd-socket", "/nonexistent/containerd.sock"}, 1, "/nonexistent/containerd.sock"},
		{"no containerd, dry run", []string{"--dry-run", "--archive", corrupt, "--containerd-socket", "/nonexistent/containerd.sock"}, 1, "k3s's containerd (checked before any step"},
		{"image and archive", []string{"--image", b.image, "--archive", corrupt}, 2, "cannot be used together"},
		{"rollback with nothing deployed", []string{"--rollback"}, 1, "never been deployed"},
		{"rollback to a revision that is not a number", []string{"--rollback", "latest"}, 2, "invalid revision"},
		{"argument without --rollback", []string{"3"}, 2, "unexpected argument"},
		{"bad timeout", []string{"--timeout", "0s"}, 2, "--timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := b.deploy(tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d naming %q:\n%s", code, tc.code, tc.want, stderr)
			}
			if _, err := kubetest.Typed(b.kube).AppsV1().Deployments(b.ns).Get(context.Background(), "web-deployment", metav1.GetOptions{}); err == nil {
				t.Error("bad input created the Deployment")
			}
		})
	}
}

func TestDryRunShowsChangesAndAppliesNothing(t *testing.T) {
	b := newBox(t)
	code, out, stderr := b.deploy("--dry-run", "--archive", b.archive(runtime.GOARCH))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"import " + "", "into k3s's containerd as a new build", "first install of the app's release", "+  deploymentName: web-deployment", "nothing was changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	if _, err := kubetest.Typed(b.kube).AppsV1().Deployments(b.ns).Get(context.Background(), "web-deployment", metav1.GetOptions{}); err == nil {
		t.Error("dry run created the Deployment")
	}
	// After a deploy, a dry run with a changed setting shows the diff.
	if code, _, stderr := b.deploy("--archive", b.archive(runtime.GOARCH)); code != 0 {
		t.Fatalf("deploy: %s", stderr)
	}
	// (With an archive: without one, a dry run asks Docker for the image,
	// as the real run would, and there is no Docker here.)
	code, out, _ = b.deploy("--dry-run", "--app-port", "8080", "--archive", b.archive(runtime.GOARCH))
	if code != 0 || !strings.Contains(out, "values changed") || !strings.Contains(out, "+  port: 8080") {
		t.Errorf("dry run after a config change:\n%s", out)
	}
}

// TestDeployFromDocker streams `docker save` from a stand-in docker on PATH
// (there is no Docker engine here): the image is imported and rolled out,
// and an image Docker does not have is bad input.
func TestDeployFromDocker(t *testing.T) {
	b := newBox(t)
	archive, err := os.ReadFile(b.archive(runtime.GOARCH))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "image.tar"), archive, 0o644); err != nil {
		t.Fatal(err)
	}
	// docker image inspect --format {{.Id}} IMAGE, and docker save IMAGE.
	script := fmt.Sprintf("#!/bin/sh\nif [ \"$1 $2\" = 'image inspect' ] && [ \"$5\" = '%s' ]; then echo sha256:1; exit 0; fi\n"+
		"if [ \"$1 $2\" = 'save %s' ]; then exec cat %s/image.tar; fi\necho \"Error response from daemon: No such image: ${5:-$2}\" >&2\nexit 1\n", b.image, b.image, dir)
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	root := t.TempDir()
	run := func(args ...string) (int, string) {
		all := append([]string{"deploy-app", "--kubeconfig", testutil.TestEnv(t, "HOMELAB_TEST_KUBECONFIG"), "--config", b.config,
			"--containerd-socket", b.sock, "--timeout", "10s"}, args...)
		code, _, stderr := apptest.Run(context.Background(), apptest.OnHost(machineHost{Local: &host.Local{Root: root}}), all...)
		return code, stderr
	}
	if code, stderr := run(); code != 0 || !strings.Contains(stderr, "docker save "+b.image) {
		t.Fatalf("deploy from docker: exit %d\n%s", code, stderr)
	}
	if digestOf(b.deployment()) == "" {
		t.Fatal("no build digest on the pod template")
	}
	if code, stderr := run("--image", "missing:1"); code != 2 || !strings.Contains(stderr, "image missing:1 is not in the local Docker daemon") {
		t.Fatalf("missing image: exit %d\n%s", code, stderr)
	}
	// A dry run asks Docker too, and fails the same way.
	if code, stderr := run("--image", "missing:1", "--dry-run"); code != 2 || !strings.Contains(stderr, "image missing:1 is not in the local Docker daemon") {
		t.Fatalf("missing image, dry run: exit %d\n%s", code, stderr)
	}
}
