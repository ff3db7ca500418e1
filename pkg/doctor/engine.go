// Package doctor finds what is wrong with a homelab server and says how to fix
// it. A Check looks at one thing and returns a Finding; Run runs a set of
// checks concurrently, each with its own timeout and after its prerequisites,
// and returns a Report in a fixed order whatever order they finished in.
package doctor

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Status is a check's verdict.
type Status string

const (
	StatusOK      Status = "ok"
	StatusWarn    Status = "warn"
	StatusFail    Status = "fail"
	StatusSkipped Status = "skipped"
)

// Groups, in report order.
const (
	GroupHost       = "host"
	GroupK3s        = "k3s"
	GroupMonitoring = "monitoring"
	GroupApp        = "app"
	GroupGrafana    = "grafana"
	GroupNginx      = "nginx"
	GroupTLS        = "tls"
)

var groupRank = map[string]int{
	GroupHost: 0, GroupK3s: 1, GroupMonitoring: 2, GroupApp: 3, GroupGrafana: 4, GroupNginx: 5, GroupTLS: 6,
}

// Finding is what a check found: a one-line Message and, for warn and fail,
// the exact command or configuration change that fixes it.
type Finding struct {
	Status  Status
	Message string
	Fix     string
}

// OK, Warn, Fail and Skip build findings.
func OK(format string, args ...any) Finding {
	return Finding{Status: StatusOK, Message: fmt.Sprintf(format, args...)}
}

func Warn(fix, format string, args ...any) Finding {
	return Finding{Status: StatusWarn, Message: fmt.Sprintf(format, args...), Fix: fix}
}

func Fail(fix, format string, args ...any) Finding {
	return Finding{Status: StatusFail, Message: fmt.Sprintf(format, args...), Fix: fix}
}

func Skip(format string, args ...any) Finding {
	return Finding{Status: StatusSkipped, Message: fmt.Sprintf(format, args...)}
}

// Check is one thing doctor looks at.
type Check struct {
	// ID is unique and stable (it is part of the JSON output): "group.name".
	ID    string
	Group string
	// Name is the short human label shown in the table.
	Name string
	// Needs are IDs of checks that must not have failed (or been skipped)
	// for this one to run; otherwise it is skipped, naming the first.
	Needs []string
	// Timeout overrides the runner's per-check timeout when set.
	Timeout time.Duration
	// TimeoutFix is the fix shown when the check runs out of time.
	TimeoutFix string
	// Run looks and reports. It must return when ctx is done; the runner
	// does not wait for it beyond the timeout anyway.
	Run func(ctx context.Context) Finding
}

// Result is a check with its finding.
type Result struct {
	ID, Group, Name string
	Finding
	Duration time.Duration
}

// Report is every result in report order: by group, then in the order the
// checks were given.
type Report struct {
	Results []Result
}

// Summary counts results by status.
type Summary struct {
	OK      int `json:"ok"`
	Warn    int `json:"warn"`
	Fail    int `json:"fail"`
	Skipped int `json:"skipped"`
}

// Summary counts the report's results by status.
func (r Report) Summary() Summary {
	var s Summary
	for _, res := range r.Results {
		switch res.Status {
		case StatusOK:
			s.OK++
		case StatusWarn:
			s.Warn++
		case StatusFail:
			s.Fail++
		default:
			s.Skipped++
		}
	}
	return s
}

// Failed reports whether any check failed.
func (r Report) Failed() bool { return r.Summary().Fail > 0 }

// Runner runs checks.
type Runner struct {
	// Timeout is the per-check timeout for checks without their own (2s when zero).
	Timeout time.Duration
	// Now measures durations; time.Now when nil. Tests fix it for golden output.
	Now func() time.Time
	// OnStart, when set, is called as a check starts to run, and OnResult as
	// its result is known (a skipped check gets only OnResult): a live
	// display fills its table as checks finish. They are called from the
	// checks' goroutines, at the same time.
	OnStart  func(id string)
	OnResult func(Result)
}

// DefaultTimeout is the per-check timeout when none is set.
const DefaultTimeout = 2 * time.Second

