// Package alertmanager turns homelab.yaml's alerts section into the
// configuration of the chart's Alertmanager, and owns its whole life on the
// machine: /etc/homelab/alertmanager.yaml (0600) and the Secret the
// Alertmanager pod reads it from.
//
// The document is built from small typed structs, then loaded with
// Alertmanager's own config package (the version the chart runs), so that
// anything Alertmanager would refuse is refused before a step runs. Secrets
// leave this package only inside that document; everything shown to a
// person goes through Redact.
package alertmanager

import (
	"fmt"
	"net/url"
	"strconv"

	amconfig "github.com/prometheus/alertmanager/config"
	"go.yaml.in/yaml/v3"

	"github.com/homelab-dev/homelab/pkg/config"
)

// Receiver names. Each destination gets its own receiver, named after its
// place in homelab.yaml (ntfy-0 is alerts.notify[0]), so that Alertmanager's
// per-receiver metrics and logs say which destination failed.
const (
	NullReceiver     = "null"
	WatchdogReceiver = "deadmansswitch"
)

// HomelabAlertLabel marks the alerts of homelab's own rules (the app
// chart's PrometheusRule); they always reach the destinations.
const HomelabAlertLabel = "homelab_alert"

// TestAlertName is the alert `homelab alert test` sends; it is routed like
// any alert of ours.
const TestAlertName = "HomelabTest"

// Routing timings. group_wait is short because the rules already wait
// (alerts.appDownFor): a page should not wait another half minute.
const (
	groupWait         = "10s"
	groupInterval     = "1m"
	watchdogRepeat    = "5m"
	watchdogAlertName = "Watchdog"
)

// ReceiverName is the receiver of alerts.notify[i].
func ReceiverName(i int, n config.Notify) string { return n.Kind() + "-" + strconv.Itoa(i) }

// Render returns the Alertmanager configuration for cfg, checked with
// Alertmanager's own loader.
func Render(cfg *config.Config) ([]byte, error) {
	if config.HasRedactedSecrets(cfg) {
		return nil, fmt.Errorf("alerts.notify: the configuration holds redacted secrets (it is the copy init keeps in /etc/homelab/homelab.yaml); pass the original file with --config")
	}
	doc := build(cfg.Alerts)
	data, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("alertmanager configuration: %w", err)
	}
	data = append([]byte("# Managed by homelab from homelab.yaml's alerts section; holds secrets (mode 0600).\n"), data...)
	if _, err := amconfig.Load(string(data)); err != nil {
		// Alertmanager's messages name fields, never secret values.
		return nil, fmt.Errorf("alerts: Alertmanager refuses the configuration: %w", err)
	}
	return data, nil
}

// Redact returns the configuration as Alertmanager itself prints it: every
// secret (tokens, passwords, webhook URLs) replaced by <secret>.
func Redact(data []byte) (string, error) {
	c, err := amconfig.Load(string(data))
	if err != nil {
		return "", fmt.Errorf("alertmanager configuration: %w", err)
	}
	return c.String(), nil
}

func build(a config.Alerts) document {
	doc := document{
		Route: route{
			Receiver:       NullReceiver,
			GroupBy:        []string{"alertname", "namespace"},
			GroupWait:      groupWait,
			GroupInterval:  groupInterval,
			RepeatInterval: a.RepeatInterval,
		},
		Receivers: []receiver{{Name: NullReceiver}},
		InhibitRules: []inhibitRule{
			// A critical alert makes the warning about the same thing noise.
			{SourceMatchers: []string{`severity="critical"`}, TargetMatchers: []string{`severity="warning"`}, Equal: []string{"namespace", "alertname"}},
			// The chart's InfoInhibitor exists to mute info alerts.
			{SourceMatchers: []string{`alertname="InfoInhibitor"`}, TargetMatchers: []string{`severity="info"`}, Equal: []string{"namespace"}},
		},
	}
	// The chart's always-firing Watchdog goes to the dead man's switch, or
	// nowhere; it never reaches a person.
	watchdog := route{Receiver: NullReceiver, Matchers: []string{`alertname="` + watchdogAlertName + `"`}}
	if a.DeadMansSwitchURL != "" {
		watchdog = route{Receiver: WatchdogReceiver, Matchers: watchdog.Matchers, GroupWait: "0s", GroupInterval: groupInterval, RepeatInterval: watchdogRepeat}
		doc.Receivers = append(doc.Receivers, receiver{Name: WatchdogReceiver, WebhookConfigs: []webhookConfig{{URL: a.DeadMansSwitchURL, SendResolved: false}}})
	}
	// Our own rules (homelab_alert="true", `homelab alert test` too) and
	// the chart's critical alerts reach the destinations; the chart's
	// warnings stay in Grafana and Alertmanager, where doctor points.
	var fanout []route
	for i, n := range a.Notify {
		name := ReceiverName(i, n)
		// continue: every destination gets the alert, not only the first.
		fanout = append(fanout, route{Receiver: name, Continue: true})
		doc.Receivers = append(doc.Receivers, destination(name, n))
	}
	doc.Route.Routes = append(doc.Route.Routes, watchdog,
		route{Receiver: NullReceiver, Matchers: []string{`alertname="InfoInhibitor"`}},
		route{Receiver: NullReceiver, Matchers: []string{`severity="info"`}},
		route{Receiver: NullReceiver, Matchers: []string{HomelabAlertLabel + `="true"`}, Routes: fanout},
		route{Receiver: NullReceiver, Matchers: []string{`severity="critical"`}, Routes: fanout},
	)
	return doc
}

