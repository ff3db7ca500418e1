package alertmanager_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/alertmanager"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/testutil/alerting"
)

// destinations are real local stand-ins for the six kinds of alerts.notify,
// plus a webhook for the dead man's switch.
type destinations struct {
	ntfy     *alerting.NtfyServer
	discord  *alerting.DiscordWebhook
	slack    *alerting.SlackWebhook
	telegram *alerting.TelegramBot
	smtp     *alerting.SMTPServer
	webhook  *alerting.WebhookReceiver
	deadMans *alerting.WebhookReceiver
	ca       *alerting.CA
}

const (
	ntfyToken      = "tk_deliver0123456789abcdefghij"
	telegramToken  = "123456:deliver-test-token"
	telegramChat   = -1001234
	smtpUser       = "homelab"
	smtpPassword   = "smtp-secret"
	webhookBearer  = "webhook-secret"
	discordID      = "112233445566"
	discordToken   = "discord-secret-token"
	slackSecret    = "slacksecretpath"
	deliverTimeout = 45 * time.Second // group_wait is 10s
)

func startDestinations(t *testing.T) destinations {
	ca := alerting.NewCA(t)
	return destinations{
		ntfy:     alerting.StartNtfyServer(t, ntfyToken),
		discord:  alerting.StartDiscordWebhook(t, discordID, discordToken, alerting.ServeTLS(ca)),
		slack:    alerting.StartSlackWebhook(t, slackSecret, alerting.ServeTLS(ca)),
		telegram: alerting.StartTelegramBot(t, telegramToken, telegramChat),
		smtp:     alerting.StartSMTPServer(t, smtpUser, smtpPassword, alerting.SMTPWithCA(ca)),
		webhook:  alerting.StartWebhookReceiver(t, alerting.RequireBearer(webhookBearer)),
		deadMans: alerting.StartWebhookReceiver(t),
		ca:       ca,
	}
}

// homelabYAML is a homelab.yaml with one destination of each kind, each
// pointed at its stand-in.
func (d destinations) homelabYAML() string {
	return fmt.Sprintf(`domain: blog.example.com
alerts:
  repeatInterval: 4h
  deadMansSwitchURL: %s
  notify:
    - ntfy: {url: %s/blog-alerts, token: %s}
    - discord: {webhookURL: %q}
    - slack: {webhookURL: %q, channel: "#alerts"}
    - telegram: {botToken: %q, chatID: %d, apiURL: %q}
    - email: {to: me@example.com, from: homelab@example.com, smarthost: %q, username: %s, password: %s}
    - webhook: {url: %q, bearerToken: %s}
`, d.deadMans.URL(), d.ntfy.URL(), ntfyToken, d.discord.URL(), d.slack.URL(),
		telegramToken, telegramChat, d.telegram.APIURL(), d.smtp.Addr, smtpUser, smtpPassword,
		d.webhook.URL(), webhookBearer)
}

// The alerts the app chart's rules raise look like this one (labels and
// annotations as charts/app/templates/rules.yaml writes them).
var appDown = alerting.Alert{
	Labels: map[string]string{
		"alertname": "AppDown", "severity": "critical", "homelab_alert": "true",
		"namespace": "apps", "job": "blog", "instance": "http://blog.apps.svc/",
	},
	Annotations: map[string]string{
		"summary":     "blog is down: it has not answered for 1m",
		"description": "Every probe of http://blog.apps.svc/ has failed for 1m (alerts.appDownFor). Run: homelab doctor",
	},
}

// The alert `homelab alert test` sends (see postTestAlert).
var testAlert = alerting.Alert{
	Labels: map[string]string{"alertname": alertmanager.TestAlertName, alertmanager.HomelabAlertLabel: "true",
		"severity": "critical", "test_id": "0a1b2c3d"},
	Annotations: map[string]string{
		"summary":     "Test alert from homelab on testhost: if you read this, alerts reach you.",
		"description": "Sent by `homelab alert test`; nothing is wrong. It resolves by itself in a minute.",
	},
}

