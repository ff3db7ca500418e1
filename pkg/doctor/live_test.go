package doctor

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// A live display hears of every check as it starts (unless it is skipped)
// and as it ends, with the result the report will hold, while the others
// still run.
func TestRunnerTellsAsChecksStartAndEnd(t *testing.T) {
	release := make(chan struct{})
	checks := []Check{
		check("tls.slow", GroupTLS, func(ctx context.Context) Finding {
			select {
			case <-release:
				return OK("slow")
			case <-ctx.Done():
				return Fail("x", "cancelled")
			}
		}),
		check("host.fast", GroupHost, after(0, Fail("fix", "broken"))),
		check("host.skipped", GroupHost, after(0, OK("never")), "host.fast"),
	}
	var mu sync.Mutex
	var events []string
	fastDone := make(chan struct{})
	r := Runner{Timeout: 5 * time.Second,
		OnStart: func(id string) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, "start "+id)
		},
		OnResult: func(res Result) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, "result "+res.ID+" "+string(res.Status))
			if res.ID == "host.fast" {
				close(fastDone)
			}
		}}
	done := make(chan Report)
	go func() {
		rep, err := r.Run(context.Background(), checks)
		if err != nil {
			t.Error(err)
		}
		done <- rep
	}()
	select {
	case <-fastDone: // told while tls.slow still runs
	case <-time.After(5 * time.Second):
		t.Fatal("no result for host.fast within 5s while another check was running")
	}
	close(release)
	rep := <-done
	slices.Sort(events)
	want := "result host.fast fail,result host.skipped skipped,result tls.slow ok,start host.fast,start tls.slow"
	if got := strings.Join(events, ","); got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
	var ids []string
	for _, c := range InReportOrder(checks) {
		ids = append(ids, c.ID)
	}
	var reported []string
	for _, res := range rep.Results {
		reported = append(reported, res.ID)
	}
	if !slices.Equal(ids, reported) {
		t.Errorf("InReportOrder %v, report %v", ids, reported)
	}
}
