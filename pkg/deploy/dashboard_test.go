package deploy_test

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/dashboard"
)

// checkDashboard: the app chart's ConfigMap is what kube-prometheus-stack's
// Grafana sidecar loads (its label, in the monitoring namespace) and holds
// exactly pkg/dashboard's JSON for this config, under the stable uid.
func checkDashboard(t *testing.T, cfg *config.Config, cm *corev1.ConfigMap) {
	t.Helper()
	if cm.Namespace != cfg.Monitoring.Namespace || cm.Labels[dashboard.SidecarLabel] != dashboard.SidecarLabelValue {
		t.Errorf("dashboard ConfigMap %s/%s labels %v: want it in %s labelled %s=%q", cm.Namespace, cm.Name, cm.Labels,
			cfg.Monitoring.Namespace, dashboard.SidecarLabel, dashboard.SidecarLabelValue)
	}
	if cm.Labels["app.kubernetes.io/name"] != cfg.App.Name {
		t.Errorf("dashboard ConfigMap labels %v: not the app's", cm.Labels)
	}
	uid := dashboard.UID(cfg.App.Name)
	if len(cm.Data) != 1 || cm.Data[uid+".json"] == "" {
		t.Fatalf("dashboard ConfigMap keys %v, want one: %s.json", keys(cm.Data), uid)
	}
	want, err := dashboard.JSON(dashboard.For(cfg))
	if err != nil {
		t.Fatal(err)
	}
	got := cm.Data[uid+".json"]
	if got != string(want) {
		t.Errorf("the ConfigMap's dashboard is not pkg/dashboard's for this config")
	}
	var d struct{ UID, Title string }
	if err := json.Unmarshal([]byte(got), &d); err != nil || d.UID != uid {
		t.Errorf("dashboard JSON uid %q (%v), want %q", d.UID, err, uid)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
