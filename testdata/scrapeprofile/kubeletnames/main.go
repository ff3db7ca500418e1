// kubeletnames prints, as a Prometheus text exposition, the metric families
// the upstream kubelet (k8s.io/kubernetes at the version in go.mod)
// registers in the legacy registry its /metrics endpoint serves: one series
// per family, every label set to "x" (the values are not known without a
// running kubelet), histograms with their real buckets.
package main

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	clientmetrics "k8s.io/client-go/tools/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // as the kubelet's main package
	"k8s.io/component-base/metrics/prometheus/clientgo/fifo"
	_ "k8s.io/component-base/metrics/prometheus/version" // as the kubelet's main package
	_ "k8s.io/kubernetes/cmd/kubelet/app"                // the kubelet's init-time registrations (client-go, version, features, ...)
	kubeletmetrics "k8s.io/kubernetes/pkg/kubelet/metrics"
	"k8s.io/kubernetes/pkg/kubelet/metrics/collectors"
	pluginmetrics "k8s.io/kubernetes/pkg/kubelet/pluginmanager/metrics"
	servermetrics "k8s.io/kubernetes/pkg/kubelet/server/metrics"
	volumemetrics "k8s.io/kubernetes/pkg/kubelet/volumemanager/metrics"
	volumeutil "k8s.io/kubernetes/pkg/volume/util"
)

var descRE = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)

func main() {
	// What Kubelet.initializeModules and the kubelet's managers register
	// when it runs.
	kubeletmetrics.Register()
	kubeletmetrics.RegisterCollectors(collectors.NewVolumeStatsCollector(nil), collectors.NewLogMetricsCollector(nil))
	servermetrics.Register()
	volumeutil.RegisterMetrics()
	volumemetrics.Register(nil, nil, nil)
	pluginmetrics.Register(nil, nil)
	// Registered when the kubelet makes its first REST client and its first
	// informer (the node and service informers).
	clientmetrics.EnsureRegistered()
	fifo.Register()

	// Every registered collector (the registry does not list them).
	reg := legacyregistry.Registerer().(*prometheus.Registry)
	f := reflect.ValueOf(reg).Elem().FieldByName("collectorsByID")
	m := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
	type family struct {
		name, typ string
		labels    []string
		buckets   []float64
	}
	var fams []family
	for _, k := range m.MapKeys() {
		c := m.MapIndex(k).Interface().(prometheus.Collector)
		goType := fmt.Sprintf("%T", c)
		var buckets []float64
		if v := reflect.ValueOf(c); v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct {
			if o := v.Elem().FieldByName("HistogramOpts"); o.IsValid() && o.Kind() == reflect.Pointer && !o.IsNil() {
				buckets, _ = o.Elem().FieldByName("Buckets").Interface().([]float64)
			}
		}
		ch := make(chan *prometheus.Desc, 64)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			sm := descRE.FindStringSubmatch(d.String())
			if sm == nil {
				continue
			}
			fam := family{name: sm[1], typ: "untyped"}
			if sm[2] != "" {
				fam.labels = strings.Split(sm[2], ",")
			}
			switch {
			case strings.Contains(goType, "Histogram"):
				fam.typ = "histogram"
				fam.buckets = buckets
				if len(fam.buckets) == 0 {
					fam.buckets = prometheus.DefBuckets
				}
			case strings.Contains(goType, "Summary"):
				fam.typ = "summary"
			case strings.Contains(goType, "Counter") || strings.HasSuffix(fam.name, "_total"):
				fam.typ = "counter"
			case strings.Contains(goType, "Gauge"):
				fam.typ = "gauge"
			}
			fams = append(fams, fam)
		}
	}
	sort.Slice(fams, func(i, j int) bool { return fams[i].name < fams[j].name })
	for _, fam := range fams {
		ls := make([]string, 0, len(fam.labels)+1)
		for _, l := range fam.labels {
			ls = append(ls, l+`="x"`)
		}
		series := func(suffix string, extra ...string) {
			all := append(append([]string{}, ls...), extra...)
			fmt.Printf("%s%s{%s} 0\n", fam.name, suffix, strings.Join(all, ","))
		}
		fmt.Printf("# TYPE %s %s\n", fam.name, fam.typ)
		switch fam.typ {
		case "histogram":
			for _, b := range fam.buckets {
				series("_bucket", fmt.Sprintf(`le="%g"`, b))
			}
			series("_bucket", `le="+Inf"`)
			series("_sum")
			series("_count")
		case "summary":
			series("_sum")
			series("_count")
		default:
			series("")
		}
	}
}
