package init

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/helm"
	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/k3s"
)

// init's inputs are checked in two phases, both before any step runs and
// the same in a dry run: validate (the flags alone, before the
// configuration is read) and checkInputs (what the flags and the
// configuration name: local files, read and verified as the real run would
// read them). Every failure is bad input, exit 2, naming the flag or key.

// offlineFlags are the flags that name local files for an offline install;
// --bundle replaces all of them.
var offlineFlags = []string{"k3s-binary", "k3s-images", "k3s-sums", "k3s-sha256", "stack-chart", "blackbox-chart"}

// validate checks init's flags on their own. The --bundle file is the
// bundle's own business: useBundle verifies all of it (exit 2) before any
// step.
func validate(opts *Options, fl *pflag.FlagSet) error {
	d := &opts.Deps
	if fl.Changed("bundle") {
		if opts.Bundle == "" {
			return cmdutil.FlagErrorf("--bundle must not be empty: a bundle made by homelab bundle, like --bundle homelab-bundle.tar")
		}
		for _, name := range offlineFlags {
			if fl.Changed(name) {
				return cmdutil.FlagErrorf("--bundle and --%s cannot be used together: the bundle carries the k3s binary, its checksums and airgap images, and both charts", name)
			}
		}
	}
	// An empty value (an unset shell variable) would silently mean
	// "download it": the user asked for a local file.
	for _, name := range append(slices.Clone(offlineFlags), "k3s-base-url") {
		if fl.Changed(name) && strings.TrimSpace(fl.Lookup(name).Value.String()) == "" {
			return cmdutil.FlagErrorf("--%s must not be empty (leave the flag out to use the default)", name)
		}
	}
	if err := cmdutil.CheckPositive("--timeout", d.Timeout, "10m"); err != nil {
		return err
	}
	if err := cmdutil.CheckHTTPURL("--k3s-base-url", d.K3s.BaseURL, k3s.DefaultBaseURL); err != nil {
		return err
	}
	if err := cmdutil.CheckSHA256("--k3s-sha256", d.K3s.PinnedSHA256); err != nil {
		return err
	}
	k := d.K3s
	if k.BinaryFile != "" && k.PinnedSHA256 == "" && k.SumsFile == "" {
		return cmdutil.FlagErrorf("--k3s-binary %s cannot be verified: give its digest (--k3s-sha256) or the release's %s (--k3s-sums)",
			cmdutil.ShowValue(k.BinaryFile), k.SumsAsset())
	}
	if k.ImagesFile != "" {
		if !slices.ContainsFunc(k3sImageExtensions, func(ext string) bool { return strings.HasSuffix(k.ImagesFile, ext) }) {
			return cmdutil.FlagErrorf("invalid value %s for --k3s-images: an image tarball k3s imports (%s), like %s",
				cmdutil.ShowValue(k.ImagesFile), strings.Join(k3sImageExtensions, ", "), k.AirgapImagesAsset())
		}
		if k.BinaryFile != "" && k.SumsFile == "" {
			return cmdutil.FlagErrorf("--k3s-images %s cannot be verified offline: give the release's %s (--k3s-sums)",
				cmdutil.ShowValue(k.ImagesFile), k.SumsAsset())
		}
	}
	for _, f := range []struct{ flag, path string }{
		{"--k3s-binary", k.BinaryFile}, {"--k3s-images", k.ImagesFile}, {"--k3s-sums", k.SumsFile},
		{"--stack-chart", d.StackChart}, {"--blackbox-chart", d.BlackboxChart},
	} {
		if f.path == "" {
			continue
		}
		if _, err := cmdutil.CheckInputFile(f.flag, f.path); err != nil {
			return err
		}
	}
	return nil
}

// k3sImageExtensions are the tarballs k3s imports from its images directory.
var k3sImageExtensions = []string{".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst", ".tar.bz2", ".tbz", ".tar.lz4", ".tlz4"}

// checkInputs reads what init's flags and configuration name, as the real
// run will: the k3s files verified against their checksums, the chart
// archives loaded and matched to the configured chart versions, the TLS
// certificate parsed and matched to its key.
func checkInputs(ctx context.Context, opts *Options, loaded *config.Loaded) error {
	cfg := loaded.Config
	d := opts.Deps
	if err := checkK3sFiles(ctx, d.K3s, cfg.K3s.Version); err != nil {
		return err
	}
	m := cfg.Monitoring
	for _, c := range []struct{ flag, path, chart, version, key string }{
		{"--stack-chart", d.StackChart, "kube-prometheus-stack", m.ChartVersion, "monitoring.chartVersion"},
		{"--blackbox-chart", d.BlackboxChart, "prometheus-blackbox-exporter", m.Blackbox.ChartVersion, "monitoring.blackbox.chartVersion"},
	} {
		if c.path == "" {
			continue
		}
		// The engine reads a local archive without a cluster.
		if _, _, err := (&helm.Engine{}).FetchArchive(helm.Source{Archive: c.path, Name: c.chart, Version: c.version}); err != nil {
			return cmdutil.FlagErrorf("%s %s cannot be installed: %s (want the %s chart at %s, the version %s)",
				c.flag, cmdutil.ShowValue(c.path), shortError(err), c.chart, c.version, c.key)
		}
	}
	return checkTLSFiles(opts.Deps.Host, loaded, opts.DryRun, opts.IO.ErrOut)
}

