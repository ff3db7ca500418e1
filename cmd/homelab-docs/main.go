// Command homelab-docs writes homelab's man pages and shell completions,
// generated from its cobra command tree, for the release packages:
// .goreleaser.yaml runs it before building, and the .deb, .rpm and archives
// carry what it writes. It is a separate program so that the shipped binary
// does not carry the man page renderer.
//
//	go run ./cmd/homelab-docs --out build/docs --version v1.2.3 --date 2026-11-27T10:00:00Z
//
// writes build/docs/man/homelab*.1.gz and build/docs/completions/
// (homelab.bash, _homelab for zsh, homelab.fish).
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	var o options
	fl := flag.NewFlagSet("homelab-docs", flag.ContinueOnError)
	fl.StringVar(&o.Out, "out", "", "directory to write man/ and completions/ into (required; replaced)")
	fl.StringVar(&o.Version, "version", "dev", "homelab version named in the man pages' footer")
	date := fl.String("date", "", "date in the man pages' footer, RFC 3339 (default: now); the release uses the commit's, so pages do not change from build to build")
	if err := fl.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if o.Out == "" || fl.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: homelab-docs --out DIR [--version V] [--date RFC3339]")
		os.Exit(2)
	}
	o.Date = time.Now().UTC()
	if *date != "" {
		d, err := time.Parse(time.RFC3339, *date)
		if err != nil {
			fmt.Fprintf(os.Stderr, "homelab-docs: --date: %v\n", err)
			os.Exit(2)
		}
		o.Date = d
	}
	if err := generate(o); err != nil {
		fmt.Fprintf(os.Stderr, "homelab-docs: %v\n", err)
		os.Exit(1)
	}
}
