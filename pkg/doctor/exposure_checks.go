package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/homelab-dev/homelab/pkg/doctor/procnet"
	"github.com/homelab-dev/homelab/pkg/host"
)

// k3sPodNetwork is k3s's default --cluster-cidr, which homelab keeps. A
// socket bound to an address in it (the cni0 bridge's 10.42.0.1) is
// reachable from pods, not from the LAN.
var k3sPodNetwork = netip.MustParsePrefix("10.42.0.0/16")

// portName says what usually listens on a port: k3s's documented inbound
// rules and local ports (docs.k3s.io, "Requirements", "Networking"), and
// what a homelab server runs besides. Expected ports are meant to face the
// outside and are never warned about.
type portName struct {
	Name     string
	Expected bool
}

type protoPort struct {
	Proto procnet.Protocol
	Port  uint16
}

func (p protoPort) String() string { return fmt.Sprintf("%d/%s", p.Port, p.Proto) }

var knownPorts = map[protoPort]portName{
	{procnet.TCP, 22}:    {"ssh", true},
	{procnet.TCP, 80}:    {"Nginx", true},
	{procnet.TCP, 443}:   {"Nginx", true},
	{procnet.UDP, 68}:    {"DHCP client", true}, // ufw's own rules let the answers in
	{procnet.UDP, 546}:   {"DHCPv6 client", true},
	{procnet.TCP, 6443}:  {"k3s API server and supervisor", false},
	{procnet.TCP, 6444}:  {"kube-apiserver behind k3s", false},
	{procnet.TCP, 10250}: {"kubelet API", false},
	{procnet.TCP, 10248}: {"kubelet health", false},
	{procnet.TCP, 10249}: {"kube-proxy metrics", false},
	{procnet.TCP, 10256}: {"kube-proxy health", false},
	{procnet.TCP, 10257}: {"kube-controller-manager metrics", false},
	{procnet.TCP, 10258}: {"cloud-controller-manager metrics", false},
	{procnet.TCP, 10259}: {"kube-scheduler metrics", false},
	{procnet.TCP, 10010}: {"containerd streaming", false},
	{procnet.TCP, 2379}:  {"etcd client", false},
	{procnet.TCP, 2380}:  {"etcd peer", false},
	{procnet.TCP, 2381}:  {"etcd metrics", false},
	{procnet.TCP, 2382}:  {"etcd HTTP", false},
	{procnet.UDP, 8472}:  {"flannel VXLAN", false},
	{procnet.UDP, 51820}: {"flannel WireGuard", false},
	{procnet.UDP, 51821}: {"flannel WireGuard IPv6", false},
	{procnet.TCP, 5001}:  {"k3s embedded registry", false},
	{procnet.TCP, 9100}:  {"node exporter", false},
	{procnet.UDP, 5353}:  {"mDNS", false},
}

// nodeExporterPort is where the chart's node exporter listens on the host
// network; homelab's values keep it off the host (kube-prometheus-stack.yaml.tmpl).
var nodeExporterPort = protoPort{procnet.TCP, 9100}

// listener is one port listening beyond loopback, on one or more addresses.
type listener struct {
	protoPort
	Addrs   []netip.Addr
	Inodes  []uint64
	Process string // who holds it, when /proc says
}

func (l listener) name() (portName, bool) {
	if n, ok := knownPorts[l.protoPort]; ok {
		return n, true
	}
	if l.Port >= 30000 && l.Port <= 32767 {
		return portName{Name: "a Kubernetes NodePort"}, true
	}
	return portName{}, false
}

// describe is "6443/tcp (k3s API server)", with the address when the port
// is bound to particular addresses rather than every interface, and the
// process for a port doctor does not know.
func (l listener) describe() string {
	s := l.protoPort.String()
	var where []string
	for _, a := range l.Addrs {
		if !a.IsUnspecified() {
			where = append(where, a.String())
		}
	}
	if len(where) > 0 {
		s += " on " + strings.Join(where, ", ")
	}
	if n, ok := l.name(); ok {
		return s + " (" + n.Name + ")"
	}
	if l.Process != "" {
		return s + " (unknown, process " + l.Process + ")"
	}
	if !slices.ContainsFunc(l.Inodes, func(n uint64) bool { return n != 0 }) {
		return s + " (unknown, held by the kernel: a tunnel or NFS)"
	}
	return s + " (unknown, process not found: run doctor with sudo to name it)"
}

