package config

import (
	"errors"
	"strings"
	"testing"
)

// The example: every kind of destination at once.
const sixDestinations = `domain: blog.example.com
alerts:
  appDownFor: 2m
  notify:
    - ntfy: {url: https://ntfy.sh/my-blog-alerts}
    - discord: {webhookURL: https://discord.com/api/webhooks/ID/TOKEN}
    - slack: {webhookURL: https://hooks.slack.com/services/T/B/X}
    - telegram: {botToken: "123:abc", chatID: -42}
    - email: {to: me@example.com, from: homelab@example.com, smarthost: smtp.example.com:587, username: me, password: hunter2, requireTLS: false}
    - webhook: {url: https://example.com/hook}
`

func TestAlertsDecodeEveryDestination(t *testing.T) {
	cfg, err := Parse("homelab.yaml", []byte(sixDestinations))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Alerts
	var kinds []string
	for _, n := range a.Notify {
		kinds = append(kinds, n.Kind())
	}
	if got := strings.Join(kinds, ","); got != strings.Join(NotifyKinds, ",") {
		t.Errorf("kinds %s, want %s", got, strings.Join(NotifyKinds, ","))
	}
	if a.AppDownFor != "2m" || a.RepeatInterval != "4h" || a.Restarts.Count != 3 {
		t.Errorf("defaults not kept around the file's keys: %+v", a)
	}
	if tg := a.Notify[3].Telegram; tg.ChatID != -42 || tg.BotToken != "123:abc" {
		t.Errorf("telegram %+v", tg)
	}
	if e := a.Notify[4].Email; e.RequireTLS == nil || *e.RequireTLS || e.Password != "hunter2" {
		t.Errorf("email %+v", e)
	}
	defaults, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	if len(defaults.Alerts.Notify) != 0 {
		t.Errorf("the defaults notify nobody, got %+v", defaults.Alerts.Notify)
	}
}

// Every wrong destination is reported with its list index, line and the
// valid choices, and no secret value appears in the message.
func TestAlertsProblemsNameFieldAndHideSecrets(t *testing.T) {
	const bad = `domain: blog.example.com
alerts:
  appDownFor: 0s
  restarts: {count: 0, window: 10s}
  notify:
    - ntfy: {url: "https://ntfy.sh/SECRET1 topic"}
    - discord: {webhookURL: https://discord.com/x/SECRET2}
    - slack: {webhookURL: http://hooks.slack.com/services/SECRET3}
      email: {to: a@b.c}
    - telegram: {botToken: 12345, chatID: 0}
    - email: {to: "me@", from: x, smarthost: smtp, password: SECRET4}
    - webhook: {url: "ftp://SECRET5"}
    - {}
    - pager: {}
    - email: {to: me@example.com, from: h@example.com, smarthost: "smtp.example.com:587", requireTLS: maybe}
    - telegram: {botToken: [SECRET6], chatID: 1}
`
	_, err := Parse("homelab.yaml", []byte(bad))
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("want *Error, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`alerts.appDownFor: invalid value "0s": a Prometheus duration from 1s to 1d`,
		`alerts.restarts.count: invalid value "0"`,
		`alerts.restarts.window: invalid value "10s"`,
		"alerts.notify[0].ntfy.url: invalid value (hidden: it is a secret): a topic URL like https://ntfy.sh/my-blog-alerts",
		"(homelab.yaml:6)",
		"alerts.notify[1].discord.webhookURL: invalid value (hidden",
		"alerts.notify[2]: names slack and email: put each destination in its own list entry (- slack: ...) (homelab.yaml:8)",
		"alerts.notify[3].telegram.botToken: invalid value (hidden",
		`alerts.notify[3].telegram.chatID: invalid value "0"`,
		`alerts.notify[4].email.to: invalid value "me@"`,
		`alerts.notify[4].email.smarthost: invalid value "smtp": the SMTP server as host:port`,
		"alerts.notify[4].email.username",
		"alerts.notify[5].webhook.url: invalid value (hidden",
		"alerts.notify[6]: names no destination: give exactly one of ntfy, discord, slack, telegram, email, webhook",
		"alerts.notify[7].pager: unknown key (valid keys under alerts.notify[7]: discord, email, ntfy, slack, telegram, webhook)",
		`alerts.notify[8].email.requireTLS: must be true or false, got "maybe"`,
		"alerts.notify[9].telegram.botToken: must be a string, got a list",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "alerts.notify[8]: names no destination") {
		t.Errorf("a wrong key inside an entry also reported the entry as empty:\n%s", msg)
	}
	if strings.Contains(msg, "SECRET") {
		t.Errorf("a secret leaked into the error:\n%s", msg)
	}
}
