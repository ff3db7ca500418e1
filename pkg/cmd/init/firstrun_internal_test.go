package init

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/wizard"
)

// firstRunOptions are init's options with a wizard that answers res, err
// and configurations that say where they were read from.
func firstRunOptions(t *testing.T, res wizard.Result, err error) (*Options, *bytes.Buffer, *int) {
	ios, _, _, stderr := iostreams.Test()
	calls := 0
	path := ""
	opts := &Options{IO: ios}
	opts.Wizard = func(context.Context, *config.Config) (wizard.Result, error) {
		calls++
		return res, err
	}
	opts.ConfigPath = func(p string) { path = p }
	opts.Config = func() (*config.Loaded, error) {
		cfg, err := config.Defaults()
		return &config.Loaded{Config: cfg, Source: path}, err
	}
	return opts, stderr, &calls
}

func defaultsLoaded(t *testing.T, source string) *config.Loaded {
	cfg, err := config.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	return &config.Loaded{Config: cfg, Source: source}
}

// A configuration from anywhere (a file, the applied one) means no wizard.
func TestFirstRunOnlyWithoutAConfiguration(t *testing.T) {
	opts, _, calls := firstRunOptions(t, wizard.Result{}, errors.New("must not run"))
	loaded := defaultsLoaded(t, "/etc/homelab/homelab.yaml")
	got, done, err := firstRun(context.Background(), opts, loaded)
	if got != loaded || done || err != nil || *calls != 0 {
		t.Errorf("with a configuration: %v %v %v, wizard called %d times", got, done, err, *calls)
	}
	opts.Wizard = nil // not a terminal
	if got, done, err := firstRun(context.Background(), opts, defaultsLoaded(t, "")); got == nil || done || err != nil {
		t.Errorf("without a terminal: %v %v %v", got, done, err)
	}
}

// After the wizard, init goes on with the file it wrote, read as --config.
func TestFirstRunGoesOnWithTheWrittenFile(t *testing.T) {
	opts, stderr, calls := firstRunOptions(t, wizard.Result{Path: "homelab.yaml", Continue: true, Secret: true}, nil)
	got, done, err := firstRun(context.Background(), opts, defaultsLoaded(t, ""))
	if err != nil || done || *calls != 1 {
		t.Fatalf("%v %v, %d calls", done, err, *calls)
	}
	if got.Source != "homelab.yaml" {
		t.Errorf("went on with %q, want the written homelab.yaml", got.Describe())
	}
	for _, want := range []string{"Wrote homelab.yaml (mode 0600: it holds a secret).", "Going on as homelab init --config homelab.yaml"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q: %s", want, stderr)
		}
	}
}

func TestFirstRunSaveOnlyStops(t *testing.T) {
	opts, stderr, _ := firstRunOptions(t, wizard.Result{Path: "homelab.yaml"}, nil)
	got, done, err := firstRun(context.Background(), opts, defaultsLoaded(t, ""))
	if got != nil || !done || err != nil {
		t.Errorf("save only: %v %v %v", got, done, err)
	}
	if !strings.Contains(stderr.String(), "Run homelab init when you are ready: it reads ./homelab.yaml.") {
		t.Errorf("stderr: %s", stderr)
	}
}

// Ctrl-C in the wizard is an interruption (exit 130) with nothing written,
// and says so; the app adds no error line of its own.
func TestFirstRunCancelled(t *testing.T) {
	opts, stderr, _ := firstRunOptions(t, wizard.Result{}, wizard.ErrCancelled)
	_, done, err := firstRun(context.Background(), opts, defaultsLoaded(t, ""))
	var code *cmdutil.ExitCodeError
	if !done || !errors.As(err, &code) || code.Err != nil || cmdutil.ExitCode(err) != cmdutil.ExitInterrupted {
		t.Errorf("cancelled: done=%v err=%v (exit %d)", done, err, cmdutil.ExitCode(err))
	}
	if !strings.Contains(stderr.String(), "nothing was written and nothing changed") {
		t.Errorf("stderr: %s", stderr)
	}
}

// The generated password, shown while the live display runs, is printed
// once and after the display's last frame, where nothing draws over it.
func TestPasswordIsShownAfterTheLiveDisplay(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	ios.SetTTY(true)
	// A file takes the display's writes from its goroutines and the
	// step's reads at the same time.
	out, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	written := func() string {
		b, err := os.ReadFile(out.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ios.ErrOut = out
	opts := &Options{IO: ios, UseTUI: true, notices: &heldNotices{w: out}}
	show := showPasswordOnce(ios, opts.notices)
	const password = "correct-horse-battery-staple-42"
	step := func(name string, apply func()) plan.Step {
		applied := false
		return plan.Step{Name: name,
			Check: func(context.Context) (plan.Status, error) {
				return plan.Status{Pending: !applied, Summary: "create it"}, nil
			},
			Apply: func(context.Context) error { apply(); applied = true; return nil }}
	}
	p := plan.Plan{Steps: []plan.Step{
		step("Grafana admin secret", func() { show("monitoring/grafana-admin", password) }),
		step("a later step", func() {
			if strings.Contains(written(), password) {
				t.Error("the password was printed while the display was running")
			}
			time.Sleep(50 * time.Millisecond) // a frame or two over where it would have been
		}),
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := runPlan(ctx, opts, p); err != nil {
		t.Fatal(err)
	}
	all := written()
	if n := strings.Count(all, password); n != 1 {
		t.Fatalf("password shown %d times, want once:\n%q", n, all)
	}
	if last := strings.LastIndex(all, "\x1b["); last > strings.Index(all, password) {
		t.Errorf("the display drew after the password (escape at %d, password at %d):\n%q", last, strings.Index(all, password), all)
	}
}

// Not holding (plain output), a notice is printed at once.
func TestNoticesWithoutADisplay(t *testing.T) {
	var b bytes.Buffer
	h := &heldNotices{w: &b}
	h.print("a\n")
	release := h.hold()
	h.print("b\n")
	if b.String() != "a\n" {
		t.Errorf("while holding: %q", b.String())
	}
	release()
	release()
	if b.String() != "a\nb\n" {
		t.Errorf("after release (twice): %q", b.String())
	}
}
