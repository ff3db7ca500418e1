package kube

import (
	"context"
	"fmt"

	"github.com/aymanbagabas/go-udiff"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// Diff is what applying one object would change.
type Diff struct {
	Ref     Ref
	Created bool
	// Text is a unified diff of the live object against the result of a
	// server-side dry-run apply; empty when nothing would change.
	Text string
}

// Diff asks the API server what applying objs would change (server-side
// dry run: defaulting, admission and merging as a real apply), without
// changing anything. Objects whose kind does not exist yet are reported as
// created.
func (c *Client) Diff(ctx context.Context, objs []*unstructured.Unstructured, opts ApplyOptions) ([]Diff, error) {
	var diffs []Diff
	force := opts.Force
	for _, u := range sortForApply(objs) {
		u = withSet(u, opts.Set)
		ref := RefOf(u)
		ri, namespaced, err := c.resource(ref.GVK)
		if err != nil {
			diffs = append(diffs, Diff{Ref: ref, Created: true, Text: text(nil, u)})
			continue
		}
		client := ri.Namespace(u.GetNamespace())
		if !namespaced {
			client = nil
		}
		var live *unstructured.Unstructured
		if client != nil {
			live, err = client.Get(ctx, ref.Name, metav1.GetOptions{})
		} else {
			live, err = ri.Get(ctx, ref.Name, metav1.GetOptions{})
		}
		if apierrors.IsNotFound(err) {
			diffs = append(diffs, Diff{Ref: ref, Created: true, Text: text(nil, u)})
			continue
		}
		if err != nil {
			return diffs, fmt.Errorf("get %s: %w", ref, err)
		}
		data, err := u.MarshalJSON()
		if err != nil {
			return diffs, err
		}
		opts := metav1.PatchOptions{FieldManager: FieldManager, Force: &force, DryRun: []string{metav1.DryRunAll}}
		var after *unstructured.Unstructured
		if client != nil {
			after, err = client.Patch(ctx, ref.Name, types.ApplyPatchType, data, opts)
		} else {
			after, err = ri.Patch(ctx, ref.Name, types.ApplyPatchType, data, opts)
		}
		if err != nil {
			if apierrors.IsConflict(err) {
				return diffs, conflict(ref, err)
			}
			return diffs, fmt.Errorf("dry-run apply %s: %w", ref, err)
		}
		diffs = append(diffs, Diff{Ref: ref, Text: text(live, after)})
	}
	return diffs, nil
}

// text diffs two objects without the fields the server manages.
func text(before, after *unstructured.Unstructured) string {
	return udiff.Unified("live", "applied", clean(before), clean(after))
}

func clean(u *unstructured.Unstructured) string {
	if u == nil {
		return ""
	}
	u = u.DeepCopy()
	for _, f := range [][]string{{"metadata", "managedFields"}, {"metadata", "resourceVersion"}, {"metadata", "generation"},
		{"metadata", "uid"}, {"metadata", "creationTimestamp"}, {"status"}} {
		unstructured.RemoveNestedField(u.Object, f...)
	}
	data, _ := yaml.Marshal(u.Object)
	return string(data)
}
