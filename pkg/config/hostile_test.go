package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestParseRefusesHostileAndCarelessValues covers issue 12, classes 1, 6
// and 9: each document must be refused, naming the key, with these words.
func TestParseRefusesHostileAndCarelessValues(t *testing.T) {
	files := "tls:\n  mode: files\n  keyFile: /etc/ssl/k.pem\n  certFile: "
	cases := []struct {
		name string
		doc  string
		want []string
	}{
		{"cert path injecting a directive", files + "\"/etc/ssl/a.pem;\\n    include /etc/passwd\"\n",
			[]string{"tls.certFile: invalid value", "Nginx would read them as syntax", "homelab.yaml:4"}},
		{"cert path with a space", files + "\"/etc/ssl/my cert.pem\"\n", []string{"tls.certFile", "no spaces"}},
		{"cert path with a brace", files + "\"/etc/ssl/a{.pem\"\n", []string{"tls.certFile"}},
		{"cert path with a variable", files + "/etc/ssl/$host.pem\n", []string{"tls.certFile"}},
		{"cert path with a comment", files + "\"/etc/ssl/a#.pem\"\n", []string{"tls.certFile"}},
		{"key path with a quote", "tls:\n  mode: files\n  certFile: /etc/ssl/c.pem\n  keyFile: \"/etc/ssl/k'.pem\"\n", []string{"tls.keyFile"}},
		{"domain with a trailing dot", "domain: blog.example.com.\n", []string{`domain: invalid value "blog.example.com."`, "without the trailing dot, like blog.example.com"}},
		{"domain an IPv4 address", "domain: 203.0.113.7\n", []string{`domain: invalid value "203.0.113.7"`, "not an IP address"}},
		{"domain ending in a numeric label", "domain: host.7\n", []string{"domain:", "not an IP address"}},
		{"null in app.command", "app:\n  command: [pnpm, null, start]\n", []string{"app.command[1]: must be a string, got null", "homelab.yaml:2"}},
		{"empty item in a block list", "app:\n  command:\n    - pnpm\n    -\n", []string{"app.command[1]: must be a string, got null", "homelab.yaml:4"}},
		{"mapping in app.command", "app:\n  command: [pnpm, {a: b}]\n", []string{"app.command[1]: must be a string, got a mapping"}},
		{"digest image", "app:\n  image: nextjs-app@sha256:" + strings.Repeat("a", 64) + "\n",
			[]string{"app.image: invalid value", "not a digest", "like nextjs-app:latest"}},
		{"tag and digest image", "app:\n  image: registry.example.com/blog:1.2@sha256:" + strings.Repeat("b", 64) + "\n",
			[]string{"app.image", "not a digest", "registry.example.com/blog:latest"}},
		{"unclosed flow list names its own line", "domain: a.example.com\napp:\n  port: 3000\n  command: [x\n",
			[]string{"not valid YAML: line 4:", "did not find expected ',' or ']'"}},
		{"unclosed flow list at the end of the file", "domain: [a\n", []string{"not valid YAML: line 2:"}},
		{"flow list broken on line 1", "domain: [a, b: c: d]\n", []string{"not valid YAML: line 1:"}},
		{"bad indentation names its line", "app:\n  image: x\n   bad: 1\n", []string{"not valid YAML: line 3:"}},
		{"tab names its line", "domain: a.example.com\n\n\napp:\n\tport: 3\n", []string{"not valid YAML: line 5:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("homelab.yaml", []byte(c.doc))
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Parse(%q) = %v, want a configuration *Error", c.doc, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%s", w, err)
				}
			}
		})
	}
}

// The valid forms next to the refused ones stay valid.
func TestParseKeepsNearbyValidValues(t *testing.T) {
	for _, doc := range []string{
		"tls:\n  mode: files\n  certFile: /etc/ssl/homelab/full_chain-2024.pem\n  keyFile: /etc/letsencrypt/live/a.example.com/privkey+1.pem\n",
		"domain: 7up.example.com\n",
		"domain: a.example.c0m\n",
		"app:\n  image: registry.example.com:5000/blog:1.2\n",
		"app:\n  command: [pnpm, \"null\", start]\n",
	} {
		if _, err := Parse("homelab.yaml", []byte(doc)); err != nil {
			t.Errorf("Parse(%q): %v", doc, err)
		}
	}
}

func TestLongValuesAreCutInMessages(t *testing.T) {
	huge := strings.Repeat("x", 10<<20)
	_, err := Parse("homelab.yaml", []byte("domain: "+huge+"\napp:\n  image: \"ü"+strings.Repeat("é", 100)+"\"\n"))
	if err == nil {
		t.Fatal("a 10 MiB domain was accepted")
	}
	if len(err.Error()) > 2000 {
		t.Errorf("error is %d bytes long; values must be cut:\n%.500s", len(err.Error()), err)
	}
	for _, w := range []string{"domain: invalid value \"xxxxxxxx", "... (10485760 bytes)", "app.image"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%s", w, err)
		}
	}
	if !strings.Contains(err.Error(), "é") || strings.Contains(err.Error(), "\\x") {
		t.Errorf("a multi-byte value was cut inside a character:\n%s", err)
	}
}

func TestLoadRefusesFilesThatAreNotSmallRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("domain: a.example.com\n# "+strings.Repeat("x", MaxFileSize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path string
		want       []string
	}{
		{"fifo", fifo, []string{"--config", "a named pipe (FIFO), not a regular file"}},
		{"directory", dir, []string{"--config", "a directory, not a regular file"}},
		{"device", "/dev/zero", []string{"--config", "a device, not a regular file"}},
		{"too big", big, []string{"--config", "more than the 1048576 a configuration may have"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := Load(Options{Path: c.path}); done <- err }()
			err := waitErr(t, done, "Load("+c.path+") to return")
			if err == nil {
				t.Fatalf("Load(%s) succeeded", c.path)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%s", w, err)
				}
			}
		})
	}
}

func TestLongKeysAndWronglyTypedValuesAreCut(t *testing.T) {
	long := strings.Repeat("k", 1000) // yaml.v3 takes simple keys up to 1024 bytes
	for _, doc := range []string{"app:\n  port: " + long + "\n", long + ": 1\n"} {
		_, err := Parse("homelab.yaml", []byte(doc))
		if err == nil {
			t.Fatalf("a %d-byte document with a bad key or value was accepted", len(doc))
		}
		if len(err.Error()) > 2000 || !strings.Contains(err.Error(), "bytes)") {
			t.Errorf("error is %d bytes and does not say the full length:\n%.300s", len(err.Error()), err)
		}
	}
}

func TestDanglingFallbackSymlinkIsAnError(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "homelab.yaml")
	if err := os.Symlink("gone.yaml", link); err != nil {
		t.Fatal(err)
	}
	_, err := Load(Options{FallbackPath: link})
	if err == nil {
		t.Fatal("a dangling ./homelab.yaml symlink silently meant the defaults")
	}
	for _, w := range []string{"--config", link, "symbolic link to gone.yaml, which does not exist"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%s", w, err)
		}
	}
	// No file at all still means the defaults.
	if l, err := Load(Options{FallbackPath: filepath.Join(dir, "absent.yaml")}); err != nil || l.Source != "" {
		t.Errorf("no fallback file: Load = %+v, %v; want the defaults", l, err)
	}
}

// waitErr waits a bounded time for a result, so a read that blocks (a FIFO
// without a writer) fails the test instead of hanging it.
func waitErr(t *testing.T, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out after 10s waiting for %s", what)
		return nil
	}
}
