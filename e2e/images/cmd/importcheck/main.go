// importcheck imports image archives into a containerd with homelab's own
// importer (pkg/images, the code behind `homelab deploy-app --archive`) and
// prints what it stored: proof that the product accepts the archives built
// here.
//
//	importcheck -socket SOCK [-snapshotter overlayfs] FILE...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/homelab-dev/homelab/pkg/images"
)

func main() {
	sock := flag.String("socket", "", "containerd socket")
	snap := flag.String("snapshotter", "", "snapshotter (default overlayfs)")
	ns := flag.String("namespace", "", "containerd namespace (default k8s.io)")
	flag.Parse()
	imp := &images.Importer{Socket: *sock, Snapshotter: *snap, Namespace: *ns, Platform: "linux/amd64"}
	failed := false
	for _, f := range flag.Args() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		t := time.Now()
		res, err := imp.ImportFrom(ctx, images.ArchiveSource{Path: f}, images.ImportOptions{})
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "FAIL %s: %v\n", f, err)
			failed = true
			continue
		}
		fmt.Printf("ok %s -> %v %s %s changed=%v (%.1fs)\n", f, res.Names, res.Digest, res.Platform, res.Changed, time.Since(t).Seconds())
	}
	if failed {
		os.Exit(1)
	}
}
