package uninstall

import (
	"github.com/homelab-dev/homelab/pkg/certbot"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/k3s"
	"github.com/homelab-dev/homelab/pkg/layout"
	"github.com/homelab-dev/homelab/pkg/nginx"
	"github.com/homelab-dev/homelab/pkg/record"
	"github.com/homelab-dev/homelab/pkg/selfinstall"
)

// known is everything init and deploy-app can make on a host. Uninstall
// checks the record against it before any step runs, and acts on nothing
// else (issue 12: a hand-edited record must not make it delete /etc/passwd).
func known() record.Known {
	var links []string
	for _, name := range k3s.Commands {
		links = append(links, k3s.CommandLink(name))
	}
	files := []string{layout.ValuesStack, layout.ValuesBlackbox, layout.AppManifests, layout.EffectiveConfig,
		layout.AlertmanagerConfig, layout.ACMEMarker, layout.CertbotRenewHook, selfinstall.StampPath}
	return record.Known{
		Files:     append(files, selfinstall.Targets()...),
		Units:     []string{layout.PortForwardUnit},
		Links:     links,
		K3sBinary: k3s.BinaryPath,
		K3sUnit:   k3s.UnitPath,
		Site:      record.Item{Path: layout.NginxSite, Link: layout.NginxSiteLink, Target: layout.NginxSiteTarget, Stamp: layout.NginxStamp},
		Packages:  []string{nginx.Package.Name, certbot.Package.Name},
		SecretSuffixes: map[record.Kind]string{
			record.Secret:       config.Monitoring{}.GrafanaAdminSecret(),
			record.ConfigSecret: config.Monitoring{}.AlertmanagerConfigSecret(),
		},
		CRDGroup: "monitoring.coreos.com",
	}
}
