package tui

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aymanbagabas/go-udiff"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/homelab-dev/homelab/pkg/plan"
)

// This package's tests do not import pkg/testutil: it defines -update, and so
// does github.com/charmbracelet/x/exp/golden (imported by teatest); both in
// one test binary panic at init. golden's flag serves: `go test ./... -update`
// rewrites testdata/golden/tui/ through goldenFile below.

// update reads the -update flag whoever defined it.
func update() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return false
	}
	b, _ := g.Get().(bool)
	return b
}

// goldenFile compares got with testdata/golden/tui/name at the repository
// root, or rewrites it with -update.
func goldenFile(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "golden", "tui", name)
	if update() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file %s: %v (run go test ./pkg/tui -update to create it)", name, err)
	}
	if string(want) != got {
		t.Errorf("output differs from golden file %s (go test ./pkg/tui -update if intended):\n%s",
			name, udiff.Unified("want", "got", string(want), got))
	}
}

func asciiRenderer() *lipgloss.Renderer {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	return r
}

func colorRenderer() *lipgloss.Renderer {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.ANSI)
	return r
}

func send(t *testing.T, m tea.Model, msgs ...tea.Msg) (tea.Model, tea.Cmd) {
	t.Helper()
	var cmd tea.Cmd
	for _, msg := range msgs {
		m, cmd = m.Update(msg)
	}
	return m, cmd
}

func ev(kind plan.EventKind, i, total int, name, summary string, elapsed time.Duration) plan.Event {
	return plan.Event{Kind: kind, Index: i, Total: total, Step: name, Status: plan.Status{Pending: kind != plan.UpToDate, Summary: summary}, Elapsed: elapsed}
}

func TestModelShowsStepsAsReached(t *testing.T) {
	m := tea.Model(NewPlanModel("homelab init", asciiRenderer(), func() {}))
	m, _ = send(t, m, tea.WindowSizeMsg{Width: 80, Height: 24},
		ev(plan.Checking, 1, 3, "nginx package", "", 0))
	v := m.View()
	for _, want := range []string{"homelab init", "nginx package: checking…", "0/3 · ctrl+c to stop"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "k3s") {
		t.Errorf("a step not yet reached is shown:\n%s", v)
	}

	m, _ = send(t, m,
		ev(plan.UpToDate, 1, 3, "nginx package", "nginx is installed", 12*time.Millisecond),
		ev(plan.Checking, 2, 3, "k3s", "", 0),
		ev(plan.Applying, 2, 3, "k3s", "install k3s v1.30.2", 0))
	v = m.View()
	if n := strings.Count(v, "nginx package"); n != 1 {
		t.Errorf("step 1 shown %d times, want once:\n%s", n, v)
	}
	for _, want := range []string{"✓ nginx package: nginx is installed 12ms", "k3s: install k3s v1.30.2…", "1/3"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}

	m, cmd := send(t, m,
		ev(plan.Applied, 2, 3, "k3s", "install k3s v1.30.2", 62*time.Second),
		ev(plan.Checking, 3, 3, "site", "", 0),
		ev(plan.UpToDate, 3, 3, "site", "unchanged", 3400*time.Millisecond),
		DoneMsg{})
	if cmd == nil {
		t.Fatal("DoneMsg returned no command, want tea.Quit")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Errorf("DoneMsg command is not tea.Quit")
	}
	v = m.View()
	for _, want := range []string{"● k3s: install k3s v1.30.2 1m02s", "✓ site: unchanged 3.4s", "1 changed, 2 up to date"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "ctrl+c") {
		t.Errorf("finished view still offers ctrl+c:\n%s", v)
	}
}

func TestModelFailedStepShowsFirstErrorLine(t *testing.T) {
	m := tea.Model(NewPlanModel("homelab init", asciiRenderer(), func() {}))
	failed := ev(plan.Failed, 2, 4, "helm kube-prometheus-stack", "install chart", 3*time.Second)
	failed.Err = errors.New("timed out waiting for pods\npod grafana-0: ImagePullBackOff")
	m, _ = send(t, m,
		ev(plan.Checking, 1, 4, "k3s", "", 0), ev(plan.UpToDate, 1, 4, "k3s", "running", time.Millisecond),
		ev(plan.Checking, 2, 4, "helm kube-prometheus-stack", "", 0), failed,
		DoneMsg{Err: failed.Err})
	v := m.View()
	for _, want := range []string{"✗ helm kube-prometheus-stack 3.0s\n    timed out waiting for pods\n", "1 up to date, 1 failed, 2 not run"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "ImagePullBackOff") {
		t.Errorf("view shows more than the error's first line:\n%s", v)
	}
}