func (d *doctor) exposureCheck() Check {
	return Check{ID: "host.exposure", Group: GroupHost, Name: "listening beyond loopback", Run: d.checkExposure,
		TimeoutFix: "see what listens: sudo ss -tulpn"}
}

// checkExposure lists the TCP and UDP ports that listen on addresses other
// than loopback and the pod network (every interface, or a LAN address),
// from the kernel's socket tables, and warns about any but ssh and Nginx
// unless ufw closes them. The socket tables are those of doctor's own
// network namespace: the host's, where k3s and hostNetwork pods listen.
func (d *doctor) checkExposure(ctx context.Context) Finding {
	socks, err := procnet.ReadAll(d.Host.ReadFile)
	if errors.Is(err, fs.ErrNotExist) {
		return Skip("not checked: no /proc/net/tcp (run homelab doctor on the server itself)")
	}
	if err != nil {
		return Fail("check what listens: sudo ss -tulpn", "cannot read the socket tables: %v", err)
	}
	internal := []netip.Prefix{k3sPodNetwork}
	if svc, err := netip.ParsePrefix(d.cfg.K3s.ServiceCIDR); err == nil {
		internal = append(internal, svc)
	}
	outside := listenersBeyondLoopback(socks, internal)
	var expected, others []listener
	for _, l := range outside {
		if n, _ := l.name(); n.Expected {
			expected = append(expected, l)
		} else {
			others = append(others, l)
		}
	}
	if len(others) == 0 {
		if len(expected) == 0 {
			return OK("nothing listens beyond loopback")
		}
		return OK("only %s listen beyond loopback", describeAll(expected))
	}
	d.nameProcesses(others)

	fw := d.firewall(ctx, internal)
	var open, closed []listener
	for _, l := range others {
		if fw.Status == nil {
			open = append(open, l)
			continue
		}
		if rule, ok := fw.Status.openedBy(l.Proto, l.Port); ok && rule.From == "Anywhere" {
			open = append(open, l)
		} else {
			closed = append(closed, l)
		}
	}
	if len(open) == 0 {
		return OK("%s listen beyond loopback; %s", describeAll(closed), fw.Note)
	}
	msg := fmt.Sprintf("open beyond loopback: %s", describeAll(open))
	if len(closed) > 0 {
		msg += fmt.Sprintf("; closed by ufw: %s", describeAll(closed))
	}
	if len(expected) > 0 {
		msg += fmt.Sprintf("; expected: %s", describeAll(expected))
	}
	return Warn(d.exposureFix(open, fw), "%s; %s", msg, fw.Note)
}

// listenersBeyondLoopback groups the listening sockets that are not bound
// to loopback or to an internal network by port and protocol, in port order.
func listenersBeyondLoopback(socks []procnet.Socket, internal []netip.Prefix) []listener {
	byPort := map[protoPort]*listener{}
	for _, s := range socks {
		if !s.Listening() || s.Loopback() {
			continue
		}
		addr := s.Local.Addr().Unmap()
		inside := false
		for _, p := range internal {
			inside = inside || p.Contains(addr)
		}
		if inside {
			continue
		}
		k := protoPort{s.Protocol, s.Local.Port()}
		l := byPort[k]
		if l == nil {
			l = &listener{protoPort: k}
			byPort[k] = l
		}
		if !slices.Contains(l.Addrs, addr) {
			l.Addrs = append(l.Addrs, addr)
		}
		l.Inodes = append(l.Inodes, s.Inode)
	}
	out := make([]listener, 0, len(byPort))
	for _, l := range byPort {
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Proto < out[j].Proto
	})
	return out
}

func describeAll(ls []listener) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.describe()
	}
	return strings.Join(parts, ", ")
}

// nameProcesses finds the process of each listener doctor has no name for,
// through /proc/PID/fd (all of them only as root).
func (d *doctor) nameProcesses(ls []listener) {
	inodes := map[uint64]bool{}
	for _, l := range ls {
		if _, known := l.name(); !known {
			for _, n := range l.Inodes {
				inodes[n] = true
			}
		}
	}
	proc, ok := hostProc(d.Host)
	if !ok || len(inodes) == 0 {
		return
	}
	owners := procnet.Owners(proc, inodes)
	for i := range ls {
		for _, n := range ls[i].Inodes {
			if name, ok := owners[n]; ok {
				ls[i].Process = name
				break
			}
		}
	}
}

