package alerting

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// receivers are one stand-in of each kind, the way a homelab.yaml with all
// six destinations would use them.
type receivers struct {
	webhook  *WebhookReceiver
	ntfy     *NtfyServer
	discord  *DiscordWebhook
	slack    *SlackWebhook
	telegram *TelegramBot
	smtp     *SMTPServer
}

const (
	ntfyToken     = "tk_testtoken0123456789abcdefghi"
	telegramToken = "123456:test-bot-token"
	telegramChat  = 42
	smtpUser      = "me"
	smtpPassword  = "smtp-password"
)

// startReceivers serves Discord, Slack and SMTP with TLS, as the real
// services do, all from one CA: Alertmanager trusts it as its only root.
func startReceivers(t *testing.T) receivers {
	ca := NewCA(t)
	return receivers{
		webhook:  StartWebhookReceiver(t, RequireBearer("webhook-bearer")),
		ntfy:     StartNtfyServer(t, ntfyToken),
		discord:  StartDiscordWebhook(t, "1234567890", "discord-webhook-token", ServeTLS(ca)),
		slack:    StartSlackWebhook(t, "slackwebhooksecret", ServeTLS(ca)),
		telegram: StartTelegramBot(t, telegramToken, telegramChat),
		smtp:     StartSMTPServer(t, smtpUser, smtpPassword, SMTPWithCA(ca)),
	}
}

// ntfyURL is the topic URL with ntfy's message templating in the query: the
// way homelab sends to ntfy through Alertmanager's webhook receiver.
func ntfyURL(base string) string {
	q := url.Values{}
	q.Set("template", "yes")
	q.Set("title", `{{if eq .status "firing"}}🔥{{else}}✅{{end}} {{.commonLabels.alertname}} {{.status}}`)
	q.Set("message", `{{range .alerts}}{{.annotations.summary}}\n{{end}}`)
	q.Set("priority", `{{if eq .status "firing"}}high{{else}}default{{end}}`)
	q.Set("tags", "homelab")
	return base + "/homelab-alerts?" + q.Encode()
}

// allReceiversConfig is a hand-written Alertmanager v0.34 configuration with
// each native receiver, and ntfy through webhook_configs. Every destination
// is its own receiver (routes with continue), as homelab renders them, so the
// metrics tell them apart.
func allReceiversConfig(r receivers) string {
	return fmt.Sprintf(`global:
  resolve_timeout: 5m
route:
  receiver: webhook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - {receiver: webhook, matchers: ['alertname=~".+"'], continue: true}
    - {receiver: ntfy, matchers: ['alertname=~".+"'], continue: true}
    - {receiver: discord, matchers: ['alertname=~".+"'], continue: true}
    - {receiver: slack, matchers: ['alertname=~".+"'], continue: true}
    - {receiver: telegram, matchers: ['alertname=~".+"'], continue: true}
    - {receiver: email, matchers: ['alertname=~".+"'], continue: true}
receivers:
  - name: webhook
    webhook_configs:
      - url: %q
        send_resolved: true
        http_config: {authorization: {credentials: webhook-bearer}}
  - name: ntfy
    webhook_configs:
      - url: %q
        send_resolved: true
        http_config: {authorization: {credentials: %s}}
  - name: discord
    discord_configs:
      - webhook_url: %q
        send_resolved: true
  - name: slack
    slack_configs:
      - api_url: %q
        channel: '#alerts'
        send_resolved: true
  - name: telegram
    telegram_configs:
      - api_url: %q
        bot_token: %q
        chat_id: %d
        send_resolved: true
  - name: email
    email_configs:
      - to: me@example.com
        from: homelab@example.com
        smarthost: %s
        auth_username: %s
        auth_password: %s
        require_tls: true
        send_resolved: true
`, r.webhook.URL(), ntfyURL(r.ntfy.URL()), ntfyToken, r.discord.URL(), r.slack.URL(),
		r.telegram.APIURL(), telegramToken, telegramChat, r.smtp.Addr, smtpUser, smtpPassword)
}

var appDown = Alert{
	Labels: map[string]string{"alertname": "AppDown", "severity": "critical", "app": "blog"},
	Annotations: map[string]string{
		"summary": "blog is down: https://blog.example.com/ has failed its probe for 1m",
		"hint":    "run: homelab doctor",
	},
	GeneratorURL: "http://prometheus.example/graph",
}

