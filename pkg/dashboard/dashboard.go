// Package dashboard builds the app's Grafana dashboard: is it up, how fast
// it answers, what status it returns, how long its public certificate has
// left, how often it restarts, and what memory and CPU its pod uses.
//
// The dashboard is built with Grafana's typed builder (grafana-foundation-sdk)
// and provisioned by the app chart as a ConfigMap the Grafana dashboard
// sidecar of kube-prometheus-stack picks up.
package dashboard

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	sdk "github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	"github.com/prometheus/common/model"
)

// DataSourceUID is the Prometheus data source kube-prometheus-stack
// provisions in its Grafana (grafana.sidecar.datasources.uid in the chart's
// values.yaml).
const DataSourceUID = "prometheus"

// Sidecar label: the kube-prometheus-stack chart's Grafana dashboard sidecar
// loads ConfigMaps labelled grafana_dashboard: "1"
// (grafana.sidecar.dashboards.label and labelValue in its values.yaml; our
// values keep them), from every namespace (searchNamespace: ALL).
const (
	SidecarLabel      = "grafana_dashboard"
	SidecarLabelValue = "1"
)

// App is what the dashboard shows: the app and where its series come from.
type App struct {
	// Name is the app's name, also its container's name in the pod.
	Name string
	// Namespace is where the app's pods run.
	Namespace string
	// Deployment is the app's Deployment; its pods are named after it.
	Deployment string
	// ProbeJob is the job label of the blackbox Probe of the app (the
	// Probe's jobName).
	ProbeJob string
	// PublicProbeJob is the job of the probe of the public https://DOMAIN/
	// through Nginx; it has series only when TLS is on.
	PublicProbeJob string

	// Thresholds drawn on the panels, the same as the alert rules'; zero
	// leaves a panel without its line.
	SlowAfter       time.Duration
	CertificateDays int
	Restarts        int
	RestartsWindow  model.Duration
}

// uidPrefix marks homelab's dashboards among the chart's own.
const uidPrefix = "homelab-"

// maxUIDLength is Grafana's limit on a dashboard uid.
const maxUIDLength = 40

// UID is the dashboard's uid for the app called name: the same on every
// deploy, so its URL (GrafanaURL + "d/" + UID) never changes. A name too
// long for Grafana's 40 characters keeps its start and gains a hash of the
// whole, so two long names never share a uid.
func UID(name string) string {
	uid := uidPrefix + name
	if len(uid) <= maxUIDLength {
		return uid
	}
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:])[:8]
	return uid[:maxUIDLength-len(h)-1] + "-" + h
}

// URL is the dashboard's address under Grafana's root URL (which ends in a
// slash, config.Config.GrafanaURL); Grafana adds the title's slug itself.
func URL(grafanaURL, name string) string { return grafanaURL + "d/" + UID(name) }

// Title is the dashboard's title in Grafana's list.
func Title(name string) string { return "App: " + name }

// JSON is the app's dashboard as Grafana's dashboard JSON, compact: it
// travels as a chart value, and deploy-app's plan shows a change of values
// as a diff (a few dozen lines instead of hundreds). The same App always
// gives the same bytes.
func JSON(a App) ([]byte, error) {
	d, err := build(a).Build()
	if err != nil {
		return nil, fmt.Errorf("dashboard for %s: %w", a.Name, err)
	}
	return json.Marshal(d)
}

