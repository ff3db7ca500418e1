package doctor

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/doctor/doctortest"
	"github.com/homelab-dev/homelab/pkg/doctor/procnet"
	"github.com/homelab-dev/homelab/pkg/host"
)

// The recorded k3s server (doctortest/procnet) as the check names its
// ports beyond loopback; 9100 on the pod bridge (10.42.0.1) and every
// loopback socket are not among them.
const (
	k3sAPI    = "6443/tcp (k3s API server and supervisor)"
	kubelet   = "10250/tcp (kubelet API)"
	vxlan     = "8472/udp (flannel VXLAN)"
	unknown   = "8080/tcp on 192.168.1.10 (unknown, process mystery-server)"
	nodePort  = "30080/tcp on 192.168.1.10 (a Kubernetes NodePort)"
	mdns      = "5353/udp (mDNS)"
	expected  = "expected: 22/tcp (ssh), 68/udp on 192.168.1.10 (DHCP client), 80/tcp (Nginx)"
	ufwRules  = "sudo ufw allow 22/tcp && sudo ufw allow 80,443/tcp && sudo ufw allow from 10.42.0.0/16 to any && sudo ufw allow from 10.43.0.0/16 to any && sudo ufw default deny incoming && sudo ufw enable"
	ufwHeader = "Status: active\nDefault: deny (incoming), allow (outgoing), deny (routed)\n\nTo                         Action      From\n--                         ------      ----\n"
)

// recordedServer is a converged host with every socket of the recording,
// the unknown one's process findable under /proc, and ufw answering ufw.
func recordedServer(t *testing.T, ufw doctortest.Answer) (Env, *doctortest.Host) {
	t.Helper()
	cfg := parseConfig(t, "")
	h := doctortest.NewHost(t).Healthy(cfg, 4).WriteSockets()
	h.Link("socket:[2928445]", "/proc/4242/fd/7") // the 8080 listener (tcp6)
	h.Link("/dev/null", "/proc/4242/fd/0")
	h.Write("/proc/4242/comm", []byte("mystery-server\n"), 0o444)
	h.Link("socket:[1]", "/proc/1/fd/3")
	h.Write("/proc/1/comm", []byte("systemd\n"), 0o444)
	h.On("ufw status verbose", ufw)
	return Env{Config: cfg, Host: h, Dial: refuseAll}, h
}

func exposure(t *testing.T, env Env) Result {
	t.Helper()
	res, _ := runChecks(t, env, 2*time.Second)
	return res["host.exposure"]
}

func TestExposureOnAHealthyServer(t *testing.T) {
	cfg := parseConfig(t, "")
	h := doctortest.NewHost(t).Healthy(cfg, 4)
	res, _ := runChecks(t, Env{Config: cfg, Host: h, Dial: refuseAll}, 2*time.Second)
	expect(t, res, "host.exposure", StatusOK,
		k3sAPI+", "+vxlan+", "+kubelet+" listen beyond loopback; ufw is active and denies incoming connections by default")
}

