package doctor

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
)

const (
	// ramWarn and ramFail: the monitoring stack is limited to ≈1 GiB and k3s
	// itself needs ≈0.6–0.8 GiB, so below 2 GiB the app has little room and
	// below 1 GiB the stack cannot run at all.
	ramWarn = 2 << 30
	ramFail = 1 << 30
	// Disk: the kubelet in k3s evicts pods below 5% free (nodefs.available)
	// and garbage-collects unpinned images above 85% used.
	diskFailPct = 5
	diskWarnPct = 15
)

func (d *doctor) hostChecks() []Check {
	return []Check{
		{ID: "host.ram", Group: GroupHost, Name: "memory", Run: d.checkRAM},
		{ID: "host.disk", Group: GroupHost, Name: "disk free on /", Run: d.checkDisk},
		{ID: "host.clock", Group: GroupHost, Name: "clock", Run: d.checkClock},
		{ID: "host.ports", Group: GroupHost, Name: "ports 80/443", Run: d.checkPorts,
			TimeoutFix: "see what holds the port: sudo ss -ltnp 'sport = :80 or sport = :443'"},
		d.exposureCheck(),
	}
}

// checkRAM reads MemTotal and MemAvailable from /proc/meminfo.
func (d *doctor) checkRAM(context.Context) Finding {
	data, err := d.Host.ReadFile("/proc/meminfo")
	if err != nil {
		return Fail("run homelab doctor on the server itself (Linux with /proc mounted)", "cannot read /proc/meminfo: %v", err)
	}
	mem := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 {
			if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				mem[strings.TrimSuffix(f[0], ":")] = v << 10 // kB
			}
		}
	}
	total, ok := mem["MemTotal"]
	if !ok {
		return Fail("run homelab doctor on the server itself (Linux with /proc mounted)", "/proc/meminfo has no MemTotal")
	}
	msg := fmt.Sprintf("%s of RAM, %s available", gib(total), gib(mem["MemAvailable"]))
	const fix = "give the machine at least 2 GiB of RAM (monitoring is limited to ≈1 GiB, k3s needs ≈0.7 GiB); meanwhile add swap: " +
		"sudo fallocate -l 2G /swapfile && sudo chmod 600 /swapfile && sudo mkswap /swapfile && sudo swapon /swapfile"
	switch {
	case total < ramFail:
		return Fail(fix, "%s: below 1 GiB k3s and the monitoring stack cannot both run", msg)
	case total < ramWarn:
		return Warn(fix, "%s: below 2 GiB the app and Prometheus may be OOM-killed", msg)
	}
	return OK("%s", msg)
}

// checkDisk asks df about the root file system. It goes through the host's
// Run rather than statfs(2) so that every look at the machine uses the same
// seam: tests answer it, and a host that is not this process (a remote
// machine) answers it the same way.
func (d *doctor) checkDisk(ctx context.Context) Finding {
	out, err := d.run(ctx, "df", "-Pk", "/")
	if f, ok := underRoot(err); ok {
		return f
	}
	if err != nil {
		return Fail("check that df works: df -Pk /", "df -Pk / failed: %v", err)
	}
	lines := strings.Split(out, "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) < 6 {
		return Fail("check that df works: df -Pk /", "cannot read df's output %q", lines[len(lines)-1])
	}
	total, err1 := strconv.ParseUint(f[1], 10, 64)
	avail, err2 := strconv.ParseUint(f[3], 10, 64)
	if err1 != nil || err2 != nil || total == 0 {
		return Fail("check that df works: df -Pk /", "cannot read df's output %q", lines[len(lines)-1])
	}
	total, avail = total<<10, avail<<10
	pct := float64(avail) * 100 / float64(total)
	msg := fmt.Sprintf("%s free of %s (%.0f%%)", gib(avail), gib(total), pct)
	const fix = "free space on /: sudo k3s crictl rmi --prune && sudo journalctl --vacuum-size=200M " +
		"(and lower monitoring.prometheus.retentionSize in homelab.yaml, then sudo homelab init)"
	switch {
	case pct < diskFailPct:
		return Fail(fix, "%s: below %d%% k3s evicts pods", msg, diskFailPct)
	case pct < diskWarnPct:
		return Warn(fix, "%s: below %d%% containerd deletes unpinned images", msg, diskWarnPct)
	}
	return OK("%s", msg)
}

// checkClock catches a clock that was never set (TLS and Prometheus both
// break). Every server doctor can ask runs on this machine, so none of their
// Date headers is an independent second opinion; the year is the check.
func (d *doctor) checkClock(context.Context) Finding {
	now := d.Now().UTC()
	if now.Year() < 2024 {
		return Fail("sudo timedatectl set-ntp true (or set it once: sudo date -s \"YYYY-MM-DD HH:MM:SS\")",
			"the clock says %s: certificates and Prometheus samples are judged against it", now.Format("2006-01-02 15:04 MST"))
	}
	return OK("%s", now.Format("2006-01-02 15:04 MST"))
}

// checkPorts asks who answers on 80 (and 443 with TLS): it must be Nginx.
// Asking is simpler and more faithful than reading /proc/net/tcp: k3s's
// servicelb takes the ports with iptables rules, not by listening on them.
func (d *doctor) checkPorts(ctx context.Context) Finding {
	type port struct{ addr, url, sni string }
	ports := []port{{d.NginxHTTPAddr, "http://" + d.NginxHTTPAddr + "/", ""}}
	if d.cfg.TLS.Enabled() {
		ports = append(ports, port{d.NginxHTTPSAddr, "https://" + d.NginxHTTPSAddr + "/", d.cfg.Domain})
	}
	var ok []string
	for _, p := range ports {
		resp, _, err := d.get(ctx, d.client(p.sni), p.url, d.cfg.Domain)
		switch {
		case err != nil && refused(err):
			return Fail("sudo systemctl enable --now nginx (and sudo nginx -t if it does not start)", "nothing listens on %s", p.addr)
		case err != nil:
			return Fail(disableAddonsFix, "%s does not answer HTTP like Nginx: %s", p.addr, netReason(err))
		}
		server := resp.Header.Get("Server")
		if !strings.HasPrefix(strings.ToLower(server), "nginx") {
			who := "a server without a Server header (k3s's Traefik answers like that)"
			if server != "" {
				who = strconv.Quote(server)
			}
			return Fail(disableAddonsFix, "%s is answered by %s, not Nginx", p.addr, who)
		}
		_, portNum, _ := net.SplitHostPort(p.addr)
		ok = append(ok, portNum)
	}
	return OK("Nginx answers on %s", strings.Join(ok, " and "))
}
