package app

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/iostreams"
	"github.com/homelab-dev/homelab/pkg/layout"
)

// pausingHost is the real host under --root, stopped at its first file
// write until the test lets it go: a render caught in the middle of
// writing its tree.
type pausingHost struct {
	*host.Local
	once   sync.Once
	paused chan struct{}
	resume chan struct{}
}

func (h *pausingHost) WriteFile(p string, data []byte, mode fs.FileMode) (host.WriteResult, error) {
	h.once.Do(func() {
		close(h.paused)
		<-h.resume
	})
	return h.Local.WriteFile(p, data, mode)
}

// treeOf describes every entry under root by its relative path: kind,
// mode, and content or link target.
func treeOf(t *testing.T, root string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			tree[rel] = "link to " + target
		case info.IsDir():
			tree[rel] = fmt.Sprintf("directory %v", info.Mode().Perm())
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			tree[rel] = fmt.Sprintf("file %v, %d bytes, sha256 %x", info.Mode().Perm(), len(data), sha256.Sum256(data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// treeDiff lists the paths whose entries differ between two trees.
func treeDiff(got, want map[string]string) []string {
	var diff []string
	for p, g := range got {
		if w, ok := want[p]; !ok {
			diff = append(diff, fmt.Sprintf("%s: %s, want nothing", p, g))
		} else if g != w {
			diff = append(diff, fmt.Sprintf("%s: %s, want %s", p, g, w))
		}
	}
	for p, w := range want {
		if _, ok := got[p]; !ok {
			diff = append(diff, fmt.Sprintf("%s: missing, want %s", p, w))
		}
	}
	sort.Strings(diff)
	return diff
}

// TestSecondRenderIsRefusedWhileOneWrites: a render that is writing its
// tree holds homelab's lock; a second render on the same --root, with
// another configuration, fails at once naming the holder and writes
// nothing, and the tree ends up exactly as one render of the first
// configuration leaves it.
func TestSecondRenderIsRefusedWhileOneWrites(t *testing.T) {
	root := t.TempDir()
	ios, _, _, errA := iostreams.Test()
	f := cmdutil.New(ios, "test")
	f.Root = root
	paused := &pausingHost{Local: f.Host().(*host.Local), paused: make(chan struct{}), resume: make(chan struct{})}
	f.Host = func() host.Host { return paused }
	first := make(chan int, 1)
	go func() {
		first <- RunWith(context.Background(), []string{"render", "--root", root, "--domain", "a.example.com"}, f)
	}()
	released := false
	release := func() {
		if !released {
			released = true
			close(paused.resume)
		}
	}
	defer release()
	select {
	case <-paused.paused:
	case code := <-first:
		t.Fatalf("the first render ended (exit %d) before writing anything:\n%s", code, errA)
	case <-time.After(2 * time.Minute):
		t.Fatal("the first render did not reach its first write within 2m")
	}

	code, _, stderr := run(t, "render", "--root", root, "--domain", "b.example.com")
	if code != 1 {
		t.Errorf("second render while the first writes: exit %d, want 1:\n%s", code, stderr)
	}
	if want := fmt.Sprintf("another homelab run is in progress (pid %d holds %s)", os.Getpid(), layout.Lock); !strings.Contains(stderr, want) {
		t.Errorf("second render: stderr does not say %q:\n%s", want, stderr)
	}

	release()
	select {
	case code := <-first:
		if code != 0 {
			t.Fatalf("first render: exit %d:\n%s", code, errA)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the first render did not finish within 2m of being let go")
	}

	alone := t.TempDir()
	if code, _, stderr := run(t, "render", "--root", alone, "--domain", "a.example.com"); code != 0 {
		t.Fatalf("single render: exit %d:\n%s", code, stderr)
	}
	if diff := treeDiff(treeOf(t, root), treeOf(t, alone)); len(diff) > 0 {
		t.Errorf("the tree is not what one render of a.example.com writes:\n%s", strings.Join(diff, "\n"))
	}
}

// TestRenderRefusedWhileTheLockIsHeld: while another run (init, uninstall,
// deploy-app) holds the lock of a --root, render fails at once, exit 1 as
// init does, naming the holder, and writes nothing.
func TestRenderRefusedWhileTheLockIsHeld(t *testing.T) {
	root := t.TempDir()
	unlock, err := (&host.Local{Root: root}).Lock(layout.Lock)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	before := treeOf(t, root)
	start := time.Now()
	code, _, stderr := run(t, "render", "--root", root)
	if code != 1 || !strings.Contains(stderr, fmt.Sprintf("pid %d holds", os.Getpid())) {
		t.Errorf("exit %d, want 1 naming the holder:\n%s", code, stderr)
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("render took %s to give up: it must not wait for the lock", took)
	}
	if diff := treeDiff(treeOf(t, root), before); len(diff) > 0 {
		t.Errorf("render wrote while the lock was held:\n%s", strings.Join(diff, "\n"))
	}
	unlock()
	if code, _, stderr := run(t, "render", "--root", root); code != 0 {
		t.Errorf("after the lock is released: exit %d:\n%s", code, stderr)
	}
}
