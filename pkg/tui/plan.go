// Package tui is homelab's live terminal display. Its models do no I/O: they
// receive plan events as messages and render them; Run drives a model on a
// terminal while a plan runs in the background.
package tui

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/homelab-dev/homelab/pkg/plan"
)

// DoneMsg tells a PlanModel that the plan has returned; the model then shows
// its footer and quits.
type DoneMsg struct{ Err error }

// styles are bound to one lipgloss renderer, hence to one output.
type styles struct {
	plain, title, dim, changed, would, failed lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	return styles{
		plain:   r.NewStyle(),
		title:   r.NewStyle().Bold(true),
		dim:     r.NewStyle().Faint(true),
		changed: r.NewStyle().Foreground(lipgloss.Color("2")),
		would:   r.NewStyle().Foreground(lipgloss.Color("3")),
		failed:  r.NewStyle().Foreground(lipgloss.Color("1")),
	}
}

// step is what the model knows of one step: its latest event.
type step struct {
	reached bool
	ev      plan.Event
}

// PlanModel shows a plan's progress: one line per step reached, a spinner on
// the running one, a mark, summary and elapsed time on finished ones, and a
// footer with counts when the plan is done.
type PlanModel struct {
	title     string
	styles    styles
	spinner   spinner.Model
	interrupt func()

	width int
	total int
	steps []step
	order []int // indexes of steps in the order they were reached

	interrupted bool
	done        bool
	err         error
}

// NewPlanModel returns a model titled title (e.g. "homelab init") whose colours
// go through r, a renderer bound to the output the model is drawn on (nil:
// no colour). interrupt is called, as a command, on the first Ctrl-C; it
// should cancel the plan's context. With a nil interrupt, Ctrl-C quits.
func NewPlanModel(title string, r *lipgloss.Renderer, interrupt func()) PlanModel {
	if r == nil {
		r = lipgloss.NewRenderer(io.Discard)
		r.SetColorProfile(termenv.Ascii)
	}
	st := newStyles(r)
	return PlanModel{
		title:     title,
		styles:    st,
		spinner:   spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(r.NewStyle().Foreground(lipgloss.Color("6")))),
		interrupt: interrupt,
	}
}

// Init starts the spinner.
func (m PlanModel) Init() tea.Cmd { return m.spinner.Tick }

// Update takes plan.Event, DoneMsg, window sizes, keys and spinner ticks.
func (m PlanModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case plan.Event:
		if msg.Kind == plan.Progress {
			msg.Kind = plan.Applying // a running step's news: its state line
		}
		m.event(msg)
		return m, nil
	case DoneMsg:
		m.done, m.err = true, msg.Err
		return m, tea.Quit
	case tea.WindowSizeMsg:
		m.width = msg.Width
		return m, nil
	case tea.KeyMsg:
		if msg.Type != tea.KeyCtrlC {
			return m, nil
		}
		if m.interrupt == nil {
			m.interrupted, m.done = true, true
			return m, tea.Quit
		}
		if m.interrupted {
			return m, nil // already stopping: the plan ends after its current step
		}
		m.interrupted = true
		interrupt := m.interrupt
		return m, func() tea.Msg { interrupt(); return nil }
	case spinner.TickMsg:
		return m, spin(&m.spinner, m.done, msg)
	}
	return m, nil
}

// spin advances a spinner on its tick; once the display is done it asks
// for no further tick, so the program can end.
func spin(s *spinner.Model, done bool, msg spinner.TickMsg) tea.Cmd {
	if done {
		return nil
	}
	var cmd tea.Cmd
	*s, cmd = s.Update(msg)
	return cmd
}

func (m *PlanModel) event(e plan.Event) {
	if e.Index < 1 {
		return
	}
	if e.Total > m.total {
		m.total = e.Total
	}
	for len(m.steps) < e.Index {
		m.steps = append(m.steps, step{})
	}
	s := &m.steps[e.Index-1]
	if !s.reached {
		s.reached = true
		m.order = append(m.order, e.Index-1)
	}
	s.ev = e
}

// Interrupted reports whether the user pressed Ctrl-C.
func (m PlanModel) Interrupted() bool { return m.interrupted }

// View renders the title, the steps reached so far and a footer.
func (m PlanModel) View() string {
	var b strings.Builder
	b.WriteString(m.line(m.styles.title.Render(m.title), m.title) + "\n\n")
	for _, i := range m.order {
		m.writeStep(&b, m.steps[i].ev)
	}
	if len(m.order) > 0 {
		b.WriteString("\n")
	}
	b.WriteString(m.footer() + "\n")
	return b.String()
}

