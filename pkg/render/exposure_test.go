package render

// Only Nginx faces the outside (README.md, "What faces the outside"): with
// homelab's values no pod of the charts homelab installs runs on the host's
// network or maps a host port, and node exporter, which the chart runs on
// the host network, is scraped at its pod address, where it listens.
// Checked on the real chart archives (e2e/charts).

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/layout"
)

const blackboxArchive = "e2e/charts/prometheus-blackbox-exporter-11.17.2.tgz"

// podSpecs are the pod specs of the rendered objects, by "Kind name". The
// operator's Prometheus and Alertmanager resources count: their specs have
// their own hostNetwork field.
func podSpecs(objs []object) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, o := range objs {
		spec, _ := o["spec"].(map[string]any)
		var pod any
		switch o.kind() {
		case "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job":
			pod = dig(spec, "template", "spec")
		case "CronJob":
			pod = dig(spec, "jobTemplate", "spec", "template", "spec")
		case "Pod", "Prometheus", "Alertmanager":
			pod = spec
		}
		if p, ok := pod.(map[string]any); ok {
			out[o.kind()+" "+o.name()] = p
		}
	}
	return out
}

func dig(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

// hostExposure lists what the rendered pods open on the host itself: a pod
// on the host network (with the ports its containers declare) or a
// container port mapped to a host port.
func hostExposure(objs []object) []string {
	var out []string
	for where, pod := range podSpecs(objs) {
		var ports []string
		for _, c := range append(list(pod, "initContainers"), list(pod, "containers")...) {
			for _, p := range list(c, "ports") {
				ports = append(ports, fmt.Sprint(p["containerPort"]))
				if hp, ok := p["hostPort"]; ok && hp != nil && fmt.Sprint(hp) != "0" {
					out = append(out, fmt.Sprintf("%s: container %s maps host port %v", where, c["name"], hp))
				}
			}
		}
		if pod["hostNetwork"] == true {
			out = append(out, fmt.Sprintf("%s: on the host network (container ports %s)", where, strings.Join(ports, ", ")))
		}
	}
	sort.Strings(out)
	return out
}

func chartValues(t *testing.T, path string) []byte {
	t.Helper()
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.Named(defaultConfig(t), path)
	if err != nil {
		t.Fatal(err)
	}
	return f.Data
}

func TestNothingInTheChartsListensOnTheHost(t *testing.T) {
	cfg := defaultConfig(t)
	stack := renderStack(t, ourStackValues(t))
	blackbox := renderChart(t, loadArchive(t, blackboxArchive), cfg.Monitoring.Blackbox.Release, chartValues(t, layout.ValuesBlackbox))
	for name, objs := range map[string][]object{"kube-prometheus-stack": stack, "prometheus-blackbox-exporter": blackbox} {
		if n := len(podSpecs(objs)); n == 0 {
			t.Fatalf("%s: no pod specs rendered: the check would see nothing", name)
		}
		if got := hostExposure(objs); len(got) > 0 {
			t.Errorf("%s with homelab's values opens ports on the host:\n  %s", name, strings.Join(got, "\n  "))
		}
	}
	// The check sees what it is for: the chart's own node exporter.
	got := hostExposure(renderStack(t, nil))
	want := fmt.Sprintf("DaemonSet %s-prometheus-node-exporter: on the host network (container ports 9100)", cfg.Monitoring.Release)
	if len(got) != 1 || got[0] != want {
		t.Errorf("with the chart's defaults: %q, want only %q", got, want)
	}
}

// TestNodeExporterIsScrapedWhereItListens follows the rendered objects from
// node exporter's listen address to the address Prometheus scrapes: the
// DaemonSet's pod listens on every interface of its own network namespace
// (not the host's), on the port its Service targets, the ServiceMonitor
// scrapes that Service port at the endpoint (the pod IP) without rewriting
// the address, and the kubelet's probes dial the same place. The host's
// /proc, /sys and / stay mounted, so filesystem metrics (HostDiskFilling)
// are still the host's.
func TestNodeExporterIsScrapedWhereItListens(t *testing.T) {
	objs := renderStack(t, ourStackValues(t))
	name := defaultConfig(t).Monitoring.Release + "-prometheus-node-exporter"
	ds, svc, sm := find(t, objs, "DaemonSet", name), find(t, objs, "Service", name), find(t, objs, "ServiceMonitor", name)

	pod, _ := dig(ds, "spec", "template", "spec").(map[string]any)
	if pod["hostNetwork"] != false {
		t.Errorf("hostNetwork: %v, want false", pod["hostNetwork"])
	}
	if pod["hostPID"] != true {
		t.Errorf("hostPID: %v, want true (node exporter reads the host's mounts through /host/proc/1)", pod["hostPID"])
	}
	hostPaths := map[string]string{}
	for _, v := range list(pod, "volumes") {
		hostPaths[fmt.Sprint(v["name"])] = str(v, "hostPath", "path")
	}
	c := container(t, pod, "node-exporter")
	for _, m := range list(c, "volumeMounts") {
		hostPaths[fmt.Sprint(m["mountPath"])] = hostPaths[fmt.Sprint(m["name"])]
		if m["readOnly"] != true {
			t.Errorf("mount %v is not read-only", m["mountPath"])
		}
	}
	for mount, host := range map[string]string{"/host/proc": "/proc", "/host/sys": "/sys", "/host/root": "/"} {
		if hostPaths[mount] != host {
			t.Errorf("%s is %q, want the host's %s", mount, hostPaths[mount], host)
		}
	}

	listen := listenAddress(t, c)
	if !listen.Addr().IsUnspecified() {
		t.Errorf("node exporter listens on %s, want every interface of its pod", listen)
	}
	var portName string
	for _, p := range list(c, "ports") {
		if fmt.Sprint(p["containerPort"]) == strconv.Itoa(int(listen.Port())) {
			portName = fmt.Sprint(p["name"])
			if hp, ok := p["hostPort"]; ok && fmt.Sprint(hp) != "0" {
				t.Errorf("port %s maps host port %v", portName, hp)
			}
		}
	}
	if portName == "" {
		t.Fatalf("no container port %d in %v", listen.Port(), c["ports"])
	}
	for _, probe := range []string{"livenessProbe", "readinessProbe"} {
		get, _ := dig(c, probe, "httpGet").(map[string]any)
		if get == nil || get["host"] != nil || (fmt.Sprint(get["port"]) != portName && fmt.Sprint(get["port"]) != strconv.Itoa(int(listen.Port()))) {
			t.Errorf("%s %v does not dial the pod IP on port %s", probe, get, portName)
		}
	}

	// The Service selects the pods and targets the port they listen on.
	podLabels, _ := dig(ds, "spec", "template", "metadata", "labels").(map[string]any)
	selector, _ := dig(svc, "spec", "selector").(map[string]any)
	if !subset(selector, podLabels) {
		t.Errorf("Service %s selects %v, not the pods %v", name, selector, podLabels)
	}
	var servicePort string
	for _, p := range list(svc["spec"].(map[string]any), "ports") {
		if tp := fmt.Sprint(p["targetPort"]); tp == portName || tp == strconv.Itoa(int(listen.Port())) {
			servicePort = fmt.Sprint(p["name"])
		}
	}
	if servicePort == "" {
		t.Fatalf("Service %s has no port targeting %s/%d: %v", name, portName, listen.Port(), dig(svc, "spec", "ports"))
	}

	// The ServiceMonitor scrapes that Service port at its endpoints.
	svcLabels, _ := dig(svc, "metadata", "labels").(map[string]any)
	match, _ := dig(sm, "spec", "selector", "matchLabels").(map[string]any)
	if !subset(match, svcLabels) {
		t.Errorf("ServiceMonitor %s selects %v, not the Service %v", name, match, svcLabels)
	}
	eps := list(sm["spec"].(map[string]any), "endpoints")
	if len(eps) != 1 || fmt.Sprint(eps[0]["port"]) != servicePort {
		t.Fatalf("ServiceMonitor %s endpoints %v, want one on port %s", name, eps, servicePort)
	}
	for _, r := range list(eps[0], "relabelings") {
		if r["targetLabel"] == "__address__" {
			t.Errorf("ServiceMonitor %s rewrites the scrape address: %v", name, r)
		}
	}
	if scheme := fmt.Sprint(eps[0]["scheme"]); scheme != "http" {
		t.Errorf("ServiceMonitor %s scrapes with %s, node exporter serves http", name, scheme)
	}
}

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.kind() == kind && o.name() == name {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

func container(t *testing.T, pod map[string]any, name string) map[string]any {
	t.Helper()
	for _, c := range list(pod, "containers") {
		if c["name"] == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return nil
}

func subset(small, big map[string]any) bool {
	if len(small) == 0 {
		return false
	}
	for k, v := range small {
		if big[k] != v {
			return false
		}
	}
	return true
}

// listenAddress is the container's --web.listen-address with $(VAR)
// expanded from its env as the kubelet does. A value the kubelet fills in
// per node (valueFrom) fails the test: the address would be the node's.
func listenAddress(t *testing.T, c map[string]any) netip.AddrPort {
	t.Helper()
	env := map[string]string{}
	for _, e := range list(c, "env") {
		if e["valueFrom"] != nil {
			env[fmt.Sprint(e["name"])] = "<from the node>"
			continue
		}
		env[fmt.Sprint(e["name"])] = fmt.Sprint(e["value"])
	}
	args, _ := c["args"].([]any)
	for _, a := range args {
		v, ok := strings.CutPrefix(fmt.Sprint(a), "--web.listen-address=")
		if !ok {
			continue
		}
		v = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(v, func(ref string) string {
			return env[ref[2:len(ref)-1]]
		})
		host, port, err := net.SplitHostPort(v)
		if err != nil {
			t.Fatalf("--web.listen-address %q: %v", v, err)
		}
		ap, err := netip.ParseAddrPort(net.JoinHostPort(host, port))
		if err != nil {
			t.Fatalf("--web.listen-address %q is not an address and port: %v", v, err)
		}
		return ap
	}
	t.Fatalf("no --web.listen-address in %v", args)
	return netip.AddrPort{}
}

// With node exporter off the host network, the alerts that read the
// counters the kernel keeps per network namespace would watch its pod: they
// are off in the real chart rendered with homelab's values, and on with the
// chart's defaults (so the check can fail).
func TestNetworkNamespaceAlertsAreOff(t *testing.T) {
	podOnly := []string{"NodeNetworkReceiveErrs", "NodeNetworkTransmitErrs", "NodeHighNumberConntrackEntriesUsed"}
	alerts := func(values []byte) map[string]bool {
		seen := map[string]bool{}
		for _, q := range ruleQueries(renderStack(t, values)) {
			seen[q.Where[strings.LastIndex(q.Where, " / ")+3:]] = true
		}
		return seen
	}
	ours, defaults := alerts(ourStackValues(t)), alerts(nil)
	for _, name := range podOnly {
		if ours[name] {
			t.Errorf("%s is on with homelab's values: it would watch node exporter's pod network", name)
		}
		if !defaults[name] {
			t.Errorf("%s is not among the chart's default rules: the check proves nothing", name)
		}
	}
}
