package k3s

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// unitTemplate is k3s's systemd unit: the settings of the unit k3s's own
// installer writes, with the flags homelab needs. Traefik and servicelb
// would take ports 80 and 443 from the host's Nginx; the kubeconfig would be
// world-readable without --write-kubeconfig-mode.
var unitTemplate = template.Must(template.New("k3s.service").Option("missingkey=error").Parse(`# Written by homelab; ` + "`homelab init`" + ` rewrites it. Put settings in
# /etc/rancher/k3s/config.yaml instead of editing this file.
[Unit]
Description=Lightweight Kubernetes (k3s)
Documentation=https://docs.k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/systemd/system/k3s.service.env
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart={{.Binary}} server --disable traefik --disable servicelb --write-kubeconfig-mode 0600{{if .ServiceCIDR}} --service-cidr {{.ServiceCIDR}}{{end}}
`))

// Unit renders k3s.service. It does no I/O.
func (i Installer) Unit() ([]byte, error) {
	cidr := i.ServiceCIDR
	if cidr == DefaultServiceCIDR {
		cidr = ""
	}
	var buf bytes.Buffer
	err := unitTemplate.Execute(&buf, map[string]string{"Binary": BinaryPath, "ServiceCIDR": cidr})
	return buf.Bytes(), err
}

// ServiceStep writes UnitPath and keeps k3s enabled and running the current
// unit and binary. Check reads the unit file and runs only `systemctl show`.
func (i Installer) ServiceStep() plan.Step {
	const name = "k3s service"
	n, err := i.normalized()
	if err != nil {
		return failing(name, err)
	}
	unit, err := n.Unit()
	if err != nil {
		return failing(name, err)
	}
	file := plan.WriteFile(n.Host, UnitPath, unit, 0o644)
	return plan.Step{
		Name: name,
		Check: func(ctx context.Context) (plan.Status, error) {
			fileStatus, err := file.Check(ctx)
			if err != nil {
				return plan.Status{}, err
			}
			var todo []string
			if fileStatus.Pending {
				todo = append(todo, UnitPath+": "+fileStatus.Summary)
			}
			st, err := serviceState(ctx, n.Host)
			switch {
			case ctx.Err() != nil:
				return plan.Status{}, ctx.Err()
			case err != nil:
				// Unknown is pending, not a failure: a dry run under --root
				// cannot ask systemd. A real Apply fails on systemctl itself.
				todo = append(todo, "enable and start k3s (systemd could not be asked: "+reason(err)+")")
			default:
				todo = append(todo, st.todo(fileStatus.Pending, n.binaryNewer(st))...)
			}
			if len(todo) == 0 {
				return plan.Status{Summary: "k3s is enabled and active"}, nil
			}
			return plan.Status{Pending: true, Summary: strings.Join(todo, "; "), Diff: fileStatus.Diff}, nil
		},
		Apply: func(ctx context.Context) error {
			res, err := n.Host.WriteFile(UnitPath, unit, 0o644)
			if err != nil {
				return err
			}
			st, err := serviceState(ctx, n.Host)
			if err != nil {
				return err
			}
			systemctl := func(args ...string) error {
				_, err := n.Host.Run(ctx, host.Cmd{Name: "systemctl", Args: args})
				return err
			}
			if res.Changed || st.needReload {
				if err := systemctl("daemon-reload"); err != nil {
					return err
				}
			}
			if st.active() && (res.Changed || n.binaryNewer(st)) {
				// New flags or a new binary take effect only on restart. With
				// KillMode=process the workloads keep running meanwhile.
				if !st.enabled() {
					if err := systemctl("enable", "k3s"); err != nil {
						return err
					}
				}
				return systemctl("restart", "k3s")
			}
			// Type=notify: returns once k3s reports it is ready.
			return systemctl("enable", "--now", "k3s")
		},
	}
}

// reason is the gist of a failed command: its output's last line, or the error.
func reason(err error) string {
	var cmdErr *host.CmdError
	if errors.As(err, &cmdErr) {
		if out := strings.TrimSpace(string(cmdErr.Output)); out != "" {
			lines := strings.Split(out, "\n")
			return strings.TrimSpace(lines[len(lines)-1])
		}
	}
	return firstLine(err.Error())
}

// unitState is what systemd says about k3s.service.
type unitState struct {
	activeState, unitFileState string
	needReload                 bool
	// started is when the running process was started; zero if unknown.
	started time.Time
}

func (s unitState) active() bool  { return s.activeState == "active" }
func (s unitState) enabled() bool { return s.unitFileState == "enabled" }

func (s unitState) todo(unitChanges, binaryNewer bool) []string {
	var todo []string
	if s.needReload && !unitChanges {
		todo = append(todo, "systemctl daemon-reload (the unit changed on disk)")
	}
	switch {
	case s.unitFileState == "":
		todo = append(todo, "enable k3s")
	case !s.enabled():
		todo = append(todo, "enable k3s (now "+s.unitFileState+")")
	}
	switch {
	case !s.active():
		todo = append(todo, "start k3s (now "+s.activeState+")")
	case unitChanges:
		todo = append(todo, "restart k3s with the new unit")
	case binaryNewer:
		todo = append(todo, "restart k3s to run the new binary")
	}
	return todo
}

// binaryNewer reports whether the binary was replaced after the running k3s
// started, so that the process still runs the previous version.
func (i Installer) binaryNewer(st unitState) bool {
	if !st.active() || st.started.IsZero() {
		return false
	}
	info, err := i.Host.Lstat(BinaryPath)
	if err != nil {
		return false
	}
	return info.ModTime().Truncate(time.Second).After(st.started)
}

// showArgs ask systemd, read-only, for what the service step needs to know.
var showArgs = []string{"show", "k3s", "--property=ActiveState,UnitFileState,NeedDaemonReload,ExecMainStartTimestamp", "--timestamp=unix"}

// ShowCommand is the systemctl command the service step's Check runs, for
// tests that answer it.
func ShowCommand() host.Cmd {
	return host.Cmd{Name: "systemctl", Args: append([]string(nil), showArgs...)}
}

func serviceState(ctx context.Context, h host.Host) (unitState, error) {
	out, err := h.Run(ctx, ShowCommand())
	if err != nil {
		return unitState{}, fmt.Errorf("ask systemd about k3s: %w", err)
	}
	var st unitState
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		switch k {
		case "ActiveState":
			st.activeState = v
		case "UnitFileState":
			st.unitFileState = v
		case "NeedDaemonReload":
			st.needReload = v == "yes"
		case "ExecMainStartTimestamp":
			if sec, err := strconv.ParseInt(strings.TrimPrefix(v, "@"), 10, 64); err == nil && strings.HasPrefix(v, "@") && sec > 0 {
				st.started = time.Unix(sec, 0)
			}
		}
	}
	return st, nil
}
