package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
)

// The verbs homelab's packages need from the cluster. Errors from the API
// (NotFound, Forbidden, ...) are returned as they are, so callers can ask
// apierrors about them.

// ServerVersion is the API server's GitVersion (GET /version).
func (c *Client) ServerVersion(ctx context.Context) (string, error) {
	body, err := c.typed.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return "", err
	}
	var info version.Info
	if err := json.Unmarshal(body, &info); err != nil {
		return "", fmt.Errorf("decode /version: %w", err)
	}
	return info.GitVersion, nil
}

// Nodes lists the cluster's nodes.
func (c *Client) Nodes(ctx context.Context) ([]corev1.Node, error) {
	list, err := c.typed.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// Pods lists the pods in namespace that match the label selector.
func (c *Client) Pods(ctx context.Context, namespace, selector string) ([]corev1.Pod, error) {
	list, err := c.typed.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// Services lists the Services in namespace that match the label selector.
func (c *Client) Services(ctx context.Context, namespace, selector string) ([]corev1.Service, error) {
	list, err := c.typed.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// Deployment reads Deployment namespace/name.
func (c *Client) Deployment(ctx context.Context, namespace, name string) (*appsv1.Deployment, error) {
	return c.typed.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
}

// CRDEstablished reports whether the CustomResourceDefinition name exists
// (else NotFound) and is Established.
func (c *Client) CRDEstablished(ctx context.Context, name string) (bool, error) {
	u, err := c.dynamic.Resource(CRDResource).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	var crd apiextv1.CustomResourceDefinition
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &crd); err != nil {
		return false, err
	}
	return crdEstablished(&crd), nil
}

// Secret reads Secret namespace/name.
func (c *Client) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	return c.typed.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
}

// CreateSecret creates s as homelab (FieldManager).
func (c *Client) CreateSecret(ctx context.Context, s *corev1.Secret) error {
	_, err := c.typed.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{FieldManager: FieldManager})
	return err
}

// UpdateSecret writes s back; with the resourceVersion it was read with, a
// concurrent change fails instead of being overwritten.
func (c *Client) UpdateSecret(ctx context.Context, s *corev1.Secret) error {
	_, err := c.typed.CoreV1().Secrets(s.Namespace).Update(ctx, s, metav1.UpdateOptions{FieldManager: FieldManager})
	return err
}

// CanReadReleases checks that the API server answers and lets homelab list
// the Secrets Helm keeps a namespace's releases in (one is enough to know).
func (c *Client) CanReadReleases(ctx context.Context, namespace string) error {
	_, err := c.typed.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm", Limit: 1})
	return err
}

// CRDNames lists every CustomResourceDefinition, and those whose fields
// homelab manages (it applies chart CRDs server-side as FieldManager), both
// sorted. It reads metadata only: CRD schemas are large.
func (c *Client) CRDNames(ctx context.Context) (all, ours []string, err error) {
	list, err := c.meta.Resource(CRDResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list CRDs: %w", err)
	}
	for _, crd := range list.Items {
		all = append(all, crd.Name)
		for _, mf := range crd.ManagedFields {
			if mf.Manager == FieldManager {
				ours = append(ours, crd.Name)
				break
			}
		}
	}
	slices.Sort(all)
	slices.Sort(ours)
	return all, ours, nil
}
