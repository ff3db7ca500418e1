package images

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Kinds of failure. Test with errors.Is; the concrete errors are
// *InputError, *PlatformError and *UnavailableError.
var (
	// ErrUnavailable: containerd's socket is missing or nothing answers on it.
	ErrUnavailable = errors.New("containerd is not reachable")

	// ErrEmptyArchive: the stream held no bytes, or an archive without images.
	ErrEmptyArchive = errors.New("empty image archive")
	// ErrNotImageArchive: a readable stream that is neither a docker-save nor
	// an OCI layout tar (a plain tar, a text file, ...).
	ErrNotImageArchive = errors.New("not an image archive")
	// ErrCorruptArchive: an image archive that is truncated or damaged.
	ErrCorruptArchive = errors.New("corrupt or truncated image archive")
	// ErrWrongPlatform: the image cannot run on the wanted platform.
	ErrWrongPlatform = errors.New("image is built for another platform")
	// ErrNoImage: the archive does not say which image to import: it holds
	// several, none of them with the requested name, or none has a name.
	ErrNoImage = errors.New("archive does not identify the image")
	// ErrBadName: an image name that is not a valid tag reference.
	ErrBadName = errors.New("invalid image name")

	// ErrImageNotFound: Lookup found no image of that name.
	ErrImageNotFound = errors.New("image not found in containerd")
)

// InputError is an archive or name that cannot be imported as it is. It is
// the user's input that is wrong, and nothing was changed in containerd, so a
// command maps it to exit code 2 (see IsBadInput).
type InputError struct {
	// Kind is one of the Err* sentinels above.
	Kind error
	// Detail says what is wrong, for a person.
	Detail string
	// Err is the underlying cause, when there is one.
	Err error
}

func (e *InputError) Error() string {
	msg := e.Kind.Error()
	if e.Detail != "" {
		msg += ": " + cut(e.Detail)
	}
	if e.Err != nil {
		msg += ": " + cut(e.Err.Error())
	}
	return msg
}

// maxMessagePart bounds each part of an InputError's message. The parts
// quote the archive (entry names, names in manifest.json, up to a MiB in a
// tar's extended headers), which must not end up whole on the terminal.
const maxMessagePart = 300

// cut shortens s to maxMessagePart bytes, at a character boundary, and
// says so.
func cut(s string) string {
	if len(s) <= maxMessagePart {
		return s
	}
	i := maxMessagePart
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return fmt.Sprintf("%s... (%d more bytes)", s[:i], len(s)-i)
}

func (e *InputError) Is(target error) bool { return target == e.Kind }
func (e *InputError) Unwrap() error        { return e.Err }

// PlatformError is an image that does not run on the wanted platform. It is
// bad input, like InputError.
type PlatformError struct {
	// Image is the name the image would have had, when known.
	Image string
	// Have are the platforms the image is built for ("linux/arm64", ...).
	Have []string
	// Want is the platform homelab imports for (k3s's node).
	Want string
}

func (e *PlatformError) Error() string {
	have := "no platform at all"
	if len(e.Have) > 0 {
		have = strings.Join(e.Have, ", ")
	}
	name := "the image"
	if e.Image != "" {
		name = e.Image
	}
	return fmt.Sprintf("%s: %s is built for %s, but this machine needs %s (rebuild it, e.g. docker build --platform %s)",
		ErrWrongPlatform, name, have, e.Want, e.Want)
}

func (e *PlatformError) Is(target error) bool { return target == ErrWrongPlatform }

// UnavailableError is containerd not answering on Socket.
type UnavailableError struct {
	Socket string
	// Reason is a short explanation ("does not exist", "permission denied", ...).
	Reason string
	Err    error
}

func (e *UnavailableError) Error() string {
	msg := fmt.Sprintf("containerd socket %s: %s: k3s may not be running (check: systemctl status k3s)", e.Socket, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }
func (e *UnavailableError) Unwrap() error        { return e.Err }

// IsBadInput reports whether err is the user's input being wrong (a bad
// archive, an image for another platform, an invalid name): exit code 2,
// nothing changed.
func IsBadInput(err error) bool {
	var in *InputError
	var pl *PlatformError
	return errors.As(err, &in) || errors.As(err, &pl)
}

// BadInput marks errors caused by what the user gave (exit code 2).
func (e *InputError) BadInput() bool { return true }

// BadInput marks errors caused by what the user gave (exit code 2).
func (e *PlatformError) BadInput() bool { return true }
