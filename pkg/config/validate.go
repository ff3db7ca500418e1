package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"
	"github.com/distribution/reference"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// BlackboxModules are the prober modules our blackbox exporter values define.
var BlackboxModules = []string{"http_2xx", "tcp_connect"}

var (
	// Same pattern as prometheus-operator's ByteSize, which retentionSize becomes.
	byteSizePattern = regexp.MustCompile(`^(0|([0-9]*[.])?[0-9]+((K|M|G|T|E|P)i?)?B)$`)
	k3sVersion      = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+$`)
	urlPathPattern  = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)
	// A path Nginx reads as one plain argument: no whitespace, ';', '{',
	// quotes, '#' (comment), '$' (variable) or '\\', which would end the
	// directive, start a block or change its meaning.
	nginxPathPattern = regexp.MustCompile(`^(/[A-Za-z0-9._+@=,~-]+)+$`)
)

// maxShownValue is how much of a bad value a problem quotes: enough to
// recognise it, never a whole 100 MB paste.
const maxShownValue = 80

// Validate checks every field and returns all problems, in file order.
func Validate(c *Config) []Problem {
	v := &validator{}
	if c.APIVersion != APIVersion {
		v.bad("apiVersion", c.APIVersion, "must be "+APIVersion)
	}
	v.domain(c.Domain)
	v.tls(c)
	v.app(c)
	v.monitoring(c)
	v.alerts(c.Alerts)
	v.k3s(c.K3s)
	return v.problems
}

type validator struct{ problems []Problem }

func (v *validator) bad(key, value, want string) {
	v.problems = append(v.problems, Problem{Key: key, Msg: fmt.Sprintf("invalid value %s: %s", shortQuote(value), want)})
}

// shortQuote quotes a value for a message, cut to maxShownValue bytes (on a
// rune boundary) with the full length said, so one huge value cannot flood
// the terminal.
func shortQuote(s string) string {
	if len(s) <= maxShownValue {
		return fmt.Sprintf("%q", s)
	}
	cut := maxShownValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:cut], len(s))
}

// badSecret reports a secret field without its value.
func (v *validator) badSecret(key, want string) {
	v.problems = append(v.problems, Problem{Key: key, Msg: "invalid value (hidden: it is a secret): " + want})
}

func (v *validator) domain(d string) {
	switch {
	case d == "":
		v.bad("domain", d, "required: the public DNS name of this server, like blog.example.com")
	case strings.Contains(d, "://") || strings.ContainsAny(d, "/: "):
		v.bad("domain", d, "a bare DNS name, without scheme, port or path, like blog.example.com")
	case strings.HasSuffix(d, "."):
		// Valid DNS, but certbot refuses it and Grafana's root_url and the
		// Nginx server_name would not match the Host browsers send.
		v.bad("domain", d, "a DNS name without the trailing dot, like "+strings.TrimRight(d, "."))
	case net.ParseIP(d) != nil || allDigits(d[strings.LastIndex(d, ".")+1:]):
		// Let's Encrypt issues no certificate for an address, and a name
		// whose last label is numeric is an address to browsers.
		v.bad("domain", d, "a DNS name, not an IP address: point a name like blog.example.com at this server")
	default:
		if errs := validation.IsFullyQualifiedDomainName(nil, d); len(errs) > 0 {
			v.bad("domain", d, "a fully qualified lower-case DNS name with at least two labels, like blog.example.com")
		}
	}
}

func allDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func (v *validator) tls(c *Config) {
	t := c.TLS
	if c.Email != "" {
		if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email {
			v.bad("email", c.Email, "a plain e-mail address, like you@example.com")
		}
	}
	switch t.Mode {
	case TLSNone:
	case TLSCertbot:
		if c.Email == "" {
			v.bad("email", c.Email, "required with tls.mode certbot (Let's Encrypt sends expiry notices there)")
		}
	case TLSFiles:
		for _, f := range []struct{ key, value string }{{"tls.certFile", t.CertFile}, {"tls.keyFile", t.KeyFile}} {
			switch {
			case f.value == "" || !path.IsAbs(f.value) || path.Clean(f.value) != f.value:
				v.bad(f.key, f.value, "required with tls.mode files: an absolute, clean path like /etc/ssl/homelab/fullchain.pem")
			case !nginxPathPattern.MatchString(f.value):
				// The path goes into the Nginx site as written.
				v.bad(f.key, f.value, "a path of letters, digits and . _ - + @ = , ~ only (no spaces, quotes, ';', '{', '#' or '$': Nginx would read them as syntax); move or link the file to a path like /etc/ssl/homelab/fullchain.pem")
			}
		}
	default:
		v.bad("tls.mode", t.Mode, "one of none, certbot, files")
	}
	if t.Mode != TLSFiles {
		if t.CertFile != "" {
			v.bad("tls.certFile", t.CertFile, "only used with tls.mode files; remove it or set tls.mode: files")
		}
		if t.KeyFile != "" {
			v.bad("tls.keyFile", t.KeyFile, "only used with tls.mode files; remove it or set tls.mode: files")
		}
	}
}

func (v *validator) app(c *Config) {
	a := c.App
	v.dnsLabel("app.name", a.Name, 63-len("-deployment"))
	v.dnsLabel("app.namespace", a.Namespace, 63)
	if errs := validation.IsDNS1035Label(a.ServiceName); len(errs) > 0 {
		v.bad("app.serviceName", a.ServiceName, "a DNS-1035 label: lower-case letters, digits and '-', starting with a letter, at most 63 characters")
	}
	if a.Image == "" {
		v.bad("app.image", a.Image, "required: an image reference like nextjs-app:latest or registry.example.com/blog:1.2")
	} else if named, err := reference.ParseNormalizedNamed(a.Image); err != nil {
		v.bad("app.image", a.Image, "an image reference like nextjs-app:latest ("+err.Error()+")")
	} else if _, digested := named.(reference.Digested); digested {
		// deploy-app imports an archive and tags it (pkg/images refuses
		// digests): a digest could never name what it imported.
		v.bad("app.image", a.Image, "a name with a tag, not a digest (deploy-app imports the image and tags it), like "+reference.FamiliarName(named)+":latest")
	}
	v.port("app.port", a.Port)
	for i, arg := range a.Command {
		if strings.TrimSpace(arg) == "" {
			v.bad(fmt.Sprintf("app.command[%d]", i), arg, "a non-empty word; leave app.command as [] to use the image's own command")
		}
	}
	if a.Replicas < 1 || a.Replicas > 20 {
		v.bad("app.replicas", fmt.Sprint(a.Replicas), "a whole number from 1 to 20")
	}
	if u, err := url.Parse(a.HealthPath); err != nil || !strings.HasPrefix(a.HealthPath, "/") || u.Host != "" || strings.ContainsAny(a.HealthPath, " \t") {
		v.bad("app.healthPath", a.HealthPath, "an absolute URL path like / or /api/health")
	}
	v.clusterIP(c)
	v.resources("app.resources", a.Resources)
	if a.StartupSeconds < 2 || a.StartupSeconds > 600 {
		v.bad("app.startupSeconds", fmt.Sprint(a.StartupSeconds), "a whole number of seconds from 2 to 600")
	}
	if a.PreStopSleepSeconds < 0 || a.PreStopSleepSeconds > 120 {
		v.bad("app.preStopSleepSeconds", fmt.Sprint(a.PreStopSleepSeconds), "a whole number of seconds from 0 to 120")
	}
	if a.TerminationGracePeriodSeconds <= a.PreStopSleepSeconds || a.TerminationGracePeriodSeconds > 600 {
		v.bad("app.terminationGracePeriodSeconds", fmt.Sprint(a.TerminationGracePeriodSeconds),
			fmt.Sprintf("a whole number of seconds above app.preStopSleepSeconds (%d) and at most 600: the app needs time to stop after the sleep", a.PreStopSleepSeconds))
	}
}

func (v *validator) clusterIP(c *Config) {
	_, cidr, err := net.ParseCIDR(c.K3s.ServiceCIDR)
	if err != nil {
		return // reported under k3s.serviceCIDR
	}
	ip := net.ParseIP(c.App.ClusterIP).To4()
	switch {
	case ip == nil:
		v.bad("app.clusterIP", c.App.ClusterIP, "an IPv4 address inside k3s.serviceCIDR "+c.K3s.ServiceCIDR+", like 10.43.0.30")
	case !cidr.Contains(ip) || ip.Equal(cidr.IP):
		v.bad("app.clusterIP", c.App.ClusterIP, "an address inside k3s.serviceCIDR "+c.K3s.ServiceCIDR)
	case ip.Equal(nthIP(cidr.IP, 1)):
		v.bad("app.clusterIP", c.App.ClusterIP, "an address other than the kubernetes API Service's; try "+nthIP(cidr.IP, 30).String())
	case ip.Equal(nthIP(cidr.IP, 10)):
		v.bad("app.clusterIP", c.App.ClusterIP, "an address other than k3s's CoreDNS Service's; try "+nthIP(cidr.IP, 30).String())
	}
}

func nthIP(base net.IP, n byte) net.IP {
	ip := append(net.IP(nil), base.To4()...)
	ip[3] += n
	return ip
}

func (v *validator) resources(key string, r Resources) {
	parsed := map[string]resource.Quantity{}
	for _, q := range []struct{ key, value string }{
		{key + ".requests.cpu", r.Requests.CPU}, {key + ".requests.memory", r.Requests.Memory},
		{key + ".limits.cpu", r.Limits.CPU}, {key + ".limits.memory", r.Limits.Memory},
	} {
		if q.value == "" && q.key != key+".limits.memory" {
			continue
		}
		qty, err := resource.ParseQuantity(q.value)
		if err != nil || qty.Sign() <= 0 {
			v.bad(q.key, q.value, "a positive Kubernetes quantity like 250m (cpu) or 512Mi (memory); a memory limit is required")
			continue
		}
		parsed[q.key] = qty
	}
	for _, res := range []string{"cpu", "memory"} {
		req, okReq := parsed[key+".requests."+res]
		lim, okLim := parsed[key+".limits."+res]
		if okReq && okLim && req.Cmp(lim) > 0 {
			v.bad(key+".requests."+res, req.String(), "at most the limit "+lim.String())
		}
	}
}

func (v *validator) monitoring(c *Config) {
	m := c.Monitoring
	v.dnsLabel("monitoring.namespace", m.Namespace, 63)
	v.release("monitoring.release", m.Release, m.GrafanaServiceName())
	v.release("monitoring.blackbox.release", m.Blackbox.Release, m.Blackbox.ServiceName())
	if m.Release != "" && m.Release == m.Blackbox.Release {
		v.bad("monitoring.blackbox.release", m.Blackbox.Release, "a release name different from monitoring.release")
	}
	if u, err := url.Parse(m.ChartRepo); err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "oci") || u.Host == "" {
		v.bad("monitoring.chartRepo", m.ChartRepo, "an http(s):// chart repository or oci:// registry URL")
	}
	v.semver("monitoring.chartVersion", m.ChartVersion)
	v.semver("monitoring.blackbox.chartVersion", m.Blackbox.ChartVersion)
	if !urlPathPattern.MatchString(m.Grafana.Path) {
		v.bad("monitoring.grafana.path", m.Grafana.Path, "a URL sub-path starting with / and without a trailing slash, like /grafana")
	}
	v.port("monitoring.grafana.localPort", m.Grafana.LocalPort)
	if m.Grafana.LocalPort == 80 || m.Grafana.LocalPort == 443 {
		v.bad("monitoring.grafana.localPort", fmt.Sprint(m.Grafana.LocalPort), "a port other than 80 and 443, which Nginx serves; like 3100")
	}
	if errs := validation.IsDNS1123Subdomain(m.Probe.Name); len(errs) > 0 {
		v.bad("monitoring.probe.name", m.Probe.Name, "a Kubernetes object name: lower-case letters, digits, '-' and '.'")
	}
	if d, err := model.ParseDuration(m.Probe.Interval); err != nil || d <= 0 {
		v.bad("monitoring.probe.interval", m.Probe.Interval, "a Prometheus duration like 30s, 1m or 5m")
	}
	if !slices.Contains(BlackboxModules, m.Probe.Module) {
		v.bad("monitoring.probe.module", m.Probe.Module, "one of "+strings.Join(BlackboxModules, ", "))
	}
	if d, err := model.ParseDuration(m.Prometheus.Retention); err != nil || d <= 0 {
		v.bad("monitoring.prometheus.retention", m.Prometheus.Retention, "a Prometheus duration like 7d or 12h")
	}
	if !byteSizePattern.MatchString(m.Prometheus.RetentionSize) {
		v.bad("monitoring.prometheus.retentionSize", m.Prometheus.RetentionSize, "a size like 2GB or 512MB")
	}
	if q, err := resource.ParseQuantity(m.Prometheus.StorageSize); err != nil || q.Sign() <= 0 {
		v.bad("monitoring.prometheus.storageSize", m.Prometheus.StorageSize, "a Kubernetes quantity like 4Gi")
	}
}

func (v *validator) k3s(k K3s) {
	if !k3sVersion.MatchString(k.Version) {
		v.bad("k3s.version", k.Version, "a k3s release tag like v1.37.2+k3s1")
	}
	ip, cidr, err := net.ParseCIDR(k.ServiceCIDR)
	if err != nil || ip.To4() == nil || !ip.Equal(cidr.IP) {
		v.bad("k3s.serviceCIDR", k.ServiceCIDR, "an IPv4 network like 10.43.0.0/16 (k3s's default)")
	} else if ones, _ := cidr.Mask.Size(); ones > 24 {
		v.bad("k3s.serviceCIDR", k.ServiceCIDR, "a network of at least /24")
	}
}

func (v *validator) dnsLabel(key, value string, max int) {
	if errs := validation.IsDNS1123Label(value); len(errs) > 0 || len(value) > max {
		v.bad(key, value, fmt.Sprintf("a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit, at most %d characters", max))
	}
}

// release checks a Helm release name and the Service name the chart derives
// from it, which must itself be a valid DNS-1035 label.
func (v *validator) release(key, name, derived string) {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 || len(name) > 53 {
		v.bad(key, name, "a Helm release name: lower-case letters, digits and '-', at most 53 characters")
	} else if errs := validation.IsDNS1035Label(derived); len(errs) > 0 {
		v.bad(key, name, "a name whose derived Service name "+derived+" is at most 63 characters and starts with a letter")
	}
}

func (v *validator) semver(key, value string) {
	if _, err := semver.StrictNewVersion(value); err != nil {
		v.bad(key, value, "an exact chart version like 88.5.3 (no ranges, no leading v)")
	}
}

func (v *validator) port(key string, p int) {
	if p < 1 || p > 65535 {
		v.bad(key, fmt.Sprint(p), "a port number from 1 to 65535")
	}
}

var (
	ntfyTopic     = regexp.MustCompile(`^[-_A-Za-z0-9]{1,64}$`)
	telegramToken = regexp.MustCompile(`^[0-9]+:[A-Za-z0-9_-]+$`)
)

func (v *validator) alerts(a Alerts) {
	v.duration("alerts.appDownFor", a.AppDownFor, time.Second, 24*time.Hour, "like 1m or 5m")
	v.duration("alerts.repeatInterval", a.RepeatInterval, time.Minute, 7*24*time.Hour, "like 4h or 30m")
	if a.Restarts.Count < 1 || a.Restarts.Count > 100 {
		v.bad("alerts.restarts.count", fmt.Sprint(a.Restarts.Count), "a whole number from 1 to 100")
	}
	v.duration("alerts.restarts.window", a.Restarts.Window, time.Minute, 24*time.Hour, "like 15m or 1h")
	// The probe gives up after 5 s (blackbox module timeout), and AppSlow
	// counts only probes that succeeded: a higher threshold could never fire.
	v.duration("alerts.slowAfter", a.SlowAfter, 10*time.Millisecond, 4500*time.Millisecond, "like 2s or 500ms (the probe times out at 5s)")
	// Let's Encrypt certificates live 90 days and renew at 30 days left.
	if a.CertificateDays < 1 || a.CertificateDays > 60 {
		v.bad("alerts.certificateDays", fmt.Sprint(a.CertificateDays), "a whole number of days from 1 to 60 (Let's Encrypt certificates last 90 days and renew with 30 left)")
	}
	if a.DiskFreePercent < 1 || a.DiskFreePercent > 50 {
		v.bad("alerts.diskFreePercent", fmt.Sprint(a.DiskFreePercent), "a whole percentage from 1 to 50")
	}
	if a.DeadMansSwitchURL != "" && !isRedacted(a.DeadMansSwitchURL) && !httpURL(a.DeadMansSwitchURL, false) {
		v.badSecret("alerts.deadMansSwitchURL", "an http:// or https:// URL to ping, or empty")
	}
	for i, n := range a.Notify {
		v.notify(fmt.Sprintf("alerts.notify[%d]", i), n)
	}
}

// duration checks a Prometheus duration from min to max.
func (v *validator) duration(key, value string, min, max time.Duration, example string) {
	d, err := model.ParseDuration(value)
	if err != nil || time.Duration(d) > max || time.Duration(d) < min {
		v.bad(key, value, fmt.Sprintf("a Prometheus duration from %s to %s, %s", model.Duration(min), model.Duration(max), example))
	}
}

func (v *validator) notify(key string, n Notify) {
	set := n.Kinds()
	switch {
	case len(set) == 0:
		v.problems = append(v.problems, Problem{Key: key, Msg: "names no destination: give exactly one of " + strings.Join(NotifyKinds, ", ")})
		return
	case len(set) > 1:
		v.problems = append(v.problems, Problem{Key: key, Msg: "names " + strings.Join(set, " and ") + ": put each destination in its own list entry (- " + set[0] + ": ...)"})
		return
	}
	switch {
	case n.Ntfy != nil:
		if !isRedacted(n.Ntfy.URL) && !ntfyTopicURL(n.Ntfy.URL) {
			v.badSecret(key+".ntfy.url", "a topic URL like https://ntfy.sh/my-blog-alerts (server, then one topic name of letters, digits, - and _; no query)")
		}
	case n.Discord != nil:
		if !isRedacted(n.Discord.WebhookURL) && !discordWebhookURL(n.Discord.WebhookURL) {
			v.badSecret(key+".discord.webhookURL", "a Discord webhook URL like https://discord.com/api/webhooks/ID/TOKEN (channel settings, Integrations, Webhooks)")
		}
	case n.Slack != nil:
		if !isRedacted(n.Slack.WebhookURL) && !httpURL(n.Slack.WebhookURL, true) {
			v.badSecret(key+".slack.webhookURL", "a Slack incoming-webhook URL like https://hooks.slack.com/services/T/B/X")
		}
		if c := n.Slack.Channel; c != "" && (!strings.HasPrefix(c, "#") && !strings.HasPrefix(c, "@") || strings.ContainsAny(c, " \t\n")) {
			v.bad(key+".slack.channel", c, "empty (the webhook's own channel), or a channel like #alerts")
		}
	case n.Telegram != nil:
		if !isRedacted(n.Telegram.BotToken) && !telegramToken.MatchString(n.Telegram.BotToken) {
			v.badSecret(key+".telegram.botToken", "the token @BotFather gave, like 123456:ABC-DEF1234ghIkl")
		}
		if n.Telegram.ChatID == 0 {
			v.bad(key+".telegram.chatID", "0", "the chat's numeric id (negative for groups), like 42")
		}
		if n.Telegram.APIURL != "" && !httpURL(n.Telegram.APIURL, false) {
			v.bad(key+".telegram.apiURL", n.Telegram.APIURL, "empty (Telegram's own API), or a Bot API server URL like http://telegram-bot-api.local:8081")
		}
	case n.Email != nil:
		v.email(key+".email", *n.Email)
	case n.Webhook != nil:
		if !isRedacted(n.Webhook.URL) && !httpURL(n.Webhook.URL, false) {
			v.badSecret(key+".webhook.url", "an http:// or https:// URL that accepts Alertmanager's JSON")
		}
	}
}

func (v *validator) email(key string, e EmailNotify) {
	if list, err := mail.ParseAddressList(e.To); err != nil || len(list) == 0 {
		v.bad(key+".to", e.To, "an e-mail address like me@example.com (several: separated by commas)")
	}
	if a, err := mail.ParseAddress(e.From); err != nil || a.Address != e.From {
		v.bad(key+".from", e.From, "a plain e-mail address like homelab@example.com")
	}
	host, port, err := net.SplitHostPort(e.Smarthost)
	if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
		v.bad(key+".smarthost", e.Smarthost, "the SMTP server as host:port, like smtp.example.com:587")
	}
	if (e.Username == "") != (e.Password == "") {
		if e.Username == "" {
			v.bad(key+".username", e.Username, "required with a password")
		} else {
			v.badSecret(key+".password", "required with a username")
		}
	}
}

// httpURL reports whether s is an absolute http(s) URL with a host and no
// user info (credentials belong in their own fields, which stay secret).
func httpURL(s string, httpsOnly bool) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || strings.ContainsAny(s, " \t\n") {
		return false
	}
	return u.Scheme == "https" || (!httpsOnly && u.Scheme == "http")
}

// isRedacted reports a secret as the applied copy holds it (WithoutSecrets):
// valid to read, and refused where the secret itself is needed.
func isRedacted(s string) bool { return s == RedactedSecret }

// ntfyTopicURL is a server URL with one topic name as its path and no query
// (homelab adds its own query for ntfy's message templates).
func ntfyTopicURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && httpURL(s, false) && u.RawQuery == "" &&
		ntfyTopic.MatchString(strings.Trim(u.Path, "/")) && !strings.HasSuffix(u.Path, "/")
}

func discordWebhookURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && httpURL(s, true) && strings.HasPrefix(u.Path, "/api/webhooks/")
}
