package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// childEnv tells a re-executed copy of this binary which component it is.
const childEnv = "K3S_STANDIN_COMPONENT"

// readyTimeout bounds how long `k3s server` waits for its node to become
// Ready before it gives up (real k3s waits forever; a test should not).
const readyTimeout = 5 * time.Minute

func logf(format string, args ...any) { log.Printf("level=info msg=%q", fmt.Sprintf(format, args...)) }
func warnf(format string, args ...any) {
	log.Printf("level=warning msg=%q", fmt.Sprintf(format, args...))
}

func runServer(args []string) int {
	log.SetFlags(log.Ldate | log.Ltime | log.Lmicroseconds | log.LUTC)
	o, err := parseServerFlags(args)
	if errors.Is(err, errHelp) {
		fmt.Printf("Usage: k3s server [flags]\n\nFlags this stand-in knows (same meaning as k3s's): %s\n", flagNames())
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "k3s server: %v\n", err)
		return 1
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "k3s server: must run as root")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	s := &server{o: o, started: time.Now()}
	err = s.run(ctx)
	s.stopChildren()
	if err != nil && ctx.Err() == nil {
		log.Printf("level=fatal msg=%q", err.Error())
		return 1
	}
	logf("k3s stopped")
	return 0
}

type server struct {
	o        *serverOptions
	started  time.Time
	binDir   string
	nodeName string
	nodeIP   net.IP
	pki      *pki

	mu       sync.Mutex
	children []*child
	exited   chan *child
}

type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (s *server) dir(parts ...string) string {
	return filepath.Join(append([]string{s.o.dataDir}, parts...)...)
}

func (s *server) run(ctx context.Context) error {
	s.exited = make(chan *child, 16)
	o := s.o
	logf("Starting k3s %s (e2e stand-in %s): Kubernetes v1.37.2 components, etcd, containerd", version, commit)
	for _, d := range []string{s.dir("server"), s.dir("agent"), s.dir("server", "cred"), s.dir("agent", "etc")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	var err error
	if s.binDir, err = runtimeBinDir(o.dataDir); err != nil {
		return err
	}
	if err := s.identity(); err != nil {
		return err
	}
	logf("node %s, address %s, cluster CIDR %s, service CIDR %s, cluster DNS %s", s.nodeName, s.nodeIP, o.clusterCIDR, o.serviceCIDR, o.clusterDNS)
	if err := s.prepareNode(); err != nil {
		return err
	}
	if err := s.certificates(); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}

	// The control plane.
	if err := s.startEtcd(ctx); err != nil {
		return err
	}
	if err := s.startAPIServer(ctx); err != nil {
		return err
	}
	if err := s.writeAdminKubeconfig(); err != nil {
		return err
	}
	if err := s.startControllers(); err != nil {
		return err
	}
	client, err := s.client()
	if err != nil {
		return err
	}
	go s.bootstrap(ctx, client)

	// The agent.
	if err := s.startContainerd(ctx); err != nil {
		return err
	}
	s.importImages(ctx)
	kubeletStart := time.Now()
	if err := s.startKubelet(); err != nil {
		return err
	}
	if err := s.startKubeProxy(); err != nil {
		return err
	}
	go s.writeCNIConfig(ctx, client)
	if !o.disabled("coredns") {
		go s.serveDNS(ctx, client)
	}
	if !o.disabled("local-storage") {
		go s.provisionLocalPaths(ctx, client)
	}

	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := s.waitNodeReady(readyCtx, client, kubeletStart); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("node %s is not Ready: %w (waited at most %s; see this unit's journal; containerd logs to %s)",
			s.nodeName, err, readyTimeout, s.dir("agent", "containerd", "containerd.log"))
	}
	logf("node %s is Ready %.1fs after start; notifying systemd", s.nodeName, time.Since(s.started).Seconds())
	sdNotify("READY=1\nSTATUS=node " + s.nodeName + " is Ready")

	select {
	case <-ctx.Done():
		logf("signal received: stopping the components (workload containers keep running)")
		return nil
	case c := <-s.exited:
		return fmt.Errorf("%s exited: %v", c.name, c.err)
	}
}

// identity picks the node's name and address as k3s does: the host name and
// the address of the default route's interface (or --node-name/--node-ip).
func (s *server) identity() error {
	s.nodeName = s.o.nodeName
	if s.nodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		s.nodeName = strings.ToLower(h)
	}
	if s.o.nodeIP != "" {
		s.nodeIP = net.ParseIP(s.o.nodeIP).To4()
		return nil
	}
	ip, err := defaultIPv4()
	if err != nil {
		return fmt.Errorf("cannot find the node's IPv4 address (give --node-ip): %w", err)
	}
	s.nodeIP = ip
	return nil
}

