package alertmanager

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// API is a running Alertmanager's HTTP API: the chart's, through the API
// server's service proxy, or any other at its base URL.
type API struct {
	BaseURL string
	Client  *http.Client
	// Logs returns Alertmanager's recent log lines, where the reason a
	// notification failed is written; nil when they cannot be read.
	Logs func(ctx context.Context) (string, error)
}

// Delivery is what became of the test alert at one destination.
type Delivery struct {
	Receiver  string
	Delivered bool
	// Reason says why it was not delivered (from Alertmanager's log, with
	// URLs and tokens removed).
	Reason string
}

// Poll is how often SendTest reads Alertmanager's metrics.
const Poll = time.Second

// RetriesBeforeFailing is how many failed attempts, with none delivered,
// make SendTest call a destination failed without waiting for Alertmanager
// to give up.
const RetriesBeforeFailing = 3

// SendTest sends a test alert, routed like homelab's own alerts, and waits
// until every receiver has delivered it or given up, or ctx ends. It tells
// deliveries apart by Alertmanager's per-receiver notification metrics
// (the chart runs it with receiver-name-in-metrics).
func SendTest(ctx context.Context, api API, receivers []string, host string) ([]Delivery, error) {
	before, err := api.notifications(ctx)
	if err != nil {
		return nil, err
	}
	if err := api.postTestAlert(ctx, host); err != nil {
		return nil, err
	}
	result := map[string]*Delivery{}
	ticker := time.NewTicker(Poll)
	defer ticker.Stop()
	for {
		now, err := api.notifications(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range receivers {
			if result[r] != nil {
				continue
			}
			switch d := now.since(before, r); {
			case d.delivered > 0:
				result[r] = &Delivery{Receiver: r, Delivered: true}
			case d.gaveUp > 0:
				result[r] = &Delivery{Receiver: r}
			case d.failedRequests >= RetriesBeforeFailing:
				// Alertmanager retries until the group interval ends (a
				// minute); a person should not wait that long for an answer
				// that is already clear.
				result[r] = &Delivery{Receiver: r, Reason: fmt.Sprintf("failed %d times (Alertmanager keeps retrying)", int(d.failedRequests))}
			}
		}
		if len(result) == len(receivers) {
			break
		}
		select {
		case <-ctx.Done():
			for _, r := range receivers {
				if result[r] == nil {
					result[r] = &Delivery{Receiver: r, Reason: "no answer before the timeout (Alertmanager is still retrying)"}
				}
			}
		case <-ticker.C:
			continue
		}
		break
	}
	var log string
	if api.Logs != nil {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		log, _ = api.Logs(lctx)
		cancel()
	}
	out := make([]Delivery, 0, len(receivers))
	for _, r := range receivers {
		d := *result[r]
		if !d.Delivered {
			if why := lastError(log, r); why != "" {
				d.Reason = why
				if strings.HasPrefix(d.Reason, r+"/") {
					d.Reason = strings.TrimPrefix(d.Reason[strings.Index(d.Reason, ":")+1:], " ")
				}
			} else if d.Reason == "" {
				d.Reason = "Alertmanager reports the notification failed (its log gives no reason here)"
			}
		}
		out = append(out, d)
	}
	return out, nil
}

func (api API) postTestAlert(ctx context.Context, host string) error {
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	now := time.Now().UTC()
	alert := []map[string]any{{
		"labels": map[string]string{
			"alertname": TestAlertName, HomelabAlertLabel: "true", "severity": "critical",
			// A new label set each run: a fresh notification, not a repeat.
			"test_id": hex.EncodeToString(id),
		},
		"annotations": map[string]string{
			"summary":     "Test alert from homelab on " + host + ": if you read this, alerts reach you.",
			"description": "Sent by `homelab alert test`; nothing is wrong. It resolves by itself in a minute.",
		},
		"startsAt": now.Format(time.RFC3339),
		"endsAt":   now.Add(time.Minute).Format(time.RFC3339),
	}}
	body, _ := json.Marshal(alert)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api.BaseURL+"/api/v2/alerts", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := api.Client.Do(req)
	if err != nil {
		return fmt.Errorf("send the test alert to Alertmanager: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("send the test alert to Alertmanager: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// counts are one receiver's notification metrics.
type counts struct{ requests, failedRequests, gaveUp float64 }

type notifications map[string]counts

// outcome is what changed for a receiver between two readings.
type outcome struct{ delivered, failedRequests, gaveUp float64 }

func (n notifications) since(before notifications, receiver string) outcome {
	a, b := n[receiver], before[receiver]
	return outcome{
		delivered:      (a.requests - a.failedRequests) - (b.requests - b.failedRequests),
		failedRequests: a.failedRequests - b.failedRequests,
		gaveUp:         a.gaveUp - b.gaveUp,
	}
}

// ErrNoReceiverNames means Alertmanager's metrics do not say which
// receiver a notification was for.
var ErrNoReceiverNames = errors.New("Alertmanager's notification metrics have no receiver_name label: it runs without --enable-feature=receiver-name-in-metrics (sudo homelab init sets it)")

func (api API) notifications(ctx context.Context) (notifications, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api.BaseURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := api.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read Alertmanager's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read Alertmanager's metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read Alertmanager's metrics: %w", err)
	}
	out := notifications{}
	named := false
	add := func(family string, f func(*counts, float64)) {
		mf := families[family]
		if mf == nil {
			return
		}
		for _, m := range mf.GetMetric() {
			r := label(m, "receiver_name")
			if r == "" {
				continue
			}
			named = true
			c := out[r]
			f(&c, m.GetCounter().GetValue())
			out[r] = c
		}
	}
	add("alertmanager_notification_requests_total", func(c *counts, v float64) { c.requests += v })
	add("alertmanager_notification_requests_failed_total", func(c *counts, v float64) { c.failedRequests += v })
	add("alertmanager_notifications_failed_total", func(c *counts, v float64) { c.gaveUp += v })
	if !named && families["alertmanager_notifications_total"] != nil {
		return nil, ErrNoReceiverNames
	}
	return out, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

var (
	logErr = regexp.MustCompile(`err="((?:[^"\\]|\\.)*)"`)
	// Webhook, Discord and Slack URLs carry their tokens in the path, a
	// Telegram bot's token follows /bot.
	urlPath = regexp.MustCompile(`(https?://[^/\s"\\]+)/[^\s"\\]*`)
	botPath = regexp.MustCompile(`bot[0-9]+:[A-Za-z0-9_-]+`)
)

// lastError is the last error Alertmanager logged for receiver, with URL
// paths and bot tokens removed.
func lastError(log, receiver string) string {
	var why string
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "receiver="+receiver+" ") && !strings.Contains(line, `receiver="`+receiver+`"`) && !strings.Contains(line, receiver+"/") {
			continue
		}
		if m := logErr.FindStringSubmatch(line); m != nil {
			why = strings.ReplaceAll(m[1], `\"`, `"`)
		}
	}
	return Scrub(why)
}

// Scrub removes what may be secret from a message: URL paths and Telegram
// bot tokens.
func Scrub(s string) string {
	s = urlPath.ReplaceAllString(s, "$1/<redacted>")
	return botPath.ReplaceAllString(s, "bot<redacted>")
}
