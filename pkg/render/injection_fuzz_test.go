package render

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/layout"
)

// injectionSeeds are configurations that try to smuggle syntax into a
// generated file through each value that reaches one (issue 12, class 1).
// The first is the example.
var injectionSeeds = []string{
	"tls:\n  mode: files\n  certFile: \"/etc/ssl/a.pem;\\n    include /etc/passwd;\\n#\"\n  keyFile: /etc/ssl/k.pem\n",
	"tls:\n  mode: files\n  certFile: /etc/ssl/c.pem\n  keyFile: \"/etc/ssl/k.pem; } server { listen 8080\"\n",
	"tls:\n  mode: files\n  certFile: /etc/ssl/homelab/fullchain.pem\n  keyFile: /etc/ssl/homelab/privkey.pem\n",
	"domain: \"a.example.com; return 200 x\"\n",
	"domain: \"a.example.com\\nroot_url: x\"\n",
	"domain: blog.example.com\nemail: me@example.com\ntls: {mode: certbot}\n",
	"monitoring:\n  grafana:\n    path: \"/g { return 200; }\"\n",
	"monitoring:\n  namespace: \"x\\nExecStartPre=/bin/sh\"\n",
	"monitoring:\n  release: \"x\\n[Service]\"\n",
	"monitoring:\n  prometheus:\n    retention: \"7d\\nfoo: bar\"\n    storageSize: \"4Gi\\n  x: y\"\n    retentionSize: \"2GB # x\"\n",
	"monitoring:\n  chartVersion: \"88.5.3\\nx: 1\"\n",
	"app:\n  clusterIP: \"10.43.0.30;\"\n  port: 3000\n",
	"",
}

// FuzzRenderedFilesKeepTheirShape loads random configurations and, for every
// one that validates, renders all files and checks that no value changed
// their structure: the Nginx site has the same directives as the defaults'
// render in the same TLS mode, the unit the same lines and sections, and
// the values files parse to the same keys. `go test` runs the seeds.
func FuzzRenderedFilesKeepTheirShape(f *testing.F) {
	for _, s := range injectionSeeds {
		f.Add(s)
	}
	r, err := New()
	if err != nil {
		f.Fatal(err)
	}
	refs := map[string]shape{}
	for mode, doc := range map[string]string{
		config.TLSNone:    "",
		config.TLSCertbot: "email: me@example.com\ntls: {mode: certbot}\n",
		config.TLSFiles:   "tls: {mode: files, certFile: /etc/ssl/c.pem, keyFile: /etc/ssl/k.pem}\n",
	} {
		cfg, err := config.Parse("reference.yaml", []byte(doc))
		if err != nil {
			f.Fatal(err)
		}
		if refs[mode], err = shapeOf(r, cfg); err != nil {
			f.Fatalf("reference render for tls.mode %s: %v", mode, err)
		}
	}
	f.Fuzz(func(t *testing.T, doc string) {
		cfg, err := config.Parse("fuzz.yaml", []byte(doc))
		if err != nil {
			return // refused cleanly: nothing is rendered
		}
		got, err := shapeOf(r, cfg)
		if err != nil {
			t.Fatalf("valid configuration does not render:\n%s\n%v", doc, err)
		}
		want := refs[cfg.TLS.Mode]
		for _, c := range []struct{ what, got, want string }{
			{"Nginx site directives", got.nginx, want.nginx},
			{"Nginx bootstrap site directives", got.bootstrap, want.bootstrap},
			{"unit lines", got.unit, want.unit},
			{"kube-prometheus-stack values keys", got.stack, want.stack},
			{"blackbox values keys", got.blackbox, want.blackbox},
		} {
			if c.got != c.want {
				t.Errorf("configuration changed the %s:\n%s\ngot:\n%s\nwant:\n%s", c.what, doc, c.got, c.want)
			}
		}
	})
}

// shape is what a configuration's values must never change in the files.
type shape struct{ nginx, bootstrap, unit, stack, blackbox string }

