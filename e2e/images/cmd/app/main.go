// app is the test app the end-to-end journey deploys with `homelab
// deploy-app`: a small HTTP server that says which build it is and can be
// told, at run time, to fail its health check, crash, or hang.
//
// Build id: set at link time (-X main.build=v1). A build id starting with
// "bad" makes the program exit 1 at start (the failing build that deploy-app
// must roll back); "unready" starts and serves, but every health answer is
// 503 from the start (a build whose readiness never passes).
//
// Environment:
//
//	PORT                 listen port (default 3000, homelab's app.port)
//	LISTEN_HOST          listen address (default: all; tests on a host use 127.0.0.1)
//	HEALTH_PATH          extra health path (homelab's app.healthPath; "/" by default, which is always served)
//	APP_SHUTDOWN_DELAY   on SIGTERM keep serving this long before closing (default 0: stop at
//	                     once, as most apps do; homelab's pre-stop sleep must cover the drain)
//	APP_STATE_DIR        where the "unhealthy" switch is kept (default /dev/shm: per pod, survives
//	                     container restarts, gone with the pod)
//
// Endpoints (any method):
//
//	/                    200 "homelab-e2e app BUILD host HOSTNAME" (503 when unhealthy)
//	/healthz, HEALTH_PATH same health answer as /
//	/build               the build id alone
//	/control/unhealthy   every answer but /control/* becomes 503, until /control/healthy or the pod is replaced
//	/control/healthy     back to normal
//	/control/crash       answers, then exits 1 (the container restarts)
//	/control/hang        every later request but /control/* blocks forever (liveness restarts it)
//	/control/status      JSON: build, healthy, hanging, started
//
// `app ctl MODE` calls http://127.0.0.1:$PORT/control/MODE (for `kubectl exec`:
// when unhealthy the pod is not Ready, so the Service no longer reaches it).
// Called as `pnpm start` (homelab's default app.command) it runs the server.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

var build = "dev"

type server struct {
	stateFile string
	hanging   atomic.Bool
	started   time.Time
	host      string
}

func (s *server) unhealthy() bool {
	if strings.HasPrefix(build, "unready") {
		return true
	}
	_, err := os.Stat(s.stateFile)
	return err == nil
}

func (s *server) setUnhealthy(on bool) error {
	if on {
		return os.WriteFile(s.stateFile, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
	}
	if err := os.Remove(s.stateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (s *server) control(w http.ResponseWriter, r *http.Request) {
	mode := strings.TrimPrefix(r.URL.Path, "/control/")
	log.Printf("control: %s from %s", mode, r.RemoteAddr)
	switch mode {
	case "unhealthy", "healthy":
		if err := s.setUnhealthy(mode == "unhealthy"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s: now %s\n", build, mode)
	case "crash":
		fmt.Fprintf(w, "%s: crashing\n", build)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go func() {
			time.Sleep(100 * time.Millisecond)
			log.Printf("crashing as asked")
			os.Exit(1)
		}()
	case "hang":
		s.hanging.Store(true)
		fmt.Fprintf(w, "%s: hanging from now on\n", build)
	case "status":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"build": build, "healthy": !s.unhealthy(), "hanging": s.hanging.Load(),
			"started": s.started.Format(time.RFC3339), "host": s.host,
		})
	default:
		http.Error(w, "unknown control "+mode+" (unhealthy, healthy, crash, hang, status)", http.StatusNotFound)
	}
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/control/") {
		s.control(w, r)
		return
	}
	if s.hanging.Load() {
		<-r.Context().Done() // never answers; ends when the client gives up
		return
	}
	w.Header().Set("X-App-Build", build)
	if r.URL.Path == "/build" {
		fmt.Fprintln(w, build)
		return
	}
	if s.unhealthy() {
		http.Error(w, fmt.Sprintf("homelab-e2e app %s host %s: unhealthy", build, s.host), http.StatusServiceUnavailable)
		return
	}
	// /, /healthz, HEALTH_PATH and anything else: the build page.
	fmt.Fprintf(w, "homelab-e2e app %s host %s\n", build, s.host)
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func ctl(port, mode string) error {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Post("http://127.0.0.1:"+port+"/control/"+mode, "text/plain", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	os.Stdout.Write(b)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	port := env("PORT", "3000")
	args := os.Args[1:]
	if len(args) > 0 {
		switch args[0] {
		case "--version", "version":
			fmt.Println("homelab-e2e app", build)
			return
		case "ctl":
			if len(args) != 2 {
				fmt.Fprintln(os.Stderr, "usage: app ctl unhealthy|healthy|crash|hang|status")
				os.Exit(2)
			}
			if err := ctl(port, args[1]); err != nil {
				fmt.Fprintln(os.Stderr, "app ctl:", err)
				os.Exit(1)
			}
			return
		case "start", "serve": // `pnpm start`, homelab's default command
		default:
			fmt.Fprintf(os.Stderr, "usage: app [start|ctl MODE|--version] (got %q)\n", args)
			os.Exit(2)
		}
	}
	if strings.HasPrefix(build, "bad") {
		log.Printf("homelab-e2e app %s: this build fails at start (exit 1)", build)
		os.Exit(1)
	}
	delay, err := time.ParseDuration(env("APP_SHUTDOWN_DELAY", "0s"))
	if err != nil {
		log.Fatalf("APP_SHUTDOWN_DELAY: %v", err)
	}
	host, _ := os.Hostname()
	dir := env("APP_STATE_DIR", "/dev/shm")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = os.TempDir()
	}
	s := &server{stateFile: filepath.Join(dir, "homelab-e2e-app-unhealthy"), started: time.Now(), host: host}
	mux := http.NewServeMux()
	mux.Handle("/", s)
	srv := &http.Server{Addr: net.JoinHostPort(env("LISTEN_HOST", ""), port), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		got := <-sig
		if delay == 0 {
			// Like an app with no signal handling (node, most servers):
			// gone at once, whatever is in flight.
			log.Printf("%v: exiting now", got)
			os.Exit(0)
		}
		log.Printf("%v: serving %s more, then closing", got, delay)
		time.Sleep(delay)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		close(done)
	}()
	log.Printf("homelab-e2e app %s listening on :%s (health paths /, /healthz, %s; state %s)",
		build, port, env("HEALTH_PATH", "/"), s.stateFile)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	<-done
	log.Printf("stopped")
}
