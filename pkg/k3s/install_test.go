package k3s_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/host/hosttest"
	"github.com/homelab-dev/homelab/pkg/k3s"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

const version = "v1.37.2+k3s1"

var ctx = context.Background()

// fakeK3s is a stand-in for the k3s binary that answers --version like it.
func fakeK3s(v string) []byte {
	return []byte("#!/bin/sh\necho 'k3s version " + v + " (abcdef)'\necho 'go version go1.26.8'\n")
}

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func sumsFile(files map[string][]byte) []byte {
	var b strings.Builder
	for name, data := range files {
		fmt.Fprintf(&b, "%s  %s\n", digest(data), name)
	}
	return []byte(b.String())
}

// release is a local k3s release server on 127.0.0.1.
type release struct {
	srv *httptest.Server
	mu  sync.Mutex
	// files maps "<version>/<asset>" to content.
	files    map[string][]byte
	requests []string
}

func newRelease(t *testing.T, assets map[string][]byte) *release {
	t.Helper()
	r := &release{files: map[string][]byte{}}
	for name, data := range assets {
		r.files[version+"/"+name] = data
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, req.RequestURI)
		data, ok := r.files[strings.TrimPrefix(req.URL.Path, "/")]
		r.mu.Unlock()
		if !ok {
			http.NotFound(w, req)
			return
		}
		_, _ = w.Write(data)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *release) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.requests...)
}

// goodRelease serves a fake amd64 k3s and a correct sums file.
func goodRelease(t *testing.T) (*release, []byte) {
	bin := fakeK3s(version)
	return newRelease(t, map[string][]byte{
		"k3s":                 bin,
		"sha256sum-amd64.txt": sumsFile(map[string][]byte{"k3s": bin, "k3s-airgap-images-amd64.tar.zst": []byte("other")}),
	}), bin
}

// noNetwork is an HTTP client that fails the test if it is used.
func noNetwork(t *testing.T) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		t.Errorf("unexpected HTTP request: %s %s", req.Method, req.URL)
		return nil, errors.New("no network in this test")
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// expectVersion answers `k3s --version` by running the binary the step
// wrote, proving that what landed on disk is the verified, executable file.
func expectVersion(t *testing.T, h *hosttest.Host) *hosttest.Call {
	sh := testutil.NeedProgram(t, "sh")
	return h.Expect(k3s.BinaryPath, "--version").Do(func(host.Cmd) ([]byte, error) {
		return exec.Command(sh, h.Path(k3s.BinaryPath), "--version").CombinedOutput()
	})
}

// expectShow answers the service step's `systemctl show`.
func expectShow(h *hosttest.Host, active, enabled string, started time.Time) *hosttest.Call {
	ts := ""
	if !started.IsZero() {
		ts = fmt.Sprintf("@%d", started.Unix())
	}
	out := fmt.Sprintf("ActiveState=%s\nUnitFileState=%s\nNeedDaemonReload=no\nExecMainStartTimestamp=%s\n", active, enabled, ts)
	c := k3s.ShowCommand()
	return h.Expect(c.Name, c.Args...).Returns(out, nil)
}

func runPlan(t *testing.T, steps []plan.Step) (plan.Result, []plan.Event) {
	t.Helper()
	var events []plan.Event
	res, err := plan.Runner{OnEvent: func(e plan.Event) { events = append(events, e) }}.Run(ctx, plan.Plan{Name: "k3s", Steps: steps})
	if err != nil {
		t.Fatal(err)
	}
	return res, events
}

func summaries(events []plan.Event, kind plan.EventKind) []string {
	var s []string
	for _, e := range events {
		if e.Kind == kind {
			s = append(s, e.Step+": "+e.Status.Summary)
		}
	}
	return s
}

