package images

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/images"
)

// BenchmarkImportLargeArchive imports a 300 MB docker-save archive (three
// 100 MB layers of random bytes, uncompressed as docker save writes them)
// from a file stream and reports:
//
//   - rss-growth-MB: this process's peak RSS during the import above its RSS
//     before it (VmHWM after resetting it), next to archive-MB: it must stay
//     flat, a few MB of buffers, whatever the archive's size;
//   - peak-heap-MB: the Go heap's peak, sampled;
//   - daemon-rss-growth-MB: containerd's RSS growth, sampled (test
//     environment only; it is the daemon's, not ours);
//   - ratio-vs-copy: import time / a plain io.Copy of the archive file to
//     another file in the same run (Go turns that into copy_file_range, so
//     it is the kernel's best case); ratio-vs-stream-copy: the same against
//     a user-space stream copy, which is what the import reads like.
//
// Run it alone: go test -run '^$' -bench ImportLarge -benchtime 1x ./pkg/images
func BenchmarkImportLargeArchive(b *testing.B) {
	const layers, layerSize = 3, 100 << 20
	e := newEnv(b)
	dir := b.TempDir()
	name := e.uniqueName(b)
	path := writeLargeArchive(b, dir, name, layers, layerSize)
	info, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	deleteImage := func() {
		if err := e.client.ImageService().Delete(ctx, name, images.SynchronousDelete()); err != nil {
			b.Fatal(err)
		}
	}
	daemonPID := containerdPID()

	var importTime, copyTime, streamCopyTime time.Duration
	var rssGrowth, heapPeak, daemonGrowth int64
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		copyTime += timeCopy(b, path, filepath.Join(dir, "copy"), false)
		streamCopyTime += timeCopy(b, path, filepath.Join(dir, "copy"), true)
		runtime.GC()
		resetPeakRSS(b)
		before := procStatusKB(b, "self", "VmRSS")
		daemonBefore := procStatusKB(b, daemonPID, "VmRSS")
		stop := sampleMemory(daemonPID)
		b.StartTimer()

		start := time.Now()
		res, err := e.imp.ImportFrom(ctx, ArchiveSource{Path: path}, ImportOptions{})
		took := time.Since(start)

		b.StopTimer()
		heap, daemonPeak := stop()
		if err != nil || !res.Changed {
			b.Fatalf("import: %+v %v", res, err)
		}
		importTime += took
		rssGrowth = max(rssGrowth, procStatusKB(b, "self", "VmHWM")-before)
		heapPeak = max(heapPeak, heap)
		if daemonBefore > 0 {
			daemonGrowth = max(daemonGrowth, daemonPeak-daemonBefore)
		}
		deleteImage()
		b.StartTimer()
	}
	b.StopTimer()

	mb := func(kb int64) float64 { return float64(kb) / 1024 }
	b.SetBytes(info.Size())
	b.ReportMetric(float64(info.Size())/(1<<20), "archive-MB")
	b.ReportMetric(mb(rssGrowth), "rss-growth-MB")
	b.ReportMetric(float64(heapPeak)/(1<<20), "peak-heap-MB")
	if daemonPID != "" {
		b.ReportMetric(mb(daemonGrowth), "daemon-rss-growth-MB")
	}
	b.ReportMetric(float64(importTime)/float64(copyTime), "ratio-vs-copy")
	b.ReportMetric(float64(importTime)/float64(streamCopyTime), "ratio-vs-stream-copy")
	// Flat means independent of the archive's size: a tenth of it would
	// already be a leak of the layers into memory.
	if limit := info.Size() / 10 / 1024; rssGrowth > limit {
		b.Errorf("peak RSS grew by %.0f MB importing a %d MB archive: memory is not flat", mb(rssGrowth), info.Size()>>20)
	}
}

