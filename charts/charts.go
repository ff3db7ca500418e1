// Package charts embeds homelab's own Helm charts. pkg/deploy installs the
// app chart with the Helm SDK; nothing else reads them.
package charts

import (
	"embed"
	"io/fs"
)

//go:embed all:app
var embedded embed.FS

// App is the app's chart: its Deployment, Service, blackbox Probe and alert
// rules. Each deploy-app is a revision of one release of it.
func App() fs.FS {
	sub, err := fs.Sub(embedded, "app")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}
