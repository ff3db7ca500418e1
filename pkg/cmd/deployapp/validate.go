package deployapp

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/spf13/pflag"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
)

// validate is deploy-app's input check, run before the configuration is
// read, containerd or the cluster asked, or anything changed: every
// problem with the flags is bad input (exit 2) naming the flag and what
// would be valid. The archive is checked here, before the cluster.
func validate(opts *Options, fl *pflag.FlagSet) error {
	if err := exclusive(fl); err != nil {
		return err
	}
	if err := cmdutil.CheckPositive("--timeout", opts.Timeout, "3m"); err != nil {
		return err
	}
	for _, f := range []struct{ flag, value string }{
		{"--containerd-socket", opts.ContainerdSocket}, {"--containerd-namespace", opts.ContainerdNamespace},
	} {
		if strings.TrimSpace(f.value) == "" {
			return cmdutil.FlagErrorf("%s must not be empty (leave it out for k3s's default)", f.flag)
		}
	}
	if fl.Changed("archive") {
		if opts.Archive == "" {
			return cmdutil.FlagErrorf("--archive must not be empty: an image archive, like --archive ./nextjs-app.tar")
		}
		return checkArchive(opts.Archive)
	}
	return nil
}

// exclusive refuses flags that ask for different jobs. (cobra's own flag
// groups report a plain error, which would exit 1.)
func exclusive(fl *pflag.FlagSet) error {
	groups := [][]string{{"image", "archive", "rollback", "history"}, {"history", "dry-run"}}
	for _, g := range groups {
		var set []string
		for _, name := range g {
			if fl.Changed(name) {
				set = append(set, "--"+name)
			}
		}
		if len(set) > 1 {
			return cmdutil.FlagErrorf("%s cannot be used together: give one of --%s", strings.Join(set, " and "), strings.Join(g, ", --"))
		}
	}
	return nil
}

// checkArchive makes sure the archive is a readable file that starts like
// an image archive: a tar (docker save, OCI layout), optionally gzip or
// zstd compressed, as the import reads it. Only the first header is read,
// so a multi-GB archive costs nothing here; the import verifies the rest.
func checkArchive(path string) error {
	size, err := cmdutil.CheckInputFile("--archive", path)
	if err != nil {
		return err
	}
	if size == 0 {
		return cmdutil.FlagErrorf("--archive %s is empty: want the output of docker save, or an OCI layout tar", cmdutil.ShowValue(path))
	}
	f, err := os.Open(path)
	if err != nil {
		return cmdutil.FlagErrorf("--archive %s: %v", cmdutil.ShowValue(path), err)
	}
	defer f.Close()
	if err := firstTarHeader(f); err != nil {
		return cmdutil.FlagErrorf("--archive %s is not an image archive (%v): want docker save output or an OCI layout tar, optionally gzip or zstd compressed",
			cmdutil.ShowValue(path), err)
	}
	return nil
}

// firstTarHeader reads the first tar header of r, decompressed as the
// importer decompresses it (gzip and zstd by their magic bytes).
func firstTarHeader(r io.Reader) error {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	var tr io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		defer gz.Close()
		tr = gz
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		tr = zr
	}
	if _, err := tar.NewReader(tr).Next(); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("a tar without any file")
		}
		return fmt.Errorf("not a tar: %w", err)
	}
	return nil
}
