// Package app is homelab's entry point: it builds the command tree, runs it,
// prints the error and maps it to an exit code. Nothing below it exits.
package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/homelab-dev/homelab/pkg/cmd/root"
	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/iostreams"
)

// version is set at link time by goreleaser (-X ...app.version=v1.2.3).
var version = "dev"

// Main runs homelab with the process's arguments and streams and returns the
// exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, args, iostreams.System())
}

// Run runs homelab with the given arguments and streams.
func Run(ctx context.Context, args []string, ios *iostreams.IOStreams) int {
	return RunWith(ctx, args, cmdutil.New(ios, version))
}

// RunWith runs homelab on a prepared Factory; tests use it to swap the host.
func RunWith(ctx context.Context, args []string, f *cmdutil.Factory) int {
	cmd := root.NewCmdRoot(f)
	cmd.SetArgs(args)
	cmd.SetIn(f.IOStreams.In)
	cmd.SetOut(f.IOStreams.Out)
	cmd.SetErr(f.IOStreams.ErrOut)
	_, err := cmd.ExecuteContextC(ctx)
	if lost := f.IOStreams.OutputError(); lost != nil {
		err = outputLost(err, lost)
	}
	if err == nil {
		return cmdutil.ExitOK
	}
	code := cmdutil.ExitCode(err)
	var codeErr *cmdutil.ExitCodeError
	switch {
	case errors.As(err, &codeErr) && codeErr.Err == nil:
	case code == cmdutil.ExitInterrupted:
		fmt.Fprintln(f.IOStreams.ErrOut, "interrupted: stopped between steps; run the same command again to finish")
	default:
		fmt.Fprintf(f.IOStreams.ErrOut, "Error: %v\n", err)
		if code == cmdutil.ExitUsage {
			fmt.Fprintln(f.IOStreams.ErrOut, "Run 'homelab --help' or 'homelab <command> --help' for usage. Nothing was changed.")
		}
	}
	return code
}

// outputLost is the run's error once a write to standard output failed: the
// data did not reach its reader, so a run that otherwise succeeded (or only
// reported its findings, doctor's exit 3) fails with exit 1. A command that
// failed on its own keeps its error, with the lost output added unless the
// error already is that failed write.
func outputLost(err, lost error) error {
	lostErr := fmt.Errorf("standard output could not be written, the output is incomplete: %w", lost)
	var codeErr *cmdutil.ExitCodeError
	switch {
	case err == nil, errors.As(err, &codeErr) && codeErr.Err == nil:
		return lostErr
	case errors.Is(err, lost):
		return err
	}
	return fmt.Errorf("%w; and %v", err, lostErr)
}
