package k3s

import (
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/testutil"
)

var _ = testutil.InCI // every test package imports testutil (the -update flag)

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
		ok   bool
	}{
		{"v1.37.2+k3s1", "v1.37.2+k3s1", 0, true},
		{"v1.37.2+k3s1", "v1.37.2+k3s2", -1, true},
		{"v1.37.10+k3s1", "v1.37.9+k3s3", 1, true},
		{"v1.38.0-rc1+k3s1", "v1.38.0+k3s1", -1, true},
		{"v2.0.0+k3s1", "v1.99.99+k3s9", 1, true},
		{"1.37", "v1.37.2+k3s1", 0, false},
	} {
		if got, ok := compareVersions(tc.a, tc.b); got != tc.want || ok != tc.ok {
			t.Errorf("compareVersions(%s, %s) = %d %v, want %d %v", tc.a, tc.b, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseVersion(t *testing.T) {
	out := "WARN[0000] some warning\nk3s version v1.37.2+k3s1 (abcdef12)\ngo version go1.26.8\n"
	if got := parseVersion([]byte(out)); got != "v1.37.2+k3s1" {
		t.Errorf("got %q", got)
	}
	if got := parseVersion([]byte("Usage: k3s\n")); got != "" {
		t.Errorf("got %q from usage text", got)
	}
}

func TestParseSums(t *testing.T) {
	d := strings.Repeat("ab", 32)
	m, err := parseSums([]byte(d + "  k3s\n" + strings.ToUpper(d) + " *k3s-airgap-images-amd64.tar.zst\n\n"))
	if err != nil || m["k3s"] != d || m["k3s-airgap-images-amd64.tar.zst"] != d {
		t.Fatalf("%v %v", m, err)
	}
	for _, bad := range []string{"", "<html>not found</html>\n", "abc  k3s\n", d + "\n"} {
		if _, err := parseSums([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestSplitCommand(t *testing.T) {
	got := splitCommand(`/usr/local/bin/k3s server '--disable' "traefik" --x=a\ b  `)
	want := []string{"/usr/local/bin/k3s", "server", "--disable", "traefik", "--x=a b"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q", got)
	}
}
