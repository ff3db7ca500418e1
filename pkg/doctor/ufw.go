package doctor

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/homelab-dev/homelab/pkg/doctor/procnet"
)

// ufwStatus is what `ufw status verbose` says about incoming connections.
type ufwStatus struct {
	Active bool
	// DenyIncoming: the default policy for incoming is deny or reject.
	DenyIncoming bool
	// Rules are the ALLOW and LIMIT rules for incoming connections whose
	// source is not the pod or service network (those are k3s's own).
	Rules []ufwRule
}

// ufwRule is one rule that lets connections in from outside.
type ufwRule struct {
	Text string // as ufw prints it, for messages
	// From is the source ("Anywhere", a network or an address).
	From string
	// AllPorts: the rule names no port ("Anywhere", or an application
	// profile doctor does not know, which may open anything).
	AllPorts bool
	Proto    procnet.Protocol // "" for both
	Ranges   [][2]uint16
}

// The application profiles of the packages a homelab server has.
var ufwProfiles = map[string]string{
	"OpenSSH": "22/tcp", "Nginx Full": "80,443/tcp", "Nginx HTTP": "80/tcp", "Nginx HTTPS": "443/tcp",
}

var ufwColumns = regexp.MustCompile(`\s{2,}`)

// parseUFWStatus reads `ufw status verbose`:
//
//	Status: active
//	Default: deny (incoming), allow (outgoing), deny (routed)
//	...
//	To                         Action      From
//	--                         ------      ----
//	22/tcp                     ALLOW IN    Anywhere
//	Anywhere                   ALLOW IN    10.42.0.0/16
//	6443 on eth0               ALLOW IN    192.168.1.0/24    # comment
//	22/tcp (v6)                ALLOW IN    Anywhere (v6)
//
// internal are the networks whose rules do not count (pods, services).
func parseUFWStatus(out string, internal ...netip.Prefix) (ufwStatus, error) {
	var st ufwStatus
	var sawStatus, inRules bool
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "Status:"):
			sawStatus = true
			st.Active = strings.TrimSpace(strings.TrimPrefix(line, "Status:")) == "active"
		case strings.HasPrefix(line, "Default:"):
			for _, part := range strings.Split(strings.TrimPrefix(line, "Default:"), ",") {
				if f := strings.Fields(part); len(f) == 2 && f[1] == "(incoming)" {
					st.DenyIncoming = f[0] == "deny" || f[0] == "reject"
				}
			}
		case strings.HasPrefix(line, "--"):
			inRules = true
		case inRules && line != "":
			if r, ok := parseUFWRule(line, internal); ok {
				st.Rules = append(st.Rules, r)
			}
		}
	}
	if !sawStatus {
		return st, fmt.Errorf("no Status line in %q", cut(out, 80))
	}
	return st, nil
}

func parseUFWRule(line string, internal []netip.Prefix) (ufwRule, bool) {
	text, _, _ := strings.Cut(line, "#")
	text = strings.TrimSpace(text)
	cols := ufwColumns.Split(text, -1)
	if len(cols) < 3 {
		return ufwRule{}, false
	}
	to, action, from := cols[0], cols[1], cols[2]
	if !strings.HasPrefix(action, "ALLOW IN") && !strings.HasPrefix(action, "LIMIT IN") {
		return ufwRule{}, false
	}
	from = strings.TrimSpace(strings.TrimSuffix(from, "(v6)"))
	if p, err := netip.ParsePrefix(from); err == nil {
		for _, in := range internal {
			if in.Bits() <= p.Bits() && in.Contains(p.Addr()) {
				return ufwRule{}, false
			}
		}
	}
	r := ufwRule{Text: strings.Join(cols, " "), From: from}
	to = strings.TrimSpace(strings.TrimSuffix(to, "(v6)"))
	to, _, _ = strings.Cut(to, " on ") // "6443 on eth0": an interface, still from outside
	to = strings.TrimSpace(to)
	if p, ok := ufwProfiles[to]; ok {
		to = p
	}
	f := strings.Fields(to)
	if len(f) == 0 || f[len(f)-1] == "Anywhere" {
		r.AllPorts = true
		return r, true
	}
	spec := f[len(f)-1] // "10.0.0.5 22/tcp": the port is last
	ports, proto, _ := strings.Cut(spec, "/")
	r.Proto = procnet.Protocol(proto)
	for _, p := range strings.Split(ports, ",") {
		lo, hi, isRange := strings.Cut(p, ":")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil {
			// An application profile doctor does not know: it may open anything.
			return ufwRule{Text: r.Text, From: from, AllPorts: true}, true
		}
		r.Ranges = append(r.Ranges, [2]uint16{uint16(a), uint16(b)})
	}
	return r, true
}

// allows reports whether the rule lets connections to port/proto in.
func (r ufwRule) allows(proto procnet.Protocol, port uint16) bool {
	if r.AllPorts {
		return true
	}
	if r.Proto != "" && r.Proto != proto {
		return false
	}
	for _, rg := range r.Ranges {
		if port >= rg[0] && port <= rg[1] {
			return true
		}
	}
	return false
}

// openedBy returns the first rule that lets port/proto in from outside.
func (st ufwStatus) openedBy(proto procnet.Protocol, port uint16) (ufwRule, bool) {
	for _, r := range st.Rules {
		if r.allows(proto, port) {
			return r, true
		}
	}
	return ufwRule{}, false
}

func cut(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
