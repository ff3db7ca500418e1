package root

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/homelab-dev/homelab/pkg/cmd/version"
	"github.com/homelab-dev/homelab/pkg/cmdutil"
)

// addVersionFlag gives cmd a --version that prints what `homelab version`
// prints. Cobra prints cmd.Version through the version template when
// --version is set; the text names the pinned k3s and chart versions, read
// from the embedded configuration, so it is built only when the flag is
// parsed: `homelab --help` and every other command do none of that work.
// (Cobra's own flag would also take -v, which is --verbose here.)
func addVersionFlag(cmd *cobra.Command, f *cmdutil.Factory) {
	cmd.Version = f.Version
	cmd.SetVersionTemplate("{{.Version}}")
	flag := cmd.Flags().VarPF(&versionFlag{cmd: cmd, f: f}, "version", "", "print the version (the same as 'homelab version')")
	flag.NoOptDefVal = "true"
}

// versionFlag is a bool flag (cobra reads it with GetBool) that, once set,
// puts the full version text where cobra's template prints it from.
type versionFlag struct {
	cmd *cobra.Command
	f   *cmdutil.Factory
	set bool
}

func (v *versionFlag) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil || !b {
		v.set = b
		return err
	}
	info, err := version.Collect(v.f)
	if err != nil {
		return err
	}
	v.set, v.cmd.Version = true, info.Text()
	return nil
}

func (v *versionFlag) String() string { return strconv.FormatBool(v.set) }

func (v *versionFlag) Type() string { return "bool" }
