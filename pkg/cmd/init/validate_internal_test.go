package init

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/host/hosttest"
	"github.com/homelab-dev/homelab/pkg/iostreams"
)

// chartArchive writes a minimal chart archive named name at version.
func chartArchive(t *testing.T, name, version string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	data := "apiVersion: v2\nname: " + name + "\nversion: " + version + "\n"
	if err := tw.WriteHeader(&tar.Header{Name: name + "/Chart.yaml", Mode: 0o644, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name+"-"+version+".tgz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCheckInputsAcceptsGoodFilesAndNamesBadOnes: the same inputs pass or
// fail as the real run would read them: the right chart at the configured
// version passes, another version is named with its key; a k3s binary
// matching the release's checksum list passes, a changed one does not.
func TestCheckInputsAcceptsGoodFilesAndNamesBadOnes(t *testing.T) {
	l, err := config.Load(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := l.Config.Monitoring
	dir := t.TempDir()
	bin := filepath.Join(dir, "k3s")
	if err := os.WriteFile(bin, []byte("the k3s binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("the k3s binary"))
	sums := filepath.Join(dir, "sha256sum-amd64.txt")
	if err := os.WriteFile(sums, []byte(hex.EncodeToString(sum[:])+"  k3s\n"+hex.EncodeToString(sum[:])+"  k3s-arm64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(d Deps) error {
		ios, _, _, _ := iostreams.Test()
		d.Host = hosttest.New(t)
		return checkInputs(context.Background(), &Options{IO: ios, Deps: d, DryRun: true}, l)
	}
	good := Deps{StackChart: chartArchive(t, "kube-prometheus-stack", m.ChartVersion),
		BlackboxChart: chartArchive(t, "prometheus-blackbox-exporter", m.Blackbox.ChartVersion)}
	good.K3s.BinaryFile, good.K3s.SumsFile, good.K3s.Arch = bin, sums, "amd64"
	if err := check(good); err != nil {
		t.Fatalf("good inputs refused: %v", err)
	}
	old := good
	old.StackChart = chartArchive(t, "kube-prometheus-stack", "1.0.0")
	changed := good
	changed.K3s.SumsFile = filepath.Join(dir, "other-sums.txt")
	if err := os.WriteFile(changed.K3s.SumsFile, []byte(strings.Repeat("b", 64)+"  k3s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		d    Deps
		want string
	}{
		"chart of another version": {old, "monitoring.chartVersion"},
		"binary not in the sums":   {changed, "failed verification"},
	} {
		err := check(tc.d)
		var fe *cmdutil.FlagError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want a flag error naming %q", name, err, tc.want)
		}
	}
}
