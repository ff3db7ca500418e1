// Package procnet reads Linux's socket tables, /proc/net/{tcp,tcp6,udp,udp6}:
// which sockets exist, their local and remote addresses, their state and
// their inode (to find the process holding one under /proc/PID/fd).
package procnet

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strconv"
	"strings"
)

// Protocol is a transport protocol.
type Protocol string

const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Kernel socket states (include/net/tcp_states.h), as the tables print them.
const (
	stateClose  = 0x07 // an unconnected UDP socket: it takes datagrams from anyone
	stateListen = 0x0A
)

// Socket is one line of a socket table.
type Socket struct {
	Protocol Protocol
	Local    netip.AddrPort
	Remote   netip.AddrPort
	State    uint8
	Inode    uint64
}

// Listening reports whether the socket accepts new peers: a TCP socket in
// LISTEN, or a UDP socket bound but not connected to one peer.
func (s Socket) Listening() bool {
	switch s.Protocol {
	case TCP:
		return s.State == stateListen
	case UDP:
		return s.State == stateClose && s.Local.Port() != 0 && (!s.Remote.IsValid() || s.Remote.Port() == 0)
	}
	return false
}

// Loopback reports whether the socket is bound to a loopback address
// (127.0.0.0/8, ::1, or an IPv4-mapped loopback address).
func (s Socket) Loopback() bool { return s.Local.Addr().Unmap().IsLoopback() }

// String is "ADDR:PORT/proto".
func (s Socket) String() string { return s.Local.String() + "/" + string(s.Protocol) }

// Tables are the socket tables of the network namespace /proc/net shows:
// the one of the process that reads it.
var Tables = []struct {
	Path     string
	Protocol Protocol
}{
	{"/proc/net/tcp", TCP}, {"/proc/net/tcp6", TCP}, {"/proc/net/udp", UDP}, {"/proc/net/udp6", UDP},
}

// MaxTableSize caps how much of one table is read: a busy server's
// connections run to a few MB at most; a larger file is not a socket table.
const MaxTableSize = 64 << 20

// ReadAll reads and parses every table with readFile. A missing IPv6 table
// (IPv6 disabled) is no error; a missing IPv4 one is (no /proc/net).
func ReadAll(readFile func(path string) ([]byte, error)) ([]Socket, error) {
	var all []Socket
	for _, t := range Tables {
		data, err := readFile(t.Path)
		if errors.Is(err, fs.ErrNotExist) && strings.HasSuffix(t.Path, "6") {
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(data) > MaxTableSize {
			return nil, fmt.Errorf("%s: %d bytes, more than a socket table holds", t.Path, len(data))
		}
		socks, err := Parse(t.Protocol, data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Path, err)
		}
		all = append(all, socks...)
	}
	return all, nil
}

// Parse parses one table. The first line is the header; every other line is
//
//	sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
//	0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 12345 ...
//
// An address is the kernel's 32-bit words printed in hex as integers of the
// machine's byte order; a port is a plain hex number.
func Parse(proto Protocol, data []byte) ([]Socket, error) {
	var out []Socket
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if n == 1 || len(f) == 0 {
			continue // header
		}
		if len(f) < 10 {
			return nil, fmt.Errorf("line %d: %d fields, want at least 10", n, len(f))
		}
		local, err := parseAddrPort(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: local address %q: %w", n, f[1], err)
		}
		remote, err := parseAddrPort(f[2])
		if err != nil {
			return nil, fmt.Errorf("line %d: remote address %q: %w", n, f[2], err)
		}
		state, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("line %d: state %q: %w", n, f[3], err)
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: inode %q: %w", n, f[9], err)
		}
		out = append(out, Socket{Protocol: proto, Local: local, Remote: remote, State: uint8(state), Inode: inode})
	}
	return out, sc.Err()
}

func parseAddrPort(s string) (netip.AddrPort, error) {
	addrHex, portHex, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, errors.New("no ':'")
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port: %w", err)
	}
	raw, err := hex.DecodeString(addrHex)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address: want 8 or 32 hex digits")
	}
	// Each 32-bit word was printed as a number of the machine's byte order:
	// turn it back into the bytes as they are in memory (network order).
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:i+4]))
	}
	addr, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(addr, uint16(port)), nil
}
