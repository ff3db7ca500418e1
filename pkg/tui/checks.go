package tui

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

// CheckRow is one check of doctor's table, in report order.
type CheckRow struct{ ID, Group, Name string }

// CheckStartedMsg says a check began to run.
type CheckStartedMsg struct{ ID string }

// CheckResultMsg is a check's verdict ("ok", "warn", "fail", "skipped"),
// its one-line finding and, for warn and fail, the fix.
type CheckResultMsg struct{ ID, Status, Message, Fix string }

// ChecksDoneMsg says every check has finished: the model quits.
type ChecksDoneMsg struct{}

type checkState struct {
	running bool
	result  *CheckResultMsg
}

// ChecksModel is doctor's live table: a row per check that fills as
// checks finish, a spinner on each running one, the finding cut to the
// terminal's width and the fix on its own line below, wrapped.
type ChecksModel struct {
	rows    []CheckRow
	state   map[string]*checkState
	spinner spinner.Model
	styles  map[string]lipgloss.Style
	dim     lipgloss.Style
	width   int
	done    bool
}

// defaultWidth is used until the terminal says its size.
const defaultWidth = 80

// NewChecksModel returns the table of rows, its colours through r (nil: no
// colour).
func NewChecksModel(rows []CheckRow, r *lipgloss.Renderer) ChecksModel {
	if r == nil {
		r = lipgloss.NewRenderer(io.Discard)
		r.SetColorProfile(termenv.Ascii)
	}
	state := make(map[string]*checkState, len(rows))
	for _, row := range rows {
		state[row.ID] = &checkState{}
	}
	return ChecksModel{
		rows: rows, state: state, width: defaultWidth,
		spinner: spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(r.NewStyle().Foreground(lipgloss.Color("6")))),
		styles: map[string]lipgloss.Style{
			"ok": r.NewStyle().Foreground(lipgloss.Color("2")), "warn": r.NewStyle().Foreground(lipgloss.Color("3")),
			"fail": r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true), "skipped": r.NewStyle().Faint(true),
		},
		dim: r.NewStyle().Faint(true),
	}
}

// Init starts the spinner.
func (m ChecksModel) Init() tea.Cmd { return m.spinner.Tick }

// Update takes the check messages, window sizes, Ctrl-C and spinner ticks.
func (m ChecksModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case CheckStartedMsg:
		if s, ok := m.state[msg.ID]; ok {
			s.running = true
		}
	case CheckResultMsg:
		if s, ok := m.state[msg.ID]; ok {
			s.running, s.result = false, &msg
		}
	case ChecksDoneMsg:
		m.done = true
		return m, tea.Quit
	case tea.WindowSizeMsg:
		if msg.Width > 0 {
			m.width = msg.Width
		}
	case tea.KeyMsg:
		if msg.Type == tea.KeyCtrlC {
			return m, tea.Interrupt
		}
	case spinner.TickMsg:
		return m, spin(&m.spinner, m.done, msg)
	}
	return m, nil
}

// View draws the table while checks run; once they are done it is empty,
// and the caller prints Table, whole, where the terminal keeps it.
func (m ChecksModel) View() string {
	if m.done {
		return ""
	}
	return m.Table()
}

// statusWidth fits the longest status, "skipped".
const statusWidth = len("skipped")

// Table is the table as it stands, fitted to the width.
func (m ChecksModel) Table() string {
	gw, nw := len("GROUP"), len("CHECK")
	for _, r := range m.rows {
		gw, nw = max(gw, ansi.StringWidth(r.Group)), max(nw, ansi.StringWidth(r.Name))
	}
	prefix := gw + 2 + nw + 2 + statusWidth + 2
	findingWidth := max(m.width-prefix, 10)
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s  %-*s  %-*s  %s\n", gw, "GROUP", nw, "CHECK", statusWidth, "STATUS", "FINDING")
	counts := map[string]int{}
	finished := 0
	for _, r := range m.rows {
		s := m.state[r.ID]
		var status, finding string
		switch {
		case s.result != nil:
			finished++
			counts[s.result.Status]++
			status = m.styles[s.result.Status].Render(fmt.Sprintf("%-*s", statusWidth, s.result.Status))
			finding = ansi.Truncate(s.result.Message, findingWidth, "…")
		case s.running:
			status = m.spinner.View() + strings.Repeat(" ", statusWidth-1)
			finding = m.dim.Render("checking")
		default:
			status = m.dim.Render(fmt.Sprintf("%-*s", statusWidth, "·"))
		}
		line := fmt.Sprintf("%-*s  %-*s  %s  %s", gw, r.Group, nw, r.Name, status, finding)
		b.WriteString(strings.TrimRight(line, " ") + "\n")
		if s.result != nil && s.result.Fix != "" {
			b.WriteString(fixLines(s.result.Fix, m.width))
		}
	}
	fmt.Fprintf(&b, "\n%d ok, %d warn, %d fail, %d skipped", counts["ok"], counts["warn"], counts["fail"], counts["skipped"])
	if finished < len(m.rows) {
		fmt.Fprintf(&b, " (%d of %d checks done)", finished, len(m.rows))
	}
	return b.String() + "\n"
}

// fixLines is a fix on lines of its own under its finding, indented and
// wrapped to width at spaces only: a command must be readable whole, never
// cut, and never broken inside an option like --since (ansi's word wrap
// breaks at hyphens).
func fixLines(fix string, width int) string {
	const indent = "    fix: "
	limit := max(width-len(indent), 20)
	var lines []string
	line := ""
	// Split at single spaces: runs of spaces come back as empty words, so a
	// quoted argument keeps its spacing.
	for i, word := range strings.Split(strings.TrimSpace(fix), " ") {
		switch {
		case i == 0:
			line = word
		case ansi.StringWidth(line)+1+ansi.StringWidth(word) <= limit:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	lines = append(lines, line)
	var b strings.Builder
	for i, l := range lines {
		if i == 0 {
			b.WriteString(indent)
		} else {
			b.WriteString(strings.Repeat(" ", len(indent)))
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// RunChecks shows rows live on out while run runs the checks, and prints
// the finished table when they are done (the whole of it, even when it is
// taller than the terminal). run gets a context that Ctrl-C cancels and the
// callbacks to report checks starting and ending.
func RunChecks(ctx context.Context, in io.Reader, out io.Writer, rows []CheckRow,
	run func(ctx context.Context, started func(id string), result func(CheckResultMsg)) error, opts ...Option) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := tea.NewProgram(NewChecksModel(rows, renderer(out, opts)), tea.WithInput(in), tea.WithOutput(out), tea.WithContext(ctx))
	runErr := make(chan error, 1)
	go func() {
		err := run(ctx, func(id string) { p.Send(CheckStartedMsg{ID: id}) }, func(res CheckResultMsg) { p.Send(res) })
		runErr <- err
		p.Send(ChecksDoneMsg{})
	}()
	final, teaErr := p.Run()
	if teaErr != nil {
		cancel() // Ctrl-C or a broken terminal: stop the checks
	}
	err := <-runErr
	if m, ok := final.(ChecksModel); ok && teaErr == nil {
		m.done = false // Table, not the empty view of a finished program
		if _, werr := io.WriteString(out, m.Table()); werr != nil && err == nil {
			err = werr
		}
	}
	if err == nil && teaErr != nil {
		if ctx.Err() != nil || teaErr == tea.ErrInterrupted {
			return context.Canceled
		}
		return fmt.Errorf("terminal display: %w", teaErr)
	}
	return err
}
