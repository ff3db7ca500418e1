package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/doctor"
	"github.com/homelab-dev/homelab/pkg/doctor/doctortest"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

var fixedNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// scenario is a server as doctor sees it: a fake host, and Nginx (on
// 127.0.0.1:80) and Grafana (on 127.0.0.1:3100) served by test handlers
// through the dialer. Every other address refuses connections.
type scenario struct {
	host           *doctortest.Host
	nginx, grafana http.Handler
	out            *failingWriter
	// cluster replaces the connection to the cluster; nil keeps the
	// factory's (with f.Root at the host's root, and kube as f.Kube).
	cluster func() (doctor.Cluster, error)
	kube    func() (*kube.Client, error)
	// configPath is the --config file ("": the defaults).
	configPath string
	// tty runs doctor on a terminal: the live table.
	tty bool
}

func defaults(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (s *scenario) dial(t *testing.T) func(ctx context.Context, network, addr string) (net.Conn, error) {
	routes := map[string]string{}
	for addr, h := range map[string]http.Handler{"127.0.0.1:80": s.nginx, "127.0.0.1:3100": s.grafana} {
		if h != nil {
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			routes[addr] = srv.Listener.Addr().String()
		}
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if to, ok := routes[addr]; ok {
			return (&net.Dialer{}).DialContext(ctx, network, to)
		}
		return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// run runs `homelab doctor args...` on the scenario and returns the exit
// code, stdout and stderr.
func (s *scenario) run(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	ios.SetTTY(s.tty)
	if s.out != nil {
		ios.Out = s.out
	}
	f := cmdutil.New(ios, "test")
	f.Root = s.host.Root()
	f.ConfigPath = s.configPath
	f.Host = func() host.Host { return s.host }
	f.Now = func() time.Time { return fixedNow }
	if s.kube != nil {
		f.Kube = s.kube
	}
	dial := s.dial(t)
	cmd := NewCmdDoctor(f, func(ctx context.Context, opts *Options) error {
		if opts.Host != s.host || opts.Out != ios.Out || opts.Color != s.tty || opts.Cluster == nil {
			t.Errorf("options not taken from the factory: %+v", opts)
		}
		opts.Dial = dial
		if s.cluster != nil {
			opts.Cluster = s.cluster
		}
		return doctorRun(ctx, opts)
	})
	cmd.SetArgs(append([]string{}, args...)) // never nil: cobra would read os.Args
	cmd.SetOut(ios.Out)
	cmd.SetErr(ios.ErrOut)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.ExecuteContext(ctx)
	return cmdutil.ExitCode(err), out.String(), errOut.String()
}

func healthy(t *testing.T) *scenario {
	cfg := defaults(t)
	graf := doctortest.Grafana(cfg.Monitoring.Grafana.Path)
	return &scenario{host: doctortest.NewHost(t).Healthy(cfg, 4), nginx: doctortest.Nginx(graf), grafana: graf,
		cluster: fakeCluster(t, healthyApp())}
}

// problems is the scenario of the golden files: a 1.5 GiB box whose Nginx
// site was edited to the often-copied `proxy_pass http://127.0.0.1:3100/;`
// form, so Grafana's sub-path loops, and whose app keeps being OOMKilled.
func problems(t *testing.T) *scenario {
	cfg := defaults(t)
	graf := doctortest.Grafana(cfg.Monitoring.Grafana.Path)
	h := doctortest.NewHost(t).Healthy(cfg, 1.5)
	site, err := h.ReadFile(layout.NginxSite)
	if err != nil {
		t.Fatal(err)
	}
	h.Write(layout.NginxSite, []byte(strings.Replace(string(site), "proxy_pass http://homelab_grafana;\n    }\n\n    location / {",
		"proxy_pass http://homelab_grafana/;\n    }\n\n    location / {", 1)), 0o644)
	return &scenario{host: h, nginx: doctortest.StrippingNginx(cfg.Monitoring.Grafana.Path, graf), grafana: graf,
		cluster: fakeCluster(t, oomKilledApp())}
}

func TestExitZeroWhenNothingFails(t *testing.T) {
	code, out, stderr := healthy(t).run(t, context.Background())
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	if !regexp.MustCompile(`(?m)^grafana +health through Nginx +ok +Grafana answers at http://homelab.example.com/grafana/api/health$`).MatchString(out) ||
		!strings.Contains(out, ", 0 fail,") {
		t.Errorf("table:\n%s", out)
	}
}

func TestExitThreeAndGoldenTable(t *testing.T) {
	code, out, stderr := problems(t).run(t, context.Background())
	if code != cmdutil.ExitProblems {
		t.Fatalf("exit %d, want 3\n%s%s", code, out, stderr)
	}
	if !regexp.MustCompile(`^Configuration: [^\n]+\n$`).MatchString(stderr) {
		t.Errorf("stderr: %q, want only the line naming the configuration", stderr)
	}
	testutil.Golden(t, "doctor/problems.txt", []byte(out))
}

func TestGoldenJSON(t *testing.T) {
	code, out, _ := problems(t).run(t, context.Background(), "-o", "json")
	if code != cmdutil.ExitProblems {
		t.Fatalf("exit %d, want 3", code)
	}
	testutil.Golden(t, "doctor/problems.json", []byte(out))
	var rep struct {
		Version int `json:"version"`
		Checks  []struct {
			ID, Group, Name, Status, Message, Fix string
			DurationMs                            *int64 `json:"durationMs"`
		} `json:"checks"`
		Summary map[string]int `json:"summary"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatal(err)
	}
	// init links kubectl to k3s, whose kubeconfig only root reads: a fix
	// that uses kubectl must say sudo to be runnable as printed.
	for _, c := range rep.Checks {
		if strings.Contains(c.Fix, "kubectl") && !strings.Contains(c.Fix, "sudo kubectl") {
			t.Errorf("%s: fix %q runs kubectl without sudo", c.ID, c.Fix)
		}
	}
	n := 0
	for _, c := range rep.Checks {
		if c.ID == "" || c.Group == "" || c.Name == "" || c.Message == "" || c.DurationMs == nil {
			t.Errorf("incomplete check %+v", c)
		}
		if (c.Status == "warn" || c.Status == "fail") != (c.Fix != "") {
			t.Errorf("%s: status %s with fix %q", c.ID, c.Status, c.Fix)
		}
		n++
	}
	s := rep.Summary
	if rep.Version != 1 || s["ok"]+s["warn"]+s["fail"]+s["skipped"] != n || len(s) != 4 || s["fail"] == 0 {
		t.Errorf("version %d summary %v for %d checks", rep.Version, s, n)
	}
}

func TestExitOneWhenTheReportCannotBeWritten(t *testing.T) {
	s := healthy(t)
	s.out = &failingWriter{}
	if code, _, _ := s.run(t, context.Background()); code != cmdutil.ExitError {
		t.Fatalf("exit %d, want 1", code)
	}
}

func TestBadFlagsExitTwo(t *testing.T) {
	for _, args := range [][]string{{"-o", "yaml"}, {"--timeout", "0s"}, {"--watch", "10ms"}, {"--watch", "soon"}, {"extra"}} {
		code, _, _ := healthy(t).run(t, context.Background(), args...)
		if code != cmdutil.ExitUsage {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestWatchRerunsUntilInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	code, out, stderr := problems(t).run(t, ctx, "--watch", "1s", "-o", "json")
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("watch did not stop when interrupted: %s", took)
	}
	if code != cmdutil.ExitProblems {
		t.Errorf("exit %d, want the last run's 3", code)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	runs := 0
	for {
		var rep doctor.JSONReport
		if err := dec.Decode(&rep); err != nil {
			break
		}
		runs++
	}
	if runs != 2 || strings.Count(stderr, "homelab doctor at 12:00:00, every 1s (Ctrl-C stops)") != 2 {
		t.Errorf("%d runs; stderr:\n%s", runs, stderr)
	}
}

func TestTimeoutFlag(t *testing.T) {
	s := healthy(t)
	s.grafana = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }) // never answers
	start := time.Now()
	code, out, _ := s.run(t, context.Background(), "--timeout", "300ms")
	if took := time.Since(start); took > 600*time.Millisecond {
		t.Errorf("took %s with --timeout 300ms", took)
	}
	if code != cmdutil.ExitProblems || !strings.Contains(out, "no answer within 300ms") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func TestTextColourOnlyWhenAsked(t *testing.T) {
	rep := doctor.Report{Results: []doctor.Result{{ID: "host.ram", Group: "host", Name: "memory", Finding: doctor.Fail("add RAM", "0.5 GiB")}}}
	var plain, colour strings.Builder
	_ = rep.WriteText(&plain, doctor.TextOptions{})
	_ = rep.WriteText(&colour, doctor.TextOptions{Color: true})
	if strings.Contains(plain.String(), "\x1b[") || !strings.Contains(colour.String(), "\x1b[31;1mfail\x1b[0m") {
		t.Errorf("plain %q\ncolour %q", plain.String(), colour.String())
	}
}
