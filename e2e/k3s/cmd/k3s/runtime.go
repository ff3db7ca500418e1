package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// The runtime payload (containerd, ctr, runc, CNI plugins, etcd) is a gzip'd
// tar appended to this binary by e2e/k3s/build, followed by a trailer:
// sha256 of the payload (32 bytes), its length (8 bytes, little endian) and
// payloadMagic. Real k3s likewise carries its userspace inside its binary and
// unpacks it to <data-dir>/data/<hash>/bin.
const payloadMagic = "K3S-STANDIN-RT01"

const trailerLen = 32 + 8 + len(payloadMagic)

type payload struct {
	hash         string
	offset, size int64
	file         string
}

func findPayload() (*payload, error) {
	self := "/proc/self/exe"
	f, err := os.Open(self)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.Size() < int64(trailerLen) {
		return nil, errors.New("no runtime payload appended to this binary (build it with e2e/k3s/build)")
	}
	tr := make([]byte, trailerLen)
	if _, err := f.ReadAt(tr, info.Size()-int64(trailerLen)); err != nil {
		return nil, err
	}
	if string(tr[40:]) != payloadMagic {
		return nil, errors.New("no runtime payload appended to this binary (build it with e2e/k3s/build)")
	}
	size := int64(binary.LittleEndian.Uint64(tr[32:40]))
	return &payload{
		hash:   hex.EncodeToString(tr[:32]),
		size:   size,
		offset: info.Size() - int64(trailerLen) - size,
		file:   self,
	}, nil
}

// runtimeBinDir unpacks the payload under dataDir once and returns its bin
// directory.
func runtimeBinDir(dataDir string) (string, error) {
	p, err := findPayload()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(dataDir, "data", p.hash[:16])
	bin := filepath.Join(dir, "bin")
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := p.extract(tmp); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("unpack the runtime to %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), []byte(p.hash+"\n"), 0o644); err != nil {
		return "", err
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	// data/current points at the runtime in use, as in k3s.
	cur := filepath.Join(dataDir, "data", "current")
	os.Remove(cur)
	_ = os.Symlink(p.hash[:16], cur)
	return bin, nil
}

func (p *payload) extract(dest string) error {
	f, err := os.Open(p.file)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	sec := io.TeeReader(io.NewSectionReader(f, p.offset, p.size), h)
	zr, err := gzip.NewReader(sec)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(hdr.Name)
		if strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			return fmt.Errorf("bad path %q in the payload", hdr.Name)
		}
		target := filepath.Join(dest, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(hdr.Mode)&0o755)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		}
	}
	io.Copy(io.Discard, sec)
	if got := hex.EncodeToString(h.Sum(nil)); got != p.hash {
		return fmt.Errorf("payload sha256 is %s, the trailer says %s: the binary is damaged", got, p.hash)
	}
	return nil
}

// runCtr is containerd's ctr against k3s's containerd, namespace k8s.io
// unless told otherwise, as `k3s ctr` is.
func runCtr(args []string) int {
	bin, err := runtimeBinDir(defaultDataDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "k3s ctr: %v\n", err)
		return 1
	}
	env := os.Environ()
	if os.Getenv("CONTAINERD_ADDRESS") == "" {
		env = append(env, "CONTAINERD_ADDRESS="+containerdSocket)
	}
	if os.Getenv("CONTAINERD_NAMESPACE") == "" {
		env = append(env, "CONTAINERD_NAMESPACE=k8s.io")
	}
	ctr := filepath.Join(bin, "ctr")
	err = syscall.Exec(ctr, append([]string{"ctr"}, args...), env)
	fmt.Fprintf(os.Stderr, "k3s ctr: exec %s: %v\n", ctr, err)
	return 1
}

func runCrictl([]string) int {
	fmt.Fprintln(os.Stderr, "k3s crictl: not provided by the e2e stand-in (Debian bookworm has no cri-tools); use k3s ctr -n k8s.io")
	return 1
}

var _ = bytes.MinRead