// writeLargeArchive writes a docker-save archive of one image with layers
// of random bytes into dir, streaming: nothing of its size is held in
// memory. Layer tars go to temporary files first, as their digests must be
// in the config that precedes them.
func writeLargeArchive(b *testing.B, dir, name string, layers int, layerSize int64) string {
	b.Helper()
	rng := rand.NewChaCha8([32]byte{1})
	var diffIDs, layerFiles []string
	for i := 0; i < layers; i++ {
		p := filepath.Join(dir, fmt.Sprintf("layer%d.tar", i))
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
		tw := tar.NewWriter(w)
		must(b, tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/%d.bin", i), Mode: 0o644, Size: layerSize, Typeflag: tar.TypeReg}))
		_, err = io.CopyN(tw, rng, layerSize)
		must(b, err)
		must(b, tw.Close())
		must(b, w.Flush())
		must(b, f.Close())
		hexDigest := hex.EncodeToString(h.Sum(nil))
		diffIDs = append(diffIDs, "sha256:"+hexDigest)
		layerFiles = append(layerFiles, p)
	}
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config":       map[string]any{},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	must(b, err)
	configName := fmt.Sprintf("%x.json", sha256.Sum256(config))

	path := filepath.Join(dir, "large.tar")
	out, err := os.Create(path)
	must(b, err)
	bw := bufio.NewWriterSize(out, 1<<20)
	tw := tar.NewWriter(bw)
	writeEntry := func(name string, size int64, r io.Reader) {
		must(b, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}))
		_, err := io.Copy(tw, r)
		must(b, err)
	}
	writeEntry(configName, int64(len(config)), bytes.NewReader(config))
	var names []string
	for i, p := range layerFiles {
		f, err := os.Open(p)
		must(b, err)
		st, err := f.Stat()
		must(b, err)
		entry := strings.TrimPrefix(diffIDs[i], "sha256:") + "/layer.tar"
		writeEntry(entry, st.Size(), f)
		f.Close()
		must(b, os.Remove(p))
		names = append(names, entry)
	}
	manifest, err := json.Marshal([]map[string]any{{"Config": configName, "RepoTags": []string{name}, "Layers": names}})
	must(b, err)
	writeEntry("manifest.json", int64(len(manifest)), bytes.NewReader(manifest))
	must(b, tw.Close())
	must(b, bw.Flush())
	must(b, out.Close())
	return path
}

// timeCopy copies src to dst and removes dst. stream hides the files'
// types from io.Copy, forcing a user-space copy.
func timeCopy(b *testing.B, src, dst string, stream bool) time.Duration {
	in, err := os.Open(src)
	must(b, err)
	defer in.Close()
	out, err := os.Create(dst)
	must(b, err)
	start := time.Now()
	if stream {
		_, err = io.Copy(struct{ io.Writer }{out}, struct{ io.Reader }{in})
	} else {
		_, err = io.Copy(out, in)
	}
	must(b, err)
	must(b, out.Close())
	took := time.Since(start)
	must(b, os.Remove(dst))
	return took
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux:
// writing 5 to clear_refs).
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset peak RSS (%v): rss-growth-MB includes earlier peaks", err)
	}
}

func procStatusKB(b *testing.B, pid, field string) int64 {
	if pid == "" {
		return 0
	}
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			must(b, err)
			return kb
		}
	}
	b.Fatalf("no %s in /proc/%s/status", field, pid)
	return 0
}

// containerdPID is the test environment's containerd, if its pid file says.
func containerdPID() string {
	data, err := os.ReadFile(filepath.Join(os.Getenv("HOMELAB_TESTENV_DIR"), "pids", "containerd.pid"))
	if err != nil {
		return ""
	}
	pid := strings.TrimSpace(string(data))
	if _, err := os.Stat("/proc/" + pid + "/status"); err != nil {
		return ""
	}
	return pid
}

// sampleMemory samples the Go heap and the daemon's RSS until the returned
// function is called, which returns their peaks (bytes; kB).
func sampleMemory(daemonPID string) func() (heapPeak, daemonPeakKB int64) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var heap, daemon int64
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			heap = max(heap, int64(sample[0].Value.Uint64()))
			if daemonPID != "" {
				if d, err := os.ReadFile("/proc/" + daemonPID + "/status"); err == nil {
					for _, line := range strings.Split(string(d), "\n") {
						if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
							kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
							daemon = max(daemon, kb)
						}
					}
				}
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() (int64, int64) {
		close(done)
		wg.Wait()
		return heap, daemon
	}
}

func must(b testing.TB, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
