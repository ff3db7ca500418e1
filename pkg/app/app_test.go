package app

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/layout"
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
// and flags, and every command over its bad flags: each must exit 2, name
// the offending flag or field, and leave --root as it was.
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
		{"flag image", "", []string{"--image", "a b"}, []string{"app.image", "from --image"}},
		{"set unknown key", "", []string{"--set", "app.portt=1"}, []string{"app.portt", "unknown key", "from --set"}},
		{"set wrong type", "", []string{"--set", "app.replicas=two"}, []string{"app.replicas", "whole number", "from --set"}},
		{"set not KEY=VALUE", "", []string{"--set", "app.port"}, []string{"--set", "KEY=VALUE"}},
		{"set a list item", "", []string{"--set", "alerts.notify[0].webhook.url=http://x"}, []string{"alerts.notify[0].webhook.url", "homelab.yaml"}},
		{"set value not YAML", "", []string{"--set", "app.command=[pnpm"}, []string{"app.command", "not valid YAML"}},
		{"set invalid value", "", []string{"--set", "app.replicas=99"}, []string{"app.replicas", "from --set"}},
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
	var all []badInput
	for _, c := range cases {
		all = append(all, badInput{name: c.name, config: c.config, flags: c.flags, want: c.want})
	}
	for _, tc := range append(all, commandBadInputs()...) {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := tc.run(t)
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
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "homelab test (") {
		t.Fatalf("exit %d, output %q", code, out)
	}
}

// badInput is one bad invocation: a command, its flags and the files they
// name. It must exit 2 before any step, and leave --root as it was.
type badInput struct {
	name string
	// cmd is the command and its arguments; render when nil.
	cmd    []string
	config string // homelab.yaml content; "" means no --config
	// flags follow cmd; $DIR is a directory holding inputs.
	flags []string
	// inputs are files in $DIR, by name; see inputData for the contents
	// that stand for generated files.
	inputs map[string]string
	// tree are files under --root before the run (host paths).
	tree map[string]string
	want []string
}

// run runs the case and checks that --root did not change.
func (tc badInput) run(t *testing.T) (int, string) {
	t.Helper()
	return tc.runIn(t, tc.setUp(t))
}

