// Command mkimage writes a `docker save` style image archive (what
// `ctr images import` and k3s's airgap import read) holding one or more
// single-layer images, each a static binary as its entrypoint:
//
//	mkimage -o images.tar NAME=BINARY [NAME=BINARY ...]
//
// Only the standard library: the self-test needs no registry tooling.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	out := flag.String("o", "", "output archive")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: mkimage -o OUT.tar NAME=BINARY...")
		os.Exit(2)
	}
	f, err := os.Create(*out)
	check(err)
	tw := tar.NewWriter(f)
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []entry
	for _, arg := range flag.Args() {
		name, bin, ok := strings.Cut(arg, "=")
		if !ok {
			check(fmt.Errorf("%q is not NAME=BINARY", arg))
		}
		data, err := os.ReadFile(bin)
		check(err)
		entrypoint := "/" + filepath.Base(bin)
		var layer bytes.Buffer
		lw := tar.NewWriter(&layer)
		check(lw.WriteHeader(&tar.Header{Name: entrypoint[1:], Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}))
		_, err = lw.Write(data)
		check(err)
		check(lw.Close())
		layerSum := sha256.Sum256(layer.Bytes())
		layerID := hex.EncodeToString(layerSum[:])
		cfg, _ := json.Marshal(map[string]any{
			"architecture": "amd64",
			"os":           "linux",
			"created":      "1970-01-01T00:00:00Z",
			"config":       map[string]any{"Entrypoint": []string{entrypoint}},
			"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerID}},
		})
		cfgSum := sha256.Sum256(cfg)
		cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
		write(tw, layerID+"/layer.tar", layer.Bytes())
		write(tw, cfgName, cfg)
		manifest = append(manifest, entry{Config: cfgName, RepoTags: []string{name}, Layers: []string{layerID + "/layer.tar"}})
	}
	m, _ := json.Marshal(manifest)
	write(tw, "manifest.json", m)
	check(tw.Close())
	check(f.Close())
}

func write(tw *tar.Writer, name string, data []byte) {
	check(tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}))
	_, err := tw.Write(data)
	check(err)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}
