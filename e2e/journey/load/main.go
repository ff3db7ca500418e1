// Command load sends a steady stream of HTTP GET requests (a new connection each) to one URL
// until it gets SIGTERM or SIGINT, then writes what it saw as JSON: how many requests, how many
// failed (a transport error or a status other than 200), and how many answers each app build
// gave (the X-App-Build header of the journey's test app). It is the journey's load during a
// deploy: zero failures means the deploy did not drop a request.
//
//	load -url http://10.213.0.2/ -host e2e.homelab.test -rate 20 -out result.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

type failure struct {
	At    string `json:"at"`
	Error string `json:"error"`
}

type result struct {
	URL      string         `json:"url"`
	Rate     float64        `json:"ratePerSecond"`
	Seconds  float64        `json:"seconds"`
	Total    int            `json:"total"`
	Failed   int            `json:"failed"`
	ByBuild  map[string]int `json:"byBuild"`
	Failures []failure      `json:"failures,omitempty"` // the first 50
	MaxMs    int64          `json:"maxLatencyMs"`
}

func main() {
	url := flag.String("url", "", "URL to GET")
	host := flag.String("host", "", "Host header")
	rate := flag.Float64("rate", 20, "requests per second")
	timeout := flag.Duration("timeout", 5*time.Second, "time one request may take")
	out := flag.String("out", "", "write the JSON result here (default stdout)")
	flag.Parse()
	if *url == "" || *rate <= 0 {
		fmt.Fprintln(os.Stderr, "usage: load -url URL [-host HOST] [-rate N] [-out FILE]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	client := &http.Client{
		Timeout:       *timeout,
		Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res := result{URL: *url, Rate: *rate, ByBuild: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	one := func() {
		defer wg.Done()
		t0 := time.Now()
		fail := func(msg string) {
			mu.Lock()
			res.Failed++
			if len(res.Failures) < 50 {
				res.Failures = append(res.Failures, failure{At: t0.UTC().Format(time.RFC3339Nano), Error: msg})
			}
			mu.Unlock()
		}
		req, err := http.NewRequest(http.MethodGet, *url, nil)
		if err != nil {
			fail(err.Error())
			return
		}
		if *host != "" {
			req.Host = *host
		}
		resp, err := client.Do(req)
		ms := time.Since(t0).Milliseconds()
		mu.Lock()
		res.Total++
		if ms > res.MaxMs {
			res.MaxMs = ms
		}
		mu.Unlock()
		if err != nil {
			fail(err.Error())
			return
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			fail("reading the body: " + err.Error())
		case resp.StatusCode != http.StatusOK:
			fail(fmt.Sprintf("status %d (build %q)", resp.StatusCode, resp.Header.Get("X-App-Build")))
		default:
			mu.Lock()
			res.ByBuild[resp.Header.Get("X-App-Build")]++
			mu.Unlock()
		}
	}

	start := time.Now()
	tick := time.NewTicker(time.Duration(float64(time.Second) / *rate))
	defer tick.Stop()
	fmt.Fprintf(os.Stderr, "load: GET %s (Host %s) %.0f/s until SIGTERM\n", *url, *host, *rate)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			wg.Add(1)
			go one()
		}
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	b, _ := json.MarshalIndent(res, "", "  ")
	b = append(b, '\n')
	if *out == "" {
		os.Stdout.Write(b)
		return
	}
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
	if err := os.Rename(tmp, *out); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}
