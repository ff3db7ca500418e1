// Package layout names every path homelab reads or writes on a host, so that
// init, render, uninstall and doctor agree on them. Paths are absolute host
// paths; host.Local maps them under --root.
package layout

const (
	NginxSite       = "/etc/nginx/sites-available/homelab.conf"
	NginxSiteLink   = "/etc/nginx/sites-enabled/homelab.conf"
	NginxSiteTarget = "../sites-available/homelab.conf"
	PortForwardUnit = "/etc/systemd/system/grafana-portforward.service"
	AppManifests    = "/etc/homelab/manifests/app.yaml"
	ValuesStack     = "/etc/homelab/values/kube-prometheus-stack.yaml"
	ValuesBlackbox  = "/etc/homelab/values/prometheus-blackbox-exporter.yaml"
	EffectiveConfig = "/etc/homelab/homelab.yaml"
	// AlertmanagerConfig holds the destinations' secrets (mode 0600); the
	// chart's Alertmanager reads the same bytes from a Secret.
	AlertmanagerConfig = "/etc/homelab/alertmanager.yaml"

	// Binary is where init installs homelab itself; the port-forward unit runs it.
	Binary = "/usr/local/bin/homelab"
	// K3sKubeconfig is written by k3s (mode 0600 with --write-kubeconfig-mode).
	K3sKubeconfig = "/etc/rancher/k3s/k3s.yaml"
	// ACMEWebroot serves Let's Encrypt HTTP-01 challenges for certbot --webroot.
	ACMEWebroot = "/var/www/letsencrypt"
	// ACMEMarker is the file init puts in the webroot's challenge directory,
	// so that the directory exists (and is recorded) before certbot runs.
	ACMEMarker = ACMEWebroot + "/.well-known/acme-challenge/.homelab"
	// CertbotRenewHook reloads Nginx after certbot renews a certificate.
	CertbotRenewHook = "/etc/letsencrypt/renewal-hooks/deploy/homelab-reload-nginx.sh"
	// BackupDir keeps the previous version of every file homelab overwrites,
	// outside nginx's and systemd's include directories.
	BackupDir = "/var/backups/homelab"
	// StateDir holds what homelab remembers between runs: the lock, the
	// record of what it installed, the Nginx site stamp.
	StateDir = "/var/lib/homelab"
	// Lock keeps two runs from racing.
	Lock = StateDir + "/lock"
	// Record lists what init installed, for uninstall.
	Record = StateDir + "/installed.json"
	// NginxStamp is the digest of the site Nginx last accepted and reloaded.
	NginxStamp = StateDir + "/nginx-site.sha256"
	// HelmHome keeps Helm's repository cache and registry config.
	HelmHome = StateDir + "/helm"
)

// LetsEncryptCert and LetsEncryptKey are where certbot puts a domain's certificate.
func LetsEncryptCert(domain string) string {
	return "/etc/letsencrypt/live/" + domain + "/fullchain.pem"
}
func LetsEncryptKey(domain string) string { return "/etc/letsencrypt/live/" + domain + "/privkey.pem" }
