package init

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// Minimums for the home profile: k3s (≈0.7 GiB), the monitoring stack
// (≤1 GiB of limits) and a small app; Prometheus's volume, images and logs.
const (
	minMemoryKiB = 1_700 * 1024 // a "2 GB" box reports a little less
	minDiskKiB   = 8 * 1024 * 1024
)

// preflight refuses hosts homelab cannot set up, before anything changes.
// A preview (dryRun) never needs root and reads what it can: what it could
// not check (a sandbox --root has no /etc/os-release and runs no commands)
// is said, not fatal. A real run checks everything.
func preflight(h host.Host, isRoot func() bool, dryRun bool) plan.Step {
	return plan.Step{
		Name: "preflight",
		Check: func(ctx context.Context) (plan.Status, error) {
			var found, problems, unchecked []string
			switch osName, err := checkOS(h); {
			case err == nil:
				found = append(found, osName)
			case dryRun && errors.Is(err, fs.ErrNotExist):
				unchecked = append(unchecked, "the OS (no /etc/os-release)")
			default:
				return plan.Status{}, err
			}
			if isRoot != nil && !isRoot() {
				if !dryRun {
					problems = append(problems, "homelab init must run as root: sudo homelab init")
				} else {
					found = append(found, "not root (a real run needs sudo)")
				}
			}
			if mem, err := memTotalKiB(h); err == nil {
				found = append(found, fmt.Sprintf("%.1f GiB RAM", float64(mem)/(1<<20)))
				if mem < minMemoryKiB {
					problems = append(problems, fmt.Sprintf("%.1f GiB of RAM; the home profile needs at least %.1f GiB (k3s ≈0.7 GiB + monitoring ≤1 GiB + the app)",
						float64(mem)/(1<<20), float64(minMemoryKiB)/(1<<20)))
				}
			} else {
				unchecked = append(unchecked, "memory ("+reason(err)+")")
			}
			if free, err := diskFreeKiB(ctx, h); err == nil {
				found = append(found, fmt.Sprintf("%.1f GiB free on /", float64(free)/(1<<20)))
				if free < minDiskKiB {
					problems = append(problems, fmt.Sprintf("%.1f GiB free on /; at least %d GiB are needed (Prometheus's volume, images)",
						float64(free)/(1<<20), minDiskKiB/(1<<20)))
				}
			} else {
				unchecked = append(unchecked, "free disk ("+reason(err)+")")
			}
			if owners, err := webPortOwners(ctx, h); err == nil {
				for port, proc := range owners {
					if proc != "nginx" {
						problems = append(problems, fmt.Sprintf("port %d is held by %s, not nginx; stop it (if it is k3s's Traefik or servicelb, disable them: see 'homelab doctor')", port, proc))
					}
				}
			} else {
				unchecked = append(unchecked, "ports 80/443 ("+reason(err)+")")
			}
			if len(problems) > 0 {
				return plan.Status{}, errors.New("preflight: " + strings.Join(problems, "; "))
			}
			summary := strings.Join(found, ", ")
			if len(unchecked) > 0 {
				if summary != "" {
					summary += "; "
				}
				summary += "not checked: " + strings.Join(unchecked, ", ")
			}
			return plan.Status{Summary: summary}, nil
		},
		Apply: func(context.Context) error { return nil }, // a check only; never pending
	}
}

// reason says briefly why a preflight check could not run.
func reason(err error) string {
	switch {
	case errors.Is(err, host.ErrCommandUnderRoot):
		return "--root is not a running system"
	case errors.Is(err, fs.ErrNotExist):
		return "not found"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	return err.Error()
}

func checkOS(h host.Host) (string, error) {
	data, err := h.ReadFile("/etc/os-release")
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("/etc/os-release is missing: homelab supports Ubuntu and Debian hosts (%w)", err)
	}
	if err != nil {
		return "", err
	}
	osr := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			osr[k] = strings.Trim(v, `"'`)
		}
	}
	family := osr["ID"] + " " + osr["ID_LIKE"]
	if !strings.Contains(family, "ubuntu") && !strings.Contains(family, "debian") {
		return "", fmt.Errorf("unsupported operating system %q: homelab supports Ubuntu and Debian", osr["PRETTY_NAME"])
	}
	return osr["PRETTY_NAME"], nil
}

var memTotal = regexp.MustCompile(`(?m)^MemTotal:\s+([0-9]+) kB`)

func memTotalKiB(h host.Host) (int64, error) {
	data, err := h.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	m := memTotal.FindSubmatch(data)
	if m == nil {
		return 0, errors.New("no MemTotal in /proc/meminfo")
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}

// diskFreeKiB asks df (POSIX output) for the space left on /.
func diskFreeKiB(ctx context.Context, h host.Host) (int64, error) {
	out, err := h.Run(ctx, host.Cmd{Name: "df", Args: []string{"-Pk", "/"}})
	if err != nil {
		return 0, err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	fields := strings.Fields(lines[len(lines)-1])
	if len(fields) < 4 {
		return 0, fmt.Errorf("unexpected df output %q", out)
	}
	return strconv.ParseInt(fields[3], 10, 64)
}

var ssUser = regexp.MustCompile(`users:\(\("([^"]+)"`)

// webPortOwners reports which process listens on ports 80 and 443.
func webPortOwners(ctx context.Context, h host.Host) (map[int]string, error) {
	out, err := h.Run(ctx, host.Cmd{Name: "ss", Args: []string{"-Hltnp"}})
	if err != nil {
		return nil, err
	}
	owners := map[int]string{}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 4 {
			continue
		}
		local := fields[3]
		i := strings.LastIndex(local, ":")
		port, err := strconv.Atoi(local[i+1:])
		if err != nil || (port != 80 && port != 443) {
			continue
		}
		proc := "an unknown process"
		if m := ssUser.FindStringSubmatch(line); m != nil {
			proc = m[1]
		}
		owners[port] = proc
	}
	return owners, nil
}
