// Command webapp is the self-test's workload, HTTP on :8080:
//
//	/            "k3s-selftest <hostname>"
//	/resolve?name=N   the addresses N resolves to (through the pod's DNS)
//
// With WRITE_FILE set it writes its host name to that file at start (the
// local-path volume test) and serves it at /file.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

func main() {
	host, _ := os.Hostname()
	if f := os.Getenv("WRITE_FILE"); f != "" {
		if err := os.WriteFile(f, []byte(host+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "k3s-selftest %s\n", host) })
	http.HandleFunc("/resolve", func(w http.ResponseWriter, r *http.Request) {
		addrs, err := net.LookupHost(r.URL.Query().Get("name"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintln(w, strings.Join(addrs, " "))
	})
	http.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(os.Getenv("WRITE_FILE"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(b)
	})
	if err := http.ListenAndServe(":8080", nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
