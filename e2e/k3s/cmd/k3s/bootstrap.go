package main

import (
	"context"
	"fmt"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// dnsPort is where the stand-in's cluster DNS listens on the node address;
// the kube-dns Service (the cluster DNS address) forwards port 53 to it.
const dnsPort = 10053

// bootstrap creates what k3s's packaged manifests would: the local-path
// StorageClass and the kube-dns Service (here without CoreDNS pods: its
// endpoint is this process's DNS server on the node).
func (s *server) bootstrap(ctx context.Context, client kubernetes.Interface) {
	for ctx.Err() == nil {
		err := s.bootstrapOnce(ctx, client)
		if err == nil {
			logf("bootstrap objects in place (StorageClass local-path, Service kube-system/kube-dns)")
			return
		}
		warnf("bootstrap: %v (retrying)", err)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

func (s *server) bootstrapOnce(ctx context.Context, client kubernetes.Interface) error {
	if !s.o.disabled("local-storage") {
		sc := &storagev1.StorageClass{
			ObjectMeta: metav1.ObjectMeta{
				Name:        "local-path",
				Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
			},
			Provisioner:       localPathProvisioner,
			ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
			VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
		}
		if _, err := client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("StorageClass local-path: %w", err)
		}
	}
	if s.o.disabled("coredns") {
		return nil
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: "kube-dns", Namespace: "kube-system",
			Labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"},
		},
		Spec: corev1.ServiceSpec{
			ClusterIP: s.o.clusterDNS,
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(dnsPort)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(dnsPort)},
			},
		},
	}
	// Get first: a second Create fails on the taken ClusterIP, not as AlreadyExists.
	if _, err := client.CoreV1().Services("kube-system").Get(ctx, svc.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := client.CoreV1().Services("kube-system").Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("Service kube-dns: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("Service kube-dns: %w", err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: "kube-dns-standin", Namespace: "kube-system",
			Labels: map[string]string{
				discoveryv1.LabelServiceName: "kube-dns",
				discoveryv1.LabelManagedBy:   "k3s-standin",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{s.nodeIP.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			NodeName:   ptr.To(s.nodeName),
		}},
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("dns"), Port: ptr.To[int32](dnsPort), Protocol: ptr.To(corev1.ProtocolUDP)},
			{Name: ptr.To("dns-tcp"), Port: ptr.To[int32](dnsPort), Protocol: ptr.To(corev1.ProtocolTCP)},
		},
	}
	slices := client.DiscoveryV1().EndpointSlices("kube-system")
	old, err := slices.Get(ctx, slice.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = slices.Create(ctx, slice, metav1.CreateOptions{})
	case err == nil && (len(old.Endpoints) != 1 || len(old.Endpoints[0].Addresses) != 1 || !net.ParseIP(old.Endpoints[0].Addresses[0]).Equal(s.nodeIP)):
		slice.ResourceVersion = old.ResourceVersion
		_, err = slices.Update(ctx, slice, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("EndpointSlice kube-dns: %w", err)
	}
	return nil
}
