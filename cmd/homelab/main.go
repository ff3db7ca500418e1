// Command homelab turns a spare Ubuntu box into a monitored home server.
package main

import (
	"os"

	"github.com/homelab-dev/homelab/pkg/app"
)

func main() { os.Exit(app.Main(os.Args[1:])) }
