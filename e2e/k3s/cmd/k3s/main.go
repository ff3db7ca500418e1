// Command k3s is the e2e machine's k3s stand-in: one binary that homelab
// installs and systemd starts exactly as it would the real k3s. `k3s server`
// runs the upstream Kubernetes v1.37.2 components (linked into this binary,
// each in its own child process), etcd, and Debian's containerd, runc and
// CNI plugins (appended to this binary and unpacked under the data dir, as
// real k3s unpacks its own). See ../../README.md for what it cannot do.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Set with -ldflags -X by e2e/k3s/build.
var (
	version = "v1.37.2+k3s1"
	commit  = "standin"
)

const usage = `k3s (e2e stand-in) ` + "%s" + `

Usage:
  k3s server [flags]        run the single-node cluster (see k3s server --help)
  k3s kubectl ...           kubectl with /etc/rancher/k3s/k3s.yaml
  k3s ctr ...               containerd's ctr against /run/k3s/containerd/containerd.sock
  k3s --version | -v        print the version
`

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	// Called through a link named like a component (kubectl, ctr), as k3s's
	// own links work.
	switch name {
	case "kubectl":
		os.Exit(runKubectl(args))
	case "ctr":
		os.Exit(runCtr(args))
	case "crictl":
		os.Exit(runCrictl(args))
	}
	if len(args) == 0 {
		fmt.Fprintf(os.Stderr, usage, version)
		os.Exit(1)
	}
	switch args[0] {
	case "--version", "-v", "version":
		fmt.Printf("k3s version %s (%s)\ngo version %s\n", version, commit, runtime.Version())
		return
	case "--help", "-h", "help":
		fmt.Printf(usage, version)
		return
	case "server":
		os.Exit(runServer(args[1:]))
	case "kubectl":
		os.Exit(runKubectl(args[1:]))
	case "ctr":
		os.Exit(runCtr(args[1:]))
	case "crictl":
		os.Exit(runCrictl(args[1:]))
	case "agent", "etcd-snapshot", "secrets-encrypt", "certificate", "token", "completion", "check-config":
		fmt.Fprintf(os.Stderr, "k3s (e2e stand-in): the %q command is not provided by this stand-in (see e2e/k3s/README.md)\n", args[0])
		os.Exit(1)
	}
	// Internal: `k3s server` re-executes this binary as each component.
	if run, ok := components[args[0]]; ok && os.Getenv(childEnv) == args[0] {
		os.Exit(run(args[1:]))
	}
	fmt.Fprintf(os.Stderr, "k3s (e2e stand-in): unknown command %q\n"+usage, args[0], version)
	os.Exit(1)
}
