package dashboard_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/dashboard"
	"github.com/homelab-dev/homelab/pkg/testutil"
)

// sample is one series of an instant query's answer.
type sample struct {
	Metric map[string]string
	Value  string
}

// instant evaluates expr in the real Prometheus at prom.
func instant(t *testing.T, prom, expr string) ([]sample, error) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(prom + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status, Error string
		Data          struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s: %s", body.Status, body.Error)
	}
	var out []sample
	for _, r := range body.Data.Result {
		out = append(out, sample{Metric: r.Metric, Value: fmt.Sprint(r.Value[1])})
	}
	return out, nil
}

// byLabel is the samples' values keyed by one label.
func byLabel(s []sample, label string) map[string]string {
	m := map[string]string{}
	for _, x := range s {
		m[x.Metric[label]] = x.Value
	}
	return m
}

// TestPanelsOnRealPrometheus runs every panel query in the test
// environment's real Prometheus, which scrapes the real blackbox exporter
// probing a live and a dead target under job "blackbox": each query is
// accepted, and the probe panels show what they claim (up 1 and down 0,
// status 200 and 0 for no answer, the five phases, no certificate without
// TLS). The kube-state-metrics and cAdvisor panels have no data there (no
// kubelet); for them this proves only that Prometheus accepts the queries.
func TestPanelsOnRealPrometheus(t *testing.T) {
	prom := testutil.TestEnv(t, "HOMELAB_TEST_PROMETHEUS_URL")
	live := testutil.TestEnv(t, "HOMELAB_TEST_LIVE_TARGET_URL")
	dead := testutil.TestEnv(t, "HOMELAB_TEST_DEAD_TARGET_URL")
	a := dashboard.App{Name: "web", Namespace: "default", Deployment: "web-deployment", ProbeJob: "blackbox", PublicProbeJob: "blackbox-public"}
	data, err := dashboard.JSON(a)
	if err != nil {
		t.Fatal(err)
	}
	var b board
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	// Grafana replaces $__rate_interval with at least four scrape
	// intervals; the test environment scrapes every 2 s.
	vars := strings.NewReplacer("$__rate_interval", "8s")

	// Both targets have been probed at least once (testenv up waits for it;
	// bounded, in case Prometheus was just restarted).
	up := fmt.Sprintf(`probe_success{job=%q}`, a.ProbeJob)
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := instant(t, prom, up)
		if err == nil && len(s) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s to have 2 series in %s (the live and the dead target); last: %v %v", up, prom, s, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	results := map[string][]sample{}
	for _, p := range b.Panels {
		for _, tg := range p.Targets {
			s, err := instant(t, prom, vars.Replace(tg.Expr))
			if err != nil {
				t.Errorf("panel %q query %s: Prometheus refuses %s: %v", p.Title, tg.RefID, tg.Expr, err)
			}
			results[p.Title+"/"+tg.RefID] = s
		}
	}
	check := func(key, label string, want map[string]string) {
		t.Helper()
		got := byLabel(results[key], label)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s by %s: %v, want %v", key, label, got, want)
		}
	}
	check("Up or down/A", "instance", map[string]string{live: "1", dead: "0"})
	check("HTTP status/A", "instance", map[string]string{live: "200", dead: "0"})
	if s := results["Up or down/B"]; len(s) != 0 {
		t.Errorf("the public probe has data without TLS: %v", s)
	}
	if s := results["Certificate days left/A"]; len(s) != 0 {
		t.Errorf("certificate days left without TLS: %v, want no data", s)
	}
	if got := byLabel(results["Response time/A"], "instance"); len(got) != 2 || got[live] == "" {
		t.Errorf("response time by instance: %v, want both targets", got)
	}
	var phases []string
	for ph := range byLabel(results["Response time/B"], "phase") {
		phases = append(phases, ph)
	}
	sort.Strings(phases)
	if strings.Join(phases, ",") != "connect,processing,resolve,tls,transfer" {
		t.Errorf("response time phases %v", phases)
	}
	t.Logf("%d panel queries evaluated by the real Prometheus", len(results))
}
