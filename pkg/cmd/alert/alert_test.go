package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/alertmanager"
	"github.com/homelab-dev/homelab/pkg/cmdutil"
	"github.com/homelab-dev/homelab/pkg/config"
	"github.com/homelab-dev/homelab/pkg/testutil/alerting"
)

// alert test against the real Alertmanager, run with the configuration
// homelab renders and the flag the chart's values give it, delivering to a
// real webhook receiver and a real SMTP server that refuses the login.
func TestAlertTestReportsEachDestination(t *testing.T) {
	hook := alerting.StartWebhookReceiver(t)
	smtp := alerting.StartSMTPServer(t, "me", "the-right-password")
	cfg, err := config.Parse("homelab.yaml", []byte(fmt.Sprintf(`domain: blog.example.com
alerts:
  notify:
    - webhook: {url: %q}
    - email: {to: me@example.com, from: homelab@example.com, smarthost: %q, username: me, password: SECRET-wrong-password}
`, hook.URL(), smtp.Addr)))
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := alertmanager.Render(cfg)
	if err != nil {
		t.Fatal(err)
	}
	am := alerting.StartAlertmanager(t, rendered, alerting.WithCA(smtp.CA.CertFile), alerting.WithReceiverNamesInMetrics())

	var out, errOut bytes.Buffer
	opts := &TestOptions{
		Out: &out, ErrOut: &errOut, Timeout: 90 * time.Second, Hostname: "testhost",
		Config: func() (*config.Loaded, error) { return &config.Loaded{Config: cfg, Source: "homelab.yaml"}, nil },
		// The same API the in-cluster path builds, with the process's log
		// file where the pod's log would be.
		API: func(*config.Config) (alertmanager.API, error) {
			return alertmanager.API{BaseURL: am.URL, Client: &http.Client{Timeout: 10 * time.Second},
				Logs: func(context.Context) (string, error) { return am.Log(), nil }}, nil
		},
	}
	start := time.Now()
	err = testRun(context.Background(), opts)
	t.Logf("alert test took %s\nstdout:\n%s\nstderr:\n%s", time.Since(start).Round(time.Millisecond), out.String(), errOut.String())
	var exit *cmdutil.ExitCodeError
	if !errors.As(err, &exit) || exit.Code != cmdutil.ExitError {
		t.Fatalf("want exit 1 (a destination failed), got %v", err)
	}
	if !strings.Contains(out.String(), "ok      webhook-0    alerts.notify[0] webhook: delivered") {
		t.Errorf("the webhook destination is not reported delivered:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "failed  email-1      alerts.notify[1] email:") || !strings.Contains(out.String(), "535") {
		t.Errorf("the email destination's failure does not name the SMTP refusal (535):\n%s", out.String())
	}
	if strings.Contains(out.String()+errOut.String(), "SECRET") {
		t.Errorf("a secret was printed")
	}
	got := hook.Wait(1, 10*time.Second)
	if a := got[0].Message.Alerts; len(a) != 1 || a[0].Labels["alertname"] != alertmanager.TestAlertName || !strings.Contains(a[0].Annotations["summary"], "testhost") {
		t.Errorf("the webhook got %+v, want the test alert from testhost", got[0].Message)
	}
}

func TestAlertTestWithoutDestinationsSaysSo(t *testing.T) {
	cfg, err := config.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	opts := &TestOptions{Out: &out, ErrOut: &errOut, Timeout: time.Minute,
		Config: func() (*config.Loaded, error) { return &config.Loaded{Config: cfg}, nil },
		API: func(*config.Config) (alertmanager.API, error) {
			t.Fatal("Alertmanager asked although there is nothing to test")
			return alertmanager.API{}, nil
		},
	}
	err = testRun(context.Background(), opts)
	var exit *cmdutil.ExitCodeError
	if !errors.As(err, &exit) || exit.Code != cmdutil.ExitError || !strings.Contains(errOut.String(), "No destinations in alerts.notify") {
		t.Fatalf("got %v\n%s", err, errOut.String())
	}
}
