package alerting

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Notifications holds Alertmanager's notification counters from its
// /metrics, by integration (and by receiver, with WithReceiverNamesInMetrics).
//
// Alertmanager v0.34 counts a notification in
// alertmanager_notifications_total when it starts sending it, and in
// alertmanager_notifications_failed_total only when every retry failed (its
// retry stage gives up after several attempts, about 10 s here). Each attempt
// is one request, counted in alertmanager_notification_requests_total and, if
// it failed, at once in alertmanager_notification_requests_failed_total. So a
// success is a request that did not fail, and the request counters show a
// failure without waiting for the retries. A request is counted when the
// integration returns, which for email is after QUIT, a moment after the
// server has the mail: wait for counters (WaitNotifications), do not read
// them once.
type Notifications struct {
	// Sent is alertmanager_notifications_total: notifications started.
	Sent map[Integration]float64
	// Failed is alertmanager_notifications_failed_total summed over the reason
	// label: notifications given up on.
	Failed map[Integration]float64
	// FailedByReason is the same counter by integration and reason. For a
	// refused SMTP login or a wrong Telegram token, v0.34 says "other".
	FailedByReason map[Integration]map[string]float64
	// Requests is alertmanager_notification_requests_total: attempts.
	Requests map[Integration]float64
	// FailedRequests is alertmanager_notification_requests_failed_total.
	FailedRequests map[Integration]float64
}

// Integration names one series: the integration ("webhook", "email", ...)
// and, when Alertmanager adds it, the receiver's name.
type Integration struct {
	Name     string
	Receiver string
}

// Delivered is how many requests to integration succeeded.
func (n Notifications) Delivered(i Integration) float64 { return n.Requests[i] - n.FailedRequests[i] }

func (i Integration) String() string {
	if i.Receiver == "" {
		return i.Name
	}
	return i.Name + "/" + i.Receiver
}

// Notifications reads the notification counters from /metrics.
func (am *Alertmanager) Notifications() Notifications {
	am.t.Helper()
	n, err := am.readNotifications()
	if err != nil {
		am.t.Fatal(err)
	}
	return n
}

func (am *Alertmanager) readNotifications() (Notifications, error) {
	resp, err := loopbackClient.Get(am.URL + "/metrics")
	if err != nil {
		return Notifications{}, fmt.Errorf("GET %s/metrics: %w", am.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Notifications{}, fmt.Errorf("GET %s/metrics: %s", am.URL, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return Notifications{}, fmt.Errorf("parse %s/metrics: %w", am.URL, err)
	}
	n := Notifications{
		Sent:           map[Integration]float64{},
		Failed:         map[Integration]float64{},
		FailedByReason: map[Integration]map[string]float64{},
		Requests:       map[Integration]float64{},
		FailedRequests: map[Integration]float64{},
	}
	for name, counts := range map[string]map[Integration]float64{
		"alertmanager_notifications_total":                n.Sent,
		"alertmanager_notification_requests_total":        n.Requests,
		"alertmanager_notification_requests_failed_total": n.FailedRequests,
	} {
		for _, m := range families[name].GetMetric() {
			counts[integrationOf(m.GetLabel())] += m.GetCounter().GetValue()
		}
	}
	for _, m := range families["alertmanager_notifications_failed_total"].GetMetric() {
		i := integrationOf(m.GetLabel())
		v := m.GetCounter().GetValue()
		n.Failed[i] += v
		if n.FailedByReason[i] == nil {
			n.FailedByReason[i] = map[string]float64{}
		}
		for _, l := range m.GetLabel() {
			if l.GetName() == "reason" {
				n.FailedByReason[i][l.GetValue()] += v
			}
		}
	}
	return n, nil
}

func integrationOf(labels []*dto.LabelPair) Integration {
	var i Integration
	for _, l := range labels {
		switch l.GetName() {
		case "integration":
			i.Name = l.GetValue()
		case "receiver_name":
			i.Receiver = l.GetValue()
		}
	}
	return i
}

// WaitNotifications polls /metrics until cond holds, for at most timeout.
// On timeout it fails the test with what it waited for, the last counters
// and the log's path.
func (am *Alertmanager) WaitNotifications(what string, timeout time.Duration, cond func(Notifications) bool) Notifications {
	am.t.Helper()
	deadline := time.Now().Add(timeout)
	var last Notifications
	var lastErr error
	for {
		last, lastErr = am.readNotifications()
		if lastErr == nil && cond(last) {
			return last
		}
		if time.Now().After(deadline) {
			am.t.Fatalf("waited %s for Alertmanager at %s: %s; last counters: %s (read error: %v); log: %s",
				timeout, am.URL, what, last, lastErr, am.LogPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitDelivered waits until integration has at least count successful attempts.
func (am *Alertmanager) WaitDelivered(i Integration, count float64, timeout time.Duration) Notifications {
	am.t.Helper()
	return am.WaitNotifications(fmt.Sprintf("%v successful notification(s) to %s", count, i), timeout,
		func(n Notifications) bool { return n.Delivered(i) >= count })
}

// WaitFailed waits until integration has at least count failed requests.
func (am *Alertmanager) WaitFailed(i Integration, count float64, timeout time.Duration) Notifications {
	am.t.Helper()
	return am.WaitNotifications(fmt.Sprintf("%v failed request(s) to %s", count, i), timeout,
		func(n Notifications) bool { return n.FailedRequests[i] >= count })
}

// String lists the non-zero counters, sorted, for failure messages.
func (n Notifications) String() string {
	var lines []string
	for i, v := range n.Sent {
		if v != 0 || n.Requests[i] != 0 {
			var reasons []string
			for r, c := range n.FailedByReason[i] {
				if c != 0 {
					reasons = append(reasons, fmt.Sprintf("%s=%v", r, c))
				}
			}
			sort.Strings(reasons)
			lines = append(lines, fmt.Sprintf("%s: notifications %v (failed %v %v), requests %v (failed %v)",
				i, v, n.Failed[i], reasons, n.Requests[i], n.FailedRequests[i]))
		}
	}
	if len(lines) == 0 {
		return "(all zero)"
	}
	sort.Strings(lines)
	return strings.Join(lines, "; ")
}
