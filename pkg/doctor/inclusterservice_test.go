package doctor

import "testing"

func TestPickService(t *testing.T) {
	web := []ServicePort{{Name: "http-web", Port: 9090}}
	svcs := []Service{
		{Name: "x-operator", Labels: map[string]string{"app": "kube-prometheus-stack-operator"}, Ports: []ServicePort{{Name: "https", Port: 443}}},
		{Name: "x-prometheus-node-exporter", Labels: map[string]string{"app": "prometheus-node-exporter"}, Ports: []ServicePort{{Name: "http-metrics", Port: 9100}}},
		{Name: "renamed", Labels: map[string]string{"app": "kps-prometheus"}, Ports: []ServicePort{{Port: 9090}}},
		{Name: "x-kube-prometheus-prometheus", Ports: web},
	}
	if s, port := pickService(svcs, "x-kube-prometheus-prometheus", "prometheus", 9090); s == nil || s.Name != "x-kube-prometheus-prometheus" || port != "http-web" {
		t.Errorf("by name: %+v %q", s, port)
	}
	if s, port := pickService(svcs, "elsewhere", "prometheus", 9090); s == nil || s.Name != "renamed" || port != "9090" {
		t.Errorf("by label: %+v %q", s, port)
	}
	if s, _ := pickService(svcs, "elsewhere", "alertmanager", 9093); s != nil {
		t.Errorf("found %+v for alertmanager", s)
	}
}
