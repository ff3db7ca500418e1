// Package plan runs a list of idempotent steps: each says whether it has work
// to do (Check) and does it (Apply). The same Check drives --dry-run, a real
// run and the "up to date" report of a re-run.
package plan

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Status is what a Check found.
type Status struct {
	// Pending is true when Apply has work to do.
	Pending bool
	// Summary is one line: what Apply would do, or why nothing is needed.
	Summary string
	// Diff is an optional unified diff of a file change.
	Diff string
}

// Step is one idempotent unit of work. After a successful Apply, Check must
// report nothing pending.
type Step struct {
	Name  string
	Check func(ctx context.Context) (Status, error)
	// Apply does the work. A nil Apply means the step can be previewed but
	// not yet carried out by this build; a real run refuses such a plan.
	Apply func(ctx context.Context) error
}

// Need is something a plan cannot do without, checked before any step: a
// connection (the API server, containerd) or an input. The runner checks
// needs in a dry run too, so a preview fails the same way, and as early,
// as the real run would, instead of approving steps it never looked at.
type Need struct {
	Name string
	// Check returns why the need is not met; its error is the run's.
	Check func(ctx context.Context) error
}

// Plan is an ordered list of steps, and what they need.
type Plan struct {
	Name  string
	Needs []Need
	Steps []Step
}

// EventKind says what happened to a step.
type EventKind int

const (
	Checking EventKind = iota
	UpToDate
	WouldChange
	Applying
	Applied
	Failed
	// Progress is news from a running Apply (see Report): a live display
	// shows it as the step's state, plain output as an indented line.
	Progress
)

func (k EventKind) String() string {
	return [...]string{"checking", "up to date", "would change", "applying", "changed", "failed", "progress"}[k]
}

// Event reports progress, for the TUI or plain output.
type Event struct {
	Kind    EventKind
	Index   int // 1-based
	Total   int
	Step    string
	Status  Status
	Err     error
	Elapsed time.Duration
}

// Result summarises a run.
type Result struct {
	Changed  []string
	UpToDate []string
	// Pending lists the steps a dry run would change.
	Pending []string
}

// Runner runs plans.
type Runner struct {
	DryRun  bool
	OnEvent func(Event)
	// Now measures step durations; time.Now when nil.
	Now func() time.Time
}

// ErrNotConverged is returned when a step still has work after Apply.
var ErrNotConverged = errors.New("step did not converge")

// Run checks the plan's needs, then every step and, unless DryRun, applies those with work to do,
// in order. It stops at the first failure and between steps when ctx is
// cancelled, so an interrupted run leaves only whole steps done.
func (r Runner) Run(ctx context.Context, p Plan) (Result, error) {
	var res Result
	if !r.DryRun {
		if missing := unappliable(p); len(missing) > 0 {
			return res, fmt.Errorf("%s: this build can only preview (--dry-run) these steps: %s", p.Name, strings.Join(missing, ", "))
		}
	}
	for _, n := range p.Needs {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if err := n.Check(ctx); err != nil {
			return res, fmt.Errorf("%s (checked before any step; nothing was changed): %w", n.Name, err)
		}
	}
	now := r.Now
	if now == nil {
		now = time.Now
	}
	emit := func(e Event) {
		if r.OnEvent != nil {
			r.OnEvent(e)
		}
	}
	total := len(p.Steps)
	for i, s := range p.Steps {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		start := now()
		ev := Event{Index: i + 1, Total: total, Step: s.Name}
		ev.Kind = Checking
		emit(ev)
		st, err := s.Check(ctx)
		if err != nil {
			ev.Kind, ev.Err, ev.Elapsed = Failed, err, now().Sub(start)
			emit(ev)
			return res, fmt.Errorf("%s: check: %w", s.Name, err)
		}
		ev.Status = st
		if !st.Pending {
			ev.Kind, ev.Elapsed = UpToDate, now().Sub(start)
			emit(ev)
			res.UpToDate = append(res.UpToDate, s.Name)
			continue
		}
		if r.DryRun {
			ev.Kind, ev.Elapsed = WouldChange, now().Sub(start)
			emit(ev)
			res.Pending = append(res.Pending, s.Name)
			continue
		}
		ev.Kind = Applying
		emit(ev)
		report := func(msg string) {
			emit(Event{Kind: Progress, Index: ev.Index, Total: total, Step: s.Name, Status: Status{Summary: msg}, Elapsed: now().Sub(start)})
		}
		if err := s.Apply(context.WithValue(ctx, reporterKey{}, report)); err != nil {
			ev.Kind, ev.Err, ev.Elapsed = Failed, err, now().Sub(start)
			emit(ev)
			return res, fmt.Errorf("%s: %w", s.Name, err)
		}
		after, err := s.Check(ctx)
		if err == nil && after.Pending {
			err = fmt.Errorf("%w: %s", ErrNotConverged, after.Summary)
		}
		if err != nil {
			ev.Kind, ev.Err, ev.Elapsed = Failed, err, now().Sub(start)
			emit(ev)
			return res, fmt.Errorf("%s: %w", s.Name, err)
		}
		ev.Kind, ev.Elapsed = Applied, now().Sub(start)
		emit(ev)
		res.Changed = append(res.Changed, s.Name)
	}
	return res, nil
}

func unappliable(p Plan) []string {
	var names []string
	for _, s := range p.Steps {
		if s.Apply == nil {
			names = append(names, s.Name)
		}
	}
	return names
}

type reporterKey struct{}

// Report tells the plan's display what a running Apply is doing now ("1 of
// 2 new pods ready"). Outside a runner's Apply it does nothing.
func Report(ctx context.Context, msg string) {
	if report, ok := ctx.Value(reporterKey{}).(func(string)); ok {
		report(msg)
	}
}
