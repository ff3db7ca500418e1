package wizard

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/creack/pty"

	"github.com/homelab-dev/homelab/pkg/config"
)

// terminal is the real homelab binary on a pseudo-terminal of 120x40.
type terminal struct {
	t    *testing.T
	pty  *os.File
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer // everything the program wrote
	seen int          // how much of out the last wait matched
	done chan struct{}
}

// buildHomelab builds cmd/homelab once for the test.
func buildHomelab(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "homelab")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/homelab").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startOnTerminal runs bin in dir on a new pseudo-terminal, in a network
// namespace of its own: the domain's DNS lookup fails at once instead of
// asking the network. TERM is a colour terminal and CI is not set, so that
// init may be interactive.
func startOnTerminal(t *testing.T, bin, dir string, args ...string) *terminal {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"TERM=xterm-256color", "HOME=" + dir, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	f, err := pty.StartWithAttrs(cmd, &pty.Winsize{Rows: 40, Cols: 120},
		&syscall.SysProcAttr{Setsid: true, Setctty: true, Cloneflags: syscall.CLONE_NEWNET})
	if err != nil {
		t.Fatalf("start %s on a pseudo-terminal: %v", bin, err)
	}
	term := &terminal{t: t, pty: f, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(term.done)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			term.mu.Lock()
			term.out.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return // EIO once the program has exited
			}
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // by its own handle, the process this test started
			_, _ = cmd.Process.Wait()
		}
		f.Close()
	})
	return term
}

// screen is what the program wrote since the last wait, without escape
// sequences.
func (term *terminal) text(from int) string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return ansi.Strip(string(term.out.Bytes()[from:]))
}

// waitFor waits up to 20 s for want to appear after what the last wait
// matched.
func (term *terminal) waitFor(want string) {
	term.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		term.mu.Lock()
		raw := term.out.Bytes()[term.seen:]
		stripped := ansi.Strip(string(raw))
		n := len(raw)
		term.mu.Unlock()
		if strings.Contains(flatten(stripped), flatten(want)) {
			term.seen += n
			return
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("waited 20s for %q on the terminal; the program wrote since the last step:\n%s", want, stripped)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (term *terminal) send(keys string) {
	term.t.Helper()
	if _, err := io.WriteString(term.pty, keys); err != nil {
		term.t.Fatalf("type %q: %v", keys, err)
	}
}

// wait waits up to 60 s for the program to exit and returns its exit code.
func (term *terminal) wait() int {
	term.t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- term.cmd.Wait() }()
	select {
	case err := <-exited:
		<-term.done
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		} else if err != nil {
			term.t.Fatal(err)
		}
		return 0
	case <-time.After(60 * time.Second):
		term.t.Fatalf("the program did not exit within 60s; it wrote:\n%s", term.text(0))
	}
	return -1
}

const (
	enter = "\r"
	down  = "\x1b[B"
	ctrlC = "\x03"
)

// The real binary on a terminal with no configuration: init asks, the
// answers become ./homelab.yaml (loaded by config.Parse as answered, mode
// 0600 for its ntfy URL), and the run goes on with it (here a dry run under
// an empty --root, which installs nothing). Then, in a fresh directory,
// Ctrl-C in the middle leaves with exit 130 and no file.
func TestRealBinaryOnAPseudoTerminal(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the pseudo-terminal test needs root (a network namespace keeps DNS off the network)")
		}
		t.Skip("needs root for a network namespace")
	}
	bin := buildHomelab(t)

	t.Run("answers to homelab.yaml, then init goes on with it", func(t *testing.T) {
		dir, root := t.TempDir(), t.TempDir()
		term := startOnTerminal(t, bin, dir, "init", "--dry-run", "--root", root)
		term.waitFor("Domain")
		term.send("blog.example.com")
		term.waitFor("! blog.example.com does not resolve yet")
		term.send(enter)
		term.waitFor("Let's Encrypt certificate (certbot)")
		term.send(enter)
		term.waitFor("E-mail for Let's Encrypt")
		term.send("me@example.com" + enter)
		term.waitFor("Your app")
		term.send(enter + enter)
		term.waitFor("Health path")
		term.send(enter)
		term.waitFor("Send alerts to")
		term.send(down + enter)
		term.waitFor("Alerts: ntfy")
		term.send("https://ntfy.sh/homelab-pty-test" + enter + enter)
		term.waitFor("Review")
		term.send(enter)
		if code := term.wait(); code != 0 {
			t.Fatalf("exit %d:\n%s", code, term.text(0))
		}
		all := term.text(0)
		for _, want := range []string{"Wrote homelab.yaml (mode 0600: it holds a secret).",
			"Going on as homelab init --config homelab.yaml", "homelab init --dry-run (configuration: homelab.yaml)"} {
			if !strings.Contains(flatten(all), want) {
				t.Errorf("the terminal lacks %q:\n%s", want, all)
			}
		}
		if strings.Contains(all, "homelab-pty-test") {
			t.Errorf("the ntfy URL (a secret) was echoed:\n%s", all)
		}
		path := filepath.Join(dir, "homelab.yaml")
		cfg := loadWritten(t, path)
		if cfg.Domain != "blog.example.com" || cfg.Email != "me@example.com" || cfg.TLS.Mode != config.TLSCertbot ||
			cfg.App.Image != "nextjs-app:latest" || cfg.App.Port != 3000 || len(cfg.Alerts.Notify) != 1 ||
			cfg.Alerts.Notify[0].Ntfy == nil || cfg.Alerts.Notify[0].Ntfy.URL != "https://ntfy.sh/homelab-pty-test" {
			t.Errorf("loaded configuration is not what was answered: %+v", cfg)
		}
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("file mode: %v %v, want 0600", st.Mode(), err)
		}
		requireEntries(t, root, 0) // the dry run wrote nothing under --root
	})

	t.Run("Ctrl-C in the middle writes nothing", func(t *testing.T) {
		dir, root := t.TempDir(), t.TempDir()
		term := startOnTerminal(t, bin, dir, "init", "--dry-run", "--root", root)
		term.waitFor("Domain")
		term.send("blog.example.com" + enter)
		term.waitFor("Let's Encrypt certificate (certbot)")
		term.send(ctrlC)
		if code := term.wait(); code != 130 {
			t.Errorf("exit %d after Ctrl-C, want 130:\n%s", code, term.text(0))
		}
		if !strings.Contains(term.text(0), "nothing was written and nothing changed") {
			t.Errorf("no word that nothing was written:\n%s", term.text(0))
		}
		requireEntries(t, dir, 0)
		if _, err := os.Lstat(filepath.Join(dir, "homelab.yaml")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("homelab.yaml after Ctrl-C: %v", err)
		}
	})

	t.Run("never in a pipe: a missing domain names the flag", func(t *testing.T) {
		dir, root := t.TempDir(), t.TempDir()
		cmd := exec.Command(bin, "init", "--root", root)
		cmd.Dir = dir
		cmd.Env = []string{"TERM=xterm-256color", "HOME=" + dir, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "--domain") {
			t.Errorf("init in a pipe without a domain: %v\n%s", err, out)
		}
		requireEntries(t, dir, 0)
	})
}
