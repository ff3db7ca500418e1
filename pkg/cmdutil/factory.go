// Package cmdutil holds what every command shares: the Factory of lazily built
// dependencies, the configuration flags, and the mapping of errors to exit codes.
package cmdutil

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/helm"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/kube"
	"github.com/homelab-dev/homelab/pkg/layout"
)

// Factory builds a command's dependencies on demand, so `homelab --help`
// touches nothing and tests replace any of them.
type Factory struct {
	IOStreams *iostreams.IOStreams
	// Root is the --root flag: every host path is taken under it.
	Root string
	// ConfigPath is the --config flag.
	ConfigPath string
	// Kubeconfig is the --kubeconfig flag; k3s's (under --root) when empty.
	Kubeconfig string
	// NoTUI is the --no-tui flag: plain progress lines even on a terminal.
	NoTUI bool
	// Verbose is the --verbose flag: debug logs (Helm, containerd) on stderr.
	Verbose bool
	// Host returns the machine to act on; tests replace it with a recorder.
	Host func() host.Host
	// Now is the clock; time.Now in production.
	Now func() time.Time
	// Version is the build's version string; Commit and BuildDate are the
	// commit it was built from and when ("unknown" when not recorded).
	Version, Commit, BuildDate string
	// Executable is the running homelab binary (init installs it where its
	// units run it).
	Executable func() (string, error)
	// HTTP downloads release assets and charts.
	HTTP *http.Client
	// Kube connects to the cluster (k3s's kubeconfig under --root); tests
	// replace it.
	Kube func() (*kube.Client, error)
	// Helm returns the Helm engine for the cluster.
	Helm func() (*helm.Engine, error)
	// IsRoot reports whether homelab runs with root's privileges (euid 0);
	// tests replace it.
	IsRoot func() bool
}

// Logger is where diagnostic lines go: stderr, at debug level with
// --verbose, else warnings only. Data never goes there.
func (f *Factory) Logger() *slog.Logger {
	level := slog.LevelWarn
	if f.Verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(f.IOStreams.ErrOut, &slog.HandlerOptions{Level: level}))
}

// UseTUI reports whether a command may show its interactive display: on a
// terminal, not in CI, not with --no-tui.
func (f *Factory) UseTUI() bool { return !f.NoTUI && f.IOStreams.Interactive() }

// KubeconfigPath is --kubeconfig, else k3s's kubeconfig under --root.
func (f *Factory) KubeconfigPath() (string, error) {
	if f.Kubeconfig != "" {
		return f.Kubeconfig, nil
	}
	return f.HostPath(layout.K3sKubeconfig)
}

// HostPath maps a host path under --root the way host.Local does, for the
// few consumers that open files themselves (client-go reads its kubeconfig,
// Helm keeps its cache). A path that cannot be resolved under the root (a
// symlink loop, a directory it may not read) is an error, never a path that
// might lie outside it.
func (f *Factory) HostPath(p string) (string, error) {
	local, err := host.ResolveUnder(f.Root, p)
	if err != nil {
		return "", fmt.Errorf("%s under --root %s: %w", p, f.Root, err)
	}
	return local, nil
}

// New returns a Factory over the real machine.
func New(ios *iostreams.IOStreams, version string) *Factory {
	f := &Factory{IOStreams: ios, Now: time.Now, Executable: executable, IsRoot: func() bool { return os.Geteuid() == 0 }}
	f.stampBuild(version, readBuildInfo())
	f.Host = func() host.Host {
		return &host.Local{Root: f.Root, BackupDir: layout.BackupDir, Now: f.Now, NoBackupUnder: []string{layout.StateDir}}
	}
	f.HTTP = &http.Client{Timeout: 10 * time.Minute}
	var client *kube.Client
	f.Kube = func() (*kube.Client, error) {
		if client != nil {
			return client, nil
		}
		path, err := f.KubeconfigPath()
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(path); err != nil {
			if f.Kubeconfig != "" {
				return nil, fmt.Errorf("--kubeconfig %s: %w", f.Kubeconfig, err)
			}
			return nil, fmt.Errorf("no cluster yet: %s does not exist (k3s not installed)", layout.K3sKubeconfig)
		}
		c, err := kube.FromKubeconfig(path)
		if err != nil {
			return nil, err
		}
		client = c
		return c, nil
	}
	f.Helm = func() (*helm.Engine, error) {
		c, err := f.Kube()
		if err != nil {
			return nil, err
		}
		kubeconfig, err := f.KubeconfigPath()
		if err != nil {
			return nil, err
		}
		home, err := f.HostPath(layout.HelmHome)
		if err != nil {
			return nil, err
		}
		log := f.Logger()
		return &helm.Engine{Kubeconfig: kubeconfig, Kube: c, Home: home,
			Log: func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...), "component", "helm") }}, nil
	}
	return f
}

