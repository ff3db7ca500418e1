package plan

import (
	"fmt"
	"io"
	"strings"
)

// TextReport prints a plan's events as plain lines, one per finished step,
// with diffs indented below. It is the non-interactive counterpart of the TUI.
type TextReport struct {
	W         io.Writer
	ShowDiffs bool
}

// Event handles one runner event; use it as Runner.OnEvent.
func (t TextReport) Event(e Event) {
	if e.Kind == Progress {
		fmt.Fprintf(t.W, "      %s\n", firstLine(e.Status.Summary))
		return
	}
	mark := map[EventKind]string{UpToDate: "ok", WouldChange: "~", Applied: "+", Failed: "x"}[e.Kind]
	if mark == "" {
		return // checking/applying: interesting only to a live display
	}
	line := e.Status.Summary
	if e.Kind == Failed {
		line = e.Err.Error()
	}
	fmt.Fprintf(t.W, "%2s [%d/%d] %s: %s\n", mark, e.Index, e.Total, e.Step, firstLine(line))
	if t.ShowDiffs && e.Kind == WouldChange && e.Status.Diff != "" {
		for _, l := range strings.Split(strings.TrimRight(e.Status.Diff, "\n"), "\n") {
			fmt.Fprintf(t.W, "      %s\n", l)
		}
	}
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
