package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
)

// Ref names one object.
type Ref struct {
	GVK       schema.GroupVersionKind
	Namespace string
	Name      string
}

func (r Ref) String() string {
	if r.Namespace == "" {
		return r.GVK.Kind + "/" + r.Name
	}
	return r.GVK.Kind + " " + r.Namespace + "/" + r.Name
}

// RefOf returns the Ref of an object.
func RefOf(u *unstructured.Unstructured) Ref {
	return Ref{GVK: u.GroupVersionKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}

// Decode parses multi-document YAML or JSON manifests; empty documents are skipped.
func Decode(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for i := 1; ; i++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("manifest document %d: %w", i, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("manifest document %d: apiVersion, kind and metadata.name are required", i)
		}
		objs = append(objs, u)
	}
}

// ToUnstructured converts a typed object from client-go's scheme.
func ToUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return u, nil
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Empty() {
		gvks, _, err := scheme.Scheme.ObjectKinds(obj)
		if err != nil || len(gvks) == 0 {
			return nil, fmt.Errorf("unknown kind for %T: set its apiVersion and kind", obj)
		}
		gvk = gvks[0]
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	// Server-side apply must not send a creationTimestamp of null or a status.
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	return u, nil
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// Set, when not empty, labels every object with SetLabel=Set; with Prune,
	// objects of the set that are no longer in the list are deleted.
	Set   string
	Prune bool
	// PruneKinds are kinds to look for stale objects in, besides the kinds
	// being applied (a kind homelab stopped applying altogether).
	PruneKinds []schema.GroupVersionKind
	// Force takes over fields another manager owns (a hand edit with kubectl)
	// instead of failing with a conflict.
	Force bool
	// Timeout bounds waiting for applied CRDs to be established.
	Timeout time.Duration
}

// Result says what Apply did to one object.
type Result struct {
	Ref     Ref
	Created bool
	Changed bool
	Pruned  bool
}

// ConflictError is a server-side apply conflict: another field manager owns
// fields homelab wants to set.
type ConflictError struct {
	Ref    Ref
	Causes []string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s: fields are managed by someone else (%s); undo the manual change, or re-run with --force to take them over",
		e.Ref, strings.Join(e.Causes, "; "))
}

