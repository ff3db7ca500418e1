// Package nginxtest runs the real nginx for tests, in a sandbox: a private
// prefix directory (its nginx.conf, pid file, logs and temp files) and two
// free loopback ports standing in for 80 and 443. It owns that nginx.conf,
// the rewriting of a site's listen directives onto the loopback ports, and
// the nginx processes it starts (stopped by PID when the test ends); the
// site, and the servers it proxies to, belong to the caller.
//
//	s := nginxtest.New(t)
//	s.Configure(site, "server 10.43.0.30:3000;", "server "+app.Listener.Addr().String()+";")
//	if out, err := s.Test(t.Context()); err != nil { ... }
//	s.Start()
//	http.Get(s.HTTPURL() + "/")
package nginxtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/testutil"
)

// Sandbox is one private nginx. Its methods other than Test must be called
// from the test's goroutine (they fail the test); Test may be called from
// any goroutine, a fake host's command hook say.
type Sandbox struct {
	t                   testing.TB
	bin, dir            string
	httpPort, httpsPort int
	conf                string // nginx.conf, once Configure wrote it
}

// New finds nginx (missing, it fails the test in CI and skips it
// elsewhere), makes the prefix directory with logs/ and tmp/, and picks the
// loopback ports. If the test fails, nginx's error log is shown.
func New(t testing.TB) *Sandbox {
	t.Helper()
	bin := testutil.NeedProgram(t, "nginx", "/usr/sbin/nginx")
	dir := t.TempDir()
	for _, d := range []string{"tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Run as root, nginx's workers run as nobody and must reach the temp paths.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Sandbox{t: t, bin: bin, dir: dir, httpPort: testutil.FreePort(t), httpsPort: testutil.FreePort(t)}
	t.Cleanup(func() {
		if log, err := os.ReadFile(s.errorLog()); t.Failed() && err == nil && len(log) > 0 {
			t.Logf("nginx's error log %s:\n%s", s.errorLog(), log)
		}
	})
	return s
}

// Dir is the prefix directory: a place for files the site names
// (certificates, say) that nginx's workers can read.
func (s *Sandbox) Dir() string { return s.dir }

// HTTPAddr is the loopback address that stands in for port 80.
func (s *Sandbox) HTTPAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.httpPort) }

// HTTPSAddr is the loopback address that stands in for port 443.
func (s *Sandbox) HTTPSAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.httpsPort) }

// HTTPURL is http://HTTPAddr, without a trailing slash.
func (s *Sandbox) HTTPURL() string { return "http://" + s.HTTPAddr() }

// HTTPSURL is https://HTTPSAddr, without a trailing slash.
func (s *Sandbox) HTTPSURL() string { return "https://" + s.HTTPSAddr() }

func (s *Sandbox) errorLog() string { return filepath.Join(s.dir, "logs", "error.log") }

// Configure writes nginx.conf around site (the contents of one file of
// server and upstream blocks, as in sites-enabled; empty is allowed).
//
// replace holds old, new pairs, applied first as by strings.NewReplacer:
// what only a test must change, such as an upstream address that is not
// reachable here or certificate paths on the host's disk. Every old string
// must be in the site, so a replacement cannot silently stop applying.
//
// Then every listen directive is moved to loopback: 80 to HTTPAddr, 443 to
// HTTPSAddr (parameters such as "ssl http2" kept), and [::]:80 and
// [::]:443 are dropped (the machine may have no IPv6). Any other listen
// fails the test rather than have nginx bind a port beyond loopback.
//
// Configure may be called again; the next Test or Start uses the last one.
func (s *Sandbox) Configure(site []byte, replace ...string) {
	s.t.Helper()
	if len(replace)%2 != 0 {
		s.t.Fatalf("nginxtest: Configure wants old, new pairs; got %d strings", len(replace))
	}
	for i := 0; i < len(replace); i += 2 {
		if !strings.Contains(string(site), replace[i]) {
			s.t.Fatalf("nginxtest: the site lacks %q, which the test replaces with %q", replace[i], replace[i+1])
		}
	}
	data, err := loopbackListens(strings.NewReplacer(replace...).Replace(string(site)), s.httpPort, s.httpsPort)
	if err != nil {
		s.t.Fatal(err)
	}
	sitePath := filepath.Join(s.dir, "site.conf")
	if err := os.WriteFile(sitePath, []byte(data), 0o644); err != nil {
		s.t.Fatal(err)
	}
	conf := fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log;
events { worker_connections 64; }
http {
    access_log %[1]s/logs/access.log;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    include %[2]s;
}
`, s.dir, sitePath)
	confPath := filepath.Join(s.dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.conf = confPath
}

// Test runs `nginx -t` on the configuration and returns its output (which
// names the file and line of a fault) and its error (an *exec.ExitError
// when nginx rejects the configuration).
func (s *Sandbox) Test(ctx context.Context) ([]byte, error) {
	if s.conf == "" {
		return nil, errors.New("nginxtest: Test before Configure")
	}
	return exec.CommandContext(ctx, s.bin, s.args("-t")...).CombinedOutput()
}

// Start runs nginx on the configuration in the foreground of a child
// process and waits until HTTPAddr accepts connections (nginx binds every
// listen before it accepts any). It is stopped by its PID when the test
// ends.
func (s *Sandbox) Start() {
	s.t.Helper()
	if s.conf == "" {
		s.t.Fatal("nginxtest: Start before Configure")
	}
	testutil.StartDaemon(s.t, exec.Command(s.bin, s.args("-g", "daemon off;")...), s.HTTPAddr())
}

// args are nginx's arguments for the sandbox, then extra. -e sends the
// errors of start-up to the sandbox's log, not the system's.
func (s *Sandbox) args(extra ...string) []string {
	return append([]string{"-p", s.dir, "-e", s.errorLog(), "-c", s.conf}, extra...)
}

// listenDirective is a listen directive, wherever it is on its line; its
// parameters do not run past the line.
var listenDirective = regexp.MustCompile(`\blisten\s+([^\s;]+)([^;\n]*);`)

// loopbackListens moves site's listens to loopback as Configure documents:
// 80 to httpPort, 443 to httpsPort, [::]:80 and [::]:443 dropped. It
// returns an error naming any other listen.
func loopbackListens(site string, httpPort, httpsPort int) (string, error) {
	var unknown []string
	out := listenDirective.ReplaceAllStringFunc(site, func(directive string) string {
		m := listenDirective.FindStringSubmatch(directive)
		switch addr, params := m[1], m[2]; addr {
		case "80":
			return fmt.Sprintf("listen 127.0.0.1:%d%s;", httpPort, params)
		case "443":
			return fmt.Sprintf("listen 127.0.0.1:%d%s;", httpsPort, params)
		case "[::]:80", "[::]:443":
			return ""
		default:
			unknown = append(unknown, directive)
			return directive
		}
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("nginxtest: the site has %q: only listen 80, 443, [::]:80 and [::]:443 are moved to loopback test ports, and nothing may listen beyond loopback", unknown)
	}
	return out, nil
}
