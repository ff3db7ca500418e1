package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

const noPrometheus = "no Prometheus URL: pass --prometheus-url (Prometheus runs inside k3s)"

// service is an HTTP service of the monitoring stack doctor asks: the one at
// its flag's URL, or else the release's Service through the API server.
type service struct {
	name      string // Prometheus, Alertmanager
	flagURL   string
	flag      string // --prometheus-url
	noURL     string // the skip message without a URL or a way to the cluster
	component string // the chart's Service name suffix: prometheus, alertmanager
	port      int32  // its HTTP port: 9090, 9093
}

func (d *doctor) prometheusService() service {
	return service{name: "Prometheus", flagURL: d.PrometheusURL, flag: "--prometheus-url", noURL: noPrometheus, component: "prometheus", port: 9090}
}

func (d *doctor) alertmanagerService() service {
	return service{name: "Alertmanager", flagURL: d.AlertmanagerURL, flag: "--alertmanager-url",
		noURL: "no Alertmanager URL: pass --alertmanager-url to check it", component: "alertmanager", port: 9093}
}

// inCluster reports whether s is asked through the API server: no URL was
// given and there is (or should have been) a cluster to ask.
func (d *doctor) inCluster(s service) bool {
	if s.flagURL != "" {
		return false
	}
	_, ok := d.Cluster.(ServiceProxy)
	return ok || (d.Cluster == nil && d.ClusterError != nil)
}

// notRunningFix is the fix when s does not answer.
func (d *doctor) notRunningFix(s service) string {
	ns := d.cfg.Monitoring.Namespace
	if d.inCluster(s) {
		return fmt.Sprintf("sudo kubectl -n %s describe pods -l app.kubernetes.io/name=%s", ns, s.component)
	}
	return fmt.Sprintf("sudo kubectl -n %s get pods; if %s runs elsewhere, give its address with %s", ns, s.name, s.flag)
}

// queryFix is the fix when s answers but not as expected.
func (d *doctor) queryFix(s service) string {
	if d.inCluster(s) {
		return fmt.Sprintf("sudo kubectl -n %s logs -l app.kubernetes.io/name=%s --tail=50", d.cfg.Monitoring.Namespace, s.component)
	}
	return "check " + s.flag
}

func (d *doctor) monitoringChecks() []Check {
	prom, am := d.prometheusService(), d.alertmanagerService()
	needs := func(s service) []string {
		if d.inCluster(s) {
			return []string{"k3s.api"}
		}
		return nil
	}
	promFix := d.notRunningFix(prom)
	return []Check{
		{ID: "monitoring.prometheus", Group: GroupMonitoring, Name: "Prometheus reachable", Needs: needs(prom), Run: d.checkPrometheus, TimeoutFix: promFix},
		{ID: "monitoring.probe-selected", Group: GroupMonitoring, Name: "Probe selected", Needs: []string{"monitoring.prometheus"},
			Run: d.checkProbeSelected, TimeoutFix: promFix},
		{ID: "monitoring.probe-success", Group: GroupMonitoring, Name: "app probe_success", Needs: []string{"monitoring.probe-selected"},
			Run: d.checkProbeSuccess, TimeoutFix: promFix},
		{ID: "monitoring.alertmanager", Group: GroupMonitoring, Name: "Alertmanager reachable", Needs: needs(am), Run: d.checkAlertmanager,
			TimeoutFix: d.notRunningFix(am)},
	}
}

// endpoint is how doctor reaches an HTTP service.
type endpoint struct {
	url    string // base URL, without a trailing slash
	client *http.Client
	// name is the service in findings: its URL, or its Service.
	name string
	// where completes "Prometheus ... is ready".
	where  string
	viaAPI bool
}

// endpoint finds how to reach s. Without one, the finding says why.
func (d *doctor) endpoint(ctx context.Context, s service) (endpoint, *Finding) {
	if s.flagURL != "" {
		return endpoint{url: s.flagURL, client: d.client(""), name: s.flagURL, where: "at " + s.flagURL}, nil
	}
	proxy, ok := d.Cluster.(ServiceProxy)
	if !ok {
		f := Skip("%s", s.noURL)
		if d.Cluster == nil && d.ClusterError != nil {
			f = noCluster(d.ClusterError)
		}
		return endpoint{}, &f
	}
	m := d.cfg.Monitoring
	svcs, err := proxy.Services(ctx, m.Namespace, "release="+m.Release)
	if err != nil {
		f := apiFail(err)
		return endpoint{}, &f
	}
	want := m.StackFullname() + "-" + s.component
	svc, port := pickService(svcs, want, s.component, s.port)
	if svc == nil {
		f := Fail(fmt.Sprintf("sudo homelab init (or give %s's address with %s)", s.name, s.flag),
			"no %s Service of Helm release %s/%s: looked for %s, or label app=…-%s with port %d",
			s.name, m.Namespace, m.Release, want, s.component, s.port)
		return endpoint{}, &f
	}
	base, client, err := proxy.ProxyURL(svc.Namespace, svc.Name, port)
	if err != nil {
		f := apiFail(err)
		return endpoint{}, &f
	}
	name := fmt.Sprintf("service %s/%s:%s", svc.Namespace, svc.Name, port)
	return endpoint{url: base, client: client, name: name, where: "(" + name + ", through the API server)", viaAPI: true}, nil
}

