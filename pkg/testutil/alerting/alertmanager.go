// Package alerting runs the real Alertmanager (built by .ci/testenv/testenv)
// and real local receivers for it, so tests can prove that a configuration
// delivers notifications in the format each service documents.
//
// Every server binds 127.0.0.1 only and is stopped when the test ends. The
// receivers check each request the way the real service would. A request the
// real service would refuse is answered with that service's error, and it also
// fails the test, unless the test called TolerateRejections first. So a
// notification in the wrong format cannot pass unnoticed.
//
// This package is imported by tests only.
package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/homelab-dev/homelab/pkg/testutil"
)

// Alertmanager is a real Alertmanager process started by StartAlertmanager.
type Alertmanager struct {
	// URL is its base URL, http://127.0.0.1:PORT.
	URL string
	// LogPath is the file its stdout and stderr go to.
	LogPath string

	t   testing.TB
	cmd *exec.Cmd
}

type startOptions struct {
	env          []string
	args         []string
	caFile       string
	readyTimeout time.Duration
}

// Option changes how StartAlertmanager runs the process.
type Option func(*startOptions)

// WithCA makes the process trust the CA in certFile (PEM) and no other,
// through SSL_CERT_FILE: that is how it verifies the SMTP server's STARTTLS
// certificate.
func WithCA(certFile string) Option {
	return func(o *startOptions) { o.caFile = certFile }
}

// WithArgs adds command-line flags, for example "--log.level=debug".
func WithArgs(args ...string) Option {
	return func(o *startOptions) { o.args = append(o.args, args...) }
}

// WithReceiverNamesInMetrics adds the receiver_name label to the notification
// metrics (--enable-feature=receiver-name-in-metrics). Without it, two
// receivers of the same kind share one series.
func WithReceiverNamesInMetrics() Option {
	return WithArgs("--enable-feature=receiver-name-in-metrics")
}

// WithEnv adds environment variables ("NAME=value") to the process.
func WithEnv(env ...string) Option {
	return func(o *startOptions) { o.env = append(o.env, env...) }
}

// StartAlertmanager runs the testenv's Alertmanager binary
// (HOMELAB_TEST_ALERTMANAGER) with configYAML on a free loopback port. It has
// its own data directory, and clustering is off. It waits until /-/ready
// answers 200. The process is stopped by its PID when the test ends. If the
// test failed, its log is printed.
func StartAlertmanager(t testing.TB, configYAML []byte, opts ...Option) *Alertmanager {
	t.Helper()
	bin := testutil.TestEnv(t, "HOMELAB_TEST_ALERTMANAGER")
	o := startOptions{readyTimeout: 30 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	dir := t.TempDir()
	configPath := filepath.Join(dir, "alertmanager.yaml")
	if err := os.WriteFile(configPath, configYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "alertmanager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()

	addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	am := &Alertmanager{URL: "http://" + addr, LogPath: logPath, t: t}
	args := append([]string{
		"--config.file=" + configPath,
		"--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--web.external-url=" + am.URL,
		// An empty address turns the gossip cluster off: no port, no peers.
		"--cluster.listen-address=",
	}, o.args...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), o.env...)
	// Receivers are on loopback: a proxy from the environment must not reroute them.
	cmd.Env = append(cmd.Env, "NO_PROXY=*", "no_proxy=*")
	if o.caFile != "" {
		cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+o.caFile, "SSL_CERT_DIR="+dir)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	am.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		stop(cmd, exited)
		if t.Failed() {
			t.Logf("alertmanager log (%s):\n%s", logPath, readFile(logPath))
		}
	})

	deadline := time.Now().Add(o.readyTimeout)
	var last string
	for {
		select {
		case err := <-exited:
			exited <- err // for the cleanup's stop
			t.Fatalf("alertmanager exited before it was ready (%v); log %s:\n%s", err, logPath, readFile(logPath))
		default:
		}
		code, body, err := get(am.URL + "/-/ready")
		if err == nil && code == http.StatusOK {
			return am
		}
		last = fmt.Sprintf("status %d %q, error %v", code, body, err)
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager at %s not ready (GET /-/ready) after %s: last %s; log %s:\n%s",
				am.URL, o.readyTimeout, last, logPath, readFile(logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the process by its PID: SIGTERM, then SIGKILL after 10 s.
func stop(cmd *exec.Cmd, exited chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Log is the process's output so far.
func (am *Alertmanager) Log() string { return readFile(am.LogPath) }

// Alert is one alert as Alertmanager's v2 API takes it (postableAlert).
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// PostAlerts sends alerts through POST /api/v2/alerts, as Prometheus does.
// An alert whose EndsAt is in the past is resolved.
func (am *Alertmanager) PostAlerts(alerts ...Alert) {
	am.t.Helper()
	body, err := json.Marshal(alerts)
	if err != nil {
		am.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, am.URL+"/api/v2/alerts", bytes.NewReader(body))
	if err != nil {
		am.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := loopbackClient.Do(req)
	if err != nil {
		am.t.Fatalf("POST %s/api/v2/alerts: %v", am.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		am.t.Fatalf("POST %s/api/v2/alerts: %s: %s", am.URL, resp.Status, b.String())
	}
}

// Resolve posts alert again with EndsAt set to now, so Alertmanager resolves it.
func (am *Alertmanager) Resolve(alert Alert) {
	am.t.Helper()
	alert.EndsAt = time.Now()
	am.PostAlerts(alert)
}

// loopbackClient never uses a proxy: every server here is on 127.0.0.1.
var loopbackClient = &http.Client{
	Transport: &http.Transport{Proxy: nil},
	Timeout:   10 * time.Second,
}

func get(url string) (int, string, error) {
	resp, err := loopbackClient.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return resp.StatusCode, strings.TrimSpace(b.String()), err
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "(no log file)"
		}
		return "(" + err.Error() + ")"
	}
	return string(b)
}
