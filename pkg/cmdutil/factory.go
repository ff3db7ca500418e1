// Package cmdutil holds what every command shares: the Factory of lazily built
// dependencies, the configuration flags, and the mapping of errors to exit codes.
package cmdutil

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
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
func (f *Factory) KubeconfigPath() string {
	if f.Kubeconfig != "" {
		return f.Kubeconfig
	}
	return f.HostPath(layout.K3sKubeconfig)
}

// HostPath maps a host path under --root the way host.Local does, for the
// few consumers that open files themselves (client-go reads its kubeconfig,
// Helm keeps its cache). When the path cannot be resolved (a symlink loop, a
// directory it may not read) it is returned as it would be on the machine:
// opening it then fails for the same reason.
func (f *Factory) HostPath(p string) string {
	local, err := host.ResolveUnder(f.Root, p)
	if err != nil {
		return filepath.Join(f.Root, filepath.Clean("/"+p))
	}
	return local
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
		path := f.KubeconfigPath()
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
		log := f.Logger()
		return &helm.Engine{Kubeconfig: f.KubeconfigPath(), Kube: c, Home: f.HostPath(layout.HelmHome),
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
func (f *Factory) Config(o config.Overrides) (*config.Loaded, error) {
	return config.Load(config.Options{Path: f.ConfigPath, FallbackPath: "homelab.yaml",
		AppliedPath: layout.EffectiveConfig, ReadApplied: f.Host().ReadFile, Overrides: o})
}

// SayConfig tells the user which configuration a command works from, on
// stderr (stdout is for data).
func SayConfig(w io.Writer, l *config.Loaded) {
	fmt.Fprintf(w, "Configuration: %s\n", l.Describe())
}

// ConfigFlags are the flags that override configuration keys.
type ConfigFlags struct {
	domain, email, appImage, tlsMode string
	appPort                          int
	cmd                              *cobra.Command
}

// AddConfigFlags registers --domain, --email, --app-image, --app-port and
// --tls-mode on cmd.
func AddConfigFlags(cmd *cobra.Command) *ConfigFlags {
	c := &ConfigFlags{cmd: cmd}
	fl := cmd.Flags()
	fl.StringVar(&c.domain, "domain", "", "public DNS name of the server (config: domain)")
	fl.StringVar(&c.email, "email", "", "contact e-mail for Let's Encrypt (config: email)")
	fl.StringVar(&c.appImage, "app-image", "", "the app's image reference, like nextjs-app:latest (config: app.image)")
	fl.IntVar(&c.appPort, "app-port", 0, "port the app listens on in its container (config: app.port)")
	fl.StringVar(&c.tlsMode, "tls-mode", "", "none, certbot or files (config: tls.mode)")
	return c
}

// Overrides returns the flags the user set.
func (c *ConfigFlags) Overrides() config.Overrides {
	var o config.Overrides
	fl := c.cmd.Flags()
	if fl.Changed("domain") {
		o.Domain = &c.domain
	}
	if fl.Changed("email") {
		o.Email = &c.email
	}
	if fl.Changed("app-image") {
		o.AppImage = &c.appImage
	}
	if fl.Changed("app-port") {
		o.AppPort = &c.appPort
	}
	if fl.Changed("tls-mode") {
		o.TLSMode = &c.tlsMode
	}
	return o
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