func build(a App) *sdk.DashboardBuilder {
	q := queries(a)
	b := sdk.NewDashboardBuilder(Title(a.Name)).
		Uid(UID(a.Name)).
		Description("homelab's dashboard for "+a.Name+": made by homelab deploy-app; changes made in Grafana are lost on the next deploy.").
		Tags([]string{"homelab", a.Name}).
		Refresh("30s").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(sdk.DashboardCursorSyncCrosshair).
		Readonly()
	var id uint32
	next := func() uint32 { id++; return id }

	b.WithPanel(statetimeline.NewPanelBuilder().Id(next()).
		Title("Up or down").
		Description("The blackbox probe of " + a.Name + " every probe interval: up when it answered with a 2xx status, down when it did not. The public row is https://DOMAIN/ through Nginx, probed only when TLS is on (no data otherwise).").
		Datasource(dataSource()).
		WithTarget(query("A", q.Up, "in the cluster")).
		WithTarget(query("B", q.PublicUp, "public URL")).
		Mappings([]sdk.ValueMapping{{ValueMap: &sdk.ValueMap{Type: sdk.MappingTypeValueToText, Options: map[string]sdk.ValueMappingResult{
			"0": {Text: cog.ToPtr("down"), Color: cog.ToPtr("red"), Index: cog.ToPtr[int32](0)},
			"1": {Text: cog.ToPtr("up"), Color: cog.ToPtr("green"), Index: cog.ToPtr[int32](1)},
		}}}}).
		Thresholds(steps(step(nil, "red"), step(cog.ToPtr(1.0), "green"))).
		ShowValue(common.VisibilityModeNever).
		MergeValues(true).
		NoValue("no probe data").
		Legend(legend()).Tooltip(tooltip()).
		Span(24).Height(5))

	slow := timeseries.NewPanelBuilder().Id(next()).
		Title("Response time").
		Description("How long the probe took in all, and its phases (DNS, connect, TLS, server processing, transfer)." + slowNote(a)).
		Datasource(dataSource()).
		WithTarget(query("A", q.Duration, "total")).
		WithTarget(query("B", q.Phases, "{{phase}}")).
		Unit("s").Min(0).
		FillOpacity(10).
		Legend(legend()).Tooltip(tooltip()).
		Span(12).Height(8)
	if a.SlowAfter > 0 {
		slow.Thresholds(steps(step(nil, "green"), step(cog.ToPtr(a.SlowAfter.Seconds()), "red"))).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))
	}
	b.WithPanel(slow)

	b.WithPanel(statetimeline.NewPanelBuilder().Id(next()).
		Title("HTTP status").
		Description("The HTTP status the app answered the probe with; 0 means no answer at all (refused, timed out).").
		Datasource(dataSource()).
		WithTarget(query("A", q.Status, "status")).
		Mappings([]sdk.ValueMapping{{ValueMap: &sdk.ValueMap{Type: sdk.MappingTypeValueToText, Options: map[string]sdk.ValueMappingResult{
			"0": {Text: cog.ToPtr("no answer"), Color: cog.ToPtr("red"), Index: cog.ToPtr[int32](0)},
		}}}}).
		Thresholds(steps(step(nil, "red"), step(cog.ToPtr(200.0), "green"), step(cog.ToPtr(300.0), "blue"), step(cog.ToPtr(400.0), "orange"), step(cog.ToPtr(500.0), "red"))).
		ShowValue(common.VisibilityModeAuto).
		MergeValues(true).
		Legend(legend()).Tooltip(tooltip()).
		Span(8).Height(8))

	days := stat.NewPanelBuilder().Id(next()).
		Title("Certificate days left").
		Description("Days until the certificate of the public https://DOMAIN/ expires, as the probe through Nginx sees it. No data when TLS is off (tls.mode: none): there is no public probe then." + certNote(a)).
		Datasource(dataSource()).
		WithTarget(query("A", q.CertificateDays, "days left")).
		Unit("d").Decimals(0).
		NoValue("no TLS").
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeNone).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)).
		Orientation(common.VizOrientationAuto).
		Span(4).Height(8)
	if a.CertificateDays > 0 {
		days.Thresholds(steps(step(nil, "red"), step(cog.ToPtr(float64(a.CertificateDays)), "green")))
	}
	b.WithPanel(days)

	restarts := timeseries.NewPanelBuilder().Id(next()).
		Title("Container restarts").
		Description("Restarts of the app's container, per pod, over the last " + restartsWindow(a).String() + " (kube-state-metrics). The liveness probe restarts a hung or crashing app, so an app that keeps dying may never look down: this shows it." + restartsNote(a)).
		Datasource(dataSource()).
		WithTarget(query("A", q.Restarts, "{{pod}}")).
		Min(0).Decimals(0).
		FillOpacity(10).
		Legend(legend()).Tooltip(tooltip()).
		Span(8).Height(8)
	if a.Restarts > 0 {
		restarts.Thresholds(steps(step(nil, "green"), step(cog.ToPtr(float64(a.Restarts)), "red"))).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))
	}
	b.WithPanel(restarts)

	b.WithPanel(timeseries.NewPanelBuilder().Id(next()).
		Title("Memory").
		Description("Working set of the app's container per pod (cAdvisor, what the kernel counts against the limit), and the memory limit (kube-state-metrics) when one is set.").
		Datasource(dataSource()).
		WithTarget(query("A", q.Memory, "{{pod}}")).
		WithTarget(query("B", q.MemoryLimit, "limit")).
		Unit("bytes").Min(0).
		FillOpacity(10).
		Legend(legend()).Tooltip(tooltip()).
		Span(8).Height(8))

	b.WithPanel(timeseries.NewPanelBuilder().Id(next()).
		Title("CPU").
		Description("CPU the app's container uses per pod, in cores (cAdvisor).").
		Datasource(dataSource()).
		WithTarget(query("A", q.CPU, "{{pod}}")).
		Unit("none").AxisLabel("cores").Min(0).
		FillOpacity(10).
		Legend(legend()).Tooltip(tooltip()).
		Span(8).Height(8))
	return b
}

