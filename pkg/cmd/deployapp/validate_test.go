package deployapp

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestFirstTarHeaderReadsWhatTheImporterReads: a tar, plain or gzip or zstd
// compressed, passes; anything else, compressed or not, is refused.
func TestFirstTarHeaderReadsWhatTheImporterReads(t *testing.T) {
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("[]")); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		_, _ = w.Write(b)
		_ = w.Close()
		return buf.Bytes()
	}
	zst := func(b []byte) []byte {
		w, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		return w.EncodeAll(b, nil)
	}
	for name, tc := range map[string]struct {
		data []byte
		ok   bool
	}{
		"tar":           {plain.Bytes(), true},
		"gzip tar":      {gz(plain.Bytes()), true},
		"zstd tar":      {zst(plain.Bytes()), true},
		"text":          {[]byte("hello, this is not an image\n"), false},
		"gzip text":     {gz([]byte("hello")), false},
		"zstd text":     {zst([]byte("hello")), false},
		"truncated gz":  {gz(plain.Bytes())[:10], false},
		"empty tar":     {make([]byte, 1024), false},
		"only a header": {plain.Bytes()[:100], false},
	} {
		err := firstTarHeader(bytes.NewReader(tc.data))
		if (err == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok=%v", name, err, tc.ok)
		}
	}
}
