package config_test

import (
	"errors"
	"testing"

	"github.com/homelab-dev/homelab/pkg/config"
)

// FuzzParse loads any bytes as homelab.yaml: either a configuration comes
// back, or a *config.Error listing at least one problem, each a short line
// (values and keys are cut), never a panic or another kind of error. Run
// longer with `make fuzz`.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		string(config.DefaultsYAML()),
		"domain: blog.example.com\ntls:\n  mode: files\n  certFile: \"/etc/a.pem;\\n  include /etc/passwd\"\n  keyFile: /etc/k.pem\n",
		"alerts:\n  notify:\n    - telegram: {botToken: \"123:SECRET\", chatID: 42}\n    - ntfy: {url: https://ntfy.sh/x}\n",
		"alerts:\n  notify:\n    - {ntfy: {url: https://ntfy.sh/x}, webhook: {url: https://example.com}}\n",
		"app: [unclosed\n",
		"app:\n  command: [pnpm, null, start]\n",
		"a: &a [*a, *a]\nb: &b [*a, *a]\nc: [*b, *b]\n",
		"domain: a.example.com\n---\ndomain: b.example.com\n",
		"app:\n  port: 1e9\n  image: nextjs@sha256:0000\n",
		"\xff\xfe\x00",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("homelab.yaml", data)
		if err == nil {
			if cfg == nil {
				t.Fatal("no error and no configuration")
			}
			return
		}
		var cfgErr *config.Error
		if !errors.As(err, &cfgErr) {
			t.Fatalf("error is %T, not *config.Error (bad input must exit 2): %v", err, err)
		}
		if len(cfgErr.Problems) == 0 {
			t.Fatal("a *config.Error with no problems")
		}
		for _, p := range cfgErr.Problems {
			if n := len(p.String()); n > 1024 {
				t.Fatalf("a problem takes %d bytes: %.200s...", n, p.String())
			}
		}
	})
}