// checkK3sFiles verifies the local k3s files the way the k3s steps will:
// the checksum list parses, the binary (and the images, when the list is
// local) have the digest they must have. Nothing is downloaded.
func checkK3sFiles(ctx context.Context, k k3s.Installer, version string) error {
	k.Host, k.Version = nil, version
	if k.SumsFile != "" {
		if _, err := k.Sums(ctx); err != nil {
			return cmdutil.FlagErrorf("--k3s-sums %s: %s", cmdutil.ShowValue(k.SumsFile), shortError(err))
		}
	}
	if k.BinaryFile != "" {
		if _, err := k.Download(ctx, k.BinaryAsset(), io.Discard); err != nil {
			return cmdutil.FlagErrorf("--k3s-binary %s: %s", cmdutil.ShowValue(k.BinaryFile), shortError(err))
		}
	}
	if k.ImagesFile != "" && k.SumsFile != "" {
		if _, err := k.Download(ctx, filepath.Base(k.ImagesFile), io.Discard); err != nil {
			return cmdutil.FlagErrorf("--k3s-images %s: %s", cmdutil.ShowValue(k.ImagesFile), shortError(err))
		}
	}
	return nil
}

// maxPEM bounds a certificate or key file: real ones are a few KiB.
const maxPEM = 1 << 20

// checkTLSFiles reads tls.certFile and tls.keyFile (host paths, under
// --root) and makes sure they are a certificate and the key that matches
// it; Nginx would otherwise refuse the site at the last step. A preview
// run without root may not be able to read the key: it says so instead.
func checkTLSFiles(h host.Host, loaded *config.Loaded, dryRun bool, errOut io.Writer) error {
	cfg := loaded.Config
	if cfg.TLS.Mode != config.TLSFiles {
		return nil
	}
	src := loaded.Source
	if src == "" {
		src = "flags"
	}
	bad := func(key, msg string) error {
		return &config.Error{Problems: []config.Problem{{Key: key, Source: src, Msg: msg}}}
	}
	read := func(key, path string) ([]byte, error) {
		if info, err := h.Lstat(path); err == nil && info.Mode().IsRegular() && info.Size() > maxPEM {
			return nil, bad(key, fmt.Sprintf("%s is %d bytes; a PEM file is a few KiB", path, info.Size()))
		}
		data, err := h.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, bad(key, path+" does not exist; put the file there or change "+key)
		case errors.Is(err, fs.ErrPermission) && dryRun:
			fmt.Fprintf(errOut, "Not checked: %s %s (permission denied; a real run as root checks it).\n", key, path)
			return nil, nil
		case err != nil:
			return nil, bad(key, fmt.Sprintf("%s cannot be read: %s", path, shortError(err)))
		case len(data) > maxPEM:
			return nil, bad(key, fmt.Sprintf("%s is %d bytes; a PEM file is a few KiB", path, len(data)))
		}
		return data, nil
	}
	cert, err := read("tls.certFile", cfg.TLS.CertFile)
	if err != nil {
		return err
	}
	key, err := read("tls.keyFile", cfg.TLS.KeyFile)
	if err != nil {
		return err
	}
	if cert != nil {
		if err := parseCert(cert); err != nil {
			return bad("tls.certFile", cfg.TLS.CertFile+" "+err.Error())
		}
	}
	if cert == nil || key == nil {
		return nil
	}
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		return bad("tls.keyFile", fmt.Sprintf("%s is not the key of the certificate %s: %s", cfg.TLS.KeyFile, cfg.TLS.CertFile, shortError(err)))
	}
	return nil
}

// parseCert checks that data holds a PEM certificate (the first of a chain
// is the server's).
func parseCert(data []byte) error {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return errors.New("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("holds a certificate that does not parse: %s", shortError(err))
		}
		return nil
	}
}

// shortError keeps a library's message readable: parsers quote their input.
func shortError(err error) string {
	const max = 300
	s := err.Error()
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
