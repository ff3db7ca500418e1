// Package apt installs the Debian packages homelab needs when they are
// missing, and removes them again on `uninstall --packages`. Only a package
// whose binary was missing is installed, and only such a package is
// recorded (Watch), so uninstall never removes one the user had.
package apt

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/plan"
	"github.com/homelab-dev/homelab/pkg/record"
)

// Package is a Debian package and the binary that shows it is installed.
type Package struct {
	Name   string
	Binary string
}

// env keeps apt from asking questions: nobody answers them.
var env = []string{"DEBIAN_FRONTEND=noninteractive"}

// InstallStep installs p when its binary is missing.
func InstallStep(h host.Host, p Package) plan.Step {
	return plan.Step{
		Name: p.Name + " package",
		Check: func(context.Context) (plan.Status, error) {
			_, err := h.Lstat(p.Binary)
			switch {
			case err == nil:
				return plan.Status{Summary: p.Binary + " is installed"}, nil
			case errors.Is(err, fs.ErrNotExist):
				return plan.Status{Pending: true, Summary: "apt-get install " + p.Name}, nil
			}
			return plan.Status{}, err
		},
		Apply: func(ctx context.Context) error { return Install(ctx, h, p) },
	}
}

// Install runs apt-get update and apt-get install for p.
func Install(ctx context.Context, h host.Host, p Package) error {
	if _, err := h.Run(ctx, host.Cmd{Name: "apt-get", Args: []string{"update", "-q"}, Env: env}); err != nil {
		return err
	}
	_, err := h.Run(ctx, host.Cmd{Name: "apt-get", Args: []string{"install", "-y", "-q", "--no-install-recommends", p.Name}, Env: env})
	return err
}

// Watch records p when the step it wraps installed it: its binary was
// missing before and is there after.
func Watch(h host.Host, p Package) record.Watch {
	return func(ctx context.Context, rec *record.Record) (record.After, error) {
		it := record.Item{Kind: record.AptPackage, Name: p.Name}
		if rec.Has(it) {
			return record.Nothing, nil
		}
		if had, err := record.Exists(h, p.Binary); err != nil || had {
			return record.Nothing, err
		}
		return func(context.Context, error) ([]record.Item, error) {
			if ok, err := record.Exists(h, p.Binary); err != nil || !ok {
				return nil, err
			}
			return []record.Item{it}, nil
		}, nil
	}
}

// RemoveStep removes a package homelab installed (and the dependencies it
// pulled in); its configuration files stay, as apt-get remove leaves them.
func RemoveStep(h host.Host, name string) plan.Step {
	installed := func(ctx context.Context) (bool, error) {
		out, err := h.Run(ctx, host.Cmd{Name: "dpkg-query", Args: []string{"-W", "-f=${db:Status-Status}", name}})
		if err != nil {
			var cmdErr *host.CmdError
			if errors.As(err, &cmdErr) && !errors.Is(err, host.ErrCommandUnderRoot) {
				return false, nil // dpkg-query exits 1 for a package it does not know
			}
			return false, err
		}
		return strings.TrimSpace(string(out)) == "installed", nil
	}
	return plan.Step{
		Name: "apt package " + name,
		Check: func(ctx context.Context) (plan.Status, error) {
			ok, err := installed(ctx)
			switch {
			case ctx.Err() != nil:
				return plan.Status{}, ctx.Err()
			case err != nil:
				return plan.Status{Pending: true, Summary: fmt.Sprintf("apt-get remove %s (dpkg could not be asked: %v)", name, err)}, nil
			case !ok:
				return plan.Status{Summary: "not installed"}, nil
			}
			return plan.Status{Pending: true, Summary: "apt-get remove " + name}, nil
		},
		Apply: func(ctx context.Context) error {
			_, err := h.Run(ctx, host.Cmd{Name: "apt-get", Args: []string{"remove", "-y", "-q", name}, Env: env})
			return err
		},
	}
}
