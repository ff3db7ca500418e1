package tui

import (
	"context"
	"fmt"
	"io"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/homelab-dev/homelab/pkg/plan"
)

// Option changes how Run draws.
type Option func(*options)

type options struct {
	color *bool
}

// WithColor turns colour on or off (pass iostreams' ColorEnabled()). Without
// it, colour follows what the output is: a terminal, NO_COLOR, TERM.
func WithColor(enabled bool) Option {
	return func(o *options) { o.color = &enabled }
}

// renderer draws on out, in colour as opts say.
func renderer(out io.Writer, opts []Option) *lipgloss.Renderer {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	r := lipgloss.NewRenderer(out)
	if o.color != nil {
		switch {
		case !*o.color:
			r.SetColorProfile(termenv.Ascii)
		case r.ColorProfile() == termenv.Ascii:
			r.SetColorProfile(termenv.ANSI)
		}
	}
	return r
}

// Run shows title and the live progress of run on out, reading keys from in.
// run gets a context that Ctrl-C cancels and a callback for its plan.Runner's
// OnEvent; the display ends when run returns, and Run returns run's error
// (context.Canceled, wrapped or not, after Ctrl-C). A display that fails or
// is stopped (SIGTERM) cancels run's context and still waits for run.
func Run(ctx context.Context, in io.Reader, out io.Writer, title string,
	run func(ctx context.Context, onEvent func(plan.Event)) error, opts ...Option) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	m := NewPlanModel(title, renderer(out, opts), cancel)
	p := tea.NewProgram(m,
		tea.WithInput(in),
		tea.WithOutput(out),
		// A SIGINT (input not a terminal, or kill -INT) is Ctrl-C too: stop
		// the plan between steps instead of dropping the display.
		tea.WithFilter(func(_ tea.Model, msg tea.Msg) tea.Msg {
			if _, ok := msg.(tea.InterruptMsg); ok {
				return tea.KeyMsg{Type: tea.KeyCtrlC}
			}
			return msg
		}),
	)

	runErr := make(chan error, 1)
	go func() {
		err := run(ctx, func(e plan.Event) { p.Send(e) })
		runErr <- err             // before DoneMsg: ready when the display quits on it
		p.Send(DoneMsg{Err: err}) // a no-op once the program has ended
	}()
	_, teaErr := p.Run()
	select {
	case err := <-runErr:
		return err
	default:
	}
	// The display ended before run (SIGTERM, a broken terminal): stop run.
	cancel()
	err := <-runErr
	if teaErr != nil {
		return fmt.Errorf("terminal display: %w", teaErr)
	}
	return err
}
