package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	code := RunWith(context.Background(), args, cmdutil.New(ios, "test"))
	return code, out.String(), errOut.String()
}

func TestHelpListsEveryCommandWithExamples(t *testing.T) {
	code, out, _ := run(t, "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, c := range []string{"init", "deploy-app", "doctor", "render", "version", "completion"} {
		if !strings.Contains(out, "\n  "+c+" ") {
			t.Errorf("--help does not list %s:\n%s", c, out)
		}
	}
	for _, c := range []string{"init", "deploy-app", "doctor", "render", "version"} {
		code, out, _ := run(t, c, "--help")
		if code != 0 || !strings.Contains(out, "Examples:") || !(strings.Contains(out, "$ homelab "+c) || strings.Contains(out, "$ sudo homelab "+c)) {
			t.Errorf("%s --help: exit %d, want an Examples section running homelab %s:\n%s", c, code, c, out)
		}
	}
	testutil.Golden(t, "help.txt", []byte(out))
}

// TestBadInputExitsTwoAndWritesNothing runs render over bad configurations
// and flags: each must exit 2, name the offending field, and leave --root empty.
func TestBadInputExitsTwoAndWritesNothing(t *testing.T) {
	cases := []struct {
		name   string
		config string   // homelab.yaml content; "" means no --config
		flags  []string // extra flags
		want   []string // substrings of stderr
	}{
		{"unknown top-level key", "domian: blog.example.com\n", nil, []string{"domian: unknown key", "valid keys: alerts, apiVersion, app, domain"}},
		{"unknown nested key", "app:\n  prot: 8080\n", nil, []string{"app.prot: unknown key", "under app", "port"}},
		{"duplicate key", "domain: a.example.com\ndomain: b.example.com\n", nil, []string{"domain: is set twice"}},
		{"wrong apiVersion", "apiVersion: homelab/v2\n", nil, []string{"apiVersion", "homelab/v1alpha1"}},
		{"not yaml", "app: [unclosed\n", nil, []string{"not valid YAML"}},
		{"two documents", "domain: a.example.com\n---\ndomain: b.example.com\n", nil, []string{"more than one YAML document"}},
		{"section is scalar", "app: nextjs\n", nil, []string{"app: must be a mapping", "image"}},
		{"domain with scheme", "domain: https://blog.example.com\n", nil, []string{`domain: invalid value "https://blog.example.com"`, "without scheme"}},
		{"domain single label", "domain: localhost\n", nil, []string{`domain: invalid value "localhost"`, "fully qualified"}},
		{"domain upper case and underscore", "domain: My_Blog.example.com\n", nil, []string{"domain: invalid value"}},
		{"bad email", "email: not-an-address\n", nil, []string{`email: invalid value "not-an-address"`}},
		{"alert destination with a bad secret", "alerts:\n  notify:\n    - discord: {webhookURL: https://example.com/SECRET-TOKEN}\n", nil,
			[]string{"alerts.notify[0].discord.webhookURL: invalid value (hidden: it is a secret)", "https://discord.com/api/webhooks/ID/TOKEN", "homelab.yaml:3"}},
		{"alert entry with two destinations", "alerts:\n  notify:\n    - {ntfy: {url: https://ntfy.sh/x}, webhook: {url: https://example.com}}\n", nil,
			[]string{"alerts.notify[0]: names ntfy and webhook", "own list entry"}},
		{"unknown alert destination", "alerts:\n  notify:\n    - pagerduty: {key: x}\n", nil,
			[]string{"alerts.notify[0].pagerduty: unknown key", "discord, email, ntfy, slack, telegram, webhook"}},
		{"certbot without email", "tls:\n  mode: certbot\n", nil, []string{"email", "required with tls.mode certbot"}},
		{"unknown tls mode", "tls:\n  mode: letsencrypt\n", nil, []string{`tls.mode: invalid value "letsencrypt"`, "none, certbot, files"}},
		{"files without paths", "tls:\n  mode: files\n", nil, []string{"tls.certFile", "tls.keyFile", "absolute"}},
		{"relative cert path", "tls:\n  mode: files\n  certFile: certs/a.pem\n  keyFile: /etc/k.pem\n", nil, []string{`tls.certFile: invalid value "certs/a.pem"`}},
		{"app name upper case", "app:\n  name: NextJS\n", nil, []string{`app.name: invalid value "NextJS"`, "DNS label"}},
		{"app namespace invalid", "app:\n  namespace: my_ns\n", nil, []string{`app.namespace: invalid value "my_ns"`}},
		{"service name starts with digit", "app:\n  serviceName: 1svc\n", nil, []string{`app.serviceName: invalid value "1svc"`, "DNS-1035"}},
		{"image upper case", "app:\n  image: NextJS-App:latest\n", nil, []string{`app.image: invalid value "NextJS-App:latest"`, "image reference"}},
		{"image empty", "app:\n  image: \"\"\n", nil, []string{"app.image", "required"}},
		{"port zero", "app:\n  port: 0\n", nil, []string{`app.port: invalid value "0"`, "1 to 65535"}},
		{"port too big", "app:\n  port: 70000\n", nil, []string{`app.port: invalid value "70000"`}},
		{"port not a number", "app:\n  port: http\n", nil, []string{"app.port: must be a whole number", `"http"`, "homelab.yaml:2"}},
		{"command not a list", "app:\n  command: pnpm start\n", nil, []string{"app.command: must be a list"}},
		{"command empty word", "app:\n  command: [pnpm, \"\"]\n", nil, []string{"app.command[1]"}},
		{"replicas zero", "app:\n  replicas: 0\n", nil, []string{`app.replicas: invalid value "0"`, "1 to 20"}},
		{"startup budget too short", "app:\n  startupSeconds: 1\n", nil, []string{`app.startupSeconds: invalid value "1"`, "2 to 600"}},
		{"grace period within the pre-stop sleep", "app:\n  preStopSleepSeconds: 10\n  terminationGracePeriodSeconds: 10\n", nil,
			[]string{`app.terminationGracePeriodSeconds: invalid value "10"`, "above app.preStopSleepSeconds (10)"}},
		{"health path relative", "app:\n  healthPath: health\n", nil, []string{`app.healthPath: invalid value "health"`}},
		{"clusterIP outside CIDR", "app:\n  clusterIP: 192.168.1.10\n", nil, []string{`app.clusterIP: invalid value "192.168.1.10"`, "10.43.0.0/16"}},
		{"clusterIP of CoreDNS", "app:\n  clusterIP: 10.43.0.10\n", nil, []string{`app.clusterIP: invalid value "10.43.0.10"`, "CoreDNS"}},
		{"memory quantity", "app:\n  resources:\n    limits:\n      memory: lots\n", nil, []string{`app.resources.limits.memory: invalid value "lots"`}},
		{"request above limit", "app:\n  resources:\n    requests: {memory: 1Gi}\n    limits: {memory: 512Mi}\n", nil, []string{"app.resources.requests.memory", "at most the limit 512Mi"}},
		{"monitoring namespace", "monitoring:\n  namespace: Monitoring\n", nil, []string{`monitoring.namespace: invalid value "Monitoring"`}},
		{"release too long", "monitoring:\n  release: " + strings.Repeat("a", 60) + "\n", nil, []string{"monitoring.release", "53 characters"}},
		{"same release twice", "monitoring:\n  blackbox:\n    release: lightweight-monitoring\n", nil, []string{"monitoring.blackbox.release", "different from monitoring.release"}},
		{"chart version range", "monitoring:\n  chartVersion: ^88.0.0\n", nil, []string{`monitoring.chartVersion: invalid value "^88.0.0"`, "exact chart version"}},
		{"chart repo not a URL", "monitoring:\n  chartRepo: prometheus-community\n", nil, []string{"monitoring.chartRepo", "oci://"}},
		{"grafana path trailing slash", "monitoring:\n  grafana:\n    path: /grafana/\n", nil, []string{`monitoring.grafana.path: invalid value "/grafana/"`, "without a trailing slash"}},
		{"grafana port 443", "monitoring:\n  grafana:\n    localPort: 443\n", nil, []string{"monitoring.grafana.localPort", "other than 80 and 443"}},
		{"probe interval words", "monitoring:\n  probe:\n    interval: 30 seconds\n", nil, []string{`monitoring.probe.interval: invalid value "30 seconds"`, "30s"}},
		{"probe module unknown", "monitoring:\n  probe:\n    module: http_3xx\n", nil, []string{`monitoring.probe.module: invalid value "http_3xx"`, "http_2xx, tcp_connect"}},
		{"retention size", "monitoring:\n  prometheus:\n    retentionSize: 2 GB\n", nil, []string{"monitoring.prometheus.retentionSize", "2GB"}},
		{"k3s version", "k3s:\n  version: latest\n", nil, []string{`k3s.version: invalid value "latest"`, "v1.37.2+k3s1"}},
		{"service CIDR", "k3s:\n  serviceCIDR: 10.43.0.0\n", nil, []string{"k3s.serviceCIDR", "10.43.0.0/16"}},
		{"all problems at once", "domain: bad\napp:\n  port: -1\n  replicas: 99\n", nil, []string{"3 problems", "domain:", "app.port:", "app.replicas:"}},
		{"flag domain", "", []string{"--domain", "https://x"}, []string{"domain", "from --domain"}},
		{"flag app port", "", []string{"--app-port", "99999"}, []string{"app.port", "from --app-port"}},
		{"flag app port not a number", "", []string{"--app-port", "abc"}, []string{"--app-port", "abc"}},
		{"flag tls mode", "", []string{"--tls-mode", "auto"}, []string{"tls.mode", "from --tls-mode"}},
		{"flag image", "", []string{"--app-image", "a b"}, []string{"app.image", "from --app-image"}},
		{"unknown flag", "", []string{"--domian", "x.example.com"}, []string{"unknown flag: --domian"}},
		{"missing config file", "", []string{"--config", "/nonexistent/homelab.yaml"}, []string{"--config", "cannot read /nonexistent/homelab.yaml"}},
		// Issue 12, classes 1, 6 and 9.
		{"cert path injecting a directive", "tls:\n  mode: files\n  keyFile: /etc/ssl/k.pem\n  certFile: \"/etc/ssl/a.pem;\\n include /etc/passwd\"\n", nil,
			[]string{"tls.certFile: invalid value", "Nginx would read them as syntax", "homelab.yaml:4"}},
		{"domain with a trailing dot", "domain: blog.example.com.\n", nil, []string{`domain: invalid value "blog.example.com."`, "trailing dot"}},
		{"domain an IP address", "domain: 203.0.113.7\n", nil, []string{`domain: invalid value "203.0.113.7"`, "not an IP address"}},
		{"null in app.command", "app:\n  command: [pnpm, null]\n", nil, []string{"app.command[1]: must be a string, got null"}},
		{"digest image", "app:\n  image: nextjs-app@sha256:" + strings.Repeat("a", 64) + "\n", nil, []string{"app.image", "not a digest"}},
		{"huge value cut short", "domain: " + strings.Repeat("x", 1<<19) + "\n", nil, []string{"domain: invalid value", "(524288 bytes)"}},
		{"config is a device", "", []string{"--config", "/dev/zero"}, []string{"--config", "a device, not a regular file"}},
		{"config is a directory", "", []string{"--config", "/"}, []string{"--config", "a directory, not a regular file"}},
		{"stray argument", "", []string{"extra"}, []string{"unknown command"}},
	}
	if len(cases) < 25 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			args := []string{"render", "--root", root}
			if tc.config != "" {
				cfg := filepath.Join(dir, "homelab.yaml")
				if err := os.WriteFile(cfg, []byte(tc.config), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", cfg)
			}
			args = append(args, tc.flags...)
			code, _, stderr := run(t, args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2; stderr:\n%s", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "SECRET") {
				t.Errorf("a secret value was printed:\n%s", stderr)
			}
			if entries, _ := os.ReadDir(root); len(entries) != 0 {
				t.Errorf("bad input wrote %d entries under --root", len(entries))
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "homelab test (") {
		t.Fatalf("exit %d, output %q", code, out)
	}
}
