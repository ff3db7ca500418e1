package wizard

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// DNS tells the user, as a warning only, whether their domain points at
// this machine. Its public address cannot be known offline (it may sit
// behind a router's NAT), so the answer compares with the machine's own
// addresses and says which ones it found.
type DNS struct {
	// LookupHost resolves a name (net.DefaultResolver.LookupHost); tests
	// give a fake, never the network.
	LookupHost func(ctx context.Context, host string) ([]string, error)
	// Addrs are this machine's interface addresses (net.InterfaceAddrs).
	Addrs func() ([]net.Addr, error)
	// Timeout bounds one lookup; a slow resolver must not hold the form.
	Timeout time.Duration
}

// SystemDNS asks the system's resolver, within 2 s.
func SystemDNS() DNS {
	return DNS{LookupHost: net.DefaultResolver.LookupHost, Addrs: net.InterfaceAddrs, Timeout: 2 * time.Second}
}

// Check says where domain points, relative to this machine.
func (d DNS) Check(ctx context.Context, domain string) string {
	if d.LookupHost == nil {
		return ""
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	found, err := d.LookupHost(ctx, domain)
	if err != nil || len(found) == 0 {
		why := "no address"
		if err != nil {
			why = err.Error()
		}
		return fmt.Sprintf("! %s does not resolve yet (%s): point its A record at this server's public address before a real install (Let's Encrypt needs it)", domain, why)
	}
	own := d.ownAddresses()
	for _, a := range found {
		if slices.Contains(own, a) {
			return fmt.Sprintf("ok: %s resolves to %s, an address of this machine", domain, a)
		}
	}
	mine := "none found"
	if len(own) > 0 {
		mine = strings.Join(own, ", ")
	}
	return fmt.Sprintf("! %s resolves to %s, not an address of this machine (%s): fine behind a router that forwards ports 80 and 443 here, else fix the DNS record",
		domain, strings.Join(found, ", "), mine)
}

// ownAddresses are the machine's addresses other than loopback and
// link-local, which no DNS record for a public site points at.
func (d DNS) ownAddresses() []string {
	if d.Addrs == nil {
		return nil
	}
	addrs, err := d.Addrs()
	if err != nil {
		return nil
	}
	var own []string
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok || ipnet.IP.IsLoopback() || ipnet.IP.IsLinkLocalUnicast() {
			continue
		}
		own = append(own, ipnet.IP.String())
	}
	return own
}
