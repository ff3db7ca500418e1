package config

import "testing"

// The names kube-prometheus-stack gives its Services: the release name and
// the chart's, cut to 26 characters, unless the release contains the chart's.
func TestStackFullname(t *testing.T) {
	for release, want := range map[string]string{
		"lightweight-monitoring":           "lightweight-monitoring-kub",
		"prometheus-stack":                 "prometheus-stack-kube-prom",
		"monitoring":                       "monitoring-kube-prometheus",
		"kps":                              "kps-kube-prometheus-stack",
		"kube-prometheus-stack":            "kube-prometheus-stack",
		"my-kube-prometheus-stack-at-home": "my-kube-prometheus-stack-a",
		"monitoring-a-":                    "monitoring-a--kube-prometh",
		"abcdefghijklmnopqrstuvwxy":        "abcdefghijklmnopqrstuvwxy",
	} {
		if got := (Monitoring{Release: release}).StackFullname(); got != want {
			t.Errorf("StackFullname of %q = %q, want %q", release, got, want)
		}
	}
}