// A host that can say where a host path is locally lets doctor list /proc:
// host.Host has no way to list a directory, and listing is a read, not a
// side effect. Resolve (host.Local) maps without leaving the root; Path is
// the lexical mapping of hosts that have no Resolve.
type (
	resolver interface {
		Resolve(path string) (string, error)
	}
	pather interface{ Path(path string) string }
)

type procFS struct {
	host.Host
	local func(path string) (string, error)
}

func (p procFS) ReadDir(path string) ([]fs.DirEntry, error) {
	local, err := p.local(path)
	if err != nil {
		return nil, err
	}
	return os.ReadDir(local)
}

func hostProc(h host.Host) (procnet.Proc, bool) {
	switch l := h.(type) {
	case resolver:
		return procFS{h, l.Resolve}, true
	case pather:
		return procFS{h, func(p string) (string, error) { return l.Path(p), nil }}, true
	}
	return nil, false
}

// firewallState is what doctor could learn about the firewall.
type firewallState struct {
	// Status is ufw's when it is active and denies incoming connections by
	// default; nil when doctor cannot tell that anything is closed.
	Status *ufwStatus
	// Note says what doctor found, for the finding.
	Note string
	// NoUFW: ufw is not installed.
	NoUFW bool
}

// firewall asks ufw whether it closes incoming connections by default.
func (d *doctor) firewall(ctx context.Context, internal []netip.Prefix) firewallState {
	out, err := d.run(ctx, "ufw", "status", "verbose")
	switch {
	case errors.Is(err, host.ErrCommandUnderRoot):
		return firewallState{Note: "firewall not checked (commands are not run with --root)"}
	case notInstalled(err):
		return firewallState{NoUFW: true,
			Note: "ufw is not installed: doctor cannot tell whether another firewall (nftables, iptables, the router) closes them"}
	case err != nil:
		return firewallState{Note: fmt.Sprintf("cannot read ufw's state (%s): doctor cannot tell whether a firewall closes them (run doctor with sudo)", cut(firstLine(out), 60))}
	}
	st, err := parseUFWStatus(out, internal...)
	switch {
	case err != nil:
		return firewallState{Note: fmt.Sprintf("cannot read ufw's state (%v): doctor cannot tell whether a firewall closes them", err)}
	case !st.Active:
		return firewallState{Note: "ufw is inactive"}
	case !st.DenyIncoming:
		return firewallState{Note: "ufw is active but lets incoming connections in by default"}
	}
	note := "ufw is active and denies incoming connections by default"
	var narrow []string
	for _, r := range st.Rules {
		if r.From != "Anywhere" {
			narrow = append(narrow, r.Text)
		}
	}
	if len(narrow) > 0 {
		note += fmt.Sprintf(" (open to some sources: %s)", strings.Join(narrow, "; "))
	}
	return firewallState{Status: &st, Note: note}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// exposureFix closes what is open: node exporter goes off the host network
// with homelab's values, and the rest behind k3s's documented ufw rules
// (the pod and service networks must stay allowed, or ufw, which runs
// before kube-proxy's rules, cuts the cluster's own traffic).
func (d *doctor) exposureFix(open []listener, fw firewallState) string {
	var steps []string
	for _, l := range open {
		if l.protoPort == nodeExporterPort {
			steps = append(steps, "node exporter is on the host network (values from before homelab kept it off): sudo homelab init")
		}
	}
	if fw.Status != nil {
		// ufw is on and denies by default: a rule opens these to everyone.
		var ports []string
		for _, l := range open {
			if l.protoPort != nodeExporterPort {
				ports = append(ports, l.protoPort.String())
			}
		}
		if len(ports) > 0 {
			steps = append(steps, fmt.Sprintf("delete the ufw rules that let %s in from anywhere: sudo ufw status numbered, then sudo ufw delete NUMBER", strings.Join(ports, ", ")))
		}
		return strings.Join(steps, "; ")
	}
	svc := d.cfg.K3s.ServiceCIDR
	rules := "sudo ufw allow 22/tcp && sudo ufw allow 80,443/tcp && sudo ufw allow from " + k3sPodNetwork.String() +
		" to any && sudo ufw allow from " + svc + " to any && sudo ufw default deny incoming && sudo ufw enable"
	if fw.NoUFW {
		rules = "sudo apt-get install ufw && " + rules
	}
	steps = append(steps, "close everything but ssh and Nginx with k3s's documented ufw rules: "+rules+
		" (to use the API server from your LAN: sudo ufw allow from 192.168.1.0/24 to any port 6443 proto tcp)")
	return strings.Join(steps, "; ")
}