func (s *server) certificates() error {
	p, err := loadOrCreatePKI(s.dir("server", "tls"))
	if err != nil {
		return err
	}
	s.pki = p
	_, svcNet, _ := net.ParseCIDR(s.o.serviceCIDR)
	apiIP := append(net.IP(nil), svcNet.IP.To4()...)
	apiIP[3]++
	clients := []struct {
		name, cn string
		orgs     []string
	}{
		{"client-admin", "system:admin", []string{"system:masters"}},
		{"client-kube-apiserver", "system:kube-apiserver", []string{"system:masters"}},
		{"client-controller", "system:kube-controller-manager", nil},
		{"client-scheduler", "system:kube-scheduler", nil},
		{"client-kube-proxy", "system:kube-proxy", nil},
		{"client-kubelet", "system:node:" + s.nodeName, []string{"system:nodes"}},
	}
	for _, c := range clients {
		if err := p.issue(c.name, c.cn, c.orgs, false, nil, nil); err != nil {
			return err
		}
	}
	dns := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + s.o.clusterDomain, "localhost", s.nodeName}
	if err := p.issue("serving-kube-apiserver", "kube-apiserver", nil, true, dns, []net.IP{net.IPv4(127, 0, 0, 1).To4(), s.nodeIP, apiIP}); err != nil {
		return err
	}
	if err := p.issue("serving-kubelet", s.nodeName, nil, true, []string{s.nodeName, "localhost"}, []net.IP{s.nodeIP, net.IPv4(127, 0, 0, 1).To4()}); err != nil {
		return err
	}
	if err := p.serviceAccountKey(); err != nil {
		return err
	}
	for name, file := range map[string]string{
		"client-admin":      s.dir("server", "cred", "admin.kubeconfig"),
		"client-controller": s.dir("server", "cred", "controller.kubeconfig"),
		"client-scheduler":  s.dir("server", "cred", "scheduler.kubeconfig"),
		"client-kubelet":    s.dir("agent", "kubelet.kubeconfig"),
		"client-kube-proxy": s.dir("agent", "kubeproxy.kubeconfig"),
	} {
		kc, err := p.kubeconfig("https://127.0.0.1:6443", name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(file, kc, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// writeAdminKubeconfig writes k3s.yaml with the mode --write-kubeconfig-mode
// asks for (0600 unless set), even when the file already exists.
func (s *server) writeAdminKubeconfig() error {
	kc, err := s.pki.kubeconfig("https://127.0.0.1:6443", "client-admin")
	if err != nil {
		return err
	}
	path := s.o.writeKubeconfig
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, kc, 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tmp, s.o.kubeconfigMode()); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	logf("Wrote kubeconfig %s (mode %04o)", path, s.o.kubeconfigMode())
	return nil
}

// ---------------------------------------------------------------- children

// start runs a child process that dies with this one (as k3s's containerd
// does). Its output goes to logFile, or line by line to our stderr (the
// journal) with the component's name in front.
func (s *server) start(name, path string, args, env []string, logFile string) (*child, error) {
	cmd := exec.Command(path, args...)
	// Only this process speaks to systemd (NotifyAccess=main): etcd and the
	// kubelet would otherwise try to send their own READY=1.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out io.Writer
	var pw *io.PipeWriter
	if logFile != "" {
		if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		out = f
	} else {
		var pr *io.PipeReader
		pr, pw = io.Pipe()
		out = pw
		go func() {
			sc := bufio.NewScanner(pr)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				fmt.Fprintf(os.Stderr, "%s: %s\n", name, sc.Text())
			}
			io.Copy(io.Discard, pr)
		}()
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	s.mu.Lock()
	s.children = append(s.children, c)
	s.mu.Unlock()
	go func() {
		c.err = cmd.Wait()
		if c.err == nil {
			c.err = errors.New("exit status 0")
		}
		if pw != nil {
			pw.Close()
		}
		if f, ok := out.(*os.File); ok {
			f.Close()
		}
		close(c.done)
		select {
		case s.exited <- c:
		default:
		}
	}()
	logf("Running %s (pid %d)", name, cmd.Process.Pid)
	return c, nil
}

// component runs one of the linked Kubernetes components.
func (s *server) component(name string, args []string) (*child, error) {
	return s.start(name, "/proc/self/exe", append(append([]string{name}, args...), s.o.extraArgs[name]...),
		[]string{childEnv + "=" + name}, "")
}

// stopChildren stops the Kubernetes components together, then containerd,
// then etcd (what they need while shutting down). Containers keep running
// in their shims, as with k3s and KillMode=process.
func (s *server) stopChildren() {
	s.mu.Lock()
	children := append([]*child(nil), s.children...)
	s.mu.Unlock()
	var first, last []*child
	for _, c := range children {
		if c.name == "containerd" || c.name == "etcd" {
			last = append([]*child{c}, last...) // containerd before etcd
		} else {
			first = append(first, c)
		}
	}
	stop := func(group []*child) {
		for _, c := range group {
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
		}
		deadline := time.Now().Add(10 * time.Second)
		for _, c := range group {
			select {
			case <-c.done:
			case <-time.After(time.Until(deadline)):
				warnf("%s did not stop within 10s of SIGTERM; killing it", c.name)
				_ = c.cmd.Process.Kill()
				<-c.done
			}
		}
	}
	stop(first)
	for _, c := range last {
		stop([]*child{c})
	}
}

// waitFor polls check until it succeeds, the child dies or ctx ends.
func (s *server) waitFor(ctx context.Context, what string, c *child, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	t0 := time.Now()
	var last error
	for {
		if last = check(); last == nil {
			logf("%s ready after %.1fs", what, time.Since(t0).Seconds())
			return nil
		}
		if c != nil {
			select {
			case <-c.done:
				return fmt.Errorf("%s exited before it was ready: %v", c.name, c.err)
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v", what, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ---------------------------------------------------------------- control plane

func (s *server) startEtcd(ctx context.Context) error {
	dir := s.dir("server", "db", "etcd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	c, err := s.start("etcd", filepath.Join(s.binDir, "etcd"), []string{
		"--name=" + s.nodeName,
		"--data-dir=" + dir,
		"--listen-client-urls=http://127.0.0.1:2379",
		"--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380",
		"--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=" + s.nodeName + "=http://127.0.0.1:2380",
		"--listen-metrics-urls=http://127.0.0.1:2381",
		"--log-level=warn",
	}, nil, "")
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	return s.waitFor(ctx, "etcd", c, 60*time.Second, func() error {
		resp, err := hc.Get("http://127.0.0.1:2379/health")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), `"health":"true"`) {
			return fmt.Errorf("health %s", b)
		}
		return nil
	})
}

func (s *server) tlsFile(name string) string { return s.pki.path(name) }

func (s *server) startAPIServer(ctx context.Context) error {
	c, err := s.component("kube-apiserver", []string{
		"--advertise-address=" + s.nodeIP.String(),
		"--bind-address=0.0.0.0",
		"--secure-port=6443",
		"--etcd-servers=http://127.0.0.1:2379",
		"--cert-dir=" + s.dir("server", "tls", "temporary-certs"),
		"--tls-cert-file=" + s.tlsFile("serving-kube-apiserver.crt"),
		"--tls-private-key-file=" + s.tlsFile("serving-kube-apiserver.key"),
		"--client-ca-file=" + s.pki.caPath,
		"--kubelet-client-certificate=" + s.tlsFile("client-kube-apiserver.crt"),
		"--kubelet-client-key=" + s.tlsFile("client-kube-apiserver.key"),
		"--service-account-issuer=https://kubernetes.default.svc." + s.o.clusterDomain,
		"--api-audiences=https://kubernetes.default.svc." + s.o.clusterDomain + ",k3s",
		"--service-account-key-file=" + s.tlsFile("service.pub"),
		"--service-account-signing-key-file=" + s.tlsFile("service.key"),
		"--service-cluster-ip-range=" + s.o.serviceCIDR,
		"--service-node-port-range=30000-32767",
		// The node's InternalIP first: logs, exec and port-forward reach the
		// kubelet by address, never by a host name nothing resolves.
		"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--anonymous-auth=false",
		"--allow-privileged=true",
		"--profiling=false",
	})
	if err != nil {
		return err
	}
	hc, err := s.adminHTTP()
	if err != nil {
		return err
	}
	return s.waitFor(ctx, "kube-apiserver", c, 3*time.Minute, func() error {
		resp, err := hc.Get("https://127.0.0.1:6443/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d: %.300s", resp.StatusCode, b)
		}
		return nil
	})
}

func (s *server) adminHTTP() (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(s.tlsFile("client-admin.crt"), s.tlsFile("client-admin.key"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.pki.ca)
	return &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool},
	}}, nil
}

