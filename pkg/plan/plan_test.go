package plan

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// counter is a step whose state is a number that Apply moves towards want.
func counter(name string, state *int, want int, applies *int) Step {
	return Step{
		Name: name,
		Check: func(context.Context) (Status, error) {
			return Status{Pending: *state != want, Summary: name}, nil
		},
		Apply: func(context.Context) error { *applies++; *state = want; return nil },
	}
}

func TestRunnerAppliesOnlyPendingStepsAndConverges(t *testing.T) {
	a, b := 0, 5
	var appliesA, appliesB int
	p := Plan{Name: "t", Steps: []Step{counter("a", &a, 1, &appliesA), counter("b", &b, 5, &appliesB)}}
	var kinds []string
	res, err := Runner{OnEvent: func(e Event) { kinds = append(kinds, e.Step+":"+e.Kind.String()) }}.Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if appliesA != 1 || appliesB != 0 || len(res.Changed) != 1 || len(res.UpToDate) != 1 {
		t.Fatalf("applies a=%d b=%d result %+v", appliesA, appliesB, res)
	}
	if got := strings.Join(kinds, " "); got != "a:checking a:applying a:changed b:checking b:up to date" {
		t.Errorf("events: %s", got)
	}
	res, err = Runner{}.Run(context.Background(), p)
	if err != nil || len(res.Changed) != 0 || appliesA != 1 {
		t.Fatalf("second run changed %v (applies %d), err %v", res.Changed, appliesA, err)
	}
}

func TestDryRunAppliesNothing(t *testing.T) {
	a, applies := 0, 0
	res, err := Runner{DryRun: true}.Run(context.Background(), Plan{Steps: []Step{counter("a", &a, 1, &applies)}})
	if err != nil || applies != 0 || len(res.Pending) != 1 {
		t.Fatalf("dry run: applies %d result %+v err %v", applies, res, err)
	}
}

func TestStepThatDoesNotConvergeFails(t *testing.T) {
	s := Step{
		Name:  "stuck",
		Check: func(context.Context) (Status, error) { return Status{Pending: true, Summary: "still wrong"}, nil },
		Apply: func(context.Context) error { return nil },
	}
	_, err := Runner{}.Run(context.Background(), Plan{Steps: []Step{s}})
	if !errors.Is(err, ErrNotConverged) || !strings.Contains(err.Error(), "still wrong") {
		t.Fatalf("err %v", err)
	}
}

func TestCancelStopsBetweenSteps(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	a, b, appliesA, appliesB := 0, 0, 0, 0
	first := counter("a", &a, 1, &appliesA)
	apply := first.Apply
	first.Apply = func(ctx context.Context) error { cancel(); return apply(ctx) }
	_, err := Runner{}.Run(ctx, Plan{Steps: []Step{first, counter("b", &b, 1, &appliesB)}})
	if !errors.Is(err, context.Canceled) || appliesA != 1 || appliesB != 0 {
		t.Fatalf("err %v, applies a=%d b=%d: want a finished and b not started", err, appliesA, appliesB)
	}
}

func TestPreviewOnlyStepsRefuseARealRun(t *testing.T) {
	s := Step{Name: "k3s", Check: func(context.Context) (Status, error) { return Status{Pending: true}, nil }}
	if _, err := (Runner{}).Run(context.Background(), Plan{Name: "init", Steps: []Step{s}}); err == nil || !strings.Contains(err.Error(), "k3s") {
		t.Fatalf("err %v", err)
	}
	if _, err := (Runner{DryRun: true}).Run(context.Background(), Plan{Name: "init", Steps: []Step{s}}); err != nil {
		t.Fatalf("dry run: %v", err)
	}
}

func TestFileStepsShowDiffsAndHideSecrets(t *testing.T) {
	root := t.TempDir()
	h := &host.Local{Root: root}
	pub := WriteFile(h, "/etc/a.conf", []byte("new\n"), 0o644)
	priv := WriteFile(h, "/etc/secret.yaml", []byte("password: hunter2\n"), 0o600)
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/a.conf"), []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err := Runner{DryRun: true, OnEvent: TextReport{W: &out, ShowDiffs: true}.Event}.Run(context.Background(), Plan{Steps: []Step{pub, priv}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "-old") || !strings.Contains(out.String(), "+new") {
		t.Errorf("no diff for the public file:\n%s", out.String())
	}
	if strings.Contains(out.String(), "hunter2") {
		t.Errorf("dry run printed a private file's content:\n%s", out.String())
	}
	testutil.Golden(t, "plan/dry-run-files.txt", out.Bytes())
	if _, err := (Runner{}).Run(context.Background(), Plan{Steps: []Step{pub, priv, Symlink(h, "a.conf", "/etc/link.conf")}}); err != nil {
		t.Fatal(err)
	}
	if target, _ := os.Readlink(filepath.Join(root, "etc/link.conf")); target != "a.conf" {
		t.Errorf("link -> %q", target)
	}
}

// TestUnmetNeedStopsDryAndRealRunAlike: a need that is not met fails a dry
// run and a real run with the same error, before any step is checked.
func TestUnmetNeedStopsDryAndRealRunAlike(t *testing.T) {
	unreachable := errors.New("connection refused")
	var msgs []string
	for _, dry := range []bool{true, false} {
		checked := 0
		p := Plan{Name: "t",
			Needs: []Need{{Name: "the API server", Check: func(context.Context) error { return unreachable }}},
			Steps: []Step{{Name: "a", Check: func(context.Context) (Status, error) { checked++; return Status{Pending: true}, nil },
				Apply: func(context.Context) error { return nil }}}}
		_, err := Runner{DryRun: dry}.Run(context.Background(), p)
		if !errors.Is(err, unreachable) {
			t.Fatalf("dry run %v: error %v, want the need's", dry, err)
		}
		if checked != 0 {
			t.Errorf("dry run %v: a step was checked before the unmet need stopped the run", dry)
		}
		msgs = append(msgs, err.Error())
	}
	if msgs[0] != msgs[1] || !strings.Contains(msgs[0], "the API server") {
		t.Errorf("dry run says %q, real run %q; want the same message naming the need", msgs[0], msgs[1])
	}
}
