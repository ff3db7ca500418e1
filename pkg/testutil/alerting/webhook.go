package alerting

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"testing"
	"time"
)

// WebhookMessage is the body Alertmanager's webhook_configs POSTs, version "4".
// See https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
type WebhookMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []WebhookAlert    `json:"alerts"`
}

// WebhookAlert is one alert in a WebhookMessage.
type WebhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// WebhookDelivery is one request the webhook receiver accepted.
type WebhookDelivery struct {
	Message    WebhookMessage
	Header     http.Header
	Body       []byte
	ReceivedAt time.Time
}

// WebhookReceiver is a generic webhook endpoint: it takes Alertmanager's
// webhook JSON (version "4") and checks every documented field is there.
type WebhookReceiver struct {
	*standIn
	bearer     string
	deliveries inbox[WebhookDelivery]
}

// RequireBearer makes a webhook receiver answer 401 unless the request
// carries "Authorization: Bearer token" (http_config.authorization in
// Alertmanager).
func RequireBearer(token string) ServerOption {
	return func(o *serverOptions) { o.bearer = token }
}

// StartWebhookReceiver starts a webhook receiver on 127.0.0.1.
func StartWebhookReceiver(t testing.TB, opts ...ServerOption) *WebhookReceiver {
	t.Helper()
	wr := &WebhookReceiver{}
	var o serverOptions
	wr.standIn, o = newStandIn(t, "webhook", wr.serve, opts)
	wr.bearer = o.bearer
	return wr
}

// URL is where Alertmanager posts (webhook_configs[].url).
func (wr *WebhookReceiver) URL() string { return wr.server.URL + "/hook" }

// Deliveries lists the accepted notifications so far.
func (wr *WebhookReceiver) Deliveries() []WebhookDelivery { return wr.deliveries.all() }

// Wait waits until at least n notifications arrived and returns them all.
func (wr *WebhookReceiver) Wait(n int, timeout time.Duration) []WebhookDelivery {
	wr.t.Helper()
	return wr.deliveries.wait(wr.t, "webhook notification(s)", n, timeout)
}

// WaitStatus waits for a notification whose status is status ("firing" or
// "resolved") and returns the first one.
func (wr *WebhookReceiver) WaitStatus(status string, timeout time.Duration) WebhookDelivery {
	wr.t.Helper()
	deadline := time.Now().Add(timeout)
	for n := 1; ; n++ {
		left := time.Until(deadline)
		if left <= 0 {
			wr.t.Fatalf("waited %s for a %q webhook notification; got %d other(s)", timeout, status, n-1)
		}
		got := wr.deliveries.wait(wr.t, fmt.Sprintf("webhook notification(s), one %q", status), n, left)
		if d := got[n-1]; d.Message.Status == status {
			return d
		}
	}
}

func (wr *WebhookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	bad := func(reason string) { wr.reject(w, r, http.StatusBadRequest, "text/plain", reason, reason) }
	if r.Method != http.MethodPost {
		wr.reject(w, r, http.StatusMethodNotAllowed, "text/plain", "method not allowed", "webhooks are POSTed")
		return
	}
	if wr.bearer != "" && r.Header.Get("Authorization") != "Bearer "+wr.bearer {
		wr.reject(w, r, http.StatusUnauthorized, "text/plain", "unauthorized", "missing or wrong bearer token")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		bad(fmt.Sprintf("Content-Type %q, want application/json", r.Header.Get("Content-Type")))
		return
	}
	body, err := readBody(r)
	if err != nil {
		bad(err.Error())
		return
	}
	var m WebhookMessage
	if err := json.Unmarshal(body, &m); err != nil {
		bad("body is not the webhook JSON: " + err.Error())
		return
	}
	if reason := checkWebhookMessage(m); reason != "" {
		bad(reason)
		return
	}
	wr.deliveries.add(WebhookDelivery{Message: m, Header: r.Header.Clone(), Body: body, ReceivedAt: time.Now()})
	w.WriteHeader(http.StatusOK)
}

// checkWebhookMessage says what is missing from m, or "" if it is complete.
func checkWebhookMessage(m WebhookMessage) string {
	switch {
	case m.Version != "4":
		return fmt.Sprintf("version %q, want \"4\"", m.Version)
	case m.GroupKey == "":
		return "groupKey is empty"
	case m.Receiver == "":
		return "receiver is empty"
	case m.Status != "firing" && m.Status != "resolved":
		return fmt.Sprintf("status %q, want firing or resolved", m.Status)
	case m.GroupLabels == nil || m.CommonLabels == nil || m.CommonAnnotations == nil:
		return "groupLabels, commonLabels or commonAnnotations missing"
	case len(m.Alerts) == 0:
		return "no alerts"
	}
	for i, a := range m.Alerts {
		switch {
		case a.Status != "firing" && a.Status != "resolved":
			return fmt.Sprintf("alerts[%d].status %q", i, a.Status)
		case a.Labels["alertname"] == "":
			return fmt.Sprintf("alerts[%d] has no alertname label", i)
		case a.StartsAt.IsZero():
			return fmt.Sprintf("alerts[%d].startsAt is empty", i)
		case a.Fingerprint == "":
			return fmt.Sprintf("alerts[%d].fingerprint is empty", i)
		}
	}
	return ""
}

// readBody reads at most 1 MiB: no notification is that large.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > 1<<20 {
		return nil, fmt.Errorf("body over 1 MiB")
	}
	return body, nil
}
