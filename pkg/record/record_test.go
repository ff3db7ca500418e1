package record_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/apt"
	"github.com/homelab-dev/homelab/pkg/host/hosttest"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/record"
)

func write(t *testing.T, h *hosttest.Host, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(h.Path(p)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.Path(p), []byte(data), 0o640); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, steps ...plan.Step) error {
	t.Helper()
	_, err := plan.Runner{}.Run(context.Background(), plan.Plan{Name: "t", Steps: steps})
	return err
}

func TestStepsRecordWhatTheyCreatedAndOnlyThat(t *testing.T) {
	h := hosttest.New(t)
	write(t, h, "/etc/existing.conf", "mine\n")
	rec := &record.Recorder{Host: h}
	steps := func() []plan.Step {
		return []plan.Step{
			rec.Wrap(plan.WriteFile(h, "/etc/homelab/values/a.yaml", []byte("a: 1\n"), 0o644), record.FileWatch(h, "/etc/homelab/values/a.yaml")),
			rec.Wrap(plan.WriteFile(h, "/etc/existing.conf", []byte("homelab's\n"), 0o644), record.FileWatch(h, "/etc/existing.conf")),
		}
	}
	if err := run(t, steps()...); err != nil {
		t.Fatal(err)
	}
	got, err := record.Load(h)
	if err != nil {
		t.Fatal(err)
	}
	want := []record.Item{
		{Kind: record.File, Path: "/etc/homelab/values/a.yaml", Dirs: []string{"/etc/homelab/values", "/etc/homelab"}},
		{Kind: record.File, Path: "/etc/existing.conf", Modified: true, Mode: "0640", Backup: record.OriginalPath("/etc/existing.conf")},
	}
	if !reflect.DeepEqual(got.Items, want) {
		t.Errorf("record:\n%+v\nwant\n%+v", got.Items, want)
	}
	if orig, _ := os.ReadFile(h.Path(record.OriginalPath("/etc/existing.conf"))); string(orig) != "mine\n" {
		t.Errorf("original copy %q", orig)
	}
	if info, err := os.Stat(h.Path(layout.Record)); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("record file: %v", err)
	}
	saved, _ := os.ReadFile(h.Path(layout.Record))

	// A run with a fresh recorder that has nothing to do writes nothing;
	// one that rewrites a recorded file keeps the first observation.
	h.Reset()
	rec = &record.Recorder{Host: h}
	if err := run(t, steps()...); err != nil {
		t.Fatal(err)
	}
	if c := h.Changes(); len(c) != 0 {
		t.Errorf("a converged re-run wrote %v", c)
	}
	write(t, h, "/etc/existing.conf", "edited by hand\n")
	if err := run(t, steps()...); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(h.Path(layout.Record)); string(again) != string(saved) {
		t.Errorf("record changed:\n%s\nwas\n%s", again, saved)
	}
	if orig, _ := os.ReadFile(h.Path(record.OriginalPath("/etc/existing.conf"))); string(orig) != "mine\n" {
		t.Errorf("the original copy was replaced: %q", orig)
	}
}

func TestAFailedStepRecordsWhatItLeftAndKeepsItsError(t *testing.T) {
	h := hosttest.New(t)
	rec := &record.Recorder{Host: h}
	boom := errors.New("boom")
	s := plan.Step{
		Name:  "half",
		Check: func(context.Context) (plan.Status, error) { return plan.Status{Pending: true}, nil },
		Apply: func(context.Context) error {
			_, err := h.WriteFile("/etc/half.conf", []byte("x"), 0o644)
			return errors.Join(err, boom)
		},
	}
	err := run(t, rec.Wrap(s, record.FileWatch(h, "/etc/half.conf"), apt.Watch(h, apt.Package{Name: "nginx", Binary: "/usr/sbin/nginx"})))
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	got, err := record.Load(h)
	if err != nil || len(got.Items) != 1 || got.Items[0].Path != "/etc/half.conf" {
		t.Fatalf("record %+v, %v", got, err)
	}
}

func TestNoRecordAndBadRecords(t *testing.T) {
	h := hosttest.New(t)
	if _, err := record.Load(h); !errors.Is(err, record.ErrNoRecord) || !strings.Contains(err.Error(), "nothing recorded") {
		t.Errorf("no record: %v", err)
	}
	write(t, h, layout.Record, `{"version": 7, "items": []}`)
	if _, err := record.Load(h); err == nil || !strings.Contains(err.Error(), "version 7") {
		t.Errorf("newer record: %v", err)
	}
	write(t, h, layout.Record, `{"version": 1,`)
	if _, err := record.Load(h); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("broken record: %v", err)
	}
}

func TestAddMergesTheSameThing(t *testing.T) {
	r := record.New()
	r.Add(record.Item{Kind: record.K3s, Version: "v1.36.0+k3s1", Path: "/usr/local/bin/k3s"},
		record.Item{Kind: record.CRDs, Namespace: "m", Name: "rel", Names: []string{"a"}})
	if !r.Add(record.Item{Kind: record.K3s, Version: "v1.37.2+k3s1"}, record.Item{Kind: record.CRDs, Namespace: "m", Name: "rel", Names: []string{"a", "b"}}) {
		t.Fatal("no change")
	}
	if len(r.Items) != 2 || r.Items[0].Version != "v1.37.2+k3s1" || r.Items[0].Path != "/usr/local/bin/k3s" || !reflect.DeepEqual(r.Items[1].Names, []string{"a", "b"}) {
		t.Errorf("merged: %+v", r.Items)
	}
	if r.Add(record.Item{Kind: record.CRDs, Namespace: "m", Name: "rel", Names: []string{"b"}}) {
		t.Error("adding known names changed the record")
	}
}
