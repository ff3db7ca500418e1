package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Paths real k3s uses, and that homelab reads or writes.
const (
	kubeconfigPath    = "/etc/rancher/k3s/k3s.yaml"
	defaultConfigFile = "/etc/rancher/k3s/config.yaml"
	defaultDataDir    = "/var/lib/rancher/k3s"
	containerdSocket  = "/run/k3s/containerd/containerd.sock"
	containerdState   = "/run/k3s/containerd"
	// The sandbox image: the images helper builds it under this name.
	defaultPauseImage = "docker.io/rancher/mirrored-pause:3.6"
)

// serverOptions are the `k3s server` flags this stand-in understands. Each
// has the name, meaning and default of the real k3s flag.
type serverOptions struct {
	configFile          string
	dataDir             string
	disable             []string
	writeKubeconfig     string
	writeKubeconfigMode string
	clusterCIDR         string
	serviceCIDR         string
	clusterDNS          string
	clusterDomain       string
	nodeName            string
	nodeIP              string
	pauseImage          string
	debug               bool
	extraArgs           map[string][]string // --kubelet-arg and friends
}

type flagSpec struct {
	names []string // first is the long name (also the config.yaml key)
	bool  bool
	set   func(o *serverOptions, v string) error
}

func str(p func(o *serverOptions) *string) func(*serverOptions, string) error {
	return func(o *serverOptions, v string) error { *p(o) = v; return nil }
}

func extra(component string) func(*serverOptions, string) error {
	return func(o *serverOptions, v string) error {
		if !strings.HasPrefix(v, "--") {
			v = "--" + v
		}
		o.extraArgs[component] = append(o.extraArgs[component], v)
		return nil
	}
}

// knownComponents are what --disable accepts (k3s's packaged components).
var knownComponents = []string{"coredns", "servicelb", "traefik", "local-storage", "metrics-server", "runtimes"}

// notProvided are packaged components this stand-in does not run: real k3s
// would, so a unit that does not disable them is refused (for traefik and
// servicelb, real k3s would take ports 80 and 443 from the host's Nginx).
var notProvided = []string{"traefik", "servicelb"}

var serverFlags = []flagSpec{
	{names: []string{"config", "c"}, set: str(func(o *serverOptions) *string { return &o.configFile })},
	{names: []string{"data-dir", "d"}, set: str(func(o *serverOptions) *string { return &o.dataDir })},
	{names: []string{"disable"}, set: func(o *serverOptions, v string) error {
		for _, c := range strings.Split(v, ",") {
			c = strings.TrimSpace(c)
			if !slices.Contains(knownComponents, c) {
				return fmt.Errorf("--disable %q: not a packaged component (want one of %s)", c, strings.Join(knownComponents, ", "))
			}
			o.disable = append(o.disable, c)
		}
		return nil
	}},
	{names: []string{"write-kubeconfig", "o"}, set: str(func(o *serverOptions) *string { return &o.writeKubeconfig })},
	{names: []string{"write-kubeconfig-mode"}, set: func(o *serverOptions, v string) error {
		if _, err := strconv.ParseUint(v, 8, 32); err != nil || len(v) > 4 {
			return fmt.Errorf("--write-kubeconfig-mode %q: want an octal file mode like 0600", v)
		}
		o.writeKubeconfigMode = v
		return nil
	}},
	{names: []string{"cluster-cidr"}, set: cidr(func(o *serverOptions) *string { return &o.clusterCIDR })},
	{names: []string{"service-cidr"}, set: cidr(func(o *serverOptions) *string { return &o.serviceCIDR })},
	{names: []string{"cluster-dns"}, set: func(o *serverOptions, v string) error {
		if net.ParseIP(v).To4() == nil {
			return fmt.Errorf("--cluster-dns %q: want an IPv4 address", v)
		}
		o.clusterDNS = v
		return nil
	}},
	{names: []string{"cluster-domain"}, set: str(func(o *serverOptions) *string { return &o.clusterDomain })},
	{names: []string{"node-name"}, set: str(func(o *serverOptions) *string { return &o.nodeName })},
	{names: []string{"node-ip", "i"}, set: func(o *serverOptions, v string) error {
		if net.ParseIP(v).To4() == nil {
			return fmt.Errorf("--node-ip %q: want an IPv4 address", v)
		}
		o.nodeIP = v
		return nil
	}},
	{names: []string{"pause-image"}, set: str(func(o *serverOptions) *string { return &o.pauseImage })},
	{names: []string{"debug"}, bool: true, set: func(o *serverOptions, v string) error {
		b, err := strconv.ParseBool(v)
		o.debug = b
		return err
	}},
	{names: []string{"kube-apiserver-arg"}, set: extra("kube-apiserver")},
	{names: []string{"kube-controller-manager-arg"}, set: extra("kube-controller-manager")},
	{names: []string{"kube-scheduler-arg"}, set: extra("kube-scheduler")},
	{names: []string{"kubelet-arg"}, set: extra("kubelet")},
	{names: []string{"kube-proxy-arg"}, set: extra("kube-proxy")},
}

