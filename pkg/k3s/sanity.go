package k3s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
	"go.yaml.in/yaml/v3"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/plan"
)

// mustDisable are the packaged components that take ports 80 and 443.
var mustDisable = []string{"traefik", "servicelb"}

// SanityStep is a preflight check: an existing k3s (a k3s.service unit is
// present) must disable Traefik and servicelb, in its unit or in
// ConfigPath. It never changes anything.
func SanityStep(h host.Host) plan.Step {
	return plan.Step{
		Name: "k3s config sanity",
		Check: func(context.Context) (plan.Status, error) {
			summary, err := CheckExisting(h)
			return plan.Status{Summary: summary}, err
		},
		Apply: func(context.Context) error { return nil }, // a check only; never pending
	}
}

// CheckExisting returns an error telling how to fix an existing k3s whose
// packaged Traefik or servicelb would take ports 80/443 from Nginx, or a
// one-line summary of what it found.
func CheckExisting(h host.Host) (string, error) {
	unitData, err := h.ReadFile(UnitPath)
	if errors.Is(err, fs.ErrNotExist) {
		return "no k3s service yet", nil
	}
	if err != nil {
		return "", err
	}
	disabled, err := unitDisables(unitData)
	if err != nil {
		return "", fmt.Errorf("%s: %w", UnitPath, err)
	}
	sources := []string{UnitPath}
	cfg, err := h.ReadFile(ConfigPath)
	switch {
	case err == nil:
		fromConfig, err := configDisables(cfg)
		if err != nil {
			return "", fmt.Errorf("%s: %w", ConfigPath, err)
		}
		for k := range fromConfig {
			disabled[k] = true
		}
		sources = append(sources, ConfigPath)
	case !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	var missing []string
	for _, c := range mustDisable {
		if !disabled[c] {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return "the installed k3s disables traefik and servicelb", nil
	}
	return "", fmt.Errorf("the installed k3s runs %s (not disabled in %s), which would take ports 80 and 443 from Nginx: "+
		"add `disable: [traefik, servicelb]` to %s (merge it with any disable list there), run `systemctl restart k3s`, then run homelab again",
		strings.Join(missing, " and "), strings.Join(sources, " or "), ConfigPath)
}

// unitDisables reads the components an ExecStart line disables.
func unitDisables(data []byte) (map[string]bool, error) {
	opts, err := unit.DeserializeOptions(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var execStart string
	for _, o := range opts {
		if o.Section == "Service" && o.Name == "ExecStart" {
			execStart = o.Value // an empty assignment resets; the last one counts
		}
	}
	disabled := map[string]bool{}
	// go-systemd keeps line continuations; systemd reads them as blanks.
	args := splitCommand(strings.ReplaceAll(execStart, "\\\n", " "))
	for n, a := range args {
		for _, flag := range []string{"--disable", "--no-deploy"} {
			var value string
			switch {
			case a == flag && n+1 < len(args):
				value = args[n+1]
			case strings.HasPrefix(a, flag+"="):
				value = strings.TrimPrefix(a, flag+"=")
			default:
				continue
			}
			for _, c := range strings.Split(value, ",") {
				disabled[strings.TrimSpace(c)] = true
			}
		}
	}
	return disabled, nil
}

// splitCommand splits an ExecStart value into words as systemd does for the
// forms k3s's installer writes: blanks separate words, quotes group them.
func splitCommand(s string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped, inWord = true, true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// configDisables reads the components k3s's config.yaml disables: `disable`
// (or the older `no-deploy`) as a list or a comma-separated string.
func configDisables(data []byte) (map[string]bool, error) {
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return nil, err
	}
	disabled := map[string]bool{}
	for _, key := range []string{"disable", "disable+", "no-deploy", "no-deploy+"} {
		switch v := cfg[key].(type) {
		case nil:
		case string:
			for _, c := range strings.Split(v, ",") {
				disabled[strings.TrimSpace(c)] = true
			}
		case []any:
			for _, item := range v {
				if s, ok := item.(string); ok {
					for _, c := range strings.Split(s, ",") {
						disabled[strings.TrimSpace(c)] = true
					}
				}
			}
		default:
			return nil, fmt.Errorf("%s is a %T, want a list of component names", key, v)
		}
	}
	return disabled, nil
}
