package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/homelab-dev/homelab/pkg/cmd/root"
	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/iostreams"
)

type options struct {
	Out, Version string
	Date         time.Time
}

// Completions are the files each shell's completion is written to under
// completions/, named as each shell looks them up once installed.
var completions = map[string]string{
	"bash": "homelab.bash",
	"zsh":  "_homelab",
	"fish": "homelab.fish",
}

// generate replaces o.Out with man/ and completions/. The tree is the one
// homelab itself builds, so pages and completions cannot drift from the
// commands.
func generate(o options) error {
	if err := os.RemoveAll(o.Out); err != nil {
		return err
	}
	if err := writeManPages(o); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	return writeCompletions(o)
}

func newRoot(version string) *cobra.Command {
	return root.NewCmdRoot(cmdutil.New(iostreams.System(), version))
}

// writeManPages writes one gzipped page per command, as Debian policy wants
// them under /usr/share/man.
func writeManPages(o options) error {
	dir := filepath.Join(o.Out, "man")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := newRoot(o.Version)
	cmd.DisableAutoGenTag = true
	// Cobra adds `completion` only when the tree runs; add it now so that
	// it gets its pages like every other command.
	cmd.InitDefaultCompletionCmd()
	header := &doc.GenManHeader{Section: "1", Source: "homelab " + o.Version, Manual: "homelab manual", Date: &o.Date}
	if err := doc.GenManTree(cmd, header, dir); err != nil {
		return err
	}
	pages, err := filepath.Glob(filepath.Join(dir, "*.1"))
	if err != nil || len(pages) == 0 {
		return fmt.Errorf("no pages written in %s (%v)", dir, err)
	}
	for _, page := range pages {
		if err := gzipFile(page, o.Date); err != nil {
			return err
		}
	}
	return nil
}

// gzipFile replaces path with path.gz, stamped with date rather than the
// time of the build, so the same commit gives the same bytes.
func gzipFile(path string, date time.Time) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	zw.Name, zw.ModTime = filepath.Base(path), date
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(path+".gz", buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Remove(path)
}

// writeCompletions runs `homelab completion SHELL` for each shell: the
// packaged scripts are exactly what a user would generate by hand.
func writeCompletions(o options) error {
	dir := filepath.Join(o.Out, "completions")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for shell, name := range completions {
		var out, errOut bytes.Buffer
		cmd := newRoot(o.Version)
		cmd.SetArgs([]string{"completion", shell})
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		if err := cmd.Execute(); err != nil {
			return fmt.Errorf("homelab completion %s: %w: %s", shell, err, strings.TrimSpace(errOut.String()))
		}
		if out.Len() == 0 {
			return fmt.Errorf("homelab completion %s printed nothing", shell)
		}
		if err := os.WriteFile(filepath.Join(dir, name), out.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
