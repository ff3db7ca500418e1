package portforward

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/layout"
	forward "github.com/homelab-dev/homelab/pkg/portforward"
	"github.com/homelab-dev/homelab/pkg/render"
)

// unitArgs is the grafana-portforward unit's ExecStart, after the binary.
const unitArgs = "port-forward --namespace monitoring --service lightweight-monitoring-grafana --address 127.0.0.1 --port 3100:80"

// parse runs the command's flag handling with runF capturing the options.
func parse(t *testing.T, args ...string) (*Options, error) {
	t.Helper()
	return parseWith(t, "", args...)
}

// parseWith is parse with the root command's --kubeconfig (a flag of the
// factory's) set to kubeconfig.
func parseWith(t *testing.T, kubeconfig string, args ...string) (*Options, error) {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	f := cmdutil.New(ios, "test")
	f.Kubeconfig = kubeconfig
	var got *Options
	cmd := NewCmdPortForward(f, func(_ context.Context, o *Options) error {
		got = o
		return nil
	})
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	return got, err
}

func TestTheUnitsCommandLine(t *testing.T) {
	args := strings.Fields(unitArgs)[1:]
	o, err := parse(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if o.Namespace != "monitoring" || o.Service != "lightweight-monitoring-grafana" || o.Address != "127.0.0.1" ||
		o.LocalPort != 3100 || o.ServicePort != 80 || o.Kubeconfig != layout.K3sKubeconfig {
		t.Errorf("options = %+v", o)
	}
	if o.StartTimeout != 50*time.Second || o.APIGrace != 30*time.Second {
		t.Errorf("timeouts = %s, %s; want 50s and 30s (both under WatchdogSec=60)", o.StartTimeout, o.APIGrace)
	}
}

func TestRenderedUnitRunsThisCommand(t *testing.T) {
	loaded, err := config.Load(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New()
	if err != nil {
		t.Fatal(err)
	}
	unit, err := r.Named(loaded.Config, layout.PortForwardUnit)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(unit.Data), "\n") {
		if rest, ok := strings.CutPrefix(line, "ExecStart="+layout.Binary+" "); ok {
			o, err := parse(t, strings.Fields(rest)[1:]...)
			if err != nil {
				t.Fatalf("the unit's ExecStart %q does not parse: %v", rest, err)
			}
			if !forward.IsLoopback(o.Address) {
				t.Errorf("the unit listens on %s", o.Address)
			}
			return
		}
	}
	t.Fatalf("no ExecStart running %s in the unit:\n%s", layout.Binary, unit.Data)
}

// TestKubeconfigIsTheFactorys: k3s's kubeconfig unless --kubeconfig names
// another, which must then be usable; $KUBECONFIG, which may name some other
// cluster, is never read.
func TestKubeconfigIsTheFactorys(t *testing.T) {
	t.Setenv("KUBECONFIG", "/home/me/.kube/config")
	if o, err := parse(t); err != nil || o.Kubeconfig != layout.K3sKubeconfig {
		t.Errorf("with $KUBECONFIG set: %+v, %v; want %s", o, err, layout.K3sKubeconfig)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "k.yaml")
	kc := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n" +
		"contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {token: t}}]\n"
	if err := os.WriteFile(good, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	if o, err := parseWith(t, good); err != nil || o.Kubeconfig != good {
		t.Errorf("with --kubeconfig: %+v, %v", o, err)
	}
	_, err := parseWith(t, filepath.Join(dir, "missing.yaml"))
	if cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(fmt.Sprint(err), "--kubeconfig") {
		t.Errorf("a --kubeconfig that is not there: %v (exit %d), want exit 2 naming --kubeconfig", err, cmdutil.ExitCode(err))
	}
}

func TestPortForms(t *testing.T) {
	for in, want := range map[string][2]int{"3100:80": {3100, 80}, "9115": {9115, 9115}, "0:80": {0, 80}, ":80": {0, 80}} {
		o, err := parse(t, "--port", in)
		if err != nil || int(o.LocalPort) != want[0] || int(o.ServicePort) != want[1] {
			t.Errorf("--port %s: %+v, %v; want %v", in, o, err, want)
		}
	}
}

func TestBadUsageExits2NamingTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--address", "0.0.0.0"}, "--address"},
		{[]string{"--address", "192.168.1.20"}, "--address"},
		{[]string{"--address", "::"}, "--address"},
		{[]string{"--address", "example.com"}, "--address"},
		{[]string{"--port", "3100:0"}, "--port"},
		{[]string{"--port", "grafana:80"}, "--port"},
		{[]string{"--port", "70000:80"}, "--port"},
		{[]string{"--port", "1:2:3"}, "--port"},
		{[]string{"--service", ""}, "--service"},
		{[]string{"--api-grace", "0s"}, "--api-grace"},
	} {
		o, err := parse(t, tc.args...)
		if o != nil {
			t.Errorf("%v: the command ran", tc.args)
		}
		if code := cmdutil.ExitCode(err); code != cmdutil.ExitUsage || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%v: exit %d, %v; want exit 2 naming %s", tc.args, code, err, tc.flag)
		}
	}
}
