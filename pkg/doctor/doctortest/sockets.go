package doctortest

import (
	"embed"
	"strconv"
	"strings"
)

// The socket tables of a k3s server with homelab, recorded from the kernel
// (procnet/record.py says how and what is in them).
//
//go:embed procnet/tcp procnet/tcp6 procnet/udp procnet/udp6
var procnetTables embed.FS

// SocketTable returns the recorded /proc/net/NAME (tcp, tcp6, udp, udp6)
// without the lines whose local port is in drop.
func SocketTable(name string, drop ...uint16) []byte {
	data, err := procnetTables.ReadFile("procnet/" + name)
	if err != nil {
		panic(err) // embedded: a missing table is a broken build
	}
	lines := strings.SplitAfter(string(data), "\n")
	var b strings.Builder
	for i, line := range lines {
		if i > 0 && droppedPort(line, drop) {
			continue
		}
		b.WriteString(line)
	}
	return []byte(b.String())
}

func droppedPort(line string, drop []uint16) bool {
	f := strings.Fields(line)
	if len(f) < 2 {
		return false
	}
	_, hexPort, _ := strings.Cut(f[1], ":")
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return false
	}
	for _, d := range drop {
		if uint16(port) == d {
			return true
		}
	}
	return false
}

// WriteSockets puts the recorded socket tables at /proc/net, without the
// sockets on the ports in drop.
func (h *Host) WriteSockets(drop ...uint16) *Host {
	h.t.Helper()
	for _, name := range []string{"tcp", "tcp6", "udp", "udp6"} {
		h.Write("/proc/net/"+name, SocketTable(name, drop...), 0o444)
	}
	return h
}

// NotOnAPlainServer are the ports of the recording a homelab server does
// not have: an unknown service (8080), a NodePort (30080) and mDNS (5353).
var NotOnAPlainServer = []uint16{8080, 30080, 5353}

// UFWActive is `ufw status verbose` after k3s's documented rules and
// homelab's ssh and Nginx ports.
const UFWActive = `Status: active
Logging: on (low)
Default: deny (incoming), allow (outgoing), deny (routed)
New profiles: skip

To                         Action      From
--                         ------      ----
22/tcp                     ALLOW IN    Anywhere
80,443/tcp                 ALLOW IN    Anywhere
Anywhere                   ALLOW IN    10.42.0.0/16
Anywhere                   ALLOW IN    10.43.0.0/16
22/tcp (v6)                ALLOW IN    Anywhere (v6)
80,443/tcp (v6)            ALLOW IN    Anywhere (v6)

`
