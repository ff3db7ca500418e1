package procnet

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// FuzzParse: any input either fails to parse or gives sockets that, written
// back in the kernel's notation, parse to the same sockets; nothing panics.
// Seeds are the recorded tables.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"tcp", "tcp6", "udp", "udp6"} {
		f.Add(string(recorded(f, name)))
	}
	f.Add("header\n   0: 0100007F:0C1C 00000000:0000 0A 0 0 0 0 0 1")
	f.Fuzz(func(t *testing.T, table string) {
		socks, err := Parse(TCP, []byte(table))
		if err != nil {
			return
		}
		var b strings.Builder
		b.WriteString("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
		for i, s := range socks {
			fmt.Fprintf(&b, "%4d: %s %s %02X 00000000:00000000 00:00000000 00000000 0 0 %d 1\n",
				i, kernelAddr(s.Local), kernelAddr(s.Remote), s.State, s.Inode)
		}
		again, err := Parse(TCP, []byte(b.String()))
		if err != nil {
			t.Fatalf("written back, %v does not parse: %v\n%s", socks, err, b.String())
		}
		if fmt.Sprint(again) != fmt.Sprint(socks) {
			t.Fatalf("written back and parsed again:\n%v\nwant\n%v", again, socks)
		}
	})
}

// kernelAddr writes an address as the kernel does on this machine.
func kernelAddr(ap netip.AddrPort) string {
	b := ap.Addr().AsSlice()
	var s strings.Builder
	for i := 0; i < len(b); i += 4 {
		fmt.Fprintf(&s, "%08X", binary.NativeEndian.Uint32(b[i:i+4]))
	}
	return fmt.Sprintf("%s:%04X", s.String(), ap.Port())
}
