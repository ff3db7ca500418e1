package init

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/grafana"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/wizard"
)

// wizardFile is where the first-run wizard writes its answers: the file
// every command reads when no --config is given.
const wizardFile = "homelab.yaml"

// Wizard asks for a first configuration, writes it, and says where.
type Wizard func(ctx context.Context, base *config.Config) (wizard.Result, error)

// firstRun starts the wizard when init runs on a terminal with no
// configuration at all (no --config, no ./homelab.yaml, nothing applied on
// the machine), then loads the file it wrote as if --config had named it.
// done is set when init has nothing more to do (the user saved only, or left
// the wizard).
func firstRun(ctx context.Context, opts *Options, loaded *config.Loaded) (_ *config.Loaded, done bool, _ error) {
	if opts.Wizard == nil || loaded.Source != "" {
		return loaded, false, nil
	}
	w := opts.IO.ErrOut
	res, err := opts.Wizard(ctx, loaded.Config)
	switch {
	case errors.Is(err, wizard.ErrCancelled):
		fmt.Fprintln(w, "Left the first-run wizard: nothing was written and nothing changed.")
		return nil, true, &cmdutil.ExitCodeError{Code: cmdutil.ExitInterrupted}
	case err != nil:
		return nil, true, err
	}
	mode := ""
	if res.Secret {
		mode = " (mode 0600: it holds a secret)"
	}
	fmt.Fprintf(w, "Wrote %s%s.\n", res.Path, mode)
	if !res.Continue {
		fmt.Fprintf(w, "Run homelab init when you are ready: it reads ./%s.\n", res.Path)
		return nil, true, nil
	}
	fmt.Fprintf(w, "Going on as homelab init --config %s; next time, plain homelab init reads it.\n", res.Path)
	opts.ConfigPath(res.Path)
	loaded, err = opts.Config()
	return loaded, false, err
}

// runPlan runs p as cmdutil.RunPlan does, holding the notices while the
// live display owns the terminal.
func runPlan(ctx context.Context, opts *Options, p plan.Plan) (plan.Result, error) {
	release := func() {}
	if opts.UseTUI && opts.notices != nil {
		release = opts.notices.hold()
	}
	res, err := cmdutil.RunPlan(ctx, opts.IO, opts.UseTUI, "homelab init", opts.DryRun, p)
	// The display has ended: what it held is printed now, even when the
	// run failed after making the password, which is shown only this once.
	release()
	return res, err
}

// heldNotices keeps what must be read, the one-time Grafana password, while
// the live display owns the terminal (it would be drawn over), and prints
// it once the display has ended.
type heldNotices struct {
	mu      sync.Mutex
	w       io.Writer
	holding bool
	held    []string
}

// hold starts keeping notices; the returned func prints them, once.
func (h *heldNotices) hold() (release func()) {
	h.mu.Lock()
	h.holding = true
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.holding = false
		io.WriteString(h.w, strings.Join(h.held, ""))
		h.held = nil
	}
}

func (h *heldNotices) print(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.holding {
		h.held = append(h.held, s)
		return
	}
	io.WriteString(h.w, s)
}

// showPasswordOnce shows a newly generated password on the terminal only:
// a redirected stderr may be a log file, where a password must never go.
// It goes through notices, so that a live display does not draw over it.
func showPasswordOnce(ios *iostreams.IOStreams, notices *heldNotices) grafana.ShowPassword {
	return func(ref, password string) {
		if ios.StderrIsTerminal() {
			notices.print(fmt.Sprintf("\nGrafana admin password (shown once, kept in Secret %s): %s\n\n", ref, password))
			return
		}
		notices.print(fmt.Sprintf("Generated the Grafana admin password into Secret %s (not printed: stderr is not a terminal).\n", ref))
	}
}