func TestInstallOnlineThenUpToDate(t *testing.T) {
	rel, bin := goodRelease(t)
	h := hosttest.New(t).InOrder()
	inst := k3s.Installer{Host: h, HTTP: rel.srv.Client(), BaseURL: rel.srv.URL, Arch: "amd64", Version: version}
	steps, err := inst.Steps()
	if err != nil {
		t.Fatal(err)
	}

	// Dry run: the plan says what it will fetch and how it verifies it, and
	// touches neither the network nor the machine.
	expectShow(h, "inactive", "", time.Time{})
	dry, err := plan.Runner{DryRun: true}.Run(ctx, plan.Plan{Steps: steps})
	if err != nil || len(dry.Pending) != 2 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	st, _ := steps[0].Check(ctx)
	wantURL := rel.srv.URL + "/v1.37.2%2Bk3s1/k3s"
	if !strings.Contains(st.Summary, "install k3s "+version) || !strings.Contains(st.Summary, wantURL) ||
		!strings.Contains(st.Summary, "sha256sum-amd64.txt") {
		t.Errorf("binary summary %q, want the version, %s and the sums file", st.Summary, wantURL)
	}
	if len(rel.Requests()) != 0 || len(h.Changes()) != 0 {
		t.Fatalf("dry run downloaded %v and changed %v", rel.Requests(), h.Changes())
	}
	h.Reset()

	expectVersion(t, h)
	expectShow(h, "inactive", "disabled", time.Time{}) // check
	expectShow(h, "inactive", "disabled", time.Time{}) // apply looks again
	h.Expect("systemctl", "daemon-reload")
	h.Expect("systemctl", "enable", "--now", "k3s")
	expectShow(h, "active", "enabled", time.Now().Add(time.Second)) // check after apply
	res, _ := runPlan(t, steps)
	if len(res.Changed) != 2 {
		t.Fatalf("changed %v", res.Changed)
	}
	data, err := os.ReadFile(h.Path(k3s.BinaryPath))
	if err != nil || string(data) != string(bin) {
		t.Fatalf("installed binary %q %v", data, err)
	}
	if info, _ := os.Stat(h.Path(k3s.BinaryPath)); info.Mode().Perm() != 0o755 {
		t.Errorf("binary mode %v, want 0755", info.Mode())
	}
	unit, _ := inst.Unit()
	if data, _ := os.ReadFile(h.Path(k3s.UnitPath)); string(data) != string(unit) {
		t.Errorf("unit file %q", data)
	}
	wantReq := []string{"/v1.37.2%2Bk3s1/sha256sum-amd64.txt", "/v1.37.2%2Bk3s1/k3s"}
	if got := rel.Requests(); strings.Join(got, " ") != strings.Join(wantReq, " ") {
		t.Errorf("requests %v, want %v (the + escaped)", got, wantReq)
	}
	h.Reset()

	// A second run finds everything in place: read-only commands, no
	// download, no write.
	expectVersion(t, h)
	expectShow(h, "active", "enabled", time.Now().Add(time.Second))
	res, events := runPlan(t, steps)
	if len(res.Changed) != 0 || len(res.UpToDate) != 2 {
		t.Fatalf("second run: %+v", res)
	}
	want := "k3s binary: k3s " + version + " is installed; k3s service: k3s is enabled and active"
	if got := strings.Join(summaries(events, plan.UpToDate), "; "); got != want {
		t.Errorf("second run says %q, want %q", got, want)
	}
	if len(rel.Requests()) != 2 || len(h.Changes()) != 0 {
		t.Errorf("second run downloaded %v, changed %v", rel.Requests()[2:], h.Changes())
	}
}

func TestChecksumMismatchWritesNothing(t *testing.T) {
	bin := fakeK3s(version)
	corrupt := append(append([]byte(nil), bin...), "echo pwned\n"...)
	rel := newRelease(t, map[string][]byte{"k3s": corrupt, "sha256sum-amd64.txt": sumsFile(map[string][]byte{"k3s": bin})})
	h := hosttest.New(t)
	inst := k3s.Installer{Host: h, HTTP: rel.srv.Client(), BaseURL: rel.srv.URL, Arch: "amd64", Version: version}
	err := inst.BinaryStep().Apply(ctx)
	var sumErr *k3s.ChecksumError
	if !errors.As(err, &sumErr) {
		t.Fatalf("err %v, want a *k3s.ChecksumError", err)
	}
	for _, want := range []string{digest(bin), digest(corrupt), rel.srv.URL + "/v1.37.2%2Bk3s1/k3s", "sha256sum-amd64.txt", "nothing was written"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := h.Lstat(k3s.BinaryPath); !errors.Is(err, fs.ErrNotExist) || len(h.Changes()) != 0 {
		t.Errorf("after a mismatch: binary %v, changes %v; want nothing written", err, h.Changes())
	}
}

func TestMissingAssetIsAClearError(t *testing.T) {
	bin := fakeK3s(version)
	for name, assets := range map[string]map[string][]byte{
		"no release":    {},
		"no binary":     {"sha256sum-amd64.txt": sumsFile(map[string][]byte{"k3s": bin})},
		"no sums entry": {"k3s": bin, "sha256sum-amd64.txt": sumsFile(map[string][]byte{"k3s-arm64": bin})},
	} {
		t.Run(name, func(t *testing.T) {
			rel := newRelease(t, assets)
			h := hosttest.New(t)
			inst := k3s.Installer{Host: h, HTTP: rel.srv.Client(), BaseURL: rel.srv.URL + "/", Arch: "amd64", Version: version}
			err := inst.BinaryStep().Apply(ctx)
			if err == nil {
				t.Fatal("no error")
			}
			want := "404 Not Found"
			if name == "no sums entry" {
				want = "has no checksum for k3s"
			}
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), rel.srv.URL+"/v1.37.2%2Bk3s1/") {
				t.Errorf("error %q, want %q and the URL", err, want)
			}
			if len(h.Changes()) != 0 {
				t.Errorf("wrote %v", h.Changes())
			}
		})
	}
}