// panelQueries are the PromQL expressions of the panels.
type panelQueries struct {
	Up, PublicUp, Duration, Phases, Status, CertificateDays string
	Restarts, Memory, MemoryLimit, CPU                      string
}

// The label selectors of the app's series. Each pins the job as the chart
// names it, like the chart's own dashboards do, so no other scrape of the
// same metric name can leak in.
func queries(a App) panelQueries {
	probe := fmt.Sprintf(`job=%q`, a.ProbeJob)
	public := fmt.Sprintf(`job=%q`, a.PublicProbeJob)
	// A Deployment's pods are <deployment>-<pod-template-hash>-<5 random>.
	pods := fmt.Sprintf(`namespace=%q, pod=~%q, container=%q`, a.Namespace, regexp.QuoteMeta(a.Deployment)+"-[a-z0-9]+-[a-z0-9]{5}", a.Name)
	ksm := `job="kube-state-metrics", ` + pods
	// cAdvisor's series come from the kubelet job's /metrics/cadvisor
	// endpoint (the chart's kubelet ServiceMonitor).
	cadvisor := `job="kubelet", metrics_path="/metrics/cadvisor", ` + pods
	return panelQueries{
		Up:              "probe_success{" + probe + "}",
		PublicUp:        "probe_success{" + public + "}",
		Duration:        "probe_duration_seconds{" + probe + "}",
		Phases:          "sum by (phase) (probe_http_duration_seconds{" + probe + "})",
		Status:          "probe_http_status_code{" + probe + "}",
		CertificateDays: "(probe_ssl_earliest_cert_expiry{" + public + "} - time()) / 86400",
		// Counted as AppRestarting counts them: the counter's rise within
		// the window, exact (increase() would extrapolate to fractions).
		Restarts:    "max by (pod) (max_over_time(kube_pod_container_status_restarts_total{" + ksm + "}[" + restartsWindow(a).String() + "]) - min_over_time(kube_pod_container_status_restarts_total{" + ksm + "}[" + restartsWindow(a).String() + "]))",
		Memory:      "sum by (pod) (container_memory_working_set_bytes{" + cadvisor + "})",
		MemoryLimit: `max(kube_pod_container_resource_limits{` + ksm + `, resource="memory"})`,
		CPU:         "sum by (pod) (rate(container_cpu_usage_seconds_total{" + cadvisor + "}[$__rate_interval]))",
	}
}

// restartsWindow is the window restarts are counted over: the alert's, or
// its default.
func restartsWindow(a App) model.Duration {
	if a.RestartsWindow > 0 {
		return a.RestartsWindow
	}
	return model.Duration(15 * time.Minute)
}

func slowNote(a App) string {
	if a.SlowAfter <= 0 {
		return ""
	}
	return " The dashed line is alerts.slowAfter (" + a.SlowAfter.String() + "): above it for 5 minutes, AppSlow fires."
}

func certNote(a App) string {
	if a.CertificateDays <= 0 {
		return ""
	}
	return fmt.Sprintf(" Red below alerts.certificateDays (%d), when CertificateExpiring fires.", a.CertificateDays)
}

func restartsNote(a App) string {
	if a.Restarts <= 0 {
		return ""
	}
	return fmt.Sprintf(" Above the dashed line (alerts.restarts.count, %d), AppRestarting fires.", a.Restarts)
}

func dataSource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr(DataSourceUID)}
}

func query(ref, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		RefId(ref).
		Datasource(dataSource()).
		Expr(expr).
		LegendFormat(legend).
		Range()
}

// legend shows the series' names under a panel (the builder's default
// hides it).
func legend() *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().ShowLegend(true).DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom)
}

// tooltip shows every series at the cursor (pods, phases side by side).
func tooltip() *common.VizTooltipOptionsBuilder {
	return common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderNone)
}

func step(value *float64, color string) sdk.Threshold {
	return sdk.Threshold{Value: value, Color: color}
}

func steps(s ...sdk.Threshold) *sdk.ThresholdsConfigBuilder {
	return sdk.NewThresholdsConfigBuilder().Mode(sdk.ThresholdsModeAbsolute).Steps(s)
}
