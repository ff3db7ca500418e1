package alertmanager

import (
	"strings"
	"testing"

	amconfig "github.com/prometheus/alertmanager/config"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// Every destination once, each with a secret that must never be shown.
const everyDestination = `domain: blog.example.com
alerts:
  repeatInterval: 3h
  deadMansSwitchURL: https://hc-ping.com/SECRET-dms
  notify:
    - ntfy: {url: https://ntfy.sh/SECRET-topic, token: SECRET-ntfy-token}
    - discord: {webhookURL: https://discord.com/api/webhooks/1/SECRET-discord}
    - slack: {webhookURL: https://hooks.slack.com/services/T/B/SECRET-slack, channel: "#alerts"}
    - telegram: {botToken: "123:SECRET-telegram", chatID: -42}
    - email: {to: me@example.com, from: homelab@example.com, smarthost: "smtp.example.com:587", username: me, password: SECRET-smtp}
    - webhook: {url: https://example.com/hook/SECRET-webhook, bearerToken: SECRET-bearer}
`

func parse(t *testing.T, doc string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("homelab.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestRenderEveryDestinationRedactedGolden(t *testing.T) {
	data, err := Render(parse(t, everyDestination))
	if err != nil {
		t.Fatal(err)
	}
	// The written file holds the secrets (it is what Alertmanager reads)...
	for _, s := range []string{"SECRET-topic", "SECRET-ntfy-token", "SECRET-discord", "SECRET-slack", "SECRET-telegram", "SECRET-smtp", "SECRET-webhook", "SECRET-bearer", "SECRET-dms"} {
		if !strings.Contains(string(data), s) {
			t.Errorf("rendered configuration lacks %s", s)
		}
	}
	// ...and what is shown to people holds none.
	shown, err := Redact(data)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(shown, "SECRET") {
		t.Errorf("a secret survived redaction:\n%s", shown)
	}
	testutil.Golden(t, "alertmanager/every-destination.redacted.yaml", []byte(shown))

	c, err := amconfig.Load(string(data))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range c.Receivers {
		names = append(names, r.Name)
	}
	want := "null,deadmansswitch,ntfy-0,discord-1,slack-2,telegram-3,email-4,webhook-5"
	if got := strings.Join(names, ","); got != want {
		t.Errorf("receivers %s, want %s", got, want)
	}
	if got := c.Route.RepeatInterval.String(); got != "3h" {
		t.Errorf("repeat_interval %s, want the configured 3h", got)
	}
	// Our alerts and the chart's critical ones fan out to every destination
	// (each route continues); anything else stays in Alertmanager.
	for _, matcher := range []string{`homelab_alert="true"`, `severity="critical"`} {
		var fanout *amconfig.Route
		for _, r := range c.Route.Routes {
			if len(r.Matchers) == 1 && r.Matchers[0].String() == matcher {
				fanout = r
			}
		}
		if fanout == nil {
			t.Fatalf("no route for %s", matcher)
		}
		var dests []string
		for _, r := range fanout.Routes {
			dests = append(dests, r.Receiver)
			if !r.Continue {
				t.Errorf("route to %s under %s does not continue: later destinations would miss the alert", r.Receiver, matcher)
			}
		}
		if got := strings.Join(dests, ","); got != "ntfy-0,discord-1,slack-2,telegram-3,email-4,webhook-5" {
			t.Errorf("%s reaches %s, want every destination", matcher, got)
		}
	}
	if c.Route.Receiver != NullReceiver {
		t.Errorf("alerts no route claims go to %s, want %s", c.Route.Receiver, NullReceiver)
	}
}

func TestRenderDefaultsNotifyNobodyAndSilenceWatchdog(t *testing.T) {
	cfg, err := config.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	data, err := Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, "alertmanager/defaults.yaml", data)
	c, err := amconfig.Load(string(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Receivers) != 1 || c.Receivers[0].Name != NullReceiver {
		t.Errorf("receivers %+v, want only %s", c.Receivers, NullReceiver)
	}
}

// The copy init keeps on the machine has no secrets, and Render refuses it
// rather than write placeholders where tokens were.
func TestRenderRefusesRedactedCopy(t *testing.T) {
	cfg := parse(t, everyDestination)
	copy := config.WithoutSecrets(cfg)
	if !config.HasRedactedSecrets(copy) || config.HasRedactedSecrets(cfg) {
		t.Fatal("WithoutSecrets did not mark the copy, or changed the original")
	}
	if cfg.Alerts.Notify[3].Telegram.BotToken != "123:SECRET-telegram" {
		t.Fatal("WithoutSecrets changed the original's destinations")
	}
	if copy.Alerts.Notify[3].Telegram.ChatID != -42 || copy.Alerts.Notify[4].Email.To != "me@example.com" {
		t.Errorf("WithoutSecrets dropped what is not secret: %+v %+v", copy.Alerts.Notify[3].Telegram, copy.Alerts.Notify[4].Email)
	}
	_, err := Render(copy)
	if err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("Render of a redacted copy: %v, want a refusal naming --config", err)
	}
}
