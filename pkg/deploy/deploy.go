// Package deploy ships a new build of the app: import the image into k3s's
// containerd, apply the Deployment, Service and Probe, wait for the rollout,
// and go back to the previous build when the new one does not become Ready.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/images"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/render"
)

// DigestAnnotation on the pod template records which image build runs.
const DigestAnnotation = "homelab.dev/image-digest"

// BuildTagPrefix starts the tag each deployed build gets in containerd, so
// that an older build stays available (and pinned) for a rollback after the
// app's own tag, like latest, has moved on.
const BuildTagPrefix = "homelab-"

// Deployer deploys one configuration's app.
type Deployer struct {
	Config   *config.Config
	Kube     *kube.Client
	Images   *images.Importer
	Renderer *render.Renderer
	// Timeout bounds the wait for the new pods to be Ready.
	Timeout time.Duration
	// Force takes over fields someone changed by hand (kubectl edit).
	Force bool
	// Progress hears the rollout's progress; may be nil.
	Progress func(string)
	// KeepBuilds is how many build tags to keep in containerd (3 when 0).
	KeepBuilds int
}

// Result is what a deploy or rollback did.
type Result struct {
	Image    string // the build tag the pods run
	Digest   string
	Revision int
	Changed  bool
}

// Error is a failed rollout, after which the previous build was restored.
type Error struct {
	Rollout    *kube.RolloutError
	Err        error
	RolledBack bool
	Previous   string // the image running again
	Logs       string // last lines of the failing container's log
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	switch {
	case e.RolledBack:
		fmt.Fprintf(&b, "\nrolled back: %s runs again", e.Previous)
	default:
		b.WriteString("\nno earlier build to roll back to")
	}
	if e.Logs != "" {
		fmt.Fprintf(&b, "\nlast log lines of the failing container:\n%s", indent(e.Logs))
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = "  | " + lines[i]
	}
	return strings.Join(lines, "\n")
}

func (d *Deployer) set() string { return "app-" + d.Config.App.Name }

// Deploy imports src as the app's image and rolls it out.
func (d *Deployer) Deploy(ctx context.Context, src images.Source) (Result, error) {
	name, err := images.NormalizeName(d.Config.App.Image)
	if err != nil {
		return Result{}, err
	}
	imported, err := d.Images.ImportFrom(ctx, src, images.ImportOptions{Name: name})
	if err != nil {
		return Result{}, err
	}
	tag, err := buildTag(name, imported.Digest.Encoded())
	if err != nil {
		return Result{}, err
	}
	if err := d.Images.Tag(ctx, name, tag); err != nil {
		return Result{}, err
	}
	objs, err := d.manifests(func(t *corev1.PodTemplateSpec) {
		t.Spec.Containers[0].Image = tag
		if t.Annotations == nil {
			t.Annotations = map[string]string{}
		}
		t.Annotations[DigestAnnotation] = imported.Digest.String()
	})
	if err != nil {
		return Result{}, err
	}
	res, err := d.rollout(ctx, objs)
	res.Image, res.Digest = tag, imported.Digest.String()
	if err == nil {
		d.pruneBuilds(ctx, name)
	}
	return res, err
}

