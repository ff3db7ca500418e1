package root_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/cmd/root"
	"github.com/homelab-dev/homelab/pkg/cmd/version"
	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/iostreams"
)

// run runs the tree of a build stamped v1.2.3 with args and returns what
// it printed on stdout.
func run(t *testing.T, args ...string) string {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	cmd := root.NewCmdRoot(stamped(ios))
	cmd.SetArgs(args)
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("homelab %s: %v (stderr %q)", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

func stamped(ios *iostreams.IOStreams) *cmdutil.Factory {
	f := cmdutil.New(ios, "v1.2.3")
	f.Commit, f.BuildDate = "0123456789abcdef", "2026-11-27T10:00:00Z"
	return f
}

// --version and `homelab version` print the same text, and it carries the
// build's stamps and what init installs by default.
func TestVersionFlagPrintsTheVersionCommand(t *testing.T) {
	flag := run(t, "--version")
	cmd := run(t, "version")
	if flag != cmd {
		t.Fatalf("--version printed\n%s\nversion printed\n%s", flag, cmd)
	}
	defaults, err := config.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"homelab v1.2.3 (go", "commit:   0123456789abcdef", "built:    2026-11-27T10:00:00Z",
		"k3s " + defaults.K3s.Version, "kube-prometheus-stack " + defaults.Monitoring.ChartVersion,
		"prometheus-blackbox-exporter " + defaults.Monitoring.Blackbox.ChartVersion} {
		if !strings.Contains(flag, want) {
			t.Errorf("--version output lacks %q:\n%s", want, flag)
		}
	}
	if !strings.HasSuffix(flag, "\n") {
		t.Errorf("--version output does not end its last line: %q", flag)
	}
}

// -o json holds the same facts as the text.
func TestVersionJSON(t *testing.T) {
	var info version.Info
	out := run(t, "version", "-o", "json")
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("version -o json is not JSON: %v\n%s", err, out)
	}
	if text := run(t, "version"); info.Text() != text {
		t.Fatalf("the JSON's facts print as\n%s\nbut the text is\n%s", info.Text(), text)
	}
	if info.Version != "v1.2.3" || info.Commit != "0123456789abcdef" || info.K3s == "" || len(info.Charts) != 3 {
		t.Fatalf("unexpected facts: %+v", info)
	}
}

// -v stays --verbose: the version flag has no shorthand.
func TestVerboseKeepsItsShorthand(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	cmd := root.NewCmdRoot(stamped(ios))
	if fl := cmd.PersistentFlags().ShorthandLookup("v"); fl == nil || fl.Name != "verbose" {
		t.Fatalf("-v is %v, want --verbose", fl)
	}
	if fl := cmd.Flags().Lookup("version"); fl == nil || fl.Shorthand != "" {
		t.Fatalf("--version flag: %+v", fl)
	}
}

// An unknown -o is a usage error, not an empty or partial answer.
func TestVersionRejectsUnknownOutput(t *testing.T) {
	ios, _, out, errOut := iostreams.Test()
	cmd := root.NewCmdRoot(stamped(ios))
	cmd.SetArgs([]string{"version", "-o", "yaml"})
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	err := cmd.Execute()
	var flagErr *cmdutil.FlagError
	if !errors.As(err, &flagErr) || !strings.Contains(err.Error(), "text, json") || out.Len() != 0 {
		t.Fatalf("version -o yaml: error %v, output %q; want a flag error naming text and json, and no output", err, out.String())
	}
}