func TestUnreachableMirror(t *testing.T) {
	h := hosttest.New(t)
	inst := k3s.Installer{Host: h, BaseURL: "http://127.0.0.1:1/mirror", Arch: "amd64", Version: version}
	err := inst.BinaryStep().Apply(ctx)
	if err == nil || !strings.Contains(err.Error(), "http://127.0.0.1:1/mirror/v1.37.2%2Bk3s1/sha256sum-amd64.txt") || !strings.Contains(err.Error(), "--k3s-binary") {
		t.Fatalf("err %v, want the URL and the offline hint", err)
	}
}

func TestPinnedDigest(t *testing.T) {
	bin := fakeK3s(version)
	// The release has no sums file: a pinned digest does not need one.
	rel := newRelease(t, map[string][]byte{"k3s": bin})
	t.Run("matches", func(t *testing.T) {
		h := hosttest.New(t)
		inst := k3s.Installer{Host: h, HTTP: rel.srv.Client(), BaseURL: rel.srv.URL, Arch: "amd64", Version: version,
			PinnedSHA256: "sha256:" + strings.ToUpper(digest(bin))}
		step := inst.BinaryStep()
		st, err := step.Check(ctx)
		if err != nil || !strings.Contains(st.Summary, "pinned sha256 "+digest(bin)[:12]) {
			t.Fatalf("check: %+v %v", st, err)
		}
		if err := step.Apply(ctx); err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(h.Path(k3s.BinaryPath)); string(data) != string(bin) {
			t.Errorf("installed %q", data)
		}
	})
	t.Run("differs", func(t *testing.T) {
		h := hosttest.New(t)
		pinned := digest([]byte("another build"))
		inst := k3s.Installer{Host: h, HTTP: rel.srv.Client(), BaseURL: rel.srv.URL, Arch: "amd64", Version: version, PinnedSHA256: pinned}
		err := inst.BinaryStep().Apply(ctx)
		var sumErr *k3s.ChecksumError
		if !errors.As(err, &sumErr) || sumErr.Want != pinned || sumErr.WantFrom != "the pinned digest" || len(h.Changes()) != 0 {
			t.Fatalf("err %v, changes %v; want a mismatch against the pinned digest and nothing written", err, h.Changes())
		}
	})
	for _, r := range rel.Requests() {
		if strings.Contains(r, "sha256sum") {
			t.Errorf("requested %s although the digest is pinned", r)
		}
	}
}

func TestArm64Assets(t *testing.T) {
	bin := fakeK3s(version)
	rel := newRelease(t, map[string][]byte{"k3s-arm64": bin, "sha256sum-arm64.txt": sumsFile(map[string][]byte{"k3s-arm64": bin})})
	h := hosttest.New(t)
	inst := k3s.Installer{Host: h, HTTP: rel.srv.Client(), BaseURL: rel.srv.URL, Arch: "arm64", Version: version}
	if err := inst.BinaryStep().Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rel.Requests(), " "); got != "/v1.37.2%2Bk3s1/sha256sum-arm64.txt /v1.37.2%2Bk3s1/k3s-arm64" {
		t.Errorf("requests %s", got)
	}
}

// offlineFiles writes a release's files to a directory, as a user copies them.
func offlineFiles(t *testing.T, bin, images []byte) (binPath, sumsPath, imagesPath string) {
	dir := t.TempDir()
	binPath = filepath.Join(dir, "k3s")
	sumsPath = filepath.Join(dir, "sha256sum-amd64.txt")
	imagesPath = filepath.Join(dir, "k3s-airgap-images-amd64.tar.zst")
	sums := sumsFile(map[string][]byte{"k3s": bin, "k3s-airgap-images-amd64.tar.zst": images})
	for p, data := range map[string][]byte{binPath: bin, sumsPath: sums, imagesPath: images} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return binPath, sumsPath, imagesPath
}

