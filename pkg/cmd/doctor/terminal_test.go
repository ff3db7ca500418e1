package doctor

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/iostreams"
)

// doctor does not look at its streams itself: whether it may redraw the
// terminal is the factory's answer, --no-tui included.
func TestTerminalIsTheFactorysAnswer(t *testing.T) {
	for _, tc := range []struct {
		tty, noTUI, want bool
	}{{true, false, true}, {true, true, false}, {false, false, false}} {
		ios, _, _, _ := iostreams.Test()
		ios.SetTTY(tc.tty)
		f := cmdutil.New(ios, "test")
		f.NoTUI = tc.noTUI
		ran := false
		cmd := NewCmdDoctor(f, func(_ context.Context, opts *Options) error {
			ran = true
			if opts.Terminal != tc.want {
				t.Errorf("tty=%v --no-tui=%v: Terminal = %v, want %v", tc.tty, tc.noTUI, opts.Terminal, tc.want)
			}
			return nil
		})
		cmd.SetArgs([]string{})
		if err := cmd.ExecuteContext(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !ran {
			t.Fatal("doctor did not run")
		}
	}
}

// On a terminal the table fills live and the finished table stays: the
// same verdicts, counts and exit code as the plain table, each fix on a
// line of its own.
func TestLiveTableOnATerminal(t *testing.T) {
	plainCode, plain, _ := problems(t).run(t, context.Background())
	s := problems(t)
	s.tty = true
	code, out, stderr := s.run(t, context.Background())
	if code != plainCode || code != cmdutil.ExitProblems {
		t.Fatalf("exit %d on a terminal, %d plain, want %d: %s", code, plainCode, cmdutil.ExitProblems, stderr)
	}
	final := ansi.Strip(out[strings.LastIndex(out, "GROUP"):])
	summary := func(s string) string {
		return regexp.MustCompile(`\d+ ok, \d+ warn, \d+ fail, \d+ skipped`).FindString(s)
	}
	if summary(final) == "" || summary(final) != summary(plain) {
		t.Errorf("live summary %q, plain %q", summary(final), summary(plain))
	}
	if !regexp.MustCompile(`(?m)^nginx +Grafana prefix kept +fail +location /grafana/ has`).MatchString(final) ||
		!regexp.MustCompile(`(?m)^    fix: `).MatchString(final) {
		t.Errorf("the finished table lacks the failed row or its fix line:\n%s", final)
	}
	for _, line := range strings.Split(final, "\n") {
		if w := ansi.StringWidth(line); w > 80 {
			t.Errorf("a line of %d columns (the terminal is taken as 80 wide): %q", w, line)
		}
	}
}
