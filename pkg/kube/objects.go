package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/homelab-dev/homelab/pkg/plan"
)

// Kinds homelab's steps name.
var (
	CRDKind       = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}
	SecretKind    = schema.GroupVersionKind{Version: "v1", Kind: "Secret"}
	NamespaceKind = schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}
)

// CRDResource is the API resource of CustomResourceDefinitions.
var CRDResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Presence is what Lookup found.
type Presence int

const (
	// Absent: there is no such object (or no such kind any more).
	Absent Presence = iota
	// Present: the object exists and is not being deleted.
	Present
	// Deleting: the object exists with a deletion timestamp.
	Deleting
)

// Lookup says whether ref exists, and whether it is being deleted.
func (c *Client) Lookup(ctx context.Context, ref Ref) (Presence, error) {
	ri, namespaced, err := c.resource(ref.GVK)
	if err != nil {
		var noKind *NoKindError
		if errors.As(err, &noKind) {
			return Absent, nil // the kind is gone, and so are its objects
		}
		return Absent, err
	}
	get := ri.Get
	if namespaced {
		get = ri.Namespace(ref.Namespace).Get
	}
	u, err := get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return Absent, nil
	case err != nil:
		return Absent, fmt.Errorf("read %s: %w", ref, err)
	case u.GetDeletionTimestamp() != nil:
		return Deleting, nil
	}
	return Present, nil
}

// Delete deletes ref; one already gone is no error.
func (c *Client) Delete(ctx context.Context, ref Ref) error {
	ri, namespaced, err := c.resource(ref.GVK)
	if err != nil {
		return err
	}
	del := ri.Delete
	if namespaced {
		del = ri.Namespace(ref.Namespace).Delete
	}
	if err := del(ctx, ref.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s: %w", ref, err)
	}
	return nil
}

// Deletion describes a DeleteStep.
type Deletion struct {
	// Name is the step's name.
	Name string
	// Noun names the objects' kind for people ("Secret", "CRDs", "namespace").
	Noun string
	// Refs are the objects to delete, all of one kind.
	Refs []Ref
	// Consequence is what the deletion takes with it, said right after
	// "delete NOUN NAMES" (so it starts with its own space or colon).
	Consequence string
	// Wait, when positive, makes the step wait up to that long until the
	// objects are gone (CRDs, whose objects go with them).
	Wait time.Duration
}

// DeleteStep deletes d's objects. Without a cluster to ask, its check says
// what it would delete and why it could not look.
func DeleteStep(client func() (*Client, error), d Deletion) plan.Step {
	describe := func(refs []Ref) string {
		names := make([]string, len(refs))
		for i, r := range refs {
			names[i] = r.Name
			if r.Namespace != "" {
				names[i] = r.Namespace + "/" + r.Name
			}
		}
		return "delete " + d.Noun + " " + strings.Join(names, ", ") + d.Consequence
	}
	present := func(ctx context.Context, c *Client) (refs []Ref, deleting bool, err error) {
		for _, r := range d.Refs {
			p, err := c.Lookup(ctx, r)
			if err != nil {
				return nil, false, err
			}
			switch p {
			case Present:
				refs = append(refs, r)
			case Deleting:
				deleting = true
			}
		}
		return refs, deleting, nil
	}
	return plan.Step{
		Name: d.Name,
		Check: func(ctx context.Context) (plan.Status, error) {
			c, err := client()
			if err != nil {
				return plan.Status{Pending: true, Summary: fmt.Sprintf("%s (the cluster could not be asked: %v)", describe(d.Refs), err)}, nil
			}
			refs, deleting, err := present(ctx, c)
			switch {
			case err != nil:
				return plan.Status{}, err
			case len(refs) == 0 && deleting:
				return plan.Status{Summary: "being deleted"}, nil
			case len(refs) == 0:
				return plan.Status{Summary: "already deleted"}, nil
			}
			return plan.Status{Pending: true, Summary: describe(refs)}, nil
		},
		Apply: func(ctx context.Context) error {
			c, err := client()
			if err != nil {
				return err
			}
			refs, _, err := present(ctx, c)
			if err != nil {
				return err
			}
			for _, r := range refs {
				if err := c.Delete(ctx, r); err != nil {
					return err
				}
			}
			if d.Wait > 0 {
				return c.WaitDeleted(ctx, d.Refs, d.Wait)
			}
			return nil
		},
	}
}