// Each native receiver (and ntfy through the webhook receiver) gets a
// notification in its documented format when the alert fires, and again
// when it resolves; Alertmanager counts every one as delivered.
func TestEveryReceiverGetsFiringAndResolved(t *testing.T) {
	r := startReceivers(t)
	am := StartAlertmanager(t, []byte(allReceiversConfig(r)), WithCA(r.smtp.CA.CertFile), WithReceiverNamesInMetrics())

	start := time.Now()
	am.PostAlerts(appDown)
	const timeout = 30 * time.Second

	hook := r.webhook.WaitStatus("firing", timeout)
	if got := hook.Message.CommonLabels["alertname"]; got != "AppDown" {
		t.Errorf("webhook commonLabels.alertname = %q", got)
	}
	if got := hook.Message.CommonAnnotations["summary"]; got != appDown.Annotations["summary"] {
		t.Errorf("webhook commonAnnotations.summary = %q", got)
	}
	if got := hook.Message.Receiver; got != "webhook" {
		t.Errorf("webhook receiver = %q", got)
	}

	ntfy := r.ntfy.Wait(1, timeout)[0]
	if !ntfy.Templated || ntfy.Topic != "homelab-alerts" {
		t.Errorf("ntfy message not templated to topic homelab-alerts: %+v", ntfy)
	}
	if want := "🔥 AppDown firing"; ntfy.Title != want {
		t.Errorf("ntfy title = %q, want %q", ntfy.Title, want)
	}
	if ntfy.Message != appDown.Annotations["summary"] || ntfy.Priority != 4 || strings.Join(ntfy.Tags, ",") != "homelab" {
		t.Errorf("ntfy message %q priority %d tags %v", ntfy.Message, ntfy.Priority, ntfy.Tags)
	}

	discord := r.discord.Wait(1, timeout)[0]
	if len(discord.Embeds) != 1 || !strings.Contains(discord.Embeds[0].Title, "AppDown") ||
		!strings.Contains(discord.Embeds[0].Description, appDown.Annotations["summary"]) {
		t.Errorf("discord embeds do not name the alert and its summary: %+v", discord.Embeds)
	}

	slack := r.slack.Wait(1, timeout)[0]
	if slack.Channel != "#alerts" || len(slack.Attachments) != 1 || !strings.Contains(slack.Attachments[0].Title, "AppDown") {
		t.Errorf("slack message: %+v", slack)
	}

	tg := r.telegram.Wait(1, timeout)[0]
	if tg.ChatID != telegramChat || tg.ParseMode != "HTML" || !strings.Contains(tg.Text, "AppDown") {
		t.Errorf("telegram message: %+v", tg)
	}

	mail := r.smtp.Wait(1, timeout)[0]
	if !mail.TLS || mail.User != smtpUser || mail.From != "homelab@example.com" ||
		len(mail.To) != 1 || mail.To[0] != "me@example.com" {
		t.Errorf("mail envelope: TLS %v user %q from %q to %v", mail.TLS, mail.User, mail.From, mail.To)
	}
	if subject := mail.Header.Get("Subject"); !strings.Contains(subject, "FIRING") || !strings.Contains(subject, "AppDown") {
		t.Errorf("mail subject %q", subject)
	}
	t.Logf("firing: every receiver had its notification %s after the alert was posted", time.Since(start).Round(time.Millisecond))

	// Alertmanager counts a request when the integration returns: for email
	// after QUIT, a moment after the server has the mail. So wait for it.
	integrations := []Integration{
		{"webhook", "webhook"}, {"webhook", "ntfy"}, {"discord", "discord"},
		{"slack", "slack"}, {"telegram", "telegram"}, {"email", "email"},
	}
	n := am.WaitNotifications("a delivered notification per receiver", 10*time.Second, func(n Notifications) bool {
		for _, i := range integrations {
			if n.Delivered(i) < 1 {
				return false
			}
		}
		return true
	})
	for _, i := range integrations {
		if n.FailedRequests[i] != 0 || n.Failed[i] != 0 {
			t.Errorf("%s: failed requests %v, failed notifications %v (%s)", i, n.FailedRequests[i], n.Failed[i], n)
		}
	}

	am.Resolve(appDown)
	resolved := r.webhook.WaitStatus("resolved", timeout)
	if resolved.Message.Alerts[0].EndsAt.IsZero() {
		t.Error("resolved webhook alert has no endsAt")
	}
	if got := r.ntfy.Wait(2, timeout)[1]; got.Title != "✅ AppDown resolved" || got.Priority != 3 {
		t.Errorf("resolved ntfy title %q priority %d", got.Title, got.Priority)
	}
	if got := r.discord.Wait(2, timeout)[1]; !strings.Contains(got.Embeds[0].Title, "RESOLVED") {
		t.Errorf("resolved discord title %q", got.Embeds[0].Title)
	}
	if got := r.slack.Wait(2, timeout)[1]; !strings.Contains(got.Attachments[0].Title, "RESOLVED") {
		t.Errorf("resolved slack title %q", got.Attachments[0].Title)
	}
	if got := r.telegram.Wait(2, timeout)[1]; !strings.Contains(got.Text, "Alerts Resolved") {
		t.Errorf("resolved telegram text %q", got.Text)
	}
	if got := r.smtp.Wait(2, timeout)[1]; !strings.Contains(got.Header.Get("Subject"), "RESOLVED") {
		t.Errorf("resolved mail subject %q", got.Header.Get("Subject"))
	}
}

