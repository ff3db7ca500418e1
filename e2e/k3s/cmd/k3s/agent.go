package main

import (
	"bufio"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func (s *server) client() (kubernetes.Interface, error) {
	data, err := os.ReadFile(s.dir("server", "cred", "admin.kubeconfig"))
	if err != nil {
		return nil, err
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "k3s-standin"
	return kubernetes.NewForConfig(cfg)
}

// ---------------------------------------------------------------- containerd

func (s *server) startContainerd(ctx context.Context) error {
	root := s.dir("agent", "containerd")
	cfgDir := s.dir("agent", "etc", "containerd")
	for _, d := range []string{root, cfgDir, containerdState, s.cniConfDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	restrictOOM := !hasCapability(24) // CAP_SYS_RESOURCE
	if restrictOOM {
		warnf("no CAP_SYS_RESOURCE in the bounding set (a container?): containerd caps oom_score_adj at its own (restrict_oom_score_adj)")
	}
	cfg := fmt.Sprintf(`# Written by the k3s e2e stand-in at every start, as k3s writes its own.
version = 2
root = %q
state = %q

[grpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "10010"
  enable_selinux = false
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  sandbox_image = %q
  restrict_oom_score_adj = %t

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  disable_snapshot_annotations = true

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = %q
  conf_dir = %q

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = %q
`, root, containerdState, containerdSocket, filepath.Join(root, "opt"), s.o.pauseImage, restrictOOM,
		s.binDir, s.cniConfDir(), filepath.Join(s.binDir, "runc"))
	cfgFile := filepath.Join(cfgDir, "config.toml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return err
	}
	args := []string{"--config", cfgFile}
	if s.o.debug {
		args = append(args, "--log-level", "debug")
	}
	logFile := filepath.Join(root, "containerd.log")
	c, err := s.start("containerd", filepath.Join(s.binDir, "containerd"), args,
		[]string{"PATH=" + s.binDir + ":" + os.Getenv("PATH")}, logFile)
	if err != nil {
		return err
	}
	logf("containerd logs to %s", logFile)
	return s.waitFor(ctx, "containerd", c, 60*time.Second, func() error {
		conn, err := net.DialTimeout("unix", containerdSocket, time.Second)
		if err != nil {
			return err
		}
		conn.Close()
		return exec.CommandContext(ctx, s.ctrPath(), "-a", containerdSocket, "version").Run()
	})
}

func (s *server) ctrPath() string    { return filepath.Join(s.binDir, "ctr") }
func (s *server) cniConfDir() string { return s.dir("agent", "etc", "cni", "net.d") }

// importImages imports every image tarball in agent/images into the k8s.io
// namespace, as k3s does at start, and pins what it imported. A tarball
// already imported (same size and time) is skipped.
func (s *server) importImages(ctx context.Context) {
	dir := s.dir("agent", "images")
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !os.IsNotExist(err) {
			warnf("images: %v", err)
		}
		return
	}
	stateFile := s.dir("agent", "etc", "imported-images.json")
	done := map[string]string{}
	if b, err := os.ReadFile(stateFile); err == nil {
		_ = json.Unmarshal(b, &done)
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		info, err := os.Stat(path)
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		stamp := fmt.Sprintf("%d:%d", info.Size(), info.ModTime().UnixNano())
		if done[path] == stamp {
			logf("images: %s already imported", path)
			continue
		}
		t0 := time.Now()
		names, err := s.importTarball(ctx, path)
		if err != nil {
			warnf("images: import %s: %v", path, err)
			continue
		}
		done[path] = stamp
		logf("images: imported %s in %.1fs: %s", path, time.Since(t0).Seconds(), strings.Join(names, " "))
	}
	if b, err := json.Marshal(done); err == nil {
		_ = os.WriteFile(stateFile, b, 0o600)
	}
}

var unpacking = regexp.MustCompile(`^unpacking (\S+) \(`)

func (s *server) importTarball(ctx context.Context, path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader
	switch name := path; {
	case strings.HasSuffix(name, ".tar"):
		r = f
	case strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		r = zr
	case strings.HasSuffix(name, ".tar.zst"), strings.HasSuffix(name, ".tzst"):
		zr, err := zstd.NewReader(f)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	case strings.HasSuffix(name, ".tar.bz2"), strings.HasSuffix(name, ".tbz"):
		r = bzip2.NewReader(f)
	default:
		return nil, fmt.Errorf("not an image tarball this stand-in reads (.tar, .tar.gz, .tgz, .tar.zst, .tzst, .tar.bz2, .tbz; lz4 is not supported)")
	}
	cmd := exec.CommandContext(ctx, s.ctrPath(), "-a", containerdSocket, "-n", "k8s.io", "images", "import", "-")
	cmd.Stdin = r
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ctr images import: %v: %s", err, strings.TrimSpace(string(out)))
	}
	var names []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if m := unpacking.FindStringSubmatch(sc.Text()); m != nil {
			names = append(names, m[1])
		}
	}
	for _, n := range names {
		if out, err := exec.CommandContext(ctx, s.ctrPath(), "-a", containerdSocket, "-n", "k8s.io", "images", "label", n, "io.cri-containerd.pinned=pinned").CombinedOutput(); err != nil {
			warnf("images: pin %s: %v: %s", n, err, out)
		}
	}
	return names, nil
}