// A critical alert with a summary and no description (a rule the user added,
// say): critical alerts reach the destinations too.
var summaryOnly = alerting.Alert{
	Labels:      map[string]string{"alertname": "BackupMissing", "severity": "critical", "namespace": "backup"},
	Annotations: map[string]string{"summary": "No backup for 2 days"},
}

// The configuration Render writes for a homelab.yaml with all six
// destinations delivers through the real Alertmanager v0.34 to each of them
// in its documented format: firing, then resolved. The chart's Watchdog goes
// only to the dead man's switch, info alerts go nowhere.
func TestRenderedConfigurationDeliversToEveryDestination(t *testing.T) {
	t.Parallel() // it mostly waits, for Alertmanager and Prometheus intervals
	d := startDestinations(t)
	cfg, err := config.Parse("homelab.yaml", []byte(d.homelabYAML()))
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := alertmanager.Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	am := alerting.StartAlertmanager(t, rendered, alerting.WithCA(d.ca.CertFile), alerting.WithReceiverNamesInMetrics())

	watchdog := alerting.Alert{Labels: map[string]string{"alertname": "Watchdog", "severity": "none", "namespace": "monitoring"},
		Annotations: map[string]string{"summary": "always firing"}}
	info := alerting.Alert{Labels: map[string]string{"alertname": "SomeInfo", "severity": "info", "namespace": "monitoring"},
		Annotations: map[string]string{"summary": "for information"}}
	// A warning from the chart's own rules stays in Alertmanager and Grafana.
	chartWarning := alerting.Alert{Labels: map[string]string{"alertname": "KubeMemoryOvercommit", "severity": "warning", "namespace": "kube-system"},
		Annotations: map[string]string{"summary": "a chart warning", "description": "not for the phone"}}
	posted := time.Now()
	am.PostAlerts(appDown, testAlert, summaryOnly, watchdog, info, chartWarning)

	// Each destination gets AppDown, the test alert and the critical alert,
	// in separate groups.
	const firing = 3
	ntfy := d.ntfy.Wait(firing, deliverTimeout)
	discord := d.discord.Wait(firing, deliverTimeout)
	slack := d.slack.Wait(firing, deliverTimeout)
	telegram := d.telegram.Wait(firing, deliverTimeout)
	mails := d.smtp.Wait(firing, deliverTimeout)
	hooks := d.webhook.Wait(firing, deliverTimeout)
	t.Logf("measured: all six destinations had the three firing notifications %s after the alerts were posted (group_wait 10s)",
		time.Since(posted).Round(100*time.Millisecond))

	for _, m := range ntfy {
		if !m.Templated || m.Topic != "blog-alerts" {
			t.Errorf("ntfy message not templated to topic blog-alerts: topic %q title %q", m.Topic, m.Title)
		}
		// ntfy renders a missing JSON key as "<no value>".
		if strings.Contains(m.Title+m.Message, "<no value>") {
			t.Errorf("ntfy shows %q: the ntfy template prints a field this alert does not have", m.Title+"\n"+m.Message)
		}
	}
	if m := ntfyWith(t, ntfy, "AppDown"); m.Title != "firing: AppDown" ||
		!strings.Contains(m.Message, appDown.Annotations["summary"]) || !strings.Contains(m.Message, "Run: homelab doctor") {
		t.Errorf("ntfy AppDown: title %q message %q", m.Title, m.Message)
	}
	if m := ntfyWith(t, ntfy, alertmanager.TestAlertName); m.Message != testAlert.Annotations["summary"]+"\n"+testAlert.Annotations["description"] {
		t.Errorf("ntfy test alert message %q, want its summary and description", m.Message)
	}
	if m := ntfyWith(t, ntfy, "BackupMissing"); m.Message != summaryOnly.Annotations["summary"] {
		t.Errorf("ntfy message %q for an alert with only a summary, want just the summary", m.Message)
	}

	for _, m := range discord {
		if len(m.Embeds) != 1 || !strings.HasPrefix(m.Embeds[0].Title, "[FIRING:1] ") {
			t.Errorf("discord embeds: %+v", m.Embeds)
		}
	}
	if e := discordWith(t, discord, "AppDown").Embeds[0]; !strings.Contains(e.Description, appDown.Annotations["summary"]) ||
		!strings.Contains(e.Description, "Run: homelab doctor") {
		t.Errorf("discord AppDown description %q", e.Description)
	}

	for _, m := range slack {
		if m.Channel != "#alerts" || len(m.Attachments) != 1 {
			t.Errorf("slack message: %+v", m)
		}
	}
	if a := slackWith(t, slack, "AppDown").Attachments[0]; a.Title != "[FIRING:1] AppDown" || !strings.Contains(a.Text, "Run: homelab doctor") {
		t.Errorf("slack AppDown attachment: title %q text %q", a.Title, a.Text)
	}

	for _, m := range telegram {
		if m.ChatID != telegramChat {
			t.Errorf("telegram chat %d, want %d", m.ChatID, telegramChat)
		}
	}
	if m := telegramWith(t, telegram, "AppDown"); !strings.HasPrefix(m.Text, "[FIRING:1] AppDown\n") ||
		!strings.Contains(m.Text, appDown.Annotations["summary"]) {
		t.Errorf("telegram AppDown text %q", m.Text)
	}

	for _, m := range mails {
		if !m.TLS || m.User != smtpUser || m.From != "homelab@example.com" || !slices.Equal(m.To, []string{"me@example.com"}) {
			t.Errorf("mail envelope: TLS %v user %q from %q to %v", m.TLS, m.User, m.From, m.To)
		}
	}
	if m := mailWith(t, mails, "AppDown"); m.Header.Get("Subject") != "[FIRING:1] AppDown" {
		t.Errorf("mail subject %q", m.Header.Get("Subject"))
	}

	for _, h := range hooks {
		if h.Header.Get("Authorization") != "Bearer "+webhookBearer || h.Message.Receiver != "webhook-5" {
			t.Errorf("webhook delivery: receiver %q, authorization set %v", h.Message.Receiver, h.Header.Get("Authorization") != "")
		}
	}

	// Routing: the Watchdog reaches only the dead man's switch; info alerts
	// and the chart's warnings reach nobody.
	if w := d.deadMans.Wait(1, deliverTimeout)[0]; w.Message.CommonLabels["alertname"] != "Watchdog" {
		t.Errorf("dead man's switch got %v", w.Message.CommonLabels)
	}
	for _, name := range []string{"Watchdog", "SomeInfo", "KubeMemoryOvercommit"} {
		for _, h := range d.webhook.Deliveries() {
			if h.Message.CommonLabels["alertname"] == name {
				t.Errorf("%s reached the webhook destination", name)
			}
		}
		for _, m := range d.ntfy.Messages() {
			if strings.Contains(m.Title, name) {
				t.Errorf("%s reached ntfy", name)
			}
		}
	}

	// Alertmanager counts a request when the integration returns, which for
	// email is after QUIT, a moment after the server has the mail: wait.
	var integrations []alerting.Integration
	for i, dest := range cfg.Alerts.Notify {
		integration := alerting.Integration{Name: dest.Kind(), Receiver: alertmanager.ReceiverName(i, dest)}
		if dest.Kind() == "ntfy" {
			integration.Name = "webhook" // ntfy is reached through the webhook integration
		}
		integrations = append(integrations, integration)
	}
	n := am.WaitNotifications("3 delivered notifications per destination", 10*time.Second, func(n alerting.Notifications) bool {
		for _, i := range integrations {
			if n.Delivered(i) < firing {
				return false
			}
		}
		return true
	})
	for _, i := range integrations {
		if n.FailedRequests[i] != 0 {
			t.Errorf("%s: %v failed requests (%s)", i, n.FailedRequests[i], n)
		}
	}

	// The app is back: every destination is told, at the next group_interval.
	resolvedAt := time.Now()
	am.Resolve(appDown)
	const resolveTimeout = 90 * time.Second // group_interval is 1m
	if m := d.ntfy.Wait(firing+1, resolveTimeout)[firing]; m.Title != "resolved: AppDown" || !strings.HasPrefix(m.Message, "Resolved: ") {
		t.Errorf("ntfy resolved: title %q message %q", m.Title, m.Message)
	}
	if m := d.discord.Wait(firing+1, resolveTimeout)[firing]; !strings.HasPrefix(m.Embeds[0].Title, "[RESOLVED] AppDown") {
		t.Errorf("discord resolved title %q", m.Embeds[0].Title)
	}
	if m := d.slack.Wait(firing+1, resolveTimeout)[firing]; m.Attachments[0].Title != "[RESOLVED] AppDown" {
		t.Errorf("slack resolved title %q", m.Attachments[0].Title)
	}
	if m := d.telegram.Wait(firing+1, resolveTimeout)[firing]; !strings.HasPrefix(m.Text, "[RESOLVED] AppDown") || !strings.Contains(m.Text, "Resolved: ") {
		t.Errorf("telegram resolved text %q", m.Text)
	}
	if m := d.smtp.Wait(firing+1, resolveTimeout)[firing]; m.Header.Get("Subject") != "[RESOLVED] AppDown" {
		t.Errorf("mail resolved subject %q", m.Header.Get("Subject"))
	}
	if h := d.webhook.WaitStatus("resolved", resolveTimeout); h.Message.CommonLabels["alertname"] != "AppDown" {
		t.Errorf("webhook resolved %v", h.Message.CommonLabels)
	}
	t.Logf("measured: every destination had the resolved notification %s after the alert was resolved (group_interval 1m)",
		time.Since(resolvedAt).Round(100*time.Millisecond))
}

