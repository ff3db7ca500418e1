package main

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
)

// clusterDNS answers the cluster's names as CoreDNS's kubernetes plugin
// does for A queries: <svc>.<ns>.svc.<domain> (the ClusterIP, or the ready
// endpoints of a headless Service), <hostname>.<svc>.<ns>.svc.<domain> (a
// StatefulSet pod) and <a-b-c-d>.<ns>.pod.<domain>. Nothing is forwarded:
// other names are NXDOMAIN (the test machine has no upstream anyway).
type clusterDNS struct {
	svcSuffix, podSuffix string
	services             corelisters.ServiceLister
	slices               discoverylisters.EndpointSliceLister
}

func (s *server) serveDNS(ctx context.Context, client kubernetes.Interface) {
	f := informers.NewSharedInformerFactory(client, 0)
	d := &clusterDNS{
		svcSuffix: ".svc." + s.o.clusterDomain + ".",
		podSuffix: ".pod." + s.o.clusterDomain + ".",
		services:  f.Core().V1().Services().Lister(),
		slices:    f.Discovery().V1().EndpointSlices().Lister(),
	}
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	addr := net.JoinHostPort(s.nodeIP.String(), strconv.Itoa(dnsPort))
	var pc net.PacketConn
	var ln net.Listener
	var err error
	for ctx.Err() == nil {
		if pc, err = net.ListenPacket("udp4", addr); err == nil {
			if ln, err = net.Listen("tcp4", addr); err == nil {
				break
			}
			pc.Close()
		}
		warnf("cluster DNS: listen on %s: %v (retrying)", addr, err)
		time.Sleep(2 * time.Second)
	}
	if ctx.Err() != nil {
		return
	}
	logf("cluster DNS for %s answers on %s (Service kube-system/kube-dns %s:53)", s.o.clusterDomain, addr, s.o.clusterDNS)
	go func() {
		<-ctx.Done()
		pc.Close()
		ln.Close()
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go d.serveTCP(c)
		}
	}()
	buf := make([]byte, 4096)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := d.answer(buf[:n]); resp != nil {
			_, _ = pc.WriteTo(resp, from)
		}
	}
}

func (d *clusterDNS) serveTCP(c net.Conn) {
	defer c.Close()
	for {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		resp := d.answer(msg)
		if resp == nil {
			return
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := c.Write(append(out, resp...)); err != nil {
			return
		}
	}
}

func (d *clusterDNS) answer(req []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	ips, exists := d.lookup(strings.ToLower(q.Name.String()))
	if exists {
		rh.Authoritative = true
	} else {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), rh)
	b.EnableCompression()
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	if q.Type == dnsmessage.TypeA || q.Type == dnsmessage.TypeALL {
		for _, ip := range ips {
			var a [4]byte
			copy(a[:], ip.To4())
			_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 5}, dnsmessage.AResource{A: a})
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

func (d *clusterDNS) lookup(name string) ([]net.IP, bool) {
	if rest, ok := strings.CutSuffix(name, d.podSuffix); ok {
		l := strings.Split(rest, ".")
		if len(l) != 2 {
			return nil, false
		}
		ip := net.ParseIP(strings.ReplaceAll(l[0], "-", "."))
		return []net.IP{ip}, ip != nil && ip.To4() != nil
	}
	rest, ok := strings.CutSuffix(name, d.svcSuffix)
	if !ok {
		return nil, false
	}
	l := strings.Split(rest, ".")
	var host, svcName, ns string
	switch len(l) {
	case 2:
		svcName, ns = l[0], l[1]
	case 3:
		host, svcName, ns = l[0], l[1], l[2]
	default:
		return nil, false
	}
	svc, err := d.services.Services(ns).Get(svcName)
	if err != nil {
		return nil, false
	}
	if host == "" && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		return []net.IP{net.ParseIP(svc.Spec.ClusterIP)}, true
	}
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svcName})
	slices, _ := d.slices.EndpointSlices(ns).List(sel)
	var ips []net.IP
	for _, sl := range slices {
		if sl.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		for _, ep := range sl.Endpoints {
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			if host != "" {
				if (ep.Hostname != nil && *ep.Hostname == host) || (len(ep.Addresses) > 0 && strings.ReplaceAll(ep.Addresses[0], ".", "-") == host) {
					for _, a := range ep.Addresses {
						ips = append(ips, net.ParseIP(a))
					}
				}
				continue
			}
			if ready || svc.Spec.PublishNotReadyAddresses {
				for _, a := range ep.Addresses {
					ips = append(ips, net.ParseIP(a))
				}
			}
		}
	}
	if host != "" && len(ips) == 0 {
		return nil, false
	}
	return ips, true
}
