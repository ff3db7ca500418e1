// Package wizard is init's first run on a terminal: a short form that asks
// what a real install needs (domain, HTTPS, the app, where alerts go),
// shows the homelab.yaml it makes and writes it, so that the next run is a
// plain `homelab init`.
package wizard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"

	"github.com/homelab-dev/homelab/pkg/config"
)

// Options are the wizard's inputs.
type Options struct {
	In  io.Reader
	Out io.Writer
	// Base is the configuration the answers go on: the defaults with the
	// flags the user gave, which also fill in the first answers.
	Base *config.Config
	DNS  DNS
	// Path is the file to write (./homelab.yaml); it must not exist.
	Path string
}

// Result is what the wizard wrote and what the user wants next.
type Result struct {
	Path string
	// Continue is set when the user asked init to go on with the file.
	Continue bool
	// Secret is set when the file holds a secret and was made mode 0600.
	Secret bool
}

// ErrCancelled is Ctrl-C in the wizard: nothing was written.
var ErrCancelled = errors.New("the first-run wizard was left with Ctrl-C; nothing was written")

// Run asks the questions on a terminal and writes the answers to
// o.Path. A file that already exists is never overwritten: the wizard is
// for a first run, and refuses to start over someone's configuration.
func Run(ctx context.Context, o Options) (Result, error) {
	if _, err := os.Lstat(o.Path); !errors.Is(err, fs.ErrNotExist) {
		return Result{}, fmt.Errorf("%s exists: the first-run wizard never overwrites a configuration (run homelab init to use it)", o.Path)
	}
	a := answersFrom(o.Base)
	w := &form{ctx: ctx, answers: &a, base: o.Base, dns: o.DNS}
	p := tea.NewProgram(screen{form: w.build()},
		tea.WithInput(o.In), tea.WithOutput(o.Out), tea.WithContext(ctx),
		// SIGINT (kill -INT, or a terminal that sends it) leaves like Ctrl-C.
		tea.WithFilter(func(_ tea.Model, msg tea.Msg) tea.Msg {
			if _, ok := msg.(tea.InterruptMsg); ok {
				return tea.KeyMsg{Type: tea.KeyCtrlC}
			}
			return msg
		}))
	m, err := p.Run()
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, fmt.Errorf("first-run wizard: %w", err)
	}
	if m.(screen).form.State != huh.StateCompleted {
		return Result{}, ErrCancelled
	}
	return save(o, a)
}

// save writes the answers' file after checking it with the loader every
// command uses.
func save(o Options, a Answers) (Result, error) {
	data, err := a.document(o.Base, false)
	if err != nil {
		return Result{}, err
	}
	cfg, err := config.Parse(o.Path, data)
	if err != nil {
		// Every answer was checked with the same rules: this is a bug.
		return Result{}, fmt.Errorf("the wizard's answers do not load as a configuration (nothing written): %w", err)
	}
	secret := hasSecrets(cfg)
	if err := writeNew(o.Path, data, secret); err != nil {
		return Result{}, err
	}
	return Result{Path: o.Path, Continue: a.Then == Continue, Secret: secret}, nil
}

// writeNew creates path with data, all at once: a temporary file beside
// it, synced, then linked to its name, which fails rather than replace a
// file that appeared meanwhile. A file holding a secret is mode 0600.
func writeNew(path string, data []byte, secret bool) (err error) {
	mode := os.FileMode(0o644)
	if secret {
		mode = 0o600
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s appeared while the wizard ran; it was not overwritten (your answers were not saved)", path)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the new name survives a power cut
		d.Close()
	}
	return nil
}