// Message templates shared by the chat destinations: what broke, in the
// rule's own words, and the doctor hint its description ends with.
const (
	titleTemplate = `[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .CommonLabels.alertname }}`
	textTemplate  = `{{ range .Alerts }}{{ if eq .Status "resolved" }}Resolved: {{ end }}{{ .Annotations.summary }}{{ if .Annotations.description }}
{{ .Annotations.description }}{{ end }}
{{ end }}`
	// ntfy renders these over Alertmanager's webhook JSON (lower-case keys).
	ntfyTitleTemplate   = `{{.status}}: {{.commonLabels.alertname}}`
	ntfyMessageTemplate = `{{range .alerts}}{{if eq .status "resolved"}}Resolved: {{end}}{{.annotations.summary}}{{if .annotations.description}}
{{.annotations.description}}{{end}}
{{end}}`
)

func destination(name string, n config.Notify) receiver {
	r := receiver{Name: name}
	switch {
	case n.Ntfy != nil:
		// Alertmanager has no ntfy integration. ntfy's own message templating
		// (template=yes) turns the webhook's JSON into a title and message,
		// so no relay service is needed.
		q := url.Values{}
		q.Set("template", "yes")
		q.Set("title", ntfyTitleTemplate)
		q.Set("message", ntfyMessageTemplate)
		w := webhookConfig{URL: n.Ntfy.URL + "?" + q.Encode(), SendResolved: true}
		if n.Ntfy.Token != "" {
			w.HTTPConfig = &httpConfig{Authorization: &authorization{Type: "Bearer", Credentials: n.Ntfy.Token}}
		}
		r.WebhookConfigs = []webhookConfig{w}
	case n.Discord != nil:
		r.DiscordConfigs = []discordConfig{{WebhookURL: n.Discord.WebhookURL, SendResolved: true, Title: titleTemplate, Message: textTemplate}}
	case n.Slack != nil:
		r.SlackConfigs = []slackConfig{{APIURL: n.Slack.WebhookURL, Channel: n.Slack.Channel, SendResolved: true, Title: titleTemplate, Text: textTemplate}}
	case n.Telegram != nil:
		r.TelegramConfigs = []telegramConfig{{BotToken: n.Telegram.BotToken, ChatID: n.Telegram.ChatID, APIURL: n.Telegram.APIURL,
			SendResolved: true, ParseMode: "", Message: titleTemplate + "\n" + textTemplate}}
	case n.Email != nil:
		e := n.Email
		requireTLS := e.RequireTLS == nil || *e.RequireTLS
		r.EmailConfigs = []emailConfig{{To: e.To, From: e.From, Smarthost: e.Smarthost, AuthUsername: e.Username, AuthPassword: e.Password,
			RequireTLS: &requireTLS, SendResolved: true, Headers: map[string]string{"Subject": titleTemplate}, Text: textTemplate}}
	case n.Webhook != nil:
		w := webhookConfig{URL: n.Webhook.URL, SendResolved: true}
		if n.Webhook.BearerToken != "" {
			w.HTTPConfig = &httpConfig{Authorization: &authorization{Type: "Bearer", Credentials: n.Webhook.BearerToken}}
		}
		r.WebhookConfigs = []webhookConfig{w}
	}
	return r
}
