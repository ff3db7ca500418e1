package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

const noPrometheus = "no Prometheus URL: pass --prometheus-url (Prometheus runs inside k3s)"

func (d *doctor) monitoringChecks() []Check {
	promFix := "kubectl -n " + d.cfg.Monitoring.Namespace + " get pods (is Prometheus running?), and check --prometheus-url"
	return []Check{
		{ID: "monitoring.prometheus", Group: GroupMonitoring, Name: "Prometheus reachable", Run: d.checkPrometheus, TimeoutFix: promFix},
		{ID: "monitoring.probe-selected", Group: GroupMonitoring, Name: "Probe selected", Needs: []string{"monitoring.prometheus"},
			Run: d.checkProbeSelected, TimeoutFix: promFix},
		{ID: "monitoring.probe-success", Group: GroupMonitoring, Name: "app probe_success", Needs: []string{"monitoring.probe-selected"},
			Run: d.checkProbeSuccess, TimeoutFix: promFix},
		{ID: "monitoring.alertmanager", Group: GroupMonitoring, Name: "Alertmanager reachable", Run: d.checkAlertmanager,
			TimeoutFix: "kubectl -n " + d.cfg.Monitoring.Namespace + " get pods (is Alertmanager running?), and check --alertmanager-url"},
	}
}

// promAPI GETs a Prometheus API path and decodes data into out.
func (d *doctor) promAPI(ctx context.Context, path string, query url.Values, out any) error {
	u := d.PrometheusURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	resp, body, err := d.get(ctx, d.client(""), u, "")
	if err != nil {
		return fmt.Errorf("%s: %s", d.PrometheusURL, netReason(err))
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s%s answers HTTP %d, not the Prometheus API", d.PrometheusURL, path, resp.StatusCode)
	}
	if env.Status != "success" {
		return fmt.Errorf("Prometheus: %s", env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

func (d *doctor) healthy(ctx context.Context, base, path string) error {
	resp, _, err := d.get(ctx, d.client(""), base+path, "")
	if err != nil {
		return fmt.Errorf("%s: %s", base, netReason(err))
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s%s answers HTTP %d", base, path, resp.StatusCode)
	}
	return nil
}

func (d *doctor) checkPrometheus(ctx context.Context) Finding {
	if d.PrometheusURL == "" {
		return Skip(noPrometheus)
	}
	if err := d.healthy(ctx, d.PrometheusURL, "/-/ready"); err != nil {
		return Fail(fmt.Sprintf("kubectl -n %s get pods (is Prometheus running?), and check --prometheus-url", d.cfg.Monitoring.Namespace),
			"Prometheus is not ready: %v", err)
	}
	return OK("Prometheus at %s is ready", d.PrometheusURL)
}

// checkProbeSelected: Prometheus scrapes the Probe's job. kube-prometheus-stack
// names the job after the Probe's jobName, which homelab sets to its name.
func (d *doctor) checkProbeSelected(ctx context.Context) Finding {
	m := d.cfg.Monitoring
	var data struct {
		ActiveTargets []struct {
			Labels    map[string]string `json:"labels"`
			Health    string            `json:"health"`
			LastError string            `json:"lastError"`
			ScrapeURL string            `json:"scrapeUrl"`
		} `json:"activeTargets"`
	}
	if err := d.promAPI(ctx, "/api/v1/targets", url.Values{"state": {"active"}}, &data); err != nil {
		return Fail("check --prometheus-url", "cannot list Prometheus targets: %v", err)
	}
	n := 0
	for _, t := range data.ActiveTargets {
		if t.Labels["job"] != m.Probe.Name {
			continue
		}
		n++
		if t.Health == "down" {
			return Fail(fmt.Sprintf("kubectl -n %s get pods,svc | grep %s (is the blackbox exporter running?)", m.Namespace, m.Blackbox.Release),
				"Prometheus cannot scrape the blackbox exporter for Probe %s/%s: %s", m.Namespace, m.Probe.Name, t.LastError)
		}
	}
	if n == 0 {
		return Fail(fmt.Sprintf("kubectl -n %s label probe %s release=%s --overwrite (or set prometheus.prometheusSpec.probeSelectorNilUsesHelmValues=false: sudo homelab init)",
			m.Namespace, m.Probe.Name, m.Release),
			"Prometheus does not select Probe %s/%s: no active target has job=%q", m.Namespace, m.Probe.Name, m.Probe.Name)
	}
	return OK("Prometheus scrapes Probe %s/%s (%d target(s))", m.Namespace, m.Probe.Name, n)
}

// checkProbeSuccess reads the latest probe_success of the Probe's job.
func (d *doctor) checkProbeSuccess(ctx context.Context) Finding {
	m, a := d.cfg.Monitoring, d.cfg.App
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	q := fmt.Sprintf("probe_success{job=%q}", m.Probe.Name)
	if err := d.promAPI(ctx, "/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return Fail("check --prometheus-url", "cannot query %s: %v", q, err)
	}
	if len(data.Result) == 0 {
		return Warn(fmt.Sprintf("wait one probe interval (%s), then homelab doctor again", m.Probe.Interval), "no %s sample yet", q)
	}
	var down, up []string
	for _, r := range data.Result {
		target := r.Metric["instance"]
		if fmt.Sprint(r.Value[1]) == "1" {
			up = append(up, target)
		} else {
			down = append(down, target)
		}
	}
	sort.Strings(down)
	if len(down) > 0 {
		return Fail(fmt.Sprintf("homelab doctor's app checks, then kubectl -n %s logs deploy/%s --tail=50", a.Namespace, a.DeploymentName()),
			"probe_success is 0 for %s: the app does not answer its health check", strings.Join(down, ", "))
	}
	return OK("probe_success is 1 for %s", strings.Join(up, ", "))
}

func (d *doctor) checkAlertmanager(ctx context.Context) Finding {
	if d.AlertmanagerURL == "" {
		return Skip("no Alertmanager URL: pass --alertmanager-url to check it")
	}
	if err := d.healthy(ctx, d.AlertmanagerURL, "/-/healthy"); err != nil {
		return Fail(fmt.Sprintf("kubectl -n %s get pods (is Alertmanager running?), and check --alertmanager-url", d.cfg.Monitoring.Namespace),
			"Alertmanager is not healthy: %v", err)
	}
	return OK("Alertmanager at %s is healthy", d.AlertmanagerURL)
}
