package bundle_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/app"
	bundlepkg "github.com/homelab-dev/homelab/pkg/bundle"
	"github.com/homelab-dev/homelab/pkg/bundle/bundletest"
	bundlecmd "github.com/homelab-dev/homelab/pkg/cmd/bundle"
	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/iostreams"
)

func run(t *testing.T, runF func(context.Context, *bundlecmd.Options) error, args ...string) (int, string, string) {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	f := cmdutil.New(ios, "test")
	cmd := bundlecmd.NewCmdBundle(f, runF)
	cmd.SetArgs(args)
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	_, err := cmd.ExecuteC()
	if err != nil {
		errOut.WriteString("Error: " + err.Error() + "\n")
	}
	return cmdutil.ExitCode(err), out.String(), errOut.String()
}

func TestBadFlagsExit2BeforeAnything(t *testing.T) {
	dir := t.TempDir()
	never := func(context.Context, *bundlecmd.Options) error {
		t.Fatal("ran despite bad flags")
		return nil
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--output (-o) is required"},
		{[]string{"-o", filepath.Join(dir, "b.tar"), "--arch", "riscv64"}, `--arch "riscv64" is invalid: want one of amd64, arm64`},
		{[]string{"-o", filepath.Join(dir, "nope", "b.tar")}, "directory " + filepath.Join(dir, "nope")},
		{[]string{"-o", dir}, "is a directory"},
		{[]string{"-o", "b.tar", "extra"}, "unknown command"},
		{[]string{"-o", "b.tar", "--list-images"}, "--list-images and --output cannot be used together"},
	} {
		code, _, stderr := run(t, never, tc.args...)
		if code != cmdutil.ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

func TestBundleCommandWritesAVerifiedBundle(t *testing.T) {
	src := bundletest.Serve(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "homelab.yaml")
	if err := os.WriteFile(cfgFile, []byte("apiVersion: homelab/v1alpha1\nmonitoring:\n  chartRepo: "+src.ChartRepo+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bundle.tar")
	// The registry mirrors are not a flag: the test reaches the in-process
	// registry through the Options seam.
	withMirrors := func(ctx context.Context, o *bundlecmd.Options) error {
		o.Mirrors = src.Mirrors
		return bundlecmd.Run(ctx, o)
	}
	ios, _, _, errOut := iostreams.Test()
	f := cmdutil.New(ios, "test")
	f.ConfigPath = cfgFile
	cmd := bundlecmd.NewCmdBundle(f, withMirrors)
	cmd.SetArgs([]string{"-o", out, "--arch", "arm64", "--k3s-base-url", src.K3sURL})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	m, err := bundlepkg.Verify(out, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Images) != len(src.Refs) || m.HomelabVersion != "test" {
		t.Errorf("manifest: %d images, version %q", len(m.Images), m.HomelabVersion)
	}
	for _, want := range []string{"linux/arm64", "quay.io/prometheus/prometheus:v3.14.0-distroless", "Wrote " + out, "homelab init --bundle bundle.tar"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestListImagesPrintsTheImagesOnly(t *testing.T) {
	src := bundletest.Serve(t)
	cfgFile := filepath.Join(t.TempDir(), "homelab.yaml")
	if err := os.WriteFile(cfgFile, []byte("apiVersion: homelab/v1alpha1\nmonitoring:\n  chartRepo: "+src.ChartRepo+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := src.Requests()
	ios, _, out, errOut := iostreams.Test()
	f := cmdutil.New(ios, "test")
	code := app.RunWith(context.Background(), []string{"bundle", "--list-images", "--config", cfgFile}, f)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if got := strings.Fields(out.String()); strings.Join(got, " ") != strings.Join(src.Refs, " ") {
		t.Errorf("stdout %q\nwant %q", got, src.Refs)
	}
	if src.Requests() != before {
		t.Error("--list-images pulled images")
	}
}

func TestHelpAndRegistration(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	code := app.RunWith(context.Background(), []string{"bundle", "--help"}, cmdutil.New(ios, "test"))
	if code != 0 || !strings.Contains(out.String(), "homelab init --bundle") || !strings.Contains(out.String(), "--arch") {
		t.Errorf("homelab bundle --help: exit %d\n%s", code, out)
	}
}
