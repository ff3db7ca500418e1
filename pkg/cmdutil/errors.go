package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/homelab-dev/homelab/pkg/config"
)

// Exit codes, mapped from errors in one place (ExitCode).
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitProblems    = 3
	ExitInterrupted = 130
)

// FlagError is bad command-line usage: exit 2, nothing changed.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// FlagErrorf builds a FlagError.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{Err: errorf(format, args...)}
}

// ExitCodeError ends a command with a given code after it printed its own
// report (doctor's 3 when it found problems).
type ExitCodeError struct {
	Code int
	Err  error
}

func (e *ExitCodeError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}
func (e *ExitCodeError) Unwrap() error { return e.Err }

// ExitCode maps an error returned by a command to the process exit code.
func ExitCode(err error) int {
	var flagErr *FlagError
	var cfgErr *config.Error
	var codeErr *ExitCodeError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &codeErr):
		return codeErr.Code
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.As(err, &flagErr), errors.As(err, &cfgErr), isCobraUsage(err), isBadInput(err):
		return ExitUsage
	}
	return ExitError
}

// isCobraUsage recognises the few usage errors cobra returns as plain errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, prefix := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "invalid argument", "accepts ", "requires at least", "required flag"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

// isBadInput recognises errors that say the user's input (an image, an
// archive) is unusable: they implement BadInput() bool.
func isBadInput(err error) bool {
	var bi interface{ BadInput() bool }
	return errors.As(err, &bi) && bi.BadInput()
}
