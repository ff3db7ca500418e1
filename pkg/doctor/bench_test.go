package doctor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/doctor/doctortest"
)

// fakePrometheus answers the three API calls doctor makes, for a selected
// Probe whose target is up.
func fakePrometheus(job string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/-/ready":
			fmt.Fprint(w, "Prometheus Server is Ready.")
		case "/api/v1/targets":
			fmt.Fprintf(w, `{"status":"success","data":{"activeTargets":[{"labels":{"job":%q,"instance":"http://app/"},"health":"up"}]}}`, job)
		case "/api/v1/query":
			fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":%q,"instance":"http://app/"},"value":[1,"1"]}]}}`, job)
		default:
			http.NotFound(w, r)
		}
	})
}

// silentListener accepts connections and never answers on them.
func silentListener(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never read or written
		}
	}()
	b.Cleanup(func() {
		l.Close()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// benchEnv is a healthy set-up with every check enabled: real nginx serving
// the rendered site in front of a fake Grafana, a fake Prometheus and
// Alertmanager, a healthy fake cluster, and a host that answers at once.
func benchEnv(b *testing.B) Env {
	cfg := parseConfig(b, "")
	graf := serve(b, doctortest.Grafana(cfg.Monitoring.Grafana.Path))
	cfg.Monitoring.Grafana.LocalPort = portOf(b, graf.Listener.Addr().String())
	h := doctortest.NewHost(b).Healthy(cfg, 4)
	n := newRealNginx(b)
	n.configure(b, cfg, h, nil)
	n.start(b)
	env := n.env(cfg, h)
	env.PrometheusURL = serve(b, fakePrometheus(cfg.Monitoring.Probe.Name)).URL
	env.AlertmanagerURL = serve(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})).URL
	env.Cluster = healthyCluster()
	return env
}

func runOnce(b *testing.B, env Env, timeout time.Duration) (Report, time.Duration) {
	start := time.Now()
	rep, err := Run(context.Background(), env, Runner{Timeout: timeout})
	if err != nil {
		b.Fatal(err)
	}
	return rep, time.Since(start)
}

// BenchmarkHealthy: the whole doctor on a healthy set-up.
func BenchmarkHealthy(b *testing.B) {
	env := benchEnv(b)
	if rep, _ := runOnce(b, env, 2*time.Second); rep.Summary().Fail+rep.Summary().Warn > 0 {
		b.Fatalf("set-up is not healthy: %+v\n%+v", rep.Summary(), rep.Results)
	}
	var total time.Duration
	for b.Loop() {
		_, d := runOnce(b, env, 2*time.Second)
		total += d
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/run")
}

// BenchmarkHungEndpoint: Prometheus's address accepts connections and never
// answers; every other check is healthy. The report must come within the
// per-check timeout T, not after it plus the other checks.
func BenchmarkHungEndpoint(b *testing.B) {
	const T = 500 * time.Millisecond
	env := benchEnv(b)
	env.PrometheusURL = "http://" + silentListener(b)
	var total time.Duration
	for b.Loop() {
		rep, d := runOnce(b, env, T)
		total += d
		for _, r := range rep.Results {
			if r.ID == "monitoring.prometheus" && r.Message != "no answer within 500ms" {
				b.Fatalf("monitoring.prometheus: %+v", r.Finding)
			}
		}
	}
	b.ReportMetric(float64(total)/float64(b.N)/float64(T), "total/timeout")
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/run")
}
