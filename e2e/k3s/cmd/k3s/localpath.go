package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

const localPathProvisioner = "rancher.io/local-path"

// provisionLocalPaths does what k3s's local-path-provisioner does for the
// StorageClass local-path: a claim bound to this node (WaitForFirstConsumer)
// gets a directory under <data-dir>/storage and a hostPath PV pinned to the
// node; a released volume is deleted with its directory. It runs in this
// process instead of as a pod, so it needs no image.
func (s *server) provisionLocalPaths(ctx context.Context, client kubernetes.Interface) {
	storage := s.dir("storage")
	for ctx.Err() == nil {
		s.provisionOnce(ctx, client, storage)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

func (s *server) provisionOnce(ctx context.Context, client kubernetes.Interface, storage string) {
	pvcs, err := client.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, pvc := range pvcs.Items {
		if pvc.Spec.VolumeName != "" || pvc.Status.Phase != corev1.ClaimPending || pvc.DeletionTimestamp != nil ||
			pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "local-path" {
			continue
		}
		node := pvc.Annotations["volume.kubernetes.io/selected-node"]
		if node != s.nodeName {
			continue
		}
		name := "pvc-" + string(pvc.UID)
		if _, err := client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{}); err == nil {
			continue
		}
		path := filepath.Join(storage, name+"_"+pvc.Namespace+"_"+pvc.Name)
		if err := os.MkdirAll(path, 0o777); err != nil {
			warnf("local-path: %v", err)
			continue
		}
		_ = os.Chmod(path, 0o777)
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": localPathProvisioner, "local.path.provisioner/selected-node": node},
			},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: pvc.Spec.Resources.Requests[corev1.ResourceStorage]},
				AccessModes:                   pvc.Spec.AccessModes,
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
				StorageClassName:              "local-path",
				VolumeMode:                    pvc.Spec.VolumeMode,
				PersistentVolumeSource: corev1.PersistentVolumeSource{
					HostPath: &corev1.HostPathVolumeSource{Path: path, Type: ptr.To(corev1.HostPathDirectoryOrCreate)},
				},
				NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
				}}}},
				ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID},
			},
		}
		if _, err := client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			warnf("local-path: create %s for %s/%s: %v", name, pvc.Namespace, pvc.Name, err)
			continue
		}
		logf("local-path: provisioned %s at %s for %s/%s", name, path, pvc.Namespace, pvc.Name)
	}
	pvs, err := client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, pv := range pvs.Items {
		if pv.Annotations["pv.kubernetes.io/provisioned-by"] != localPathProvisioner || pv.Status.Phase != corev1.VolumeReleased ||
			pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Spec.HostPath == nil {
			continue
		}
		if p := pv.Spec.HostPath.Path; strings.HasPrefix(p, storage+"/") {
			if err := os.RemoveAll(p); err != nil {
				warnf("local-path: remove %s: %v", p, err)
				continue
			}
		}
		if err := client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			warnf("local-path: delete %s: %v", pv.Name, err)
			continue
		}
		logf("local-path: deleted released volume %s", pv.Name)
	}
}
