package procnet

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorded reads a table recorded from the kernel (doctortest/procnet,
// made by its record.py in a network namespace of its own).
func recorded(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "doctortest", "procnet", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseRecordedTables(t *testing.T) {
	got := map[string]Socket{}
	for _, tb := range Tables {
		name := filepath.Base(tb.Path)
		socks, err := Parse(tb.Protocol, recorded(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, s := range socks {
			got[name+" "+s.Local.String()+" "+s.Remote.String()] = s
		}
	}
	for _, c := range []struct {
		key                 string
		listening, loopback bool
	}{
		{"tcp 0.0.0.0:22 0.0.0.0:0", true, false},
		{"tcp 127.0.0.1:3100 0.0.0.0:0", true, true},
		{"tcp 10.42.0.1:9100 0.0.0.0:0", true, false},
		{"tcp 192.168.1.10:30080 0.0.0.0:0", true, false},
		{"tcp 127.0.0.1:36748 127.0.0.1:3100", false, true},      // the client of an established connection
		{"tcp 192.168.1.10:22 192.168.1.10:47914", false, false}, // an established connection on the LAN address
		{"tcp6 [::]:6443 [::]:0", true, false},
		{"tcp6 [::]:10250 [::]:0", true, false},
		{"tcp6 [::1]:9090 [::]:0", true, true},
		{"tcp6 [::ffff:192.168.1.10]:8080 [::]:0", true, false},
		{"udp 0.0.0.0:8472 0.0.0.0:0", true, false},
		{"udp 127.0.0.53:53 0.0.0.0:0", true, true},
		{"udp 192.168.1.10:68 0.0.0.0:0", true, false},
		{"udp 192.168.1.10:40000 192.168.1.1:53", false, false}, // a connected UDP socket
		{"udp6 [::1]:323 [::]:0", true, true},
		{"udp6 [::]:5353 [::]:0", true, false},
	} {
		s, ok := got[c.key]
		if !ok {
			t.Errorf("no socket %s in the recorded tables", c.key)
			continue
		}
		if s.Listening() != c.listening || s.Loopback() != c.loopback {
			t.Errorf("%s: listening %v loopback %v, want %v %v", c.key, s.Listening(), s.Loopback(), c.listening, c.loopback)
		}
		if s.Listening() && s.Inode == 0 {
			t.Errorf("%s: no inode", c.key)
		}
	}
	if n := len(got); n != 24 {
		t.Errorf("%d sockets in the recorded tables, want 24", n)
	}
}

func TestParseRefusesWhatIsNotASocketTable(t *testing.T) {
	const header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	for _, line := range []string{
		"   0: 0100007F:0C1C 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0\n",         // too few fields
		"   0: 0100007F0C1C 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n",      // no port separator
		"   0: 01007F:0C1C 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n",       // 6 hex digits
		"   0: 0100007F:0C1C 00000000:0000 ZZ 00000000:00000000 00:00000000 00000000 0 0 1 1\n",     // state
		"   0: 0100007F:10000 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n",    // port beyond 16 bits
		"   0: 0100007F:0C1C 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 inode 1\n", // inode
	} {
		if socks, err := Parse(TCP, []byte(header+line)); err == nil {
			t.Errorf("%q parsed as %v", line, socks)
		}
	}
}

func TestReadAllWithoutIPv6(t *testing.T) {
	files := map[string][]byte{"/proc/net/tcp": recorded(t, "tcp"), "/proc/net/udp": recorded(t, "udp")}
	socks, err := ReadAll(func(p string) ([]byte, error) {
		if data, ok := files[p]; ok {
			return data, nil
		}
		return nil, os.ErrNotExist
	})
	if err != nil || len(socks) != 16 {
		t.Fatalf("%d sockets, %v; want the 16 of tcp and udp", len(socks), err)
	}
	if _, err := ReadAll(func(string) ([]byte, error) { return nil, os.ErrNotExist }); err == nil {
		t.Error("no /proc/net/tcp is not an error")
	}
}

// osProc is this machine's /proc.
type osProc struct{}

func (osProc) ReadDir(p string) ([]os.DirEntry, error) { return os.ReadDir(p) }
func (osProc) Readlink(p string) (string, error)       { return os.Readlink(p) }
func (osProc) ReadFile(p string) ([]byte, error)       { return os.ReadFile(p) }

// TestRealLoopbackListeners opens TCP and UDP listeners on 127.0.0.1 (and
// ::1 when this machine has it) and finds them in this machine's real
// socket tables as listening on loopback, held by this process; the client
// end of a connection is not listening.
func TestRealLoopbackListeners(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	want := map[string]netip.AddrPort{
		"tcp listener": ln.Addr().(*net.TCPAddr).AddrPort(),
		"udp socket":   udp.LocalAddr().(*net.UDPAddr).AddrPort(),
		"tcp client":   client.LocalAddr().(*net.TCPAddr).AddrPort(),
	}
	protoOf := map[string]Protocol{"tcp listener": TCP, "udp socket": UDP, "tcp client": TCP}
	if ln6, err := net.Listen("tcp", "[::1]:0"); err == nil {
		defer ln6.Close()
		want["tcp6 listener"] = ln6.Addr().(*net.TCPAddr).AddrPort()
		protoOf["tcp6 listener"] = TCP
	} else {
		t.Logf("no IPv6 loopback here (%v): IPv6 is covered by the recorded tables only", err)
	}

	socks, err := ReadAll(os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	for what, addr := range want {
		var found *Socket
		for i, s := range socks {
			// The listener's port is also the local port of the accepted
			// end of the client's connection: a listener has no peer.
			peerless := !s.Remote.IsValid() || s.Remote.Port() == 0
			if s.Protocol == protoOf[what] && s.Local == addr && peerless == (what != "tcp client") {
				found = &socks[i]
			}
		}
		if found == nil {
			t.Errorf("%s %s is not in /proc/net", what, addr)
			continue
		}
		if found.Listening() != (what != "tcp client") || !found.Loopback() {
			t.Errorf("%s %s: listening %v, loopback %v", what, addr, found.Listening(), found.Loopback())
		}
		owners := Owners(osProc{}, map[uint64]bool{found.Inode: true})
		if got := owners[found.Inode]; got != strings.TrimSpace(string(comm)) {
			t.Errorf("%s %s (inode %d) is held by %q, want this process, %q", what, addr, found.Inode, got, strings.TrimSpace(string(comm)))
		}
	}
}