func TestExposureWarnsUnlessUFWClosesThePorts(t *testing.T) {
	all := mdns + ", " + k3sAPI + ", " + unknown + ", " + vxlan + ", " + kubelet + ", " + nodePort // in port order
	openAll := "open beyond loopback: " + all + "; " + expected + "; "
	for _, c := range []struct {
		name   string
		ufw    doctortest.Answer
		status Status
		msg    string
		fix    []string
	}{
		{"ufw inactive", doctortest.Output("Status: inactive\n"), StatusWarn,
			openAll + "ufw is inactive", []string{"k3s's documented ufw rules: " + ufwRules, "port 6443"}},
		{"no ufw", func(context.Context, host.Cmd) ([]byte, error) {
			return nil, &host.CmdError{Err: &exec.Error{Name: "ufw", Err: exec.ErrNotFound}}
		}, StatusWarn,
			openAll + "ufw is not installed: doctor cannot tell whether another firewall (nftables, iptables, the router) closes them",
			[]string{"sudo apt-get install ufw && " + ufwRules}},
		{"ufw needs root", doctortest.Failure("ERROR: You need to be root to run this script\n", 1), StatusWarn,
			openAll + "cannot read ufw's state (ERROR: You need to be root to run this script): doctor cannot tell whether a firewall closes them (run doctor with sudo)",
			[]string{ufwRules}},
		{"ufw active, incoming allowed", doctortest.Output(strings.Replace(doctortest.UFWActive, "deny (incoming)", "allow (incoming)", 1)), StatusWarn,
			openAll + "ufw is active but lets incoming connections in by default", []string{ufwRules}},
		{"ufw with k3s's rules", doctortest.Output(doctortest.UFWActive), StatusOK,
			all + " listen beyond loopback; ufw is active and denies incoming connections by default", nil},
		{"ufw opens the API server to everyone", doctortest.Output(ufwHeader +
			"6443/tcp                   ALLOW IN    Anywhere\n8000:8100/tcp              ALLOW IN    Anywhere                   # tools\n5353/udp                   DENY IN     Anywhere\n"), StatusWarn,
			"open beyond loopback: " + k3sAPI + ", " + unknown + "; closed by ufw: " + mdns + ", " + vxlan + ", " + kubelet + ", " + nodePort + "; " + expected +
				"; ufw is active and denies incoming connections by default",
			[]string{"delete the ufw rules that let 6443/tcp, 8080/tcp in from anywhere: sudo ufw status numbered, then sudo ufw delete NUMBER"}},
		{"ufw opens the API server to the LAN", doctortest.Output(ufwHeader +
			"6443 on eth0               ALLOW IN    192.168.1.0/24\nAnywhere                   ALLOW IN    10.42.0.0/16\n"), StatusOK,
			all + " listen beyond loopback; ufw is active and denies incoming connections by default (open to some sources: 6443 on eth0 ALLOW IN 192.168.1.0/24)", nil},
		{"ufw allows a profile doctor does not know", doctortest.Output(ufwHeader +
			"OpenSSH                    ALLOW IN    Anywhere\nSamba                      ALLOW IN    Anywhere\n"), StatusWarn,
			"open beyond loopback: " + all, []string{"delete the ufw rules that let 5353/udp, 6443/tcp, 8080/tcp, 8472/udp, 10250/tcp, 30080/tcp in"}},
		{"ufw says something else", doctortest.Output("Firewall not loaded\n"), StatusWarn,
			"cannot read ufw's state (no Status line in \"Firewall not loaded\")", []string{ufwRules}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env, _ := recordedServer(t, c.ufw)
			r := exposure(t, env)
			t.Logf("%s: %s\nfix: %s", r.Status, r.Message, r.Fix)
			if r.Status != c.status || !strings.Contains(r.Message, c.msg) {
				t.Errorf("%s %q\nwant %s with %q", r.Status, r.Message, c.status, c.msg)
			}
			for _, f := range c.fix {
				if !strings.Contains(r.Fix, f) {
					t.Errorf("fix %q lacks %q", r.Fix, f)
				}
			}
			for _, inside := range []string{"9100", "3100", "10248", "6444", "10010", "9090", ":53", "323", "40000"} {
				if strings.Contains(r.Message, inside) {
					t.Errorf("the finding names %s, which listens on loopback, on the pod network or is connected: %s", inside, r.Message)
				}
			}
		})
	}
}

func TestExposureOfTheChartsNodeExporter(t *testing.T) {
	env, h := recordedServer(t, doctortest.Output("Status: inactive\n"))
	// The chart's node exporter on the host network, as before homelab's
	// values: 0.0.0.0:9100, recorded like the rest.
	tcp := string(doctortest.SocketTable("tcp")) +
		"  12: 00000000:238C 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 2928460 1 0000000000000000 100 0 0 10 0\n"
	h.Write("/proc/net/tcp", []byte(tcp), 0o444)
	r := exposure(t, env)
	if r.Status != StatusWarn || !strings.Contains(r.Message, "9100/tcp (node exporter)") ||
		!strings.HasPrefix(r.Fix, "node exporter is on the host network (values from before homelab kept it off): sudo homelab init; ") {
		t.Errorf("%s %q fix %q", r.Status, r.Message, r.Fix)
	}
}