func ntfyWith(t *testing.T, ms []alerting.NtfyMessage, alertname string) alerting.NtfyMessage {
	t.Helper()
	for _, m := range ms {
		if strings.Contains(m.Title, alertname) {
			return m
		}
	}
	t.Fatalf("no ntfy message for %s in %+v", alertname, ms)
	return alerting.NtfyMessage{}
}

func discordWith(t *testing.T, ms []alerting.DiscordMessage, alertname string) alerting.DiscordMessage {
	t.Helper()
	for _, m := range ms {
		if len(m.Embeds) > 0 && strings.Contains(m.Embeds[0].Title, alertname) {
			return m
		}
	}
	t.Fatalf("no Discord message for %s in %+v", alertname, ms)
	return alerting.DiscordMessage{}
}

func slackWith(t *testing.T, ms []alerting.SlackMessage, alertname string) alerting.SlackMessage {
	t.Helper()
	for _, m := range ms {
		if len(m.Attachments) > 0 && strings.Contains(m.Attachments[0].Title, alertname) {
			return m
		}
	}
	t.Fatalf("no Slack message for %s in %+v", alertname, ms)
	return alerting.SlackMessage{}
}

func telegramWith(t *testing.T, ms []alerting.TelegramMessage, alertname string) alerting.TelegramMessage {
	t.Helper()
	for _, m := range ms {
		if strings.Contains(m.Text, alertname) {
			return m
		}
	}
	t.Fatalf("no Telegram message for %s in %+v", alertname, ms)
	return alerting.TelegramMessage{}
}

func mailWith(t *testing.T, ms []alerting.Mail, alertname string) alerting.Mail {
	t.Helper()
	for _, m := range ms {
		if strings.Contains(m.Header.Get("Subject"), alertname) {
			return m
		}
	}
	t.Fatalf("no mail for %s", alertname)
	return alerting.Mail{}
}