// ---------------------------------------------------------------- kubelet, kube-proxy

func (s *server) resolvConf() string {
	data, err := os.ReadFile("/etc/resolv.conf")
	if err == nil {
		ok := false
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 2 && f[0] == "nameserver" {
				if ip := net.ParseIP(f[1]); ip != nil && !ip.IsLoopback() {
					ok = true
				}
			}
		}
		if ok {
			return "/etc/resolv.conf"
		}
	}
	// As k3s: pods cannot use a loopback resolver; give them a public one.
	alt := s.dir("agent", "etc", "resolv.conf")
	_ = os.WriteFile(alt, []byte("nameserver 8.8.8.8\n"), 0o644)
	warnf("/etc/resolv.conf has no usable nameserver for pods; using %s", alt)
	return alt
}

func (s *server) startKubelet() error {
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 hosts are still allowed (Kubernetes 1.35+ refuse them by default).
failCgroupV1: false
# cgroupfs, as k3s without systemd cgroups; containerd 1.6 has no RuntimeConfig call.
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization: {mode: Webhook}
clusterDNS: [%q]
clusterDomain: %q
resolvConf: %q
tlsCertFile: %q
tlsPrivateKeyFile: %q
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
failSwapOn: false
serializeImagePulls: false
evictionHard: {imagefs.available: "5%%", nodefs.available: "5%%"}
evictionMinimumReclaim: {imagefs.available: "10%%", nodefs.available: "10%%"}
# The machine shares the host's disk, whose fill is not the test's subject,
# and containerd 1.6 ignores the io.cri-containerd.pinned label (1.7+, as in
# k3s, honours it): at 85%% the kubelet would collect the pause image and the
# imported app builds that k3s keeps pinned. No image GC on this node.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`, containerdSocket, s.pki.caPath, s.o.clusterDNS, s.o.clusterDomain, s.resolvConf(),
		s.tlsFile("serving-kubelet.crt"), s.tlsFile("serving-kubelet.key"))
	file := s.dir("agent", "etc", "kubelet.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		return err
	}
	_, err := s.component("kubelet", []string{
		"--config=" + file,
		"--kubeconfig=" + s.dir("agent", "kubelet.kubeconfig"),
		"--hostname-override=" + s.nodeName,
		"--node-ip=" + s.nodeIP.String(),
	})
	return err
}

func (s *server) startKubeProxy() error {
	cfg := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: %q}
clusterCIDR: %q
hostnameOverride: %q
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Leave the global nf_conntrack_max alone (read-only in a container).
conntrack: {maxPerCore: 0, min: 0}
`, s.dir("agent", "kubeproxy.kubeconfig"), s.o.clusterCIDR, s.nodeName)
	file := s.dir("agent", "etc", "kube-proxy.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		return err
	}
	_, err := s.component("kube-proxy", []string{"--config=" + file})
	return err
}

// writeCNIConfig writes the bridge network once the node has its pod CIDR
// (flannel's part in k3s: cni0, host-local addresses, masquerade out).
func (s *server) writeCNIConfig(ctx context.Context, client kubernetes.Interface) {
	for ctx.Err() == nil {
		node, err := client.CoreV1().Nodes().Get(ctx, s.nodeName, metav1.GetOptions{})
		if err == nil && node.Spec.PodCIDR != "" {
			conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "cbr0",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, node.Spec.PodCIDR)
			file := filepath.Join(s.cniConfDir(), "10-bridge.conflist")
			if old, err := os.ReadFile(file); err == nil && string(old) == conf {
				return
			}
			if err := os.WriteFile(file+".tmp", []byte(conf), 0o644); err == nil {
				_ = os.Rename(file+".tmp", file)
			}
			logf("CNI: bridge cni0 for pod CIDR %s written to %s", node.Spec.PodCIDR, file)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// waitNodeReady waits for a Ready condition the kubelet reported after it
// started (a restart finds the previous run's Ready in etcd).
func (s *server) waitNodeReady(ctx context.Context, client kubernetes.Interface, since time.Time) error {
	since = since.Truncate(time.Second)
	last := "not registered"
	for {
		node, err := client.CoreV1().Nodes().Get(ctx, s.nodeName, metav1.GetOptions{})
		if err == nil {
			last = "no Ready condition"
			for _, c := range node.Status.Conditions {
				if c.Type != corev1.NodeReady {
					continue
				}
				last = fmt.Sprintf("Ready=%s (%s: %s)", c.Status, c.Reason, c.Message)
				if c.Status == corev1.ConditionTrue && !c.LastHeartbeatTime.Time.Before(since) {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("last seen: %s", last)
		case c := <-s.exited:
			s.exited <- c
			return fmt.Errorf("%s exited: %v", c.name, c.err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ---------------------------------------------------------------- systemd

// sdNotify sends state to systemd's notify socket (Type=notify units).
func sdNotify(state string) {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		warnf("sd_notify: %v", err)
		return
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		warnf("sd_notify: %v", err)
	}
}

var _ = slices.Contains[[]string]
