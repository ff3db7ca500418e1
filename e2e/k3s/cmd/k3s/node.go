package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// prepareNode does what the node needs before the kubelet and kube-proxy
// start. The first part is what k3s itself does on every host; the rest are
// the test machine's quirks (a systemd-nspawn container), each applied only
// when the condition it fixes is found, and logged.
func (s *server) prepareNode() error {
	// As k3s: forwarding and bridged traffic through iptables.
	for path, want := range map[string]string{
		"net/ipv4/ip_forward":                 "1",
		"net/bridge/bridge-nf-call-iptables":  "1",
		"net/bridge/bridge-nf-call-ip6tables": "1",
	} {
		if err := writeSysctl(path, want); err != nil {
			warnf("sysctl %s=%s: %v", strings.ReplaceAll(path, "/", "."), want, err)
		}
	}
	s.remountCgroupsRW()
	s.maskKernelTunables()
	if err := s.serviceRoute(); err != nil {
		warnf("route for the service CIDR: %v", err)
	}
	if f, err := os.Open("/dev/kmsg"); err != nil {
		warnf("/dev/kmsg cannot be read (%v): the kubelet's OOM watcher will fail to start", err)
	} else {
		f.Close()
	}
	return nil
}

func writeSysctl(path, value string) error {
	return os.WriteFile(filepath.Join("/proc/sys", path), []byte(value), 0o644)
}

func readSysctl(path string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/proc/sys", path))
	return strings.TrimSpace(string(b)), err
}

// remountCgroupsRW: systemd-nspawn mounts the cgroup v1 controllers read-only
// inside the container; runc and the kubelet (cgroupfs) must create cgroups.
// The mounts are rooted at the container's own cgroup, so this does not
// reach the host's.
func (s *server) remountCgroupsRW() {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(fields) || len(fields) < 6 {
			continue
		}
		mp, opts, fstype := fields[4], fields[5], fields[sep+1]
		if (fstype != "cgroup" && fstype != "cgroup2") || !strings.HasPrefix(mp, "/sys/fs/cgroup") {
			continue
		}
		if !strings.Contains(","+opts+",", ",ro,") {
			continue
		}
		if err := unix.Mount("", mp, "", unix.MS_REMOUNT|unix.MS_BIND, ""); err != nil {
			warnf("cgroup %s is read-only and could not be made writable: %v", mp, err)
			continue
		}
		logf("container quirk: remounted the read-only cgroup %s read-write", mp)
	}
}

// maskKernelTunables: the kubelet insists on these global sysctls and fails
// when it cannot set them. In a container /proc/sys is read-only: cover each
// differing file with one holding the wanted value, so the host's stay as
// they are.
func (s *server) maskKernelTunables() {
	want := []struct{ path, value string }{
		{"vm/overcommit_memory", "1"},
		{"vm/panic_on_oom", "0"},
		{"kernel/panic", "10"},
		{"kernel/panic_on_oops", "1"},
		{"kernel/keys/root_maxkeys", "1000000"},
		{"kernel/keys/root_maxbytes", "25000000"},
	}
	dir := "/run/k3s/sysctl-mask"
	for _, w := range want {
		have, err := readSysctl(w.path)
		if err != nil || have == w.value {
			continue
		}
		if err := writeSysctl(w.path, w.value); err == nil {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			warnf("%v", err)
			return
		}
		file := filepath.Join(dir, strings.ReplaceAll(w.path, "/", "."))
		if err := os.WriteFile(file, []byte(w.value+"\n"), 0o444); err != nil {
			warnf("%v", err)
			continue
		}
		if err := unix.Mount(file, filepath.Join("/proc/sys", w.path), "", unix.MS_BIND, ""); err != nil {
			warnf("sysctl %s is %s, the kubelet wants %s, and it is read-only: %v", w.path, have, w.value, err)
			continue
		}
		logf("container quirk: /proc/sys/%s is read-only (%s); masked with %s so the kubelet reads %s", w.path, have, file, w.value)
	}
}

// serviceRoute: from the node itself, a ClusterIP is reached through
// kube-proxy's OUTPUT rules, which run only after a route was found. A
// server has a default route; the test machine has none (nothing routes
// out), so add one for the service CIDR on the node's interface.
func (s *server) serviceRoute() error {
	_, svcNet, _ := net.ParseCIDR(s.o.serviceCIDR)
	if routed, err := hasRoute(svcNet.IP); err != nil || routed {
		return err
	}
	link, err := linkOf(s.nodeIP)
	if err != nil {
		return err
	}
	r := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: svcNet, Scope: netlink.SCOPE_LINK, Src: s.nodeIP}
	if err := netlink.RouteReplace(r); err != nil {
		return err
	}
	logf("test-machine quirk: no route covers the service CIDR; added %s dev %s src %s", svcNet, link.Attrs().Name, s.nodeIP)
	return nil
}

func linkOf(ip net.IP) (netlink.Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
		for _, a := range addrs {
			if a.IP.Equal(ip) {
				return l, nil
			}
		}
	}
	return nil, fmt.Errorf("no interface has %s", ip)
}

type route struct {
	iface     string
	dst, mask uint32
}

func routes() ([]route, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rs []route
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 8 {
			continue
		}
		dst, err1 := strconv.ParseUint(fl[1], 16, 32)
		mask, err2 := strconv.ParseUint(fl[7], 16, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		rs = append(rs, route{iface: fl[0], dst: uint32(dst), mask: uint32(mask)})
	}
	return rs, nil
}

func hasRoute(ip net.IP) (bool, error) {
	rs, err := routes()
	if err != nil {
		return false, err
	}
	// /proc/net/route prints addresses in host (little endian) order.
	v := binary.LittleEndian.Uint32(ip.To4())
	for _, r := range rs {
		if v&r.mask == r.dst {
			return true, nil
		}
	}
	return false, nil
}

// defaultIPv4 is the IPv4 address of the default route's interface, or the
// first global address of an interface that is up.
func defaultIPv4() (net.IP, error) {
	rs, _ := routes()
	var prefer string
	for _, r := range rs {
		if r.dst == 0 && r.mask == 0 {
			prefer = r.iface
			break
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var first net.IP
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 ||
			ifc.Name == "cni0" || strings.HasPrefix(ifc.Name, "veth") || strings.HasPrefix(ifc.Name, "flannel") {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok || n.IP.To4() == nil || !n.IP.IsGlobalUnicast() {
				continue
			}
			if ifc.Name == prefer {
				return n.IP.To4(), nil
			}
			if first == nil {
				first = n.IP.To4()
			}
		}
	}
	if first == nil {
		return nil, errors.New("no interface has a global IPv4 address")
	}
	return first, nil
}

// hasCapability reports whether capability bit n is in our bounding set.
func hasCapability(n uint) bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			b, err := hex.DecodeString(fmt.Sprintf("%016s", strings.TrimSpace(v)))
			if err != nil || len(b) != 8 {
				return true
			}
			return binary.BigEndian.Uint64(b)&(1<<n) != 0
		}
	}
	return true
}
