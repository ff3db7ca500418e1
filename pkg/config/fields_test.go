package config

import (
	"strings"
	"testing"
)

func TestCheckFieldUsesValidatesRules(t *testing.T) {
	c, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckField(c, "domain"); err != nil {
		t.Errorf("the defaults' domain: %v", err)
	}
	c.Domain = "https://blog.example.com"
	c.App.Port = 0
	err = CheckField(c, "domain")
	if err == nil || !strings.Contains(err.Error(), "a bare DNS name") {
		t.Errorf("domain with a scheme: %v, want Validate's message", err)
	}
	if strings.Contains(err.Error(), "65535") {
		t.Errorf("domain's error mentions another key: %v", err)
	}
	if err := CheckField(c, "app.port"); err == nil {
		t.Error("port 0 passed")
	}
	// A prefix is a key and what is under it, not every key that starts
	// with the same letters.
	if got := ProblemsAt(c, "app.po"); len(got) != 0 {
		t.Errorf("ProblemsAt(app.po) = %v", got)
	}
	c.Alerts.Notify = []Notify{{Webhook: &WebhookNotify{URL: "ftp://x"}}}
	err = CheckField(c, "alerts.notify[0]")
	if err == nil || !strings.Contains(err.Error(), "alerts.notify[0].webhook.url:") || strings.Contains(err.Error(), "ftp://x") {
		t.Errorf("webhook: %v, want the field named and the secret hidden", err)
	}
}