// executable is the running binary with symlinks resolved.
func executable() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(p)
}

// OnRealRoot reports whether host paths are the real machine's (no --root).
func (f *Factory) OnRealRoot() bool { return f.Root == "" || f.Root == "/" }

// Config resolves the configuration: --config, else ./homelab.yaml, else
// the configuration the last init applied on this host (under --root), else
// the embedded defaults; then flags.
func (f *Factory) Config(flags *ConfigFlags) (*config.Loaded, error) {
	var o config.Overrides
	if flags != nil {
		var err error
		if o, err = flags.Overrides(); err != nil {
			return nil, err
		}
	}
	return config.Load(config.Options{Path: f.ConfigPath, FallbackPath: "homelab.yaml",
		AppliedPath: layout.EffectiveConfig, ReadApplied: f.Host().ReadFile, Overrides: o})
}

// SayConfig tells the user which configuration a command works from, on
// stderr (stdout is for data).
func SayConfig(w io.Writer, l *config.Loaded) {
	fmt.Fprintf(w, "Configuration: %s\n", l.Describe())
}

// ConfigFlags are the flags that set configuration keys: one flag of its own
// for each key in config.Flags, and --set KEY=VALUE for any key. Their
// values go through the same decoder as homelab.yaml.
type ConfigFlags struct {
	values map[string]*string
	set    []string
	cmd    *cobra.Command
}

// AddConfigFlags registers config.Flags and --set on cmd.
func AddConfigFlags(cmd *cobra.Command) *ConfigFlags {
	c := &ConfigFlags{cmd: cmd, values: map[string]*string{}}
	fl := cmd.Flags()
	for _, f := range config.Flags {
		v := &rawFlag{typ: "string"}
		if f.Number {
			v.typ = "int"
		}
		c.values[f.Name] = &v.value
		fl.Var(v, f.Name, f.Help+" (config: "+f.Key+")")
	}
	fl.StringArrayVar(&c.set, "set", nil, "set any configuration key, like --set app.replicas=2 or --set 'app.command=[pnpm, start]' (the value is YAML, as in homelab.yaml; repeatable)")
	return c
}

// rawFlag keeps a configuration flag's text as given, for the decoder to
// type; typ is what --help shows (string, int).
type rawFlag struct{ value, typ string }

func (r *rawFlag) String() string     { return r.value }
func (r *rawFlag) Set(s string) error { r.value = s; return nil }
func (r *rawFlag) Type() string       { return r.typ }

// Overrides returns the keys the user set, flags of their own first, then
// each --set in order (a later one wins).
func (c *ConfigFlags) Overrides() (config.Overrides, error) {
	var o config.Overrides
	fl := c.cmd.Flags()
	for _, f := range config.Flags {
		if !fl.Changed(f.Name) {
			continue
		}
		// A flag of its own takes its value literally (a JSON string is a
		// quoted YAML scalar), except a number flag's.
		value, _ := json.Marshal(*c.values[f.Name])
		if f.Number {
			value = []byte(*c.values[f.Name])
		}
		o = append(o, config.Setting{Key: f.Key, Value: string(value), Flag: "--" + f.Name})
	}
	for _, kv := range c.set {
		key, value, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(key) == "" {
			return nil, FlagErrorf("invalid value %q for --set: want KEY=VALUE, like --set app.replicas=2", kv)
		}
		o = append(o, config.Setting{Key: strings.TrimSpace(key), Value: value, Flag: "--set"})
	}
	return o, nil
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
