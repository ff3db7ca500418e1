package tui

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/homelab-dev/homelab/pkg/plan"
)

// teaRun drives a PlanModel in a real bubbletea program on an 80x24 terminal,
// sends msgs, and returns the final screen (the last View) and everything
// written to the terminal.
func teaRun(t *testing.T, m PlanModel, msgs ...tea.Msg) (string, string) {
	t.Helper()
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	for _, msg := range msgs {
		tm.Send(msg)
	}
	final := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).View()
	out, err := io.ReadAll(tm.FinalOutput(t))
	if err != nil {
		t.Fatal(err)
	}
	return final, string(out)
}

func initEvents() []tea.Msg {
	steps := []struct {
		name, summary string
		changed       bool
		elapsed       time.Duration
	}{
		{"nginx package", "nginx 1.24.0 is installed", false, 210 * time.Millisecond},
		{"k3s binary", "download k3s v1.30.2+k3s1 and verify its sha256 against the release's checksum list", true, 48 * time.Second},
		{"k3s service", "write /etc/systemd/system/k3s.service and start it", true, 75 * time.Second},
		{"kube-prometheus-stack", "release monitoring/kube-prometheus-stack is deployed at 61.3.2", false, 1200 * time.Millisecond},
		{"nginx site", "write /etc/nginx/sites-available/homelab", true, 90 * time.Millisecond},
	}
	var msgs []tea.Msg
	for i, s := range steps {
		msgs = append(msgs, ev(plan.Checking, i+1, len(steps), s.name, "", 0))
		if s.changed {
			msgs = append(msgs, ev(plan.Applying, i+1, len(steps), s.name, s.summary, 0),
				ev(plan.Applied, i+1, len(steps), s.name, s.summary, s.elapsed))
		} else {
			msgs = append(msgs, ev(plan.UpToDate, i+1, len(steps), s.name, s.summary, s.elapsed))
		}
	}
	return append(msgs, DoneMsg{})
}

func TestTeaApply(t *testing.T) {
	final, out := teaRun(t, NewPlanModel("homelab init", asciiRenderer(), func() {}), initEvents()...)
	goldenFile(t, "apply.txt", final)
	if !strings.Contains(ansi.Strip(out), "3 changed, 2 up to date") {
		t.Errorf("the terminal never showed the footer:\n%s", out)
	}
}

func TestTeaApplyColour(t *testing.T) {
	final, _ := teaRun(t, NewPlanModel("homelab init", colorRenderer(), func() {}), initEvents()...)
	goldenFile(t, "apply-color.txt", final)
}

func TestTeaDryRun(t *testing.T) {
	msgs := []tea.Msg{
		ev(plan.Checking, 1, 3, "nginx package", "", 0),
		ev(plan.UpToDate, 1, 3, "nginx package", "nginx 1.24.0 is installed", 150*time.Millisecond),
		ev(plan.Checking, 2, 3, "k3s binary", "", 0),
		ev(plan.WouldChange, 2, 3, "k3s binary", "download k3s v1.30.2+k3s1", 300*time.Millisecond),
		ev(plan.Checking, 3, 3, "nginx site", "", 0),
		ev(plan.WouldChange, 3, 3, "nginx site", "write /etc/nginx/sites-available/homelab (new file)\n--- diff ---", 5*time.Millisecond),
		DoneMsg{},
	}
	final, _ := teaRun(t, NewPlanModel("homelab init --dry-run", asciiRenderer(), func() {}), msgs...)
	goldenFile(t, "dry-run.txt", final)
}

func TestTeaFailure(t *testing.T) {
	failed := ev(plan.Failed, 2, 4, "kube-prometheus-stack", "install chart 61.3.2", 10*time.Minute)
	failed.Err = errors.New("kube-prometheus-stack: pods not ready after 10m0s: monitoring/grafana-0 ImagePullBackOff\nmore detail that stays off the screen")
	msgs := []tea.Msg{
		ev(plan.Checking, 1, 4, "k3s service", "", 0),
		ev(plan.UpToDate, 1, 4, "k3s service", "k3s is active", 40*time.Millisecond),
		ev(plan.Checking, 2, 4, "kube-prometheus-stack", "", 0),
		ev(plan.Applying, 2, 4, "kube-prometheus-stack", "install chart 61.3.2", 0),
		failed,
		DoneMsg{Err: failed.Err},
	}
	final, _ := teaRun(t, NewPlanModel("homelab init", asciiRenderer(), func() {}), msgs...)
	goldenFile(t, "failed.txt", final)
}

