package doctor

import (
	"context"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/doctor/doctortest"
)

// refuseAll is a dialer for which nothing listens anywhere.
func refuseAll(_ context.Context, network, addr string) (net.Conn, error) {
	return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

func check(id, group string, run func(ctx context.Context) Finding, needs ...string) Check {
	return Check{ID: id, Group: group, Name: id, Needs: needs, Run: run}
}

func after(d time.Duration, f Finding) func(context.Context) Finding {
	return func(ctx context.Context) Finding {
		select {
		case <-time.After(d):
			return f
		case <-ctx.Done():
			return Fail("x", "cancelled")
		}
	}
}

func TestRunnerPrerequisitesOrderAndTimeout(t *testing.T) {
	hang := func(context.Context) Finding { select {} } // ignores its context
	checks := []Check{
		check("tls.late", GroupTLS, after(30*time.Millisecond, OK("late"))),
		check("host.hang", GroupHost, hang),
		check("host.after-hang", GroupHost, after(0, OK("never")), "host.hang"),
		check("nginx.fails", GroupNginx, after(0, Fail("fix it", "broken\nsecond line"))),
		check("nginx.dependent", GroupNginx, after(0, OK("never")), "nginx.fails"),
		check("nginx.transitive", GroupNginx, after(0, OK("never")), "nginx.dependent"),
		check("grafana.warned", GroupGrafana, after(0, Warn("w", "meh"))),
		check("grafana.runs", GroupGrafana, after(0, OK("ran")), "grafana.warned"),
		check("k3s.panics", GroupK3s, func(context.Context) Finding { panic("boom") }),
		check("k3s.nofix", GroupK3s, after(0, Finding{Status: StatusWarn, Message: "no fix"})),
	}
	const timeout = 200 * time.Millisecond
	start := time.Now()
	rep, err := Runner{Timeout: timeout}.Run(context.Background(), checks)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if took > timeout*12/10 {
		t.Errorf("took %s with a per-check timeout of %s: a hung check delayed the report", took, timeout)
	}
	var order []string
	got := map[string]Result{}
	for _, r := range rep.Results {
		order = append(order, r.ID)
		got[r.ID] = r
	}
	want := "host.hang host.after-hang k3s.panics k3s.nofix grafana.warned grafana.runs nginx.fails nginx.dependent nginx.transitive tls.late"
	if strings.Join(order, " ") != want {
		t.Errorf("order:\n got %s\nwant %s", strings.Join(order, " "), want)
	}
	for id, w := range map[string]Finding{
		"host.hang":        {StatusFail, "no answer within 200ms", "rerun with a longer per-check timeout: homelab doctor --timeout 10s"},
		"host.after-hang":  {StatusSkipped, "needs host.hang, which failed", ""},
		"nginx.fails":      {StatusFail, "broken; second line", "fix it"},
		"nginx.dependent":  {StatusSkipped, "needs nginx.fails, which failed", ""},
		"nginx.transitive": {StatusSkipped, "needs nginx.dependent, which was skipped", ""},
		"grafana.runs":     {StatusOK, "ran", ""},
		"k3s.panics":       {StatusFail, "check crashed: boom", "this is a bug in homelab: please report it with the output of homelab doctor -o json"},
		"k3s.nofix":        {StatusWarn, "no fix", "see the finding"},
		"tls.late":         {StatusOK, "late", ""},
	} {
		if got[id].Finding != w {
			t.Errorf("%s: %+v, want %+v", id, got[id].Finding, w)
		}
	}
	if s := rep.Summary(); s != (Summary{OK: 2, Warn: 2, Fail: 3, Skipped: 3}) || !rep.Failed() {
		t.Errorf("summary %+v", s)
	}
}

func TestRunnerOwnTimeoutAndInterrupt(t *testing.T) {
	slow := after(time.Second, OK("slow"))
	c := check("host.slow", GroupHost, slow)
	c.Timeout, c.TimeoutFix = 20*time.Millisecond, "look at the slow thing"
	rep, _ := Runner{Timeout: time.Hour}.Run(context.Background(), []Check{c})
	if f := rep.Results[0].Finding; f != (Finding{StatusFail, "no answer within 20ms", "look at the slow thing"}) {
		t.Errorf("own timeout: %+v", f)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	rep, _ = Runner{Timeout: time.Hour}.Run(ctx, []Check{check("host.slow", GroupHost, slow)})
	if f := rep.Results[0].Finding; f.Status != StatusSkipped || f.Message != "interrupted" {
		t.Errorf("interrupted: %+v", f)
	}
}

func TestValidateRejectsInconsistentChecks(t *testing.T) {
	ok := after(0, OK("x"))
	for name, checks := range map[string][]Check{
		"duplicate":     {check("host.a", GroupHost, ok), check("host.a", GroupHost, ok)},
		"unknown need":  {check("host.a", GroupHost, ok, "host.b")},
		"cycle":         {check("host.a", GroupHost, ok, "host.b"), check("host.b", GroupHost, ok, "host.a")},
		"unknown group": {check("x.a", "network", ok)},
		"no run":        {{ID: "host.a", Group: GroupHost}},
	} {
		if _, err := (Runner{}).Run(context.Background(), checks); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestEveryCheckIsValidAndDocumented(t *testing.T) {
	for _, tls := range []string{"", "domain: a.example.com\nemail: a@example.com\ntls: {mode: certbot}\n"} {
		checks, err := Checks(Env{Config: parseConfig(t, tls), Host: nil})
		if err == nil {
			t.Fatal("Checks accepted an Env without a host")
		}
		checks, err = Checks(Env{Config: parseConfig(t, tls), Host: doctortest.NewHost(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(checks); err != nil {
			t.Fatal(err)
		}
		for _, c := range checks {
			if !strings.HasPrefix(c.ID, c.Group+".") || c.Name == "" {
				t.Errorf("check %q: ID must start with its group %q and it needs a name", c.ID, c.Group)
			}
		}
	}
}
