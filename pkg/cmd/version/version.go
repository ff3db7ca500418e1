// Package version is `homelab version` and the text `homelab --version`
// prints: what this binary is, and what it installs.
package version

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/homelab-dev/homelab/pkg/bundle"
	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/deploy"
)

// Info is what `homelab version` reports; -o json prints it as is.
type Info struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	// BuildDate is when a release build was made (RFC 3339); for a build
	// without that stamp, the commit's time if Go recorded it.
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
	// K3s and Charts are what init installs unless homelab.yaml pins other
	// versions: the embedded default configuration's, and the app chart
	// built into the binary.
	K3s    string  `json:"k3s"`
	Charts []Chart `json:"charts"`
}

// Chart is a Helm chart at the version homelab installs.
type Chart struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Collect gathers Info for the running build. The pinned versions are read
// from the embedded defaults, the same source init reads them from, so the
// two cannot disagree.
func Collect(f *cmdutil.Factory) (Info, error) {
	defaults, err := config.Defaults()
	if err != nil {
		return Info{}, err
	}
	m := defaults.Monitoring
	return Info{
		Version:   f.Version,
		Commit:    f.Commit,
		BuildDate: f.BuildDate,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
		K3s:       defaults.K3s.Version,
		Charts: []Chart{
			{Name: bundle.StackChart, Version: m.ChartVersion},
			{Name: bundle.BlackboxChart, Version: m.Blackbox.ChartVersion},
			{Name: deploy.ChartName, Version: deploy.ChartVersion},
		},
	}, nil
}

// Text is the human form, the same for `homelab version` and `homelab
// --version`. Its first line is the short answer scripts have always cut.
func (i Info) Text() string {
	s := fmt.Sprintf("homelab %s (%s, %s)\n", i.Version, i.GoVersion, i.Platform)
	s += fmt.Sprintf("  commit:   %s\n", i.Commit)
	s += fmt.Sprintf("  built:    %s\n", i.BuildDate)
	s += fmt.Sprintf("  installs: k3s %s\n", i.K3s)
	for _, c := range i.Charts {
		s += fmt.Sprintf("            chart %s %s\n", c.Name, c.Version)
	}
	return s
}

// Options are `homelab version`'s flags.
type Options struct {
	Output string
}

// NewCmdVersion prints the build's version, commit, date, Go version and the
// versions of what it installs.
func NewCmdVersion(f *cmdutil.Factory) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print homelab's version and the k3s and chart versions it installs",
		Long: heredoc.Doc(`
			Print homelab's version, the commit and date it was built from, the Go
			version, and the k3s and Helm chart versions init installs unless
			homelab.yaml pins others. 'homelab --version' prints the same text.
		`),
		Example: heredoc.Doc(`
			$ homelab version
			$ homelab version -o json | jq -r .k3s
		`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Output != "text" && opts.Output != "json" {
				return cmdutil.FlagErrorf("invalid value %q for --output: one of text, json", opts.Output)
			}
			info, err := Collect(f)
			if err != nil {
				return err
			}
			return info.Write(f.IOStreams.Out, opts.Output)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	return cmd
}

// Write prints i as text or as indented JSON.
func (i Info) Write(w io.Writer, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(i)
	}
	_, err := io.WriteString(w, i.Text())
	return err
}
