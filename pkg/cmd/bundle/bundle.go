// Package bundle is `homelab bundle`: on a machine with internet, gather
// everything init downloads into one verified archive for an offline install.
package bundle

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	bundlepkg "github.com/homelab-dev/homelab/pkg/bundle"
	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/k3s"
)

// Options are bundle's inputs.
type Options struct {
	IO      *iostreams.IOStreams
	Config  func() (*config.Loaded, error)
	HTTP    *http.Client
	Version string

	Output     string
	Arch       string
	ListImages bool
	K3sBaseURL string
	// Mirrors maps registry hosts to mirrors (bundle.Options.Mirrors); not
	// a flag: tests set it.
	Mirrors map[string]string
}

// NewCmdBundle builds the command; runF replaces Run in tests.
func NewCmdBundle(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "bundle (-o FILE [--arch amd64|arm64] | --list-images)",
		Short: "Gather everything init downloads into one archive, for a server without internet",
		Long: heredoc.Doc(`
			On a machine with internet, download everything 'homelab init' would download
			for the configuration, and write it to one archive for a server that has none:

			  - the k3s binary and its airgap images, checked against the release's
			    sha256sum-<arch>.txt (which is included);
			  - the kube-prometheus-stack and prometheus-blackbox-exporter charts, at the
			    configured versions;
			  - every container image those charts run with homelab's values (Prometheus,
			    Alertmanager, the operator and its config reloader, Grafana and its
			    sidecars, the exporters, the admission webhook jobs), found by rendering the
			    charts for the configured k3s's Kubernetes version, pulled for linux/<arch>
			    into one image tarball that k3s imports at start.

			The archive starts with a manifest (versions, architecture, every image, the
			sha256 of every file); 'homelab init --bundle FILE' checks all of it before
			using anything. The file appears only when complete. Registry credentials,
			if any are needed, come from the Docker config (docker login).

			Make the bundle with the configuration the server will use: the k3s and
			chart versions must match.

			--list-images prints the images only (one per line, on stdout), fetching
			just the charts: for mirroring them into a registry of your own.
		`),
		Example: heredoc.Doc(`
			# On a connected machine: a bundle for an amd64 server
			$ homelab bundle -o homelab-bundle.tar

			# For a Raspberry Pi 4/5 (arm64), with the server's configuration
			$ homelab bundle --config homelab.yaml --arch arm64 -o homelab-bundle-arm64.tar

			# Just the images the charts run, to mirror them elsewhere
			$ homelab bundle --list-images

			# Then copy it to the server and install from it, offline
			$ scp homelab-bundle.tar server:
			$ sudo homelab init --bundle homelab-bundle.tar
		`),
		Args: cobra.NoArgs,
	}
	flags := cmdutil.AddConfigFlags(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&opts.Output, "output", "o", "", "file to write the bundle to (required)")
	fl.StringVar(&opts.Arch, "arch", defaultArch(), "architecture of the server: "+strings.Join(bundlepkg.Arches, " or "))
	fl.BoolVar(&opts.ListImages, "list-images", false, "print the images the charts run (one per line) and write no bundle")
	fl.StringVar(&opts.K3sBaseURL, "k3s-base-url", "", "k3s release download URL (a mirror with the GitHub release layout)")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if err := validate(opts); err != nil {
			return err
		}
		opts.HTTP, opts.Version = f.HTTP, f.Version
		opts.Config = func() (*config.Loaded, error) { return f.Config(flags) }
		if runF != nil {
			return runF(c.Context(), opts)
		}
		return Run(c.Context(), opts)
	}
	return cmd
}

func defaultArch() string {
	if slices.Contains(bundlepkg.Arches, runtime.GOARCH) {
		return runtime.GOARCH
	}
	return "amd64"
}

// validate checks the flags before anything is downloaded.
func validate(opts *Options) error {
	if opts.ListImages {
		if opts.Output != "" {
			return cmdutil.FlagErrorf("--list-images and --output cannot be used together: --list-images writes no bundle")
		}
		return nil
	}
	if opts.Output == "" {
		return cmdutil.FlagErrorf("--output (-o) is required: the file to write the bundle to, like -o homelab-bundle.tar")
	}
	if !slices.Contains(bundlepkg.Arches, opts.Arch) {
		return cmdutil.FlagErrorf("--arch %q is invalid: want one of %s", opts.Arch, strings.Join(bundlepkg.Arches, ", "))
	}
	if err := cmdutil.CheckHTTPURL("--k3s-base-url", opts.K3sBaseURL, k3s.DefaultBaseURL); err != nil {
		return err
	}
	dir := filepath.Dir(opts.Output)
	info, err := os.Stat(dir)
	switch {
	case err != nil:
		return cmdutil.FlagErrorf("--output %s: directory %s: %v", opts.Output, dir, err)
	case !info.IsDir():
		return cmdutil.FlagErrorf("--output %s: %s is not a directory", opts.Output, dir)
	}
	if info, err := os.Stat(opts.Output); err == nil && info.IsDir() {
		return cmdutil.FlagErrorf("--output %s is a directory: give a file name, like %s", opts.Output, filepath.Join(opts.Output, "homelab-bundle.tar"))
	}
	return nil
}

// Run writes the bundle opts describe.
func Run(ctx context.Context, opts *Options) error {
	loaded, err := opts.Config()
	if err != nil {
		return err
	}
	cfg := loaded.Config
	if opts.ListImages {
		refs, err := bundlepkg.ListImages(ctx, cfg)
		if err != nil {
			return err
		}
		for _, r := range refs {
			fmt.Fprintln(opts.IO.Out, r)
		}
		return nil
	}
	out := opts.IO.ErrOut
	fmt.Fprintf(out, "Gathering an offline bundle for linux/%s: k3s %s, kube-prometheus-stack %s, prometheus-blackbox-exporter %s\n",
		opts.Arch, cfg.K3s.Version, cfg.Monitoring.ChartVersion, cfg.Monitoring.Blackbox.ChartVersion)
	m, err := bundlepkg.Write(ctx, opts.Output, bundlepkg.Options{
		Config: cfg, Arch: opts.Arch, HTTP: opts.HTTP, K3sBaseURL: opts.K3sBaseURL, Mirrors: opts.Mirrors,
		Version:  opts.Version,
		Progress: func(line string) { fmt.Fprintf(out, "  %s\n", line) },
	})
	if err != nil {
		return err
	}
	info, err := os.Stat(opts.Output)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Wrote %s (%s): k3s %s, %d charts, %d images for linux/%s.\n",
		opts.Output, humanSize(info.Size()), m.K3s.Version, len(m.Charts), len(m.Images), m.Arch)
	fmt.Fprintf(out, "Copy it to the server and run: sudo homelab init --bundle %s\n", filepath.Base(opts.Output))
	return nil
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