func TestOfflineInstallNeedsNoNetwork(t *testing.T) {
	bin := fakeK3s(version)
	images := []byte("\x28\xb5\x2f\xfd pretend zstd tarball")
	binPath, sumsPath, imagesPath := offlineFiles(t, bin, images)
	h := hosttest.New(t).InOrder()
	inst := k3s.Installer{Host: h, HTTP: noNetwork(t), Arch: "amd64", Version: version,
		BinaryFile: binPath, SumsFile: sumsPath, ImagesFile: imagesPath}
	steps, err := inst.Steps()
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{steps[0].Name, steps[1].Name, steps[2].Name}; strings.Join(got, ",") != "k3s binary,k3s airgap images,k3s service" {
		t.Fatalf("steps %v", got)
	}
	expectVersion(t, h)
	expectShow(h, "inactive", "disabled", time.Time{})
	expectShow(h, "inactive", "disabled", time.Time{})
	h.Expect("systemctl", "daemon-reload")
	h.Expect("systemctl", "enable", "--now", "k3s")
	expectShow(h, "active", "enabled", time.Now().Add(time.Second))
	_, events := runPlan(t, steps)
	if s := summaries(events, plan.Applying)[0]; !strings.Contains(s, binPath+" (offline)") || !strings.Contains(s, "verified against "+sumsPath) {
		t.Errorf("binary summary %q", s)
	}
	if data, _ := os.ReadFile(h.Path("/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst")); string(data) != string(images) {
		t.Errorf("images in place: %q", data)
	}
	if data, _ := os.ReadFile(h.Path(k3s.BinaryPath)); string(data) != string(bin) {
		t.Errorf("binary: %q", data)
	}
	h.Reset()
	expectVersion(t, h)
	expectShow(h, "active", "enabled", time.Now().Add(time.Second))
	if res, _ := runPlan(t, steps); len(res.UpToDate) != 3 || len(h.Changes()) != 0 {
		t.Errorf("second offline run: %+v, changes %v", res, h.Changes())
	}
}