func TestExposureWithOnlySSHAndNginx(t *testing.T) {
	env, h := recordedServer(t, doctortest.Output("Status: inactive\n"))
	for _, name := range []string{"tcp", "tcp6", "udp", "udp6"} {
		h.Write("/proc/net/"+name, doctortest.SocketTable(name, 6443, 10250, 8472, 8080, 30080, 5353), 0o444)
	}
	r := exposure(t, env)
	if want := "only 22/tcp (ssh), 68/udp on 192.168.1.10 (DHCP client), 80/tcp (Nginx) listen beyond loopback"; r.Status != StatusOK || r.Message != want {
		t.Errorf("%s %q, want ok %q", r.Status, r.Message, want)
	}
	for _, c := range h.CommandLines() {
		if strings.HasPrefix(c, "ufw") {
			t.Errorf("asked ufw with nothing to close: %s", c)
		}
	}
}

func TestExposureUnderRoot(t *testing.T) {
	cfg := parseConfig(t, "")
	recorder := doctortest.NewHost(t) // writes the root's files; doctor reads them through under
	under := &host.Local{Root: recorder.Root()}
	d, err := newDoctor(Env{Config: cfg, Host: under})
	if err != nil {
		t.Fatal(err)
	}
	if f := d.checkExposure(context.Background()); f.Status != StatusSkipped || !strings.Contains(f.Message, "not checked: no /proc/net/tcp") {
		t.Errorf("an empty root: %s %q", f.Status, f.Message)
	}
	// A root holding socket tables (copied from a server) is read, and the
	// firewall is said not to be checked.
	recorder.WriteSockets()
	f := normalize(d.checkExposure(context.Background()))
	if f.Status != StatusWarn || !strings.Contains(f.Message, k3sAPI) ||
		!strings.HasSuffix(f.Message, "; firewall not checked (commands are not run with --root)") || !strings.Contains(f.Fix, ufwRules) {
		t.Errorf("socket tables under --root: %s %q fix %q", f.Status, f.Message, f.Fix)
	}
	if !strings.Contains(f.Message, "8080/tcp on 192.168.1.10 (unknown, process not found: run doctor with sudo to name it)") {
		t.Errorf("the unknown port without its process: %q", f.Message)
	}
	// A socket of the kernel's own (a tunnel's) has no inode and no process.
	udp := string(doctortest.SocketTable("udp")) +
		" 9000: 00000000:1F40 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 0 2 0000000000000000 0\n"
	recorder.Write("/proc/net/udp", []byte(udp), 0o444)
	if f := d.checkExposure(context.Background()); !strings.Contains(f.Message, "8000/udp (unknown, held by the kernel: a tunnel or NFS)") {
		t.Errorf("a kernel socket: %q", f.Message)
	}
}

// TestRealLoopbackListenerDoesNotFaceTheOutside listens on 127.0.0.1 of this
// machine and reads its real socket tables the way doctor does: the
// listener is there, on loopback, held by this process, and not among what
// listens beyond loopback.
func TestRealLoopbackListenerDoesNotFaceTheOutside(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	real := &host.Local{}
	socks, err := procnet.ReadAll(real.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	var inode uint64
	for _, s := range socks {
		if s.Protocol == procnet.TCP && s.Local.Port() == port && s.Listening() {
			if !s.Loopback() {
				t.Errorf("%s is not on loopback", s)
			}
			inode = s.Inode
		}
	}
	if inode == 0 {
		t.Fatalf("the listener on %s is not in this machine's /proc/net/tcp", ln.Addr())
	}
	for _, l := range listenersBeyondLoopback(socks, []netip.Prefix{k3sPodNetwork}) {
		if l.Port == port && l.Proto == procnet.TCP {
			t.Errorf("%s counted as beyond loopback", l.describe())
		}
	}
	proc, ok := hostProc(real)
	if !ok {
		t.Fatal("host.Local cannot list /proc")
	}
	comm, _ := os.ReadFile("/proc/self/comm")
	if got := procnet.Owners(proc, map[uint64]bool{inode: true})[inode]; got != strings.TrimSpace(string(comm)) {
		t.Errorf("the listener is held by %q, want this process %q", got, strings.TrimSpace(string(comm)))
	}
}
