package helm_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/helm"
	"github.com/homelab-dev/homelab/pkg/helm/helmtest"
)

// FetchArchive hands out the chart archive itself (for homelab bundle) from
// every kind of source, checked like an install's.
func TestFetchArchiveFromEverySource(t *testing.T) {
	charts := helmtest.Package(t, helmtest.Variant{Name: "prometheus-blackbox-exporter"})
	archive := charts.Archive(t, "prometheus-blackbox-exporter", "11.17.2")
	want, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	e := &helm.Engine{Home: t.TempDir()}
	for name, src := range map[string]helm.Source{
		"repository": {RepoURL: charts.ServeRepo(t), Name: "prometheus-blackbox-exporter", Version: "11.17.2"},
		"archive":    {Archive: archive, Name: "prometheus-blackbox-exporter", Version: "11.17.2"},
	} {
		data, ch, err := e.FetchArchive(src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(data, want) || ch.Metadata.Version != "11.17.2" {
			t.Errorf("%s: %d bytes, chart %s", name, len(data), ch.Metadata.Version)
		}
	}
	oci := helm.Source{RepoURL: charts.ServeOCI(t), Name: "prometheus-blackbox-exporter", Version: "11.17.2"}
	data, ch, err := e.FetchArchive(oci)
	if err != nil || len(data) == 0 || ch.Metadata.Name != "prometheus-blackbox-exporter" {
		t.Fatalf("oci: %d bytes, %v", len(data), err)
	}
	// Another version than asked for is refused, as for an install.
	_, _, err = e.FetchArchive(helm.Source{Archive: archive, Name: "prometheus-blackbox-exporter", Version: "1.0.0"})
	if err == nil || !strings.Contains(err.Error(), "want 1.0.0") {
		t.Errorf("err = %v", err)
	}
}
