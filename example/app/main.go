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
	"strconv"
	"sync/atomic"
	"time"
)

var version = "dev" // set with -ldflags "-X main.version=…"

// A build that fails real requests while /health passes, for proving the
// deployer's metric gates: -ldflags "-X main.errorShare=0.5" answers that
// share of / with 500, "-X main.addedLatency=300ms" slows / down. The
// flags of the same names override them.
var (
	errorShare   = "0"
	addedLatency = "0s"
)

func main() {
	listen := flag.String("listen", ":8080", "address to serve on")
	warmup := flag.Duration("warmup", 0, "how long /ready answers 503 after start")
	defShare, _ := strconv.ParseFloat(errorShare, 64)
	defLatency, _ := time.ParseDuration(addedLatency)
	share := flag.Float64("error-share", defShare, "share of / answered with 500 (a broken build whose /health passes)")
	latency := flag.Duration("added-latency", defLatency, "time added to every answer of /")
	flag.Parse()

	var ready atomic.Bool
	go func() {
		time.Sleep(*warmup)
		ready.Store(true)
	}()
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.Handle("/", root(host, *share, *latency))
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

// root answers / with the version, failing share of the requests
// (exactly: the nth fails when n×share passes a whole number) after
// latency.
func root(host string, share float64, latency time.Duration) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(latency)
		i := n.Add(1)
		if int64(float64(i)*share) > int64(float64(i-1)*share) {
			http.Error(w, "web "+version+": injected failure", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "web %s on %s\n", version, host)
	})
}