// Preview shows what Deploy would change in the cluster, before the image
// exists: the Deployment keeps its current build in the comparison.
func (d *Deployer) Preview(ctx context.Context) ([]kube.Diff, error) {
	current, _ := d.currentTemplate(ctx)
	objs, err := d.manifests(func(t *corev1.PodTemplateSpec) {
		if current != nil {
			t.Spec.Containers[0].Image = current.Spec.Containers[0].Image
			if digest := current.Annotations[DigestAnnotation]; digest != "" {
				t.Annotations = map[string]string{DigestAnnotation: digest}
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return d.Kube.Diff(ctx, objs, kube.ApplyOptions{Set: d.set(), Force: d.Force})
}

// Rollback returns to the build that ran before the current one.
func (d *Deployer) Rollback(ctx context.Context) (Result, error) {
	_, prev, err := d.revisions(ctx)
	if err != nil {
		return Result{}, err
	}
	if prev == nil {
		return Result{}, fmt.Errorf("deployment %s/%s has no earlier revision to roll back to", d.Config.App.Namespace, d.Config.App.DeploymentName())
	}
	objs, err := d.manifests(func(t *corev1.PodTemplateSpec) { *t = templateOf(prev) })
	if err != nil {
		return Result{}, err
	}
	res, err := d.rollout(ctx, objs)
	res.Image = prev.Spec.Template.Spec.Containers[0].Image
	res.Digest = prev.Spec.Template.Annotations[DigestAnnotation]
	return res, err
}

// rollout applies objs, waits, and on failure restores the previous revision.
func (d *Deployer) rollout(ctx context.Context, objs []*unstructured.Unstructured) (Result, error) {
	before, err := d.runningRevision(ctx)
	if err != nil {
		return Result{}, err
	}
	results, err := d.Kube.Apply(ctx, objs, kube.ApplyOptions{Set: d.set(), Prune: true, Force: d.Force})
	if err != nil {
		return Result{}, err
	}
	changed := false
	for _, r := range results {
		changed = changed || r.Changed
	}
	app := d.Config.App
	werr := d.Kube.WaitRollout(ctx, app.Namespace, app.DeploymentName(), d.Timeout, d.Progress)
	if werr == nil {
		rev, _ := d.runningRevision(ctx)
		return Result{Revision: revisionOf(rev), Changed: changed}, nil
	}
	if ctx.Err() != nil {
		return Result{}, werr
	}
	failure := &Error{Err: fmt.Errorf("the new build did not become ready: %w", werr)}
	errors.As(werr, &failure.Rollout)
	failure.Logs = d.logs(ctx, failure.Rollout)
	if before == nil {
		return Result{}, failure
	}
	// Put the previous revision's pod template back, as `kubectl rollout undo` does.
	back, err := d.manifests(func(t *corev1.PodTemplateSpec) { *t = templateOf(before) })
	if err != nil {
		return Result{}, errors.Join(failure, err)
	}
	if _, err := d.Kube.Apply(ctx, back, kube.ApplyOptions{Set: d.set(), Force: true}); err != nil {
		return Result{}, errors.Join(failure, fmt.Errorf("roll back: %w", err))
	}
	if err := d.Kube.WaitRollout(ctx, app.Namespace, app.DeploymentName(), d.Timeout, d.Progress); err != nil {
		return Result{}, errors.Join(failure, fmt.Errorf("the previous build did not come back either: %w", err))
	}
	failure.RolledBack = true
	failure.Previous = before.Spec.Template.Spec.Containers[0].Image
	return Result{}, failure
}

// manifests renders the app's objects and lets edit change the Deployment's
// pod template.
func (d *Deployer) manifests(edit func(*corev1.PodTemplateSpec)) ([]*unstructured.Unstructured, error) {
	f, err := d.Renderer.Named(d.Config, layout.AppManifests)
	if err != nil {
		return nil, err
	}
	objs, err := kube.Decode(f.Data)
	if err != nil {
		return nil, err
	}
	for i, u := range objs {
		if u.GetKind() != "Deployment" {
			continue
		}
		var dep appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &dep); err != nil {
			return nil, err
		}
		edit(&dep.Spec.Template)
		out, err := kube.ToUnstructured(&dep)
		if err != nil {
			return nil, err
		}
		objs[i] = out
	}
	return objs, nil
}

func (d *Deployer) currentTemplate(ctx context.Context) (*corev1.PodTemplateSpec, error) {
	app := d.Config.App
	dep, err := d.Kube.Typed.AppsV1().Deployments(app.Namespace).Get(ctx, app.DeploymentName(), metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return &dep.Spec.Template, nil
}

// revisions returns the Deployment's current and previous ReplicaSets (by
// revision, skipping ones with the current pod template).
func (d *Deployer) revisions(ctx context.Context) (cur, prev *appsv1.ReplicaSet, err error) {
	app := d.Config.App
	dep, err := d.Kube.Typed.AppsV1().Deployments(app.Namespace).Get(ctx, app.DeploymentName(), metav1.GetOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("deployment %s/%s: %w", app.Namespace, app.DeploymentName(), err)
	}
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil {
		return nil, nil, err
	}
	list, err := d.Kube.Typed.AppsV1().ReplicaSets(app.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, nil, err
	}
	rss := make([]*appsv1.ReplicaSet, 0, len(list.Items))
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], dep) {
			rss = append(rss, &list.Items[i])
		}
	}
	sort.Slice(rss, func(a, b int) bool { return revisionOf(rss[a]) > revisionOf(rss[b]) })
	if len(rss) > 0 {
		cur = rss[0]
	}
	if len(rss) > 1 {
		prev = rss[1]
	}
	return cur, prev, nil
}

// runningRevision is the newest ReplicaSet, if the Deployment is available
// with it: what a failed rollout goes back to.
func (d *Deployer) runningRevision(ctx context.Context) (*appsv1.ReplicaSet, error) {
	cur, _, err := d.revisions(ctx)
	if apierrors.IsNotFound(err) {
		return nil, nil // the first deploy
	}
	if err != nil || cur == nil {
		return nil, err
	}
	if cur.Status.ReadyReplicas == 0 {
		return nil, nil
	}
	return cur, nil
}

func revisionOf(rs *appsv1.ReplicaSet) int {
	if rs == nil {
		return 0
	}
	n, _ := strconv.Atoi(rs.Annotations["deployment.kubernetes.io/revision"])
	return n
}

// templateOf is a ReplicaSet's pod template without the hash label the
// Deployment controller adds.
func templateOf(rs *appsv1.ReplicaSet) corev1.PodTemplateSpec {
	t := *rs.Spec.Template.DeepCopy()
	delete(t.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return t
}

// logs returns the end of the failing container's log, when a kubelet can
// give it (its previous run's, after a crash).
func (d *Deployer) logs(ctx context.Context, rerr *kube.RolloutError) string {
	if rerr == nil || rerr.Pod == "" {
		return ""
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	tail := int64(20)
	for _, previous := range []bool{true, false} {
		data, err := d.Kube.Typed.CoreV1().Pods(d.Config.App.Namespace).
			GetLogs(rerr.Pod, &corev1.PodLogOptions{TailLines: &tail, Previous: previous}).DoRaw(lctx)
		if err == nil && len(data) > 0 {
			return string(data)
		}
	}
	return ""
}

func buildTag(name, encodedDigest string) (string, error) {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "", err
	}
	return named.Name() + ":" + BuildTagPrefix + encodedDigest[:12], nil
}

// pruneBuilds removes build tags beyond the newest KeepBuilds, except those
// a ReplicaSet of the app still references (a rollback target).
func (d *Deployer) pruneBuilds(ctx context.Context, name string) {
	keep := d.KeepBuilds
	if keep <= 0 {
		keep = 3
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return
	}
	tags, err := d.Images.Tags(ctx, named.Name(), BuildTagPrefix)
	if err != nil || len(tags) <= keep {
		return
	}
	used := map[string]bool{}
	cur, prev, _ := d.revisions(ctx)
	for _, rs := range []*appsv1.ReplicaSet{cur, prev} {
		if rs != nil {
			if n, err := images.NormalizeName(rs.Spec.Template.Spec.Containers[0].Image); err == nil {
				used[n] = true
			}
		}
	}
	for _, t := range tags[keep:] {
		if !used[t.Name] {
			_ = d.Images.Remove(ctx, t.Name)
		}
	}
}