func shapeOf(r *Renderer, cfg *config.Config) (shape, error) {
	files, err := r.All(cfg)
	if err != nil {
		return shape{}, err
	}
	byPath := map[string][]byte{}
	for _, f := range files {
		byPath[f.Path] = f.Data
	}
	var s shape
	if s.nginx, err = nginxDirectives(byPath[layout.NginxSite]); err != nil {
		return s, fmt.Errorf("nginx site: %w", err)
	}
	boot, err := r.CertbotBootstrapSite(cfg)
	if err != nil {
		return s, err
	}
	if s.bootstrap, err = nginxDirectives(boot); err != nil {
		return s, fmt.Errorf("nginx bootstrap site: %w", err)
	}
	s.unit = unitShape(byPath[layout.PortForwardUnit])
	if s.stack, err = yamlKeys(byPath[layout.ValuesStack]); err != nil {
		return s, fmt.Errorf("kube-prometheus-stack values: %w", err)
	}
	if s.blackbox, err = yamlKeys(byPath[layout.ValuesBlackbox]); err != nil {
		return s, fmt.Errorf("blackbox values: %w", err)
	}
	return s, nil
}

// nginxDirectives tokenizes a site as Nginx does (words, quoted strings,
// '#' comments, ';', '{', '}') and lists each directive's name with its
// block depth: an injected value shows up as a new name, a new ';' or a
// new block.
func nginxDirectives(site []byte) (string, error) {
	var out []string
	var words []string
	depth := 0
	src := string(site)
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}':
			if c == '}' {
				if len(words) > 0 {
					return "", fmt.Errorf("directive %q not ended by ';'", words)
				}
				depth--
				if depth < 0 {
					return "", fmt.Errorf("unbalanced '}'")
				}
				i++
				continue
			}
			if len(words) == 0 {
				return "", fmt.Errorf("empty directive before %q", c)
			}
			out = append(out, fmt.Sprintf("%s%s%c/%d", strings.Repeat("  ", depth), words[0], c, len(words)))
			if c == '{' {
				depth++
			}
			words = words[:0]
			i++
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) {
				return "", fmt.Errorf("unterminated quote")
			}
			words = append(words, src[i+1:j])
			i = j + 1
		default:
			j := i
			for j < len(src) && !strings.ContainsRune(" \t\r\n;{}#\"'", rune(src[j])) {
				j++
			}
			words = append(words, src[i:j])
			i = j
		}
	}
	if depth != 0 || len(words) > 0 {
		return "", fmt.Errorf("unclosed block or directive at the end")
	}
	return strings.Join(out, "\n"), nil
}

// unitShape is the unit's sections and the key of each setting, in order.
func unitShape(unit []byte) string {
	var out []string
	for _, line := range strings.Split(string(unit), "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			out = append(out, "")
		case strings.HasPrefix(line, "["):
			out = append(out, line)
		default:
			key, _, ok := strings.Cut(line, "=")
			if !ok {
				key = "(not a setting) " + line
			}
			out = append(out, key)
		}
	}
	return strings.Join(out, "\n")
}

// yamlKeys parses a values file and lists every key path it sets.
func yamlKeys(data []byte) (string, error) {
	var doc any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return "", err
	}
	var keys []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				keys = append(keys, prefix+"."+k)
				walk(prefix+"."+k, e)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", prefix, i), e)
			}
		}
	}
	walk("", doc)
	sort.Strings(keys)
	return strings.Join(slices.Compact(keys), "\n"), nil
}

// TestShapeCatchesInjection renders values that validation would refuse,
// straight into a Config, to show the fuzz target's checks see each kind of
// injection (a check that cannot fail proves nothing).
func TestShapeCatchesInjection(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	base := func() *config.Config {
		cfg, err := config.Parse("base.yaml", []byte("tls: {mode: files, certFile: /etc/ssl/c.pem, keyFile: /etc/ssl/k.pem}\n"))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	want, err := shapeOf(r, base())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		set  func(*config.Config)
		diff func(shape) string
	}{
		{"issue example in tls.certFile", func(c *config.Config) { c.TLS.CertFile = "/etc/ssl/a.pem;\n    include /etc/passwd" },
			func(s shape) string { return s.nginx }},
		{"new line in the namespace", func(c *config.Config) { c.Monitoring.Namespace = "x\n[Service]\nExecStartPre=/bin/sh" },
			func(s shape) string { return s.unit }},
		{"new key in retention", func(c *config.Config) { c.Monitoring.Prometheus.Retention = "7d\n    evil: 1" },
			func(s shape) string { return s.stack }},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := base()
			c.set(cfg)
			got, err := shapeOf(r, cfg)
			if err == nil && c.diff(got) == c.diff(want) {
				t.Errorf("the shape checks did not notice the injected value")
			}
		})
	}
}