func (s *server) startControllers() error {
	kc := s.dir("server", "cred", "controller.kubeconfig")
	if _, err := s.component("kube-controller-manager", []string{
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1",
		"--secure-port=10257",
		"--service-account-private-key-file=" + s.tlsFile("service.key"),
		"--root-ca-file=" + s.pki.caPath,
		"--cluster-signing-cert-file=" + s.pki.caPath,
		"--cluster-signing-key-file=" + s.tlsFile("server-ca.key"),
		"--allocate-node-cidrs=true",
		"--cluster-cidr=" + s.o.clusterCIDR,
		"--node-cidr-mask-size=24",
		"--service-cluster-ip-range=" + s.o.serviceCIDR,
		"--use-service-account-credentials=true",
		"--configure-cloud-routes=false",
		"--leader-elect=false",
		"--profiling=false",
	}); err != nil {
		return err
	}
	sc := s.dir("server", "cred", "scheduler.kubeconfig")
	_, err := s.component("kube-scheduler", []string{
		"--kubeconfig=" + sc,
		"--authentication-kubeconfig=" + sc,
		"--authorization-kubeconfig=" + sc,
		"--bind-address=127.0.0.1",
		"--secure-port=10259",
		"--leader-elect=false",
		"--profiling=false",
	})
	return err
}