// syncBuffer is written by the program's goroutines while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func upToDate(name string) plan.Step {
	return plan.Step{
		Name:  name,
		Check: func(context.Context) (plan.Status, error) { return plan.Status{Summary: name + " is fine"}, nil },
		Apply: func(context.Context) error { return nil },
	}
}

func runner(p plan.Plan) func(context.Context, func(plan.Event)) error {
	return func(ctx context.Context, onEvent func(plan.Event)) error {
		_, err := plan.Runner{OnEvent: onEvent}.Run(ctx, p)
		return err
	}
}

func TestRunCtrlCCancelsThePlan(t *testing.T) {
	inR, inW := io.Pipe()
	defer inW.Close()
	out := &syncBuffer{}
	reached := make(chan struct{})
	var ctxErr error
	thirdRan := false
	p := plan.Plan{Name: "init", Steps: []plan.Step{
		upToDate("first"),
		{
			Name: "slow",
			Check: func(ctx context.Context) (plan.Status, error) {
				close(reached)
				select {
				case <-ctx.Done():
					ctxErr = ctx.Err()
				case <-time.After(10 * time.Second):
				}
				return plan.Status{Summary: "done anyway"}, nil // finishes its step
			},
			Apply: func(context.Context) error { return nil },
		},
		{
			Name:  "third",
			Check: func(context.Context) (plan.Status, error) { thirdRan = true; return plan.Status{}, nil },
			Apply: func(context.Context) error { return nil },
		},
	}}
	go func() {
		<-reached
		_, _ = inW.Write([]byte{0x03}) // Ctrl-C as a terminal in raw mode sends it
	}()
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), inR, out, "homelab init", runner(p)) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after Ctrl-C")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	if !errors.Is(ctxErr, context.Canceled) {
		t.Errorf("the running step's ctx ended with %v, want context.Canceled", ctxErr)
	}
	if thirdRan {
		t.Error("the step after Ctrl-C ran")
	}
	screen := ansi.Strip(out.String())
	for _, want := range []string{"✓ slow: done anyway", "interrupted: 2 up to date, 1 not run"} {
		if !strings.Contains(screen, want) {
			t.Errorf("terminal lacks %q:\n%s", want, screen)
		}
	}
}

func TestRunFailure(t *testing.T) {
	out := &syncBuffer{}
	boom := errors.New("exit status 1\nsecond line of stderr")
	p := plan.Plan{Name: "init", Steps: []plan.Step{
		upToDate("first"),
		{
			Name: "install nginx",
			Check: func(context.Context) (plan.Status, error) {
				return plan.Status{Pending: true, Summary: "apt-get install nginx"}, nil
			},
			Apply: func(context.Context) error { return boom },
		},
		upToDate("never"),
	}}
	err := Run(context.Background(), &bytes.Buffer{}, out, "homelab init", runner(p))
	if !errors.Is(err, boom) {
		t.Fatalf("Run returned %v, want the step's error", err)
	}
	screen := ansi.Strip(out.String())
	for _, want := range []string{"✗ install nginx", "    exit status 1", "1 up to date, 1 failed, 1 not run"} {
		if !strings.Contains(screen, want) {
			t.Errorf("terminal lacks %q:\n%s", want, screen)
		}
	}
	for _, notWant := range []string{"second line of stderr", "never"} {
		if strings.Contains(screen, notWant) {
			t.Errorf("terminal shows %q:\n%s", notWant, screen)
		}
	}
}

func TestRunSuccessAndColour(t *testing.T) {
	applied := false
	p := plan.Plan{Name: "init", Steps: []plan.Step{
		upToDate("first"),
		{
			Name: "changes",
			Check: func(context.Context) (plan.Status, error) {
				return plan.Status{Pending: !applied, Summary: "write a file"}, nil
			},
			Apply: func(context.Context) error { applied = true; return nil },
		},
	}}

	for _, colour := range []bool{false, true} {
		applied = false
		out := &syncBuffer{}
		if err := Run(context.Background(), &bytes.Buffer{}, out, "homelab init", runner(p), WithColor(colour)); err != nil {
			t.Fatalf("colour %v: Run: %v", colour, err)
		}
		if !strings.Contains(ansi.Strip(out.String()), "1 changed, 1 up to date") {
			t.Errorf("colour %v: no footer:\n%s", colour, out)
		}
		if got := strings.Contains(out.String(), "\x1b[32m"); got != colour {
			t.Errorf("colour %v: green in output is %v", colour, got)
		}
	}
}

func TestRunParentContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Run(ctx, &bytes.Buffer{}, &syncBuffer{}, "homelab init", runner(plan.Plan{Steps: []plan.Step{upToDate("a")}}))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
}