// setUp writes the case's inputs and --root tree into a new directory.
func (tc badInput) setUp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	tree := map[string]string{}
	for p, data := range tc.tree {
		tree[p] = inputData(t, data)
	}
	if err := os.Mkdir(filepath.Join(dir, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree(t, filepath.Join(dir, "root"), tree)
	if err := os.Mkdir(filepath.Join(dir, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range tc.inputs {
		writeInput(t, filepath.Join(dir, "in", name), data)
	}
	if tc.config != "" {
		if err := os.WriteFile(filepath.Join(dir, "homelab.yaml"), []byte(tc.config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runIn runs the case on a directory from setUp and checks that --root
// did not change, apart from the paths in allowed and their parents (a
// real run takes homelab's lock before it checks what it needs).
func (tc badInput) runIn(t *testing.T, dir string, allowed ...string) (int, string) {
	t.Helper()
	root := filepath.Join(dir, "root")
	cmd := tc.cmd
	if cmd == nil {
		cmd = []string{"render"}
	}
	args := append(slices.Clone(cmd), "--root", root)
	if tc.config != "" {
		args = append(args, "--config", filepath.Join(dir, "homelab.yaml"))
	}
	args = append(args, tc.flags...)
	for i, a := range args { // in flags, and in a command's own arguments
		args[i] = strings.ReplaceAll(a, "$DIR", filepath.Join(dir, "in"))
	}
	changed := func(paths []string) []string {
		return slices.DeleteFunc(paths, func(p string) bool {
			return slices.ContainsFunc(allowed, func(a string) bool {
				a = strings.TrimPrefix(a, "/")
				return a == p || strings.HasPrefix(a, p+"/")
			})
		})
	}
	before := changed(listTree(t, root))
	code, _, stderr := run(t, args...)
	if after := changed(listTree(t, root)); !slices.Equal(before, after) {
		t.Errorf("bad input changed --root:\nbefore %v\nafter  %v", before, after)
	}
	return code, stderr
}

// Contents that stand for generated files, in badInput.inputs and .tree.
const (
	fifoInput       = "<fifo>"
	dirInput        = "<directory>"
	tarInput        = "<a tar>"
	refusedKube     = "<kubeconfig of a server nothing listens on>"
	otherChartInput = "<chart archive of another chart>"
	certInput       = "<certificate>"
	keyInput        = "<its key>"
	otherKeyInput   = "<another key>"
)

func writeInput(t *testing.T, path, data string) {
	t.Helper()
	switch data {
	case fifoInput:
		if err := syscall.Mkfifo(path, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	case dirInput:
		if err := os.Mkdir(path, 0o755); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(path, []byte(inputData(t, data)), 0o600); err != nil {
		t.Fatal(err)
	}
}

var (
	pemOnce                      sync.Once
	pemCert, pemKey, pemOtherKey string
)

// inputData returns the bytes a stand-in names; other strings are literal.
func inputData(t *testing.T, data string) string {
	t.Helper()
	switch data {
	case tarInput:
		return tarOf(t, map[string]string{"manifest.json": "[]"}, false)
	case refusedKube:
		return "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"https://127.0.0.1:1\", insecure-skip-tls-verify: true}\n" +
			"users:\n- name: u\n  user: {token: x}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n"
	case otherChartInput:
		return tarOf(t, map[string]string{"other/Chart.yaml": "apiVersion: v2\nname: other\nversion: 1.0.0\n"}, true)
	case certInput, keyInput, otherKeyInput:
		pemOnce.Do(func() { pemCert, pemKey, pemOtherKey = selfSigned(t) })
		return map[string]string{certInput: pemCert, keyInput: pemKey, otherKeyInput: pemOtherKey}[data]
	}
	return data
}

func tarOf(t *testing.T, files map[string]string, gz bool) string {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

// selfSigned returns a certificate for blog.example.com, its key and a key
// of another certificate, PEM-encoded.
func selfSigned(t *testing.T) (cert, key, otherKey string) {
	t.Helper()
	newKey := func() (*ecdsa.PrivateKey, string) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return k, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	k, keyPEM := newKey()
	_, otherPEM := newKey()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "blog.example.com"},
		DNSNames: []string{"blog.example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), keyPEM, otherPEM
}

// aDigest is a well-formed sha256 that no file here has.
var aDigest = strings.Repeat("a", 64)

// tlsFiles is a configuration that serves the certificate files below.
const tlsFiles = "domain: blog.example.com\ntls:\n  mode: files\n  certFile: /etc/ssl/blog.pem\n  keyFile: /etc/ssl/blog.key\n"

// commandBadInputs are every command's bad flags (issue 12, class 5): each
// is found before any step runs, and named.
func commandBadInputs() []badInput {
	initDry := []string{"init", "--dry-run"}
	initReal := []string{"init", "--domain", "blog.example.com"}
	deploy := []string{"deploy-app", "--dry-run"}
	tree := func(cert, key string) map[string]string {
		return map[string]string{"/etc/ssl/blog.pem": cert, "/etc/ssl/blog.key": key}
	}
	return []badInput{
		// init
		{name: "init negative timeout", cmd: initDry, flags: []string{"--timeout", "-1s"}, want: []string{"--timeout", "positive duration"}},
		{name: "init zero timeout", cmd: initReal, flags: []string{"--timeout", "0s"}, want: []string{"--timeout"}},
		{name: "init timeout not a duration", cmd: initDry, flags: []string{"--timeout", "ten"}, want: []string{"--timeout", "ten"}},
		{name: "init malformed sha256", cmd: initDry, flags: []string{"--k3s-sha256", "xyz"}, want: []string{"--k3s-sha256", `"xyz"`, "64 hexadecimal digits"}},
		{name: "init base URL not a URL", cmd: initDry, flags: []string{"--k3s-base-url", "mirror.local/k3s"}, want: []string{"--k3s-base-url", "http:// or https://"}},
		{name: "init base URL with a bad port", cmd: initReal, flags: []string{"--k3s-base-url", "http://mirror.local:99999/k3s"}, want: []string{"--k3s-base-url"}},
		{name: "init base URL ftp", cmd: initDry, flags: []string{"--k3s-base-url", "ftp://mirror.local/k3s"}, want: []string{"--k3s-base-url", "http:// or https://"}},
		{name: "init missing k3s binary", cmd: initDry, flags: []string{"--k3s-binary", "$DIR/k3s", "--k3s-sha256", aDigest}, want: []string{"--k3s-binary", "no such file"}},
		{name: "init k3s binary unverifiable", cmd: initDry, flags: []string{"--k3s-binary", "$DIR/k3s"}, inputs: map[string]string{"k3s": "ELF"},
			want: []string{"--k3s-binary", "cannot be verified", "--k3s-sha256", "--k3s-sums"}},
		{name: "init k3s binary not its digest", cmd: initReal, flags: []string{"--k3s-binary", "$DIR/k3s", "--k3s-sha256", aDigest}, inputs: map[string]string{"k3s": "ELF"},
			want: []string{"--k3s-binary", "failed verification", aDigest}},
		{name: "init k3s binary empty value", cmd: initDry, flags: []string{"--k3s-binary", ""}, want: []string{"--k3s-binary must not be empty"}},
		{name: "init k3s binary a directory", cmd: initDry, flags: []string{"--k3s-binary", "$DIR/d", "--k3s-sha256", aDigest}, inputs: map[string]string{"d": dirInput},
			want: []string{"--k3s-binary", "a directory"}},
		{name: "init k3s sums a FIFO", cmd: initDry, flags: []string{"--k3s-sums", "$DIR/sums"}, inputs: map[string]string{"sums": fifoInput},
			want: []string{"--k3s-sums", "not a regular file"}},
		{name: "init k3s sums not a checksum list", cmd: initDry, flags: []string{"--k3s-binary", "$DIR/k3s", "--k3s-sums", "$DIR/sums"},
			inputs: map[string]string{"k3s": "ELF", "sums": "hello\n"}, want: []string{"--k3s-sums", "<sha256>  <file>"}},
		{name: "init k3s images wrong kind", cmd: initDry, flags: []string{"--k3s-images", "$DIR/images.zip"}, inputs: map[string]string{"images.zip": "PK"},
			want: []string{"--k3s-images", ".tar.zst"}},
		{name: "init k3s images unverifiable offline", cmd: initDry, flags: []string{"--k3s-binary", "$DIR/k3s", "--k3s-sha256", aDigest, "--k3s-images", "$DIR/i.tar.zst"},
			inputs: map[string]string{"k3s": "ELF", "i.tar.zst": "x"}, want: []string{"--k3s-images", "--k3s-sums"}},
		{name: "init missing chart archive", cmd: initDry, flags: []string{"--stack-chart", "$DIR/kps.tgz"}, want: []string{"--stack-chart", "no such file"}},
		{name: "init chart archive garbage", cmd: initReal, flags: []string{"--blackbox-chart", "$DIR/bb.tgz"}, inputs: map[string]string{"bb.tgz": "not a chart"},
			want: []string{"--blackbox-chart", "cannot be installed", "monitoring.blackbox.chartVersion"}},
		{name: "init chart archive of another chart", cmd: initDry, flags: []string{"--stack-chart", "$DIR/kps.tgz"}, inputs: map[string]string{"kps.tgz": otherChartInput},
			want: []string{"--stack-chart", "is other, not kube-prometheus-stack"}},
		{name: "init bundle with an offline flag", cmd: initDry, flags: []string{"--bundle", "$DIR/b.tar", "--stack-chart", "$DIR/kps.tgz"},
			want: []string{"--bundle and --stack-chart cannot be used together"}},
		{name: "init missing bundle", cmd: initReal, flags: []string{"--bundle", "$DIR/b.tar"}, want: []string{"bundle", "b.tar", "it does not exist"}},
		{name: "init unusable kubeconfig", cmd: initDry, flags: []string{"--kubeconfig", "$DIR/kc"}, inputs: map[string]string{"kc": "clusters: [\n"},
			want: []string{"--kubeconfig", "not a usable kubeconfig"}},
		{name: "init missing kubeconfig", cmd: initDry, flags: []string{"--kubeconfig", "$DIR/kc"}, want: []string{"--kubeconfig", "no such file"}},
		{name: "init certificate missing", cmd: initDry, config: tlsFiles, want: []string{"tls.certFile", "/etc/ssl/blog.pem does not exist"}},
		{name: "init certificate garbage", cmd: initReal, config: tlsFiles, tree: tree("garbage\n", keyInput),
			want: []string{"tls.certFile", "no PEM certificate"}},
		{name: "init certificate not matching its key", cmd: initDry, config: tlsFiles, tree: tree(certInput, otherKeyInput),
			want: []string{"tls.keyFile", "not the key of the certificate /etc/ssl/blog.pem"}},
		// deploy-app: flags first, the archive before the cluster
		{name: "deploy-app image and archive", cmd: []string{"deploy-app"}, flags: []string{"--image", "a:1", "--archive", "$DIR/app.tar"},
			want: []string{"--image and --archive cannot be used together", "--image, --archive, --rollback, --history"}},
		{name: "deploy-app history and dry run", cmd: deploy, flags: []string{"--history"}, want: []string{"--history and --dry-run cannot be used together"}},
		{name: "deploy-app rollback and archive", cmd: deploy, flags: []string{"--rollback", "--archive", "$DIR/app.tar"}, want: []string{"--archive and --rollback"}},
		{name: "deploy-app missing archive, cluster down", cmd: []string{"deploy-app"}, flags: []string{"--archive", "$DIR/app.tar", "--kubeconfig", "$DIR/kc"},
			inputs: map[string]string{"kc": refusedKube}, want: []string{"--archive", "no such file"}},
		{name: "deploy-app archive not an image archive", cmd: deploy, flags: []string{"--archive", "$DIR/app.tar"}, inputs: map[string]string{"app.tar": "hello"},
			want: []string{"--archive", "not an image archive", "docker save"}},
		{name: "deploy-app archive empty", cmd: deploy, flags: []string{"--archive", "$DIR/app.tar"}, inputs: map[string]string{"app.tar": ""},
			want: []string{"--archive", "is empty"}},
		{name: "deploy-app archive a FIFO", cmd: deploy, flags: []string{"--archive", "$DIR/app.tar"}, inputs: map[string]string{"app.tar": fifoInput},
			want: []string{"--archive", "not a regular file"}},
		{name: "deploy-app negative timeout", cmd: deploy, flags: []string{"--timeout", "-3m"}, want: []string{"--timeout", "positive duration"}},
		{name: "deploy-app bad image", cmd: deploy, flags: []string{"--image", "Not An Image"}, want: []string{"--image", "image reference"}},
		{name: "deploy-app empty containerd socket", cmd: deploy, flags: []string{"--containerd-socket", ""}, want: []string{"--containerd-socket must not be empty"}},
		{name: "deploy-app unusable kubeconfig", cmd: deploy, flags: []string{"--archive", "$DIR/app.tar", "--kubeconfig", "$DIR/kc"},
			inputs: map[string]string{"app.tar": tarInput, "kc": "current-context: nowhere\n"}, want: []string{"--kubeconfig", "not a usable kubeconfig"}},
		{name: "deploy-app revision not a number", cmd: deploy, flags: []string{"--rollback", "latest"}, want: []string{"invalid revision", "--history"}},
		// doctor
		{name: "doctor unparsable prometheus URL", cmd: []string{"doctor"}, flags: []string{"--prometheus-url", "::9090"}, want: []string{"--prometheus-url", "http://127.0.0.1:9090"}},
		{name: "doctor prometheus URL without host", cmd: []string{"doctor"}, flags: []string{"--prometheus-url", "http://"}, want: []string{"--prometheus-url"}},
		{name: "doctor alertmanager URL scheme", cmd: []string{"doctor"}, flags: []string{"--alertmanager-url", "tcp://127.0.0.1:9093"}, want: []string{"--alertmanager-url"}},
		{name: "doctor output format", cmd: []string{"doctor"}, flags: []string{"-o", "yaml"}, want: []string{"--output", "text, json"}},
		{name: "doctor negative timeout", cmd: []string{"doctor"}, flags: []string{"--timeout", "-2s"}, want: []string{"--timeout"}},
		{name: "doctor watch too short", cmd: []string{"doctor"}, flags: []string{"--watch", "10ms"}, want: []string{"--watch", "1s or more"}},
		{name: "doctor unusable kubeconfig", cmd: []string{"doctor"}, flags: []string{"--kubeconfig", "$DIR/kc"}, inputs: map[string]string{"kc": "{{{"},
			want: []string{"--kubeconfig", "not a usable kubeconfig"}},
		// port-forward
		{name: "port-forward on every interface", cmd: []string{"port-forward"}, flags: []string{"--address", "0.0.0.0"}, want: []string{"--address", "loopback"}},
		{name: "port-forward port", cmd: []string{"port-forward"}, flags: []string{"--port", "3100:http"}, want: []string{"--port", "LOCAL:REMOTE"}},
		{name: "port-forward negative grace", cmd: []string{"port-forward"}, flags: []string{"--api-grace", "-1s"}, want: []string{"--api-grace"}},
		{name: "port-forward unusable kubeconfig", cmd: []string{"port-forward"}, flags: []string{"--kubeconfig", "$DIR/kc"}, inputs: map[string]string{"kc": "kind: [\n"},
			want: []string{"--kubeconfig", "not a usable kubeconfig"}},
		// alert test
		{name: "alert test timeout too short", cmd: []string{"alert", "test"}, flags: []string{"--timeout", "1s"}, want: []string{"--timeout", "10s or more"}},
		{name: "alert test alertmanager URL", cmd: []string{"alert", "test"}, flags: []string{"--alertmanager-url", "127.0.0.1:9093"}, want: []string{"--alertmanager-url", "http://127.0.0.1:9093"}},
		{name: "alert test unusable kubeconfig", cmd: []string{"alert", "test"}, flags: []string{"--kubeconfig", "$DIR/kc"}, inputs: map[string]string{"kc": "users: 7\n"},
			want: []string{"--kubeconfig", "not a usable kubeconfig"}},
		// bundle
		{name: "bundle without output", cmd: []string{"bundle"}, want: []string{"--output (-o) is required"}},
		{name: "bundle arch", cmd: []string{"bundle"}, flags: []string{"-o", "$DIR/b.tar", "--arch", "sparc"}, want: []string{"--arch", "amd64, arm64"}},
		{name: "bundle base URL", cmd: []string{"bundle"}, flags: []string{"-o", "$DIR/b.tar", "--k3s-base-url", "github.com/k3s-io"}, want: []string{"--k3s-base-url"}},
		{name: "bundle list images and output", cmd: []string{"bundle"}, flags: []string{"--list-images", "-o", "$DIR/b.tar"}, want: []string{"--list-images and --output"}},
		// version
		{name: "version with an argument", cmd: []string{"version", "extra"}, want: []string{"unknown command"}},
	}
}

// TestDryRunFailsLikeTheRealRun: a preview checks every input and every
// connection the real run needs before it says anything would change, and
// fails with the real run's message and exit code (issue 12, class 4).
func TestDryRunFailsLikeTheRealRun(t *testing.T) {
	type tcase struct {
		name   string
		args   []string
		inputs map[string]string
		code   int
		want   []string
	}
	cases := []tcase{
		{"init: missing k3s binary", []string{"init", "--domain", "blog.example.com", "--k3s-binary", "$DIR/k3s", "--k3s-sha256", aDigest}, nil,
			2, []string{"--k3s-binary", "no such file"}},
		{"init: k3s binary that is not its digest", []string{"init", "--domain", "blog.example.com", "--k3s-binary", "$DIR/k3s", "--k3s-sha256", aDigest},
			map[string]string{"k3s": "ELF"}, 2, []string{"--k3s-binary", "failed verification"}},
		{"init: missing chart archive", []string{"init", "--domain", "blog.example.com", "--stack-chart", "$DIR/kps.tgz"}, nil,
			2, []string{"--stack-chart", "no such file"}},
		{"deploy-app: unreachable API server", []string{"deploy-app", "--kubeconfig", "$DIR/kc", "--archive", "$DIR/app.tar"},
			map[string]string{"kc": refusedKube, "app.tar": tarInput}, 1, []string{"the Kubernetes API server", "127.0.0.1:1", "nothing was changed"}},
		{"deploy-app --rollback: unreachable API server", []string{"deploy-app", "--kubeconfig", "$DIR/kc", "--rollback"},
			map[string]string{"kc": refusedKube}, 1, []string{"the Kubernetes API server", "127.0.0.1:1"}},
	}
	if kc := os.Getenv("HOMELAB_TEST_KUBECONFIG"); kc != "" || os.Getenv("CI") == "true" {
		cases = append(cases, tcase{"deploy-app: no containerd socket", []string{"deploy-app", "--kubeconfig", testutil.TestEnv(t, "HOMELAB_TEST_KUBECONFIG"),
			"--archive", "$DIR/app.tar", "--containerd-socket", "$DIR/containerd.sock"},
			map[string]string{"app.tar": tarInput}, 1, []string{"k3s's containerd", "$DIR/containerd.sock", "does not exist"}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := badInput{name: tc.name, inputs: tc.inputs}
			dir := bad.setUp(t)
			var got [2]string
			for i, dry := range []bool{false, true} {
				bad.cmd = tc.args
				if dry {
					bad.cmd = append(slices.Clone(tc.args), "--dry-run")
				}
				code, stderr := bad.runIn(t, dir, layout.Lock)
				if code != tc.code {
					t.Errorf("dry run %v: exit %d, want %d:\n%s", dry, code, tc.code, stderr)
				}
				for _, w := range tc.want {
					if w = strings.ReplaceAll(w, "$DIR/", ""); !strings.Contains(stderr, w) {
						t.Errorf("dry run %v: stderr does not mention %q:\n%s", dry, w, stderr)
					}
				}
				got[i] = stderr
			}
			if got[0] != got[1] {
				t.Errorf("the dry run fails differently from the real run:\nreal: %s\ndry:  %s", got[0], got[1])
			}
		})
	}
}