func (m PlanModel) writeStep(b *strings.Builder, e plan.Event) {
	st := m.styles
	elapsed := " " + formatElapsed(e.Elapsed)
	switch e.Kind {
	case plan.Checking, plan.Applying:
		if m.done {
			b.WriteString(m.row(st.dim, st.dim.Render("-"), e.Step, "not finished", "") + "\n")
			return
		}
		what := "checking…"
		if e.Kind == plan.Applying {
			what = "applying…"
			if e.Status.Summary != "" {
				what = firstLine(e.Status.Summary) + "…"
			}
		}
		b.WriteString(m.row(st.plain, m.spinner.View(), e.Step, what, "") + "\n")
	case plan.UpToDate:
		b.WriteString(m.row(st.dim, st.dim.Render("✓"), e.Step, e.Status.Summary, elapsed) + "\n")
	case plan.Applied:
		b.WriteString(m.row(st.plain, st.changed.Render("●"), e.Step, e.Status.Summary, elapsed) + "\n")
	case plan.WouldChange:
		b.WriteString(m.row(st.plain, st.would.Render("~"), e.Step, e.Status.Summary, elapsed) + "\n")
	case plan.Failed:
		b.WriteString(m.row(st.plain, st.failed.Render("✗"), e.Step, "", elapsed) + "\n")
		if e.Err != nil {
			msg := m.truncate(firstLine(e.Err.Error()), m.width-4)
			b.WriteString("    " + st.failed.Render(msg) + "\n")
		}
	}
}

// row is "  <mark> <name>: <summary> <elapsed>", the name and summary cut to
// the terminal's width. text styles the name and summary.
func (m PlanModel) row(text lipgloss.Style, mark, name, summary, elapsed string) string {
	body := name
	if s := firstLine(summary); s != "" {
		body += ": " + s
	}
	fixed := 2 + 1 + 1 + ansi.StringWidth(elapsed) // indent, mark, space, elapsed
	if m.width > 0 {
		body = m.truncate(body, m.width-fixed)
	}
	line := "  " + mark + " " + text.Render(body)
	if elapsed != "" {
		line += m.styles.dim.Render(elapsed)
	}
	return line
}

// line cuts a styled line whose plain text is plain to the terminal's width.
func (m PlanModel) line(styled, plain string) string {
	if m.width > 0 && ansi.StringWidth(plain) > m.width {
		return ansi.Truncate(styled, m.width, "…")
	}
	return styled
}

func (m PlanModel) truncate(s string, width int) string {
	if m.width <= 0 {
		return s
	}
	if width < 1 {
		width = 1
	}
	return ansi.Truncate(s, width, "…")
}

func (m PlanModel) footer() string {
	var changed, upToDate, would, failed, finished int
	for _, i := range m.order {
		switch m.steps[i].ev.Kind {
		case plan.Applied:
			changed++
		case plan.UpToDate:
			upToDate++
		case plan.WouldChange:
			would++
		case plan.Failed:
			failed++
		default:
			continue
		}
		finished++
	}
	if !m.done {
		text := fmt.Sprintf("%d/%d", finished, m.total)
		if m.interrupted {
			text += " · stopping after the current step…"
		} else {
			text += " · ctrl+c to stop"
		}
		return m.line(m.styles.dim.Render(text), text)
	}
	var parts []string
	add := func(n int, what string, style lipgloss.Style) {
		if n > 0 {
			parts = append(parts, style.Render(fmt.Sprintf("%d %s", n, what)))
		}
	}
	add(changed, "changed", m.styles.changed)
	add(would, "would change", m.styles.would)
	add(upToDate, "up to date", m.styles.plain)
	add(failed, "failed", m.styles.failed)
	text := strings.Join(parts, ", ")
	if text == "" {
		text = "no steps run"
	}
	if m.total > finished {
		text += fmt.Sprintf(", %d not run", m.total-finished)
	}
	if m.interrupted && (m.err != nil || m.interrupt == nil) {
		text = m.styles.failed.Render("interrupted") + ": " + text
	}
	return m.line(text, ansi.Strip(text))
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return strings.TrimRight(first, "\r")
}

// formatElapsed is short: 12ms, 3.4s, 2m05s.
func formatElapsed(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	default:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
}
