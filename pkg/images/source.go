package images

import (
	"context"
	"fmt"
	"io"
	"os"
)

// Source is where an image archive comes from: a file, or a stream from
// the local Docker daemon (`docker save`, run through pkg/host).
type Source interface {
	// Open starts the stream. Close must release it and report a failure
	// of the producer (a non-zero exit of docker save) that the stream
	// itself could not show.
	Open(ctx context.Context) (io.ReadCloser, error)
	// Name says what the source is, for messages ("./app.tar").
	Name() string
}

// ArchiveSource is an archive file (docker save or OCI image layout tar,
// optionally gzip or zstd compressed).
type ArchiveSource struct {
	Path string
}

func (s ArchiveSource) Open(context.Context) (io.ReadCloser, error) { return os.Open(s.Path) }

func (s ArchiveSource) Name() string { return s.Path }

// ImportFrom streams src into containerd, as Import does. Errors name the
// source; when the source itself failed, its error wins over whatever the
// cut-off stream looked like to the importer.
func (i *Importer) ImportFrom(ctx context.Context, src Source, opts ImportOptions) (Result, error) {
	rc, err := src.Open(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("open %s: %w", src.Name(), err)
	}
	res, err := i.Import(ctx, rc, opts)
	cerr := rc.Close()
	switch {
	case err != nil && cerr != nil:
		return Result{}, fmt.Errorf("%s: %w (the import then failed: %v)", src.Name(), cerr, err)
	case err != nil:
		return Result{}, fmt.Errorf("%s: %w", src.Name(), err)
	case cerr != nil:
		// The stream read as a complete image and is imported, but the
		// producer failed: say so rather than trust it silently.
		return res, fmt.Errorf("%s: %w", src.Name(), cerr)
	}
	return res, nil
}