func cidr(p func(o *serverOptions) *string) func(*serverOptions, string) error {
	return func(o *serverOptions, v string) error {
		ip, n, err := net.ParseCIDR(v)
		if err != nil || ip.To4() == nil || !ip.Equal(n.IP) {
			return fmt.Errorf("%q: want an IPv4 network like 10.43.0.0/16", v)
		}
		*p(o) = v
		return nil
	}
}

func findFlag(name string) *flagSpec {
	for i := range serverFlags {
		if slices.Contains(serverFlags[i].names, name) {
			return &serverFlags[i]
		}
	}
	return nil
}

func flagNames() string {
	var names []string
	for _, f := range serverFlags {
		names = append(names, "--"+f.names[0])
	}
	return strings.Join(names, " ")
}

// parseServerFlags reads config.yaml, then the command line (which wins), as
// k3s does. Anything this stand-in does not know is an error: homelab's unit
// flags are checked, never silently ignored.
func parseServerFlags(args []string) (*serverOptions, error) {
	o := &serverOptions{
		configFile:          defaultConfigFile,
		dataDir:             defaultDataDir,
		writeKubeconfig:     kubeconfigPath,
		writeKubeconfigMode: "",
		clusterCIDR:         "10.42.0.0/16",
		serviceCIDR:         "10.43.0.0/16",
		clusterDomain:       "cluster.local",
		pauseImage:          defaultPauseImage,
		extraArgs:           map[string][]string{},
	}
	type kv struct {
		spec        *flagSpec
		name, value string
	}
	var cli []kv
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			return nil, fmt.Errorf("unexpected argument %q: k3s server takes only flags", a)
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "help" || name == "h" {
			return nil, errHelp
		}
		spec := findFlag(name)
		if spec == nil {
			return nil, fmt.Errorf("flag provided but not defined: %s (this stand-in knows: %s)", a, flagNames())
		}
		switch {
		case hasValue:
		case spec.bool:
			value = "true"
		case i+1 < len(args):
			i++
			value = args[i]
		default:
			return nil, fmt.Errorf("flag needs an argument: %s", a)
		}
		if name == "config" || name == "c" {
			o.configFile = value
			continue
		}
		cli = append(cli, kv{spec, a, value})
	}
	if err := o.readConfigFile(); err != nil {
		return nil, err
	}
	// The command line's values come after config.yaml's; --disable adds to
	// its list, as in k3s.
	for _, f := range cli {
		if err := f.spec.set(o, f.value); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return o, o.validate()
}

var errHelp = errors.New("help requested")

// readConfigFile applies config.yaml: keys are the long flag names; list
// values repeat the flag. A missing default file is fine; unknown keys are
// errors.
func (o *serverOptions) readConfigFile() error {
	data, err := os.ReadFile(o.configFile)
	if errors.Is(err, os.ErrNotExist) && o.configFile == defaultConfigFile {
		return nil
	}
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", o.configFile, err)
	}
	for key, v := range cfg {
		name := strings.TrimSuffix(key, "+")
		spec := findFlag(name)
		if spec == nil || len(name) == 1 || name == "config" {
			return fmt.Errorf("%s: key %q is not a flag this stand-in knows (%s)", o.configFile, key, flagNames())
		}
		var values []string
		switch v := v.(type) {
		case []any:
			for _, item := range v {
				values = append(values, fmt.Sprint(item))
			}
		case nil:
		default:
			values = []string{fmt.Sprint(v)}
		}
		for _, value := range values {
			if err := spec.set(o, value); err != nil {
				return fmt.Errorf("%s: %s: %w", o.configFile, key, err)
			}
		}
	}
	return nil
}

func (o *serverOptions) validate() error {
	for _, c := range notProvided {
		if !slices.Contains(o.disable, c) {
			return fmt.Errorf("%s is not disabled: real k3s would run it (and take ports 80 and 443); this stand-in cannot, so it refuses to start (add --disable %s)", c, c)
		}
	}
	if o.clusterDNS == "" {
		_, n, _ := net.ParseCIDR(o.serviceCIDR)
		ip := n.IP.To4()
		o.clusterDNS = net.IPv4(ip[0], ip[1], ip[2], ip[3]+10).String()
	}
	if o.writeKubeconfigMode == "" {
		o.writeKubeconfigMode = os.Getenv("K3S_KUBECONFIG_MODE")
	}
	return nil
}

func (o *serverOptions) disabled(c string) bool { return slices.Contains(o.disable, c) }

// kubeconfigMode is the mode of the kubeconfig k3s writes: 0600 unless set.
func (o *serverOptions) kubeconfigMode() os.FileMode {
	if o.writeKubeconfigMode == "" {
		return 0o600
	}
	m, _ := strconv.ParseUint(o.writeKubeconfigMode, 8, 32)
	return os.FileMode(m)
}