// A mail server that refuses the login makes the email notification fail:
// Alertmanager counts it in alertmanager_notifications_failed_total and logs
// the server's 535 answer. A wrong Telegram bot token fails the same way,
// with Telegram's "Unauthorized".
func TestRefusedLoginAndWrongTokenAreFailures(t *testing.T) {
	smtpServer := StartSMTPServer(t, smtpUser, smtpPassword)
	smtpServer.RejectLogins(true)
	bot := StartTelegramBot(t, telegramToken, telegramChat)
	bot.TolerateRejections()
	config := fmt.Sprintf(`route:
  receiver: email
  group_wait: 0s
  group_interval: 1s
  routes:
    - {receiver: email, matchers: ['alertname=~".+"'], continue: true}
    - {receiver: telegram, matchers: ['alertname=~".+"'], continue: true}
receivers:
  - name: email
    email_configs:
      - {to: me@example.com, from: homelab@example.com, smarthost: %s, auth_username: %s, auth_password: %s}
  - name: telegram
    telegram_configs:
      - {api_url: %q, bot_token: "999:wrong-token", chat_id: %d}
`, smtpServer.Addr, smtpUser, smtpPassword, bot.APIURL(), telegramChat)
	am := StartAlertmanager(t, []byte(config), WithCA(smtpServer.CA.CertFile), WithReceiverNamesInMetrics())
	am.PostAlerts(appDown)

	email, telegram := Integration{"email", "email"}, Integration{"telegram", "telegram"}
	n := am.WaitNotifications("a failed email and a failed telegram request", 30*time.Second,
		func(n Notifications) bool { return n.FailedRequests[email] >= 1 && n.FailedRequests[telegram] >= 1 })
	if n.Delivered(email) > 0 || n.Delivered(telegram) > 0 {
		t.Errorf("a refused notification counted as delivered: %s", n)
	}
	// Alertmanager gives up on the notification after its retries; then it
	// counts it as failed, with the reason "other" for both.
	n = am.WaitNotifications("the email and telegram notifications given up on", 30*time.Second,
		func(n Notifications) bool { return n.Failed[email] >= 1 && n.Failed[telegram] >= 1 })
	if n.FailedByReason[email]["other"] < 1 || n.FailedByReason[telegram]["other"] < 1 {
		t.Errorf("failure reasons: %s", n)
	}
	if why := smtpServer.WaitFailedLogins(1, 5*time.Second)[0]; !strings.Contains(why, "told to refuse") {
		t.Errorf("login refused for another reason: %s", why)
	}
	if len(smtpServer.Mails()) != 0 {
		t.Errorf("mail accepted although the login was refused: %+v", smtpServer.Mails())
	}
	if got := bot.WaitRejections(1, 5*time.Second)[0]; got.Status != 401 ||
		got.Body != `{"description":"Unauthorized","error_code":401,"ok":false}` {
		t.Errorf("telegram rejection: %+v", got)
	}
	// The reasons reach Alertmanager's log, where `homelab alert test` can find them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		log := am.Log()
		if strings.Contains(log, `535 \"5.7.8 Authentication failed\"`) && strings.Contains(log, "telegram: Unauthorized (401)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Alertmanager's log does not show the 535 answer and Telegram's Unauthorized after 10s:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// AUTH LOGIN works too (some providers offer nothing else).
func TestLoginMechanism(t *testing.T) {
	smtpServer := StartSMTPServer(t, smtpUser, smtpPassword, SMTPMechanisms("LOGIN"))
	config := fmt.Sprintf(`route: {receiver: email, group_wait: 0s, group_interval: 1s}
receivers:
  - name: email
    email_configs:
      - {to: me@example.com, from: homelab@example.com, smarthost: %s, auth_username: %s, auth_password: %s}
`, smtpServer.Addr, smtpUser, smtpPassword)
	am := StartAlertmanager(t, []byte(config), WithCA(smtpServer.CA.CertFile))
	am.PostAlerts(appDown)
	mail := smtpServer.Wait(1, 30*time.Second)[0]
	if !mail.TLS || mail.User != smtpUser {
		t.Errorf("mail over TLS %v by %q", mail.TLS, mail.User)
	}
	am.WaitDelivered(Integration{Name: "email"}, 1, 10*time.Second)
}
