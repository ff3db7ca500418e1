// Package templates embeds the text templates for every file homelab writes
// on a host. pkg/render executes them; nothing else reads them.
package templates

import "embed"

// FS holds the templates, one per rendered file.
//
//go:embed *.tmpl
var FS embed.FS
