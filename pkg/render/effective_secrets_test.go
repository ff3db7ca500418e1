package render_test

import (
	"strings"
	"testing"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/render"
)

// The applied copy init keeps holds no secret, and is itself a valid
// configuration that later commands can read.
func TestEffectiveConfigHidesSecretsAndStaysValid(t *testing.T) {
	cfg, err := config.Parse("homelab.yaml", []byte(`domain: blog.example.com
alerts:
  deadMansSwitchURL: https://hc-ping.com/SECRET-1
  notify:
    - telegram: {botToken: "123:SECRET-2", chatID: 42}
    - email: {to: me@example.com, from: h@example.com, smarthost: "smtp.example.com:587", username: me, password: SECRET-3}
    - discord: {webhookURL: https://discord.com/api/webhooks/1/SECRET-4}
`))
	if err != nil {
		t.Fatal(err)
	}
	data, err := render.EffectiveConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "SECRET") {
		t.Fatalf("a secret reached the applied copy:\n%s", data)
	}
	again, err := config.Parse("/etc/homelab/homelab.yaml", data)
	if err != nil {
		t.Fatalf("the applied copy does not load: %v\n%s", err, data)
	}
	if !config.HasRedactedSecrets(again) || again.Alerts.Notify[0].Telegram.ChatID != 42 || again.Alerts.Notify[1].Email.Username != "me" {
		t.Errorf("the applied copy lost what is not secret: %+v", again.Alerts)
	}
	if cfg.Alerts.Notify[1].Email.Password != "SECRET-3" {
		t.Error("EffectiveConfig changed the configuration it was given")
	}
}
