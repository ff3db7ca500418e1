package doctor

import (
	"context"
	"testing"

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
