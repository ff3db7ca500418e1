package nginxtest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestLoopbackListens(t *testing.T) {
	for _, tc := range []struct {
		name, site, want, wantErr string
	}{
		{
			name: "a rendered site",
			site: "server {\n    listen 80;\n    listen [::]:80;\n}\nserver {\n    listen 443 ssl http2;\n    listen [::]:443 ssl http2;\n}\n",
			want: "server {\n    listen 127.0.0.1:8080;\n    \n}\nserver {\n    listen 127.0.0.1:8443 ssl http2;\n    \n}\n",
		},
		{
			name: "parameters and one-line servers",
			site: "server { listen 80 default_server; return 444; }\n",
			want: "server { listen 127.0.0.1:8080 default_server; return 444; }\n",
		},
		{
			name: "a listen without its semicolon is left for nginx -t to reject",
			site: "server { listen 80 }\n",
			want: "server { listen 80 }\n",
		},
		{name: "another port", site: "server { listen 8081; }\n", wantErr: `"listen 8081;"`},
		{name: "another address", site: "server {\n    listen 0.0.0.0:80;\n}\n", wantErr: `"listen 0.0.0.0:80;"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loopbackListens(tc.site, 8080, 8443)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v; want one naming %s (got site %q)", err, tc.wantErr, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestSandboxServesAndStops runs nginx with a site proxying to a test
// server, through the upstream address the test replaces, and checks that
// nginx is gone once the test that started it has ended.
func TestSandboxServesAndStops(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "backend "+r.URL.Path)
	}))
	defer backend.Close()
	site := "upstream backend {\n    server 10.43.0.30:3000;\n}\n" +
		"server {\n    listen 80;\n    listen [::]:80;\n    location / { proxy_pass http://backend; }\n}\n" +
		"server {\n    listen 443;\n    return 204;\n}\n"

	var addr string
	t.Run("serve", func(t *testing.T) {
		s := New(t)
		s.Configure([]byte(site), "server 10.43.0.30:3000;", "server "+backend.Listener.Addr().String()+";")
		if out, err := s.Test(t.Context()); err != nil {
			t.Fatalf("nginx -t: %v\n%s", err, out)
		}
		s.Start()
		addr = s.HTTPAddr()
		client := &http.Client{Timeout: 5 * time.Second}
		resp, err := client.Get(s.HTTPURL() + "/x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "backend /x" {
			t.Errorf("GET %s/x: %d %q; want 200 %q from the backend", s.HTTPURL(), resp.StatusCode, body, "backend /x")
		}
		// The 443 stand-in is plain HTTP here: this site has no certificate.
		resp, err = client.Get("http://" + s.HTTPSAddr() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Errorf("GET the 443 stand-in %s: %d; want 204", s.HTTPSAddr(), resp.StatusCode)
		}
	})
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("nginx still listens on %s after its test ended", addr)
	}
}

func TestSandboxTestRejectsABrokenSite(t *testing.T) {
	s := New(t)
	s.Configure([]byte("server {\n    listen 80;\n    location / { proxy_pass http://127.0.0.1:1 }\n}\n"))
	out, err := s.Test(t.Context())
	if err == nil || !strings.Contains(string(out), "site.conf:") {
		t.Fatalf("nginx -t on a missing semicolon: %v\n%s\nwant a failure naming site.conf's line", err, out)
	}
}

func TestSandboxTestBeforeConfigure(t *testing.T) {
	if _, err := New(t).Test(t.Context()); err == nil {
		t.Fatal("Test without a configuration succeeded")
	}
}

// fatalRecorder is the test's TB, except that a fatal failure is recorded
// and ends only the goroutine it happened in.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatal(args ...any) { r.msg = fmt.Sprint(args...); runtime.Goexit() }
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// configureFailure returns how Configure failed the test, or "".
func configureFailure(t *testing.T, site string, replace ...string) string {
	s := New(t)
	rec := &fatalRecorder{TB: t}
	s.t = rec
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Configure([]byte(site), replace...)
	}()
	<-done
	return rec.msg
}

func TestConfigureFailsLoudly(t *testing.T) {
	const site = "upstream app { server 10.43.0.30:3000; }\nserver { listen 80; }\n"
	for _, tc := range []struct {
		name    string
		site    string
		replace []string
		want    string
	}{
		{"a replacement that matches nothing", site, []string{"server 10.96.0.50:3000;", "server 127.0.0.1:1;"}, `lacks "server 10.96.0.50:3000;"`},
		{"an odd replacement list", site, []string{"server 10.43.0.30:3000;"}, "old, new pairs"},
		{"a listen beyond loopback", "server { listen 8081; }\n", nil, `"listen 8081;"`},
		{"the control: a good site", site, []string{"server 10.43.0.30:3000;", "server 127.0.0.1:1;"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := configureFailure(t, tc.site, tc.replace...); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("Configure failed with %q; want %q", got, tc.want)
			}
		})
	}
}
