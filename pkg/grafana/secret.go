// Package grafana holds what homelab does for Grafana itself: its admin
// credentials, generated once and kept only in a Kubernetes Secret.
package grafana

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// Keys in the admin Secret, as the grafana chart's admin.userKey/passwordKey expect.
const (
	UserKey     = "admin-user"
	PasswordKey = "admin-password"
	AdminUser   = "admin"
)

// ShowPassword receives a newly generated password, exactly once. It must
// go to the person at the terminal and nowhere else (no log, no plan).
type ShowPassword func(secretRef, password string)

// AdminSecretStep makes sure namespace/name holds Grafana admin credentials.
// An existing Secret is never changed: its password is the user's now.
func AdminSecretStep(client func() (*kube.Client, error), namespace, name string, show ShowPassword) plan.Step {
	ref := namespace + "/" + name
	return plan.Step{
		Name: "Grafana admin secret",
		Check: func(ctx context.Context) (plan.Status, error) {
			c, err := client()
			if err != nil {
				return plan.Status{Pending: true, Summary: fmt.Sprintf("create Secret %s with a generated password (%v)", ref, err)}, nil
			}
			s, err := c.Secret(ctx, namespace, name)
			switch {
			case apierrors.IsNotFound(err):
				return plan.Status{Pending: true, Summary: fmt.Sprintf("create Secret %s with a generated password (shown once, never logged)", ref)}, nil
			case err != nil:
				return plan.Status{}, fmt.Errorf("read Secret %s: %w", ref, err)
			case len(s.Data[PasswordKey]) == 0 || len(s.Data[UserKey]) == 0:
				return plan.Status{}, fmt.Errorf("Secret %s exists but lacks %s or %s; delete it to let homelab generate new credentials", ref, UserKey, PasswordKey)
			}
			return plan.Status{Summary: "Secret " + ref + " holds the admin credentials"}, nil
		},
		Apply: func(ctx context.Context) error {
			c, err := client()
			if err != nil {
				return err
			}
			if err := c.EnsureNamespace(ctx, namespace); err != nil {
				return err
			}
			password, err := Password(24)
			if err != nil {
				return err
			}
			secret := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "homelab"}},
				Type:       corev1.SecretTypeOpaque,
				Data:       map[string][]byte{UserKey: []byte(AdminUser), PasswordKey: []byte(password)},
			}
			// Create, never apply: a second run must not replace a password
			// the user already has.
			if err := c.CreateSecret(ctx, secret); err != nil {
				if apierrors.IsAlreadyExists(err) {
					return nil
				}
				return fmt.Errorf("create Secret %s: %w", ref, err)
			}
			if show != nil {
				show(ref, password)
			}
			return nil
		},
	}
}

const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

// Password returns n characters from crypto/rand over an unambiguous alphabet.
func Password(n int) (string, error) {
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b), nil
}

// RemoveAdminSecretStep deletes the admin Secret AdminSecretStep created,
// and with it the password (uninstall --delete-data).
func RemoveAdminSecretStep(client func() (*kube.Client, error), namespace, name string) plan.Step {
	return kube.DeleteStep(client, kube.Deletion{Name: "Secret " + namespace + "/" + name,
		Refs: []kube.Ref{{GVK: kube.SecretKind, Namespace: namespace, Name: name}},
		Noun: "Secret", Consequence: " and with it the Grafana admin password"})
}