// Apply server-side applies objects in dependency order: namespaces and
// CRDs first (waiting for CRDs to be established), then everything else.
// Missing namespaces of namespaced objects are created. It reports which
// objects were created or changed; a re-apply of the same objects changes
// nothing.
func (c *Client) Apply(ctx context.Context, objs []*unstructured.Unstructured, opts ApplyOptions) ([]Result, error) {
	objs = sortForApply(objs)
	var results []Result
	var crds []string
	keep := map[Ref]bool{}
	for _, u := range objs {
		u = withSet(u, opts.Set)
		if isCRD(u) {
			crds = append(crds, u.GetName())
		} else if len(crds) > 0 {
			// The first object after the CRDs may be one of their kinds.
			if err := c.WaitEstablished(ctx, crds, opts.Timeout); err != nil {
				return results, err
			}
			crds = nil
		}
		res, err := c.applyOne(ctx, u, opts.Force)
		if err != nil {
			return results, err
		}
		keep[res.Ref] = true
		results = append(results, res)
	}
	if len(crds) > 0 {
		if err := c.WaitEstablished(ctx, crds, opts.Timeout); err != nil {
			return results, err
		}
	}
	if opts.Prune && opts.Set != "" {
		pruned, err := c.prune(ctx, opts.Set, keep, pruneKinds(objs, opts.PruneKinds))
		results = append(results, pruned...)
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// withSet returns a copy of u labelled as a member of set.
func withSet(u *unstructured.Unstructured, set string) *unstructured.Unstructured {
	u = u.DeepCopy()
	if set != "" {
		labels := u.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[SetLabel] = set
		u.SetLabels(labels)
	}
	return u
}

func (c *Client) applyOne(ctx context.Context, u *unstructured.Unstructured, force bool) (Result, error) {
	ref := RefOf(u)
	ri, namespaced, err := c.resource(ref.GVK)
	if err != nil {
		return Result{Ref: ref}, err
	}
	if namespaced && u.GetNamespace() == "" {
		u.SetNamespace(metav1.NamespaceDefault)
		ref.Namespace = metav1.NamespaceDefault
	}
	if !namespaced {
		u.SetNamespace("")
		ref.Namespace = ""
	}
	var client dynamic.ResourceInterface = ri
	if namespaced {
		if err := c.EnsureNamespace(ctx, ref.Namespace); err != nil {
			return Result{Ref: ref}, err
		}
		client = ri.Namespace(ref.Namespace)
	}
	before, err := client.Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		before = nil
	} else if err != nil {
		return Result{Ref: ref}, fmt.Errorf("get %s: %w", ref, err)
	}
	data, err := u.MarshalJSON()
	if err != nil {
		return Result{Ref: ref}, err
	}
	out, err := client.Patch(ctx, ref.Name, types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
	if err != nil {
		if apierrors.IsConflict(err) {
			return Result{Ref: ref}, conflict(ref, err)
		}
		return Result{Ref: ref}, fmt.Errorf("apply %s: %w", ref, err)
	}
	// Compare content, not resourceVersion: a controller updating the
	// status in between bumps the version without any change of ours.
	return Result{Ref: ref, Created: before == nil, Changed: before == nil || clean(before) != clean(out)}, nil
}

func conflict(ref Ref, err error) error {
	ce := &ConflictError{Ref: ref}
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Details != nil {
		for _, cause := range status.Status().Details.Causes {
			ce.Causes = append(ce.Causes, cause.Message)
		}
	}
	if len(ce.Causes) == 0 {
		ce.Causes = []string{err.Error()}
	}
	return ce
}

// EnsureNamespace creates a namespace if it does not exist.
func (c *Client) EnsureNamespace(ctx context.Context, name string) error {
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	ri := c.dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"})
	if _, err := ri.Get(ctx, name, metav1.GetOptions{}); err == nil {
		return nil
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("get namespace %s: %w", name, err)
	}
	if _, err := ri.Create(ctx, ns, metav1.CreateOptions{FieldManager: FieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// NoKindError says the cluster does not serve a kind (its CRD is not
// installed, or not yet).
type NoKindError struct{ GVK schema.GroupVersionKind }

func (e *NoKindError) Error() string {
	return fmt.Sprintf("the cluster has no kind %s in %s: is its CRD installed?", e.GVK.Kind, e.GVK.GroupVersion())
}

// resource maps a kind to its API resource, refreshing discovery once when
// the kind is unknown (a CRD that was just established).
func (c *Client) resource(gvk schema.GroupVersionKind) (dynamic.NamespaceableResourceInterface, bool, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, false, &NoKindError{GVK: gvk}
		}
		return nil, false, err
	}
	return c.dynamic.Resource(m.Resource), m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// prune deletes the set's objects of the given kinds that are not in keep.
func (c *Client) prune(ctx context.Context, set string, keep map[Ref]bool, kinds []schema.GroupVersionKind) ([]Result, error) {
	var results []Result
	for _, gvk := range kinds {
		ri, _, err := c.resource(gvk)
		if err != nil {
			continue // a kind that no longer exists has nothing left to prune
		}
		list, err := ri.List(ctx, metav1.ListOptions{LabelSelector: SetLabel + "=" + set})
		if err != nil {
			return results, fmt.Errorf("list %s of set %s: %w", gvk.Kind, set, err)
		}
		for i := range list.Items {
			item := &list.Items[i]
			ref := Ref{GVK: gvk, Namespace: item.GetNamespace(), Name: item.GetName()}
			if keep[ref] || !managedByUs(item) {
				continue
			}
			var err error
			bg := metav1.DeletePropagationBackground
			if ref.Namespace != "" {
				err = ri.Namespace(ref.Namespace).Delete(ctx, ref.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
			} else {
				err = ri.Delete(ctx, ref.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
			}
			if err != nil && !apierrors.IsNotFound(err) {
				return results, fmt.Errorf("prune %s: %w", ref, err)
			}
			results = append(results, Result{Ref: ref, Pruned: true, Changed: true})
		}
	}
	return results, nil
}

// managedByUs guards pruning: only objects homelab's field manager applied
// are deleted, even if someone copied the set label onto their own object.
func managedByUs(u *unstructured.Unstructured) bool {
	for _, m := range u.GetManagedFields() {
		if m.Manager == FieldManager && m.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}

func pruneKinds(objs []*unstructured.Unstructured, extra []schema.GroupVersionKind) []schema.GroupVersionKind {
	seen := map[schema.GroupVersionKind]bool{}
	var kinds []schema.GroupVersionKind
	for _, gvk := range extra {
		if !seen[gvk] {
			seen[gvk] = true
			kinds = append(kinds, gvk)
		}
	}
	for _, u := range objs {
		if gvk := u.GroupVersionKind(); !seen[gvk] {
			seen[gvk] = true
			kinds = append(kinds, gvk)
		}
	}
	return kinds
}

func isCRD(u *unstructured.Unstructured) bool {
	return u.GetKind() == "CustomResourceDefinition" && u.GroupVersionKind().Group == "apiextensions.k8s.io"
}

// sortForApply puts namespaces first, then CRDs, then the rest in their
// given order.
func sortForApply(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	rank := func(u *unstructured.Unstructured) int {
		switch {
		case u.GetKind() == "Namespace" && u.GetAPIVersion() == "v1":
			return 0
		case isCRD(u):
			return 1
		}
		return 2
	}
	out := append([]*unstructured.Unstructured(nil), objs...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}
