package cmdutil

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// Checks for flag values, for each command's input-validation phase: it runs
// before anything changes, and every failure is a *FlagError (exit 2) that
// names the flag, shows the value (cut short) and says what would be valid.

// maxShownValue bounds how much of a bad value an error repeats: a value
// can be anything, and a message is read by a person.
const maxShownValue = 80

// ShowValue quotes v for an error message, cut to a readable length.
func ShowValue(v string) string {
	if len(v) <= maxShownValue {
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("%q… (%d bytes)", v[:maxShownValue], len(v))
}

// CheckPositive refuses a zero or negative duration; example is a valid one.
func CheckPositive(flag string, d time.Duration, example string) error {
	if d <= 0 {
		return FlagErrorf("invalid value %s for %s: a positive duration like %s", d, flag, example)
	}
	return nil
}

// CheckHTTPURL refuses a value that is not an absolute http:// or https://
// URL with a host; example is a valid one. An empty value is allowed (the
// flag's default applies).
func CheckHTTPURL(flag, value, example string) error {
	if value == "" {
		return nil
	}
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return FlagErrorf("invalid value %s for %s: an http:// or https:// URL with a host, like %s", ShowValue(value), flag, example)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return FlagErrorf("invalid value %s for %s: a base URL without ?query or #fragment, like %s", ShowValue(value), flag, example)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return FlagErrorf("invalid value %s for %s: port %s is not 1 to 65535", ShowValue(value), flag, p)
		}
	}
	return nil
}

var sha256Hex = regexp.MustCompile(`^(sha256:)?[0-9a-fA-F]{64}$`)

// CheckSHA256 refuses a value that is not a sha256 digest (64 hexadecimal
// digits, optionally after "sha256:"). Empty is allowed.
func CheckSHA256(flag, value string) error {
	if value == "" || sha256Hex.MatchString(strings.TrimSpace(value)) {
		return nil
	}
	return FlagErrorf("invalid value %s for %s: a sha256 digest, 64 hexadecimal digits as sha256sum prints them", ShowValue(value), flag)
}

// CheckInputFile makes sure path is a regular file homelab can read: it
// exists, is not a directory, FIFO or device (a FIFO would block the run),
// and opens. Symbolic links are followed: an input is only read. It
// returns the file's size. Empty paths are the caller's business.
func CheckInputFile(flag, path string) (int64, error) {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, FlagErrorf("%s %s: no such file", flag, ShowValue(path))
	case errors.Is(err, fs.ErrPermission):
		return 0, FlagErrorf("%s %s: permission denied (run homelab as root, or make the file readable)", flag, ShowValue(path))
	case err != nil:
		return 0, FlagErrorf("%s %s: %v", flag, ShowValue(path), err)
	case info.IsDir():
		return 0, FlagErrorf("%s %s: a directory, not a file", flag, ShowValue(path))
	case !info.Mode().IsRegular():
		return 0, FlagErrorf("%s %s: not a regular file (%s)", flag, ShowValue(path), info.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return 0, FlagErrorf("%s %s: permission denied (run homelab as root, or make the file readable)", flag, ShowValue(path))
		}
		return 0, FlagErrorf("%s %s: %v", flag, ShowValue(path), err)
	}
	f.Close()
	return info.Size(), nil
}

// maxKubeconfig bounds the kubeconfig read: real ones are a few KiB.
const maxKubeconfig = 1 << 20

// CheckKubeconfig makes sure path is a kubeconfig a client can be built
// from: a readable regular file of sane size, valid YAML, with a current
// context whose cluster has a server URL. It asks no server.
func CheckKubeconfig(flag, path string) error {
	size, err := CheckInputFile(flag, path)
	if err != nil {
		return err
	}
	if size > maxKubeconfig {
		return FlagErrorf("%s %s: %d bytes; a kubeconfig is a few KiB (at most %d bytes)", flag, ShowValue(path), size, maxKubeconfig)
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return FlagErrorf("%s %s is not a usable kubeconfig: %s", flag, ShowValue(path), cut(err.Error()))
	}
	if _, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig(); err != nil {
		return FlagErrorf("%s %s is not a usable kubeconfig: %s", flag, ShowValue(path), cut(err.Error()))
	}
	return nil
}

// CheckKubeconfig checks the --kubeconfig the user gave. Without the flag,
// the kubeconfig is k3s's own: whether it exists says whether k3s is
// installed, which commands report themselves.
func (f *Factory) CheckKubeconfig() error {
	if f.Kubeconfig == "" {
		return nil
	}
	return CheckKubeconfig("--kubeconfig", f.Kubeconfig)
}

// cut shortens a library's error for a message: parsers quote the input.
func cut(s string) string {
	const maxMessage = 300
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage] + "…"
}