func TestOfflineVerification(t *testing.T) {
	bin := fakeK3s(version)
	binPath, sumsPath, imagesPath := offlineFiles(t, bin, []byte("images"))

	t.Run("unverifiable binary is refused up front", func(t *testing.T) {
		_, err := k3s.Installer{Host: hosttest.New(t), Arch: "amd64", Version: version, BinaryFile: binPath}.Steps()
		if err == nil || !strings.Contains(err.Error(), "--k3s-sha256") || !strings.Contains(err.Error(), "--k3s-sums") {
			t.Fatalf("err %v, want both ways to verify named", err)
		}
	})
	t.Run("pinned binary, no sums", func(t *testing.T) {
		h := hosttest.New(t)
		inst := k3s.Installer{Host: h, HTTP: noNetwork(t), Arch: "amd64", Version: version, BinaryFile: binPath, PinnedSHA256: digest(bin)}
		if err := inst.BinaryStep().Apply(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("images need the sums offline", func(t *testing.T) {
		_, err := k3s.Installer{Host: hosttest.New(t), Arch: "amd64", Version: version, BinaryFile: binPath,
			PinnedSHA256: digest(bin), ImagesFile: imagesPath}.Steps()
		if err == nil || !strings.Contains(err.Error(), "--k3s-sums") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("tampered local binary", func(t *testing.T) {
		tampered := filepath.Join(t.TempDir(), "k3s")
		if err := os.WriteFile(tampered, append(bin, '#'), 0o755); err != nil {
			t.Fatal(err)
		}
		h := hosttest.New(t)
		inst := k3s.Installer{Host: h, HTTP: noNetwork(t), Arch: "amd64", Version: version, BinaryFile: tampered, SumsFile: sumsPath}
		err := inst.BinaryStep().Apply(ctx)
		var sumErr *k3s.ChecksumError
		if !errors.As(err, &sumErr) || sumErr.From != tampered || !strings.Contains(err.Error(), sumsPath) || len(h.Changes()) != 0 {
			t.Fatalf("err %v, changes %v", err, h.Changes())
		}
	})
	t.Run("images not named as released", func(t *testing.T) {
		renamed := filepath.Join(t.TempDir(), "images.tar.zst")
		if err := os.WriteFile(renamed, []byte("images"), 0o644); err != nil {
			t.Fatal(err)
		}
		h := hosttest.New(t)
		inst := k3s.Installer{Host: h, HTTP: noNetwork(t), Arch: "amd64", Version: version, BinaryFile: binPath, SumsFile: sumsPath, ImagesFile: renamed}
		err := inst.ImagesStep().Apply(ctx)
		if err == nil || !strings.Contains(err.Error(), "no checksum for images.tar.zst") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestOnlineBinaryWithLocalImages(t *testing.T) {
	images := []byte("other") // goodRelease's sums list this content
	rel, _ := goodRelease(t)
	dir := t.TempDir()
	imagesPath := filepath.Join(dir, "k3s-airgap-images-amd64.tar.zst")
	if err := os.WriteFile(imagesPath, images, 0o644); err != nil {
		t.Fatal(err)
	}
	h := hosttest.New(t)
	inst := k3s.Installer{Host: h, HTTP: rel.srv.Client(), BaseURL: rel.srv.URL, Arch: "amd64", Version: version, ImagesFile: imagesPath}
	step := inst.ImagesStep()
	if err := step.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := step.Check(ctx); err != nil || st.Pending {
		t.Fatalf("after apply: %+v %v", st, err)
	}
	if got := rel.Requests(); len(got) != 1 || !strings.HasSuffix(got[0], "/sha256sum-amd64.txt") {
		t.Errorf("requests %v, want only the sums file", got)
	}
}

func TestUpgradeReplacesBinaryAndRestarts(t *testing.T) {
	rel, bin := goodRelease(t)
	h := hosttest.New(t).InOrder()
	inst := k3s.Installer{Host: h, HTTP: rel.srv.Client(), BaseURL: rel.srv.URL, Arch: "amd64", Version: version}
	unit, _ := inst.Unit()
	if _, err := h.WriteFile(k3s.BinaryPath, fakeK3s("v1.36.4+k3s2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := h.WriteFile(k3s.UnitPath, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-time.Hour)
	steps, err := inst.Steps()
	if err != nil {
		t.Fatal(err)
	}
	expectVersion(t, h).Times(2) // before and after
	expectShow(h, "active", "enabled", started).Times(2)
	h.Expect("systemctl", "restart", "k3s")
	expectShow(h, "active", "enabled", time.Now().Add(time.Second))
	_, events := runPlan(t, steps)
	want := []string{
		"k3s binary: upgrade k3s from v1.36.4+k3s2 to " + version,
		"k3s service: restart k3s to run the new binary",
	}
	got := summaries(events, plan.Applying)
	if len(got) != 2 || !strings.HasPrefix(got[0], want[0]) || got[1] != want[1] {
		t.Errorf("applied %q, want %q", got, want)
	}
	if data, _ := os.ReadFile(h.Path(k3s.BinaryPath)); string(data) != string(bin) {
		t.Errorf("binary not replaced")
	}
}

func TestInstalledVersionStates(t *testing.T) {
	inst := func(h *hosttest.Host) k3s.Installer {
		return k3s.Installer{Host: h, HTTP: noNetwork(t), Arch: "amd64", Version: version}
	}
	t.Run("newer is refused", func(t *testing.T) {
		h := hosttest.New(t)
		_, _ = h.WriteFile(k3s.BinaryPath, fakeK3s("v1.38.0+k3s1"), 0o755)
		expectVersion(t, h)
		_, err := inst(h).BinaryStep().Check(ctx)
		if err == nil || !strings.Contains(err.Error(), "does not support downgrades") || !strings.Contains(err.Error(), "v1.38.0+k3s1") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("broken binary is reinstalled", func(t *testing.T) {
		h := hosttest.New(t)
		_, _ = h.WriteFile(k3s.BinaryPath, []byte("garbage"), 0o755)
		h.Expect(k3s.BinaryPath, "--version").Returns("exec format error\n", hosttest.Exit(126))
		st, err := inst(h).BinaryStep().Check(ctx)
		if err != nil || !st.Pending || !strings.Contains(st.Summary, "reinstall k3s "+version) || !strings.Contains(st.Summary, "does not run") {
			t.Fatalf("%+v %v", st, err)
		}
	})
}

func TestInvalidInstallerReportsEveryProblem(t *testing.T) {
	_, err := k3s.Installer{Host: hosttest.New(t), BaseURL: "ftp://x", Arch: "s390x", Version: "1.37", PinnedSHA256: "abc", ImagesFile: "/tmp/images.zip"}.Steps()
	for _, want := range []string{`base URL "ftp://x"`, `architecture "s390x"`, `version "1.37"`, `pinned sha256 "abc"`, `images file "/tmp/images.zip"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v, want it to mention %s", err, want)
		}
	}
	// A single step of an invalid installer fails its Check, never panics.
	if _, err := (k3s.Installer{}).BinaryStep().Check(ctx); err == nil {
		t.Error("empty installer: no error")
	}
}

func TestReleaseURL(t *testing.T) {
	got := k3s.ReleaseURL(k3s.DefaultBaseURL, version, "sha256sum-amd64.txt")
	if want := "https://github.com/k3s-io/k3s/releases/download/v1.37.2%2Bk3s1/sha256sum-amd64.txt"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
