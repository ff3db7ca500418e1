package tui

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest"
)

var checkRows = []CheckRow{
	{ID: "host.os", Group: "host", Name: "operating system"},
	{ID: "host.disk", Group: "host", Name: "free disk"},
	{ID: "k3s.service", Group: "k3s", Name: "k3s service"},
	{ID: "nginx.config", Group: "nginx", Name: "nginx -t"},
}

// A table half done: finished rows with their findings, a running one with
// its spinner, one not started; the long finding is cut to the width and
// the fix wrapped on lines of its own.
func TestChecksTableWhileRunning(t *testing.T) {
	m := NewChecksModel(checkRows, asciiRenderer())
	next, _ := m.Update(tea.WindowSizeMsg{Width: 72, Height: 24})
	for _, msg := range []tea.Msg{
		CheckStartedMsg{ID: "host.os"},
		CheckStartedMsg{ID: "host.disk"},
		CheckStartedMsg{ID: "k3s.service"},
		CheckResultMsg{ID: "host.os", Status: "ok", Message: "Ubuntu 24.04.1 LTS"},
		CheckResultMsg{ID: "k3s.service", Status: "fail",
			Message: "k3s.service is inactive (dead) since the last boot, and its journal says the API server never started listening on 6443",
			Fix:     "sudo systemctl enable --now k3s && sudo journalctl -u k3s --since -10m | tail -50   # then run homelab doctor again"},
	} {
		next, _ = next.Update(msg)
	}
	view := next.View()
	goldenFile(t, "checks-running.txt", view)
	for _, line := range strings.Split(view, "\n") {
		if w := ansi.StringWidth(line); w > 72 {
			t.Errorf("line of %d columns on a 72-column terminal: %q", w, line)
		}
	}
	if !strings.Contains(view, "(2 of 4 checks done)") {
		t.Errorf("no progress count:\n%s", view)
	}
}

// The real program: rows fill as results arrive from another goroutine,
// and the whole finished table is printed after the display ends.
func TestRunChecksPrintsTheFinishedTable(t *testing.T) {
	out := &syncBuffer{}
	err := RunChecks(context.Background(), &bytes.Buffer{}, out, checkRows,
		func(ctx context.Context, started func(string), result func(CheckResultMsg)) error {
			for _, r := range checkRows {
				started(r.ID)
				result(CheckResultMsg{ID: r.ID, Status: "ok", Message: r.Name + " is fine"})
			}
			return nil
		}, WithColor(false))
	if err != nil {
		t.Fatal(err)
	}
	all := out.String()
	final := all[strings.LastIndex(all, "GROUP"):]
	goldenFile(t, "checks-done.txt", final)
	if strings.Contains(final, "\x1b[") {
		t.Errorf("the printed table holds escape sequences:\n%q", final)
	}
}

// Ctrl-C stops the checks (their context is cancelled) and is reported as
// an interruption.
func TestRunChecksCtrlC(t *testing.T) {
	inR, inW := io.Pipe()
	defer inW.Close()
	cancelled := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- RunChecks(context.Background(), inR, &syncBuffer{}, checkRows,
			func(ctx context.Context, started func(string), _ func(CheckResultMsg)) error {
				started("host.os")
				<-ctx.Done()
				close(cancelled)
				return nil
			})
	}()
	time.Sleep(100 * time.Millisecond) // let the program start reading keys
	if _, err := inW.Write([]byte{0x03}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("RunChecks after Ctrl-C = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Ctrl-C did not end RunChecks within 5s")
	}
	select {
	case <-cancelled:
	default:
		t.Error("the checks' context was not cancelled")
	}
}

// teatest at a fixed size: the table shows a result that arrives while the
// program runs.
func TestChecksModelInAProgram(t *testing.T) {
	tm := teatest.NewTestModel(t, NewChecksModel(checkRows, asciiRenderer()), teatest.WithInitialTermSize(80, 24))
	tm.Send(CheckStartedMsg{ID: "host.os"})
	tm.Send(CheckResultMsg{ID: "host.os", Status: "warn", Message: "Debian, not Ubuntu", Fix: "use Ubuntu 22.04 or 24.04"})
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("fix: use Ubuntu 22.04 or 24.04")) },
		teatest.WithDuration(5*time.Second))
	tm.Send(ChecksDoneMsg{})
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}