// Validate checks that IDs are unique, groups known, prerequisites exist and
// form no cycle. Run calls it; a failure means doctor itself is broken.
func Validate(checks []Check) error {
	byID := make(map[string]*Check, len(checks))
	for i := range checks {
		c := &checks[i]
		switch {
		case c.ID == "" || c.Run == nil:
			return fmt.Errorf("doctor: check %d (%q) has no ID or no Run", i, c.ID)
		case byID[c.ID] != nil:
			return fmt.Errorf("doctor: two checks have ID %q", c.ID)
		}
		if _, ok := groupRank[c.Group]; !ok {
			return fmt.Errorf("doctor: check %s has unknown group %q", c.ID, c.Group)
		}
		byID[c.ID] = c
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var visit func(id string) error
	visit = func(id string) error {
		switch state[id] {
		case visiting:
			return fmt.Errorf("doctor: prerequisites of check %s form a cycle", id)
		case done:
			return nil
		}
		state[id] = visiting
		for _, n := range byID[id].Needs {
			if byID[n] == nil {
				return fmt.Errorf("doctor: check %s needs unknown check %q", id, n)
			}
			if err := visit(n); err != nil {
				return err
			}
		}
		state[id] = done
		return nil
	}
	for _, c := range checks {
		if err := visit(c.ID); err != nil {
			return err
		}
	}
	return nil
}

// Run runs every check concurrently. A check starts as soon as its
// prerequisites have finished; it is skipped when one of them failed or was
// skipped, and fails with "no answer within T" when it runs out of time. The
// error is non-nil only when the checks themselves are inconsistent.
func (r Runner) Run(ctx context.Context, checks []Check) (Report, error) {
	if err := Validate(checks); err != nil {
		return Report{}, err
	}
	now := r.Now
	if now == nil {
		now = time.Now
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	index := make(map[string]int, len(checks))
	for i, c := range checks {
		index[c.ID] = i
	}
	results := make([]Result, len(checks))
	done := make([]chan struct{}, len(checks))
	for i := range done {
		done[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			res := Result{ID: c.ID, Group: c.Group, Name: c.Name}
			for _, n := range c.Needs {
				j := index[n]
				<-done[j] // closed after results[j] is written
				if st := results[j].Status; st == StatusFail || st == StatusSkipped {
					verb := "failed"
					if st == StatusSkipped {
						verb = "was skipped"
					}
					res.Finding = Skip("needs %s, which %s", n, verb)
					results[i] = res
					r.result(res)
					return
				}
			}
			t := timeout
			if c.Timeout > 0 {
				t = c.Timeout
			}
			if r.OnStart != nil {
				r.OnStart(c.ID)
			}
			start := now()
			res.Finding = runOne(ctx, c, t)
			res.Duration = now().Sub(start)
			results[i] = res
			r.result(res)
		}()
	}
	wg.Wait()
	sortForReport(results, func(r Result) string { return r.Group })
	return Report{Results: results}, nil
}

func (r Runner) result(res Result) {
	if r.OnResult != nil {
		r.OnResult(res)
	}
}

// InReportOrder returns the checks in the order their results are
// reported: by group, then as given.
func InReportOrder(checks []Check) []Check {
	sorted := append([]Check(nil), checks...)
	sortForReport(sorted, func(c Check) string { return c.Group })
	return sorted
}

func sortForReport[T any](s []T, group func(T) string) {
	sort.SliceStable(s, func(a, b int) bool { return groupRank[group(s[a])] < groupRank[group(s[b])] })
}

// runOne runs a check under its timeout, never waiting for it longer, and
// turns a panic into a failure.
func runOne(parent context.Context, c Check, timeout time.Duration) Finding {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	ch := make(chan Finding, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- Fail("this is a bug in homelab: please report it with the output of homelab doctor -o json",
					"check crashed: %v", p)
			}
		}()
		ch <- c.Run(ctx)
	}()
	timedOut := func() Finding {
		if parent.Err() != nil {
			return Skip("interrupted")
		}
		fix := c.TimeoutFix
		if fix == "" {
			fix = "rerun with a longer per-check timeout: homelab doctor --timeout 10s"
		}
		return Fail(fix, "no answer within %s", timeout)
	}
	select {
	case f := <-ch:
		// A check that gave up because its context ended reports that, not its
		// own error about a cancelled request.
		if ctx.Err() != nil && f.Status != StatusOK {
			return timedOut()
		}
		return normalize(f)
	case <-ctx.Done():
		return timedOut()
	}
}

// normalize keeps findings one line long and every warn or fail fixable.
func normalize(f Finding) Finding {
	f.Message = oneLine(f.Message)
	if (f.Status == StatusWarn || f.Status == StatusFail) && f.Fix == "" {
		f.Fix = "see the finding"
	}
	switch f.Status {
	case StatusOK, StatusWarn, StatusFail, StatusSkipped:
	default:
		f = Fail("this is a bug in homelab: please report it", "check returned unknown status %q: %s", f.Status, f.Message)
	}
	return f
}