// pickService finds the chart's Service for component among the release's
// Services: by the name the chart gives it, else by its app label. port is
// its HTTP port's name, or number.
func pickService(svcs []Service, want, component string, port int32) (*Service, string) {
	var byLabel *Service
	for i := range svcs {
		s := &svcs[i]
		if s.Name == want {
			return s, servicePort(s, port)
		}
		if byLabel == nil && strings.HasSuffix(s.Labels["app"], "-"+component) && servicePort(s, port) != "" {
			byLabel = s
		}
	}
	if byLabel == nil {
		return nil, ""
	}
	return byLabel, servicePort(byLabel, port)
}

// servicePort names the chart's HTTP port of s ("http-web"), else the one
// numbered port, else "".
func servicePort(s *Service, port int32) string {
	for _, p := range s.Ports {
		if p.Name == "http-web" {
			return p.Name
		}
	}
	for _, p := range s.Ports {
		if p.Port == port {
			if p.Name != "" {
				return p.Name
			}
			return fmt.Sprint(p.Port)
		}
	}
	return ""
}

// answerError explains an answer other than 200: through the API server, the
// API server's own Status says why it could not reach the service.
func (e endpoint) answerError(path string, code int, body []byte) error {
	if e.viaAPI {
		var st struct {
			Kind    string `json:"kind"`
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &st) == nil && st.Kind == "Status" && st.Message != "" {
			msg := fmt.Sprintf("the API server cannot reach %s (HTTP %d): %s", e.name, code, st.Message)
			if strings.Contains(st.Message, "no endpoints available") {
				msg += ": no pod behind it is Ready"
			}
			return errors.New(msg)
		}
		return fmt.Errorf("%s%s answers HTTP %d", e.name, path, code)
	}
	return fmt.Errorf("%s%s answers HTTP %d", e.url, path, code)
}

// promAPI GETs a Prometheus API path and decodes data into out.
func (d *doctor) promAPI(ctx context.Context, ep endpoint, path string, query url.Values, out any) error {
	u := ep.url + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	resp, body, err := d.get(ctx, ep.client, u, "")
	if err != nil {
		return fmt.Errorf("%s: %s", ep.name, netReason(err))
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	err = json.Unmarshal(body, &env)
	switch {
	case resp.StatusCode != http.StatusOK && (err != nil || env.Status != "error"):
		// Not Prometheus's own error: the API server's, or a proxy's.
		return ep.answerError(path, resp.StatusCode, body)
	case err != nil:
		return fmt.Errorf("%s%s answers HTTP %d, not the Prometheus API", ep.name, path, resp.StatusCode)
	}
	if env.Status != "success" {
		return fmt.Errorf("Prometheus: %s", env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

func (d *doctor) healthy(ctx context.Context, ep endpoint, path string) error {
	resp, body, err := d.get(ctx, ep.client, ep.url+path, "")
	if err != nil {
		return fmt.Errorf("%s: %s", ep.name, netReason(err))
	}
	if resp.StatusCode != http.StatusOK {
		return ep.answerError(path, resp.StatusCode, body)
	}
	return nil
}

func (d *doctor) checkPrometheus(ctx context.Context) Finding {
	s := d.prometheusService()
	ep, f := d.endpoint(ctx, s)
	if f != nil {
		return *f
	}
	if err := d.healthy(ctx, ep, "/-/ready"); err != nil {
		return Fail(d.notRunningFix(s), "Prometheus is not ready: %v", err)
	}
	return OK("Prometheus %s is ready", ep.where)
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
	s := d.prometheusService()
	ep, f := d.endpoint(ctx, s)
	if f != nil {
		return *f
	}
	if err := d.promAPI(ctx, ep, "/api/v1/targets", url.Values{"state": {"active"}}, &data); err != nil {
		return Fail(d.queryFix(s), "cannot list Prometheus targets: %v", err)
	}
	n := 0
	for _, t := range data.ActiveTargets {
		if t.Labels["job"] != m.Probe.Name {
			continue
		}
		n++
		if t.Health == "down" {
			return Fail(fmt.Sprintf("sudo kubectl -n %s get pods,svc -l app.kubernetes.io/instance=%s", m.Namespace, m.Blackbox.Release),
				"Prometheus cannot scrape the blackbox exporter for Probe %s/%s: %s", m.Namespace, m.Probe.Name, t.LastError)
		}
	}
	if n == 0 {
		return Fail(fmt.Sprintf("sudo kubectl -n %s label probe %s release=%s --overwrite (or set prometheus.prometheusSpec.probeSelectorNilUsesHelmValues=false: sudo homelab init)",
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
	s := d.prometheusService()
	ep, f := d.endpoint(ctx, s)
	if f != nil {
		return *f
	}
	if err := d.promAPI(ctx, ep, "/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return Fail(d.queryFix(s), "cannot query %s: %v", q, err)
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
		return Fail(fmt.Sprintf("sudo kubectl -n %s logs deploy/%s --tail=50", a.Namespace, a.DeploymentName()),
			"probe_success is 0 for %s: the app does not answer its health check", strings.Join(down, ", "))
	}
	return OK("probe_success is 1 for %s", strings.Join(up, ", "))
}

func (d *doctor) checkAlertmanager(ctx context.Context) Finding {
	s := d.alertmanagerService()
	ep, f := d.endpoint(ctx, s)
	if f != nil {
		return *f
	}
	if err := d.healthy(ctx, ep, "/-/healthy"); err != nil {
		return Fail(d.notRunningFix(s), "Alertmanager is not healthy: %v", err)
	}
	return OK("Alertmanager %s is healthy", ep.where)
}
