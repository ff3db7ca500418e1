# Records the socket tables in this directory from the real kernel, in a network namespace
# of their own (never on the host's), as root from the repository:
#
#   unshare --net bash -c 'ip link set lo up; ip addr add 192.168.1.10/24 dev lo; ip addr add 10.42.0.1/24 dev lo;
#     python3 pkg/doctor/doctortest/procnet/record.py pkg/doctor/doctortest/procnet'
#
# It opens the sockets of a k3s server with homelab (ports as k3s uses them; addresses
# 0.0.0.0, ::, 127.0.0.1, ::1, a LAN address 192.168.1.10 and the pod bridge's 10.42.0.1),
# a few a server may have besides (an unknown service, a NodePort, mDNS), established and
# connected sockets, then copies /proc/net/{tcp,tcp6,udp,udp6}. The addresses are in the
# kernel's notation for a little-endian machine (amd64, arm64).
import socket, shutil, sys, os
out = sys.argv[1]
keep = []
def tcp(fam, addr, port):
    s = socket.socket(fam, socket.SOCK_STREAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if addr.startswith("::ffff:") else 1)
    s.bind((addr, port)); s.listen(); keep.append(s); return s
def udp(fam, addr, port):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((addr, port)); keep.append(s); return s
A4, A6 = socket.AF_INET, socket.AF_INET6
tcp(A4, "0.0.0.0", 22)            # sshd
tcp(A6, "::", 22)
tcp(A4, "0.0.0.0", 80)            # nginx
tcp(A6, "::", 80)
tcp(A6, "::", 6443)               # k3s supervisor + API server
tcp(A6, "::", 10250)              # kubelet
tcp(A4, "127.0.0.1", 6444)        # kube-apiserver behind k3s
tcp(A4, "127.0.0.1", 10248)       # kubelet health
tcp(A4, "127.0.0.1", 10010)       # containerd streaming
srv = tcp(A4, "127.0.0.1", 3100)  # homelab port-forward
tcp(A6, "::1", 9090)              # something on IPv6 loopback
tcp(A4, "10.42.0.1", 9100)        # bound to the pod bridge only
tcp(A6, "::ffff:192.168.1.10", 8080)  # unknown service on the LAN address (IPv4-mapped)
tcp(A4, "192.168.1.10", 30080)    # a NodePort on the LAN address
# established connections: loopback and LAN
c1 = socket.create_connection(("127.0.0.1", 3100)); keep.append(c1); keep.append(srv.accept()[0])
c2 = socket.create_connection(("192.168.1.10", 22)); keep.append(c2)
udp(A4, "0.0.0.0", 8472)          # flannel VXLAN
udp(A4, "127.0.0.53", 53)         # systemd-resolved
udp(A4, "192.168.1.10", 68)       # DHCP client
udp(A6, "::1", 323)               # chronyd
u = udp(A4, "192.168.1.10", 40000); u.connect(("192.168.1.1", 53))  # a connected UDP socket
udp(A6, "::", 5353)               # mDNS
for t in ("tcp", "tcp6", "udp", "udp6"):
    shutil.copyfile(f"/proc/net/{t}", os.path.join(out, t))
