package main

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGenerate(t *testing.T) {
	date := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	out := filepath.Join(t.TempDir(), "docs")
	if err := os.MkdirAll(filepath.Join(out, "stale"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := generate(options{Out: out, Version: "v9.9.9", Date: date}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "stale")); err == nil {
		t.Error("a file from an earlier run survived: --out is not replaced")
	}

	// One page per command, the root's and version's among them.
	for _, name := range []string{"homelab.1.gz", "homelab-version.1.gz", "homelab-init.1.gz", "homelab-completion-bash.1.gz"} {
		page := readGzip(t, filepath.Join(out, "man", name), date)
		if !strings.Contains(page, ".TH ") || !strings.Contains(page, "homelab v9.9.9") || !strings.Contains(page, "Nov 2026") {
			t.Errorf("%s is not a man page of v9.9.9 dated Nov 2026:\n%.300s", name, page)
		}
	}
	if plain, _ := filepath.Glob(filepath.Join(out, "man", "*.1")); len(plain) != 0 {
		t.Errorf("uncompressed pages left: %v", plain)
	}

	// Each completion is the script for its shell.
	for file, marker := range map[string]string{"homelab.bash": "__start_homelab", "_homelab": "#compdef homelab", "homelab.fish": "complete -c homelab"} {
		data, err := os.ReadFile(filepath.Join(out, "completions", file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), marker) {
			t.Errorf("completions/%s lacks %q", file, marker)
		}
	}
}

// readGzip returns a page's text after checking its gzip header carries
// date, not the time of the build.
func readGzip(t *testing.T, path string, date time.Time) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !zr.ModTime.Equal(date) {
		t.Errorf("%s: gzip time %s, want %s", path, zr.ModTime, date)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(data)
}
