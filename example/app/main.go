// Command app is the demo web service that the example template bakes
// into an AMI: it answers / with its version, and /health and /ready for
// the load balancer and the deployer.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

var version = "dev" // set with -ldflags "-X main.version=…"

func main() {
	listen := flag.String("listen", ":8080", "address to serve on")
	warmup := flag.Duration("warmup", 0, "how long /ready answers 503 after start")
	flag.Parse()

	var ready atomic.Bool
	go func() {
		time.Sleep(*warmup)
		ready.Store(true)
	}()
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "web %s on %s\n", version, host)
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Printf("web %s listening on %s", version, *listen)
	log.Fatal(srv.ListenAndServe())
}
