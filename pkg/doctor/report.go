package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// SchemaVersion is the version of the JSON report. It changes only when a
// field is removed or changes meaning; new fields may be added within a version.
const SchemaVersion = 1

// JSONReport is the stable `homelab doctor -o json` document:
//
//	{
//	  "version": 1,
//	  "checks": [
//	    {"id": "grafana.nginx", "group": "grafana", "name": "through Nginx",
//	     "status": "fail", "message": "...", "fix": "...", "durationMs": 12}
//	  ],
//	  "summary": {"ok": 10, "warn": 1, "fail": 1, "skipped": 3}
//	}
//
// status is one of ok, warn, fail, skipped; fix is "" for ok and skipped and
// never "" for warn and fail; checks are in the same order as the table.
type JSONReport struct {
	Version int         `json:"version"`
	Checks  []JSONCheck `json:"checks"`
	Summary Summary     `json:"summary"`
}

// JSONCheck is one check in a JSONReport.
type JSONCheck struct {
	ID         string `json:"id"`
	Group      string `json:"group"`
	Name       string `json:"name"`
	Status     Status `json:"status"`
	Message    string `json:"message"`
	Fix        string `json:"fix"`
	DurationMs int64  `json:"durationMs"`
}

// JSON converts the report to its stable JSON form.
func (r Report) JSON() JSONReport {
	out := JSONReport{Version: SchemaVersion, Checks: make([]JSONCheck, 0, len(r.Results)), Summary: r.Summary()}
	for _, res := range r.Results {
		out.Checks = append(out.Checks, JSONCheck{
			ID: res.ID, Group: res.Group, Name: res.Name, Status: res.Status,
			Message: res.Message, Fix: res.Fix, DurationMs: res.Duration.Milliseconds(),
		})
	}
	return out
}

// WriteJSON writes the report as one indented JSON document.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // fixes hold shell commands with && and >
	return enc.Encode(r.JSON())
}

// TextOptions shape the human table.
type TextOptions struct {
	// Color adds ANSI colours to the status column (only on a terminal, and
	// never with NO_COLOR set: the caller decides).
	Color bool
}

var statusColor = map[Status]string{
	StatusOK: "\x1b[32m", StatusWarn: "\x1b[33m", StatusFail: "\x1b[31;1m", StatusSkipped: "\x1b[2m",
}

const colorReset = "\x1b[0m"

// WriteText writes the human table (group, check, status, finding, fix) and
// a summary line.
func (r Report) WriteText(w io.Writer, o TextOptions) error {
	header := []string{"GROUP", "CHECK", "STATUS", "FINDING", "FIX"}
	rows := [][]string{header}
	for _, res := range r.Results {
		rows = append(rows, []string{res.Group, res.Name, string(res.Status), res.Message, res.Fix})
	}
	width := make([]int, len(header))
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	for n, row := range rows {
		var line strings.Builder
		for i, cell := range row {
			if i > 0 {
				line.WriteString("  ")
			}
			pad := ""
			if i < len(row)-1 {
				pad = strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell))
			}
			if i == 2 && n > 0 && o.Color {
				cell = statusColor[Status(cell)] + cell + colorReset
			}
			line.WriteString(cell + pad)
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	s := r.Summary()
	fmt.Fprintf(&b, "\n%d ok, %d warn, %d fail, %d skipped\n", s.OK, s.Warn, s.Fail, s.Skipped)
	_, err := io.WriteString(w, b.String())
	return err
}

// oneLine joins a multi-line message into one line.
func oneLine(s string) string {
	fields := strings.FieldsFunc(strings.TrimSpace(s), func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	return strings.Join(fields, "; ")
}