func TestModelCtrlCCallsInterruptOnce(t *testing.T) {
	calls := 0
	m := tea.Model(NewPlanModel("homelab init", asciiRenderer(), func() { calls++ }))
	m, _ = send(t, m, ev(plan.Checking, 1, 2, "k3s", "", 0))
	m, cmd := m.Update(tea.KeyMsg{Type: tea.KeyCtrlC})
	if cmd == nil {
		t.Fatal("Ctrl-C returned no command")
	}
	if calls != 0 {
		t.Fatal("Update called interrupt itself; it must return it as a command")
	}
	if msg := cmd(); msg != nil {
		t.Errorf("interrupt command returned %#v, want nil (not a quit: the plan ends the display)", msg)
	}
	if calls != 1 {
		t.Fatalf("interrupt called %d times, want 1", calls)
	}
	if !m.(PlanModel).Interrupted() {
		t.Error("Interrupted() is false after Ctrl-C")
	}
	if v := m.View(); !strings.Contains(v, "stopping after the current step") {
		t.Errorf("view does not say it is stopping:\n%s", v)
	}
	if _, cmd = m.Update(tea.KeyMsg{Type: tea.KeyCtrlC}); cmd != nil {
		t.Error("a second Ctrl-C returned a command")
	}
	m, _ = send(t, m, ev(plan.UpToDate, 1, 2, "k3s", "running", time.Second), DoneMsg{Err: errors.New("context canceled")})
	if v := m.View(); !strings.Contains(v, "interrupted: 1 up to date, 1 not run") {
		t.Errorf("footer does not say interrupted:\n%s", v)
	}
}

func TestModelCtrlCWithoutInterruptQuits(t *testing.T) {
	m := tea.Model(NewPlanModel("homelab init", nil, nil))
	_, cmd := m.Update(tea.KeyMsg{Type: tea.KeyCtrlC})
	if cmd == nil {
		t.Fatal("no command")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("Ctrl-C without an interrupt func does not quit")
	}
}

func TestModelTruncatesToWidth(t *testing.T) {
	const width = 40
	m := tea.Model(NewPlanModel("homelab init: a title far too long for a narrow terminal", asciiRenderer(), func() {}))
	failed := ev(plan.Failed, 2, 2, "write /etc/nginx/sites-available/homelab.conf", "", 2*time.Second)
	failed.Err = errors.New("rename /etc/nginx/sites-available/.homelab.conf.tmp: permission denied")
	m, _ = send(t, m, tea.WindowSizeMsg{Width: width, Height: 24},
		ev(plan.Applied, 1, 2, "nginx site", "write /etc/nginx/sites-available/homelab.conf (42 lines changed)", 1500*time.Millisecond),
		failed, DoneMsg{Err: failed.Err})
	v := m.View()
	for _, l := range strings.Split(v, "\n") {
		if w := ansi.StringWidth(l); w > width {
			t.Errorf("line is %d wide, terminal is %d: %q", w, width, l)
		}
	}
	if !strings.Contains(v, "…") {
		t.Errorf("nothing was truncated with an ellipsis:\n%s", v)
	}
	if !strings.Contains(v, "● nginx site: write /etc/nginx/s… 1.5s") {
		t.Errorf("the elapsed time was cut instead of the summary:\n%s", v)
	}
}

func TestModelColour(t *testing.T) {
	events := []tea.Msg{
		ev(plan.UpToDate, 1, 3, "a", "ok", 0), ev(plan.Applied, 2, 3, "b", "did", 0),
		ev(plan.WouldChange, 3, 3, "c", "would", 0), DoneMsg{},
	}
	plain, _ := send(t, NewPlanModel("t", asciiRenderer(), nil), events...)
	if v := plain.View(); strings.Contains(v, "\x1b") {
		t.Errorf("no-colour view has escape sequences: %q", v)
	}
	colour, _ := send(t, NewPlanModel("t", colorRenderer(), nil), events...)
	v := colour.View()
	for _, want := range []string{"\x1b[32m●", "\x1b[33m~", "\x1b[2m✓"} {
		if !strings.Contains(v, want) {
			t.Errorf("colour view lacks %q: %q", want, v)
		}
	}
	if ansi.Strip(v) != plain.View() {
		t.Errorf("colour and plain views differ in text:\n%s\n%s", ansi.Strip(v), plain.View())
	}
}

func TestFormatElapsed(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                        "0ms",
		999 * time.Millisecond:   "999ms",
		time.Second:              "1.0s",
		59940 * time.Millisecond: "59.9s",
		61 * time.Second:         "1m01s",
		10*time.Minute + 5*time.Second + 600*time.Millisecond: "10m06s",
	} {
		if got := formatElapsed(d); got != want {
			t.Errorf("formatElapsed(%s) = %q, want %q", d, got, want)
		}
	}
}
