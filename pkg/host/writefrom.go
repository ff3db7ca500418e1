package host

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// StreamWriter is a host that can write a file from a stream, for files too
// large to hold in memory (image tarballs of hundreds of MB).
type StreamWriter interface {
	// WriteFileFrom replaces path atomically with what r yields, with
	// exactly mode. check runs once r is read to its end, before the new
	// file replaces the old one: an error from r or check leaves path as it
	// was. Unlike WriteFile, the previous version is not backed up (these
	// are artifacts that can be placed again, not configuration).
	WriteFileFrom(path string, r io.Reader, mode fs.FileMode, check func() error) (WriteResult, error)
}

var _ StreamWriter = (*Local)(nil)

// WriteFileFrom writes path from r through a pending file beside it.
func (l *Local) WriteFileFrom(p string, r io.Reader, mode fs.FileMode, check func() error) (WriteResult, error) {
	local, err := l.Resolve(p)
	if err != nil {
		return WriteResult{}, err
	}
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return WriteResult{}, err
	}
	f, err := renameio.NewPendingFile(local, besideTarget(local), renameio.WithStaticPermissions(mode.Perm()))
	if err != nil {
		return WriteResult{}, fmt.Errorf("write %s: %w", p, err)
	}
	defer f.Cleanup()
	if _, err := io.Copy(f, r); err != nil {
		return WriteResult{}, fmt.Errorf("write %s: %w", p, err)
	}
	if check != nil {
		if err := check(); err != nil {
			return WriteResult{}, err
		}
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return WriteResult{}, fmt.Errorf("write %s: %w", p, err)
	}
	return WriteResult{Changed: true}, nil
}
