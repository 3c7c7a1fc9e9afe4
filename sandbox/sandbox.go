// Package sandbox is a local AWS-compatible cloud for phoenix's tests and
// demo. It speaks the real wire protocols of EC2, Auto Scaling, ELBv2, KMS
// and STS on a loopback address, so the unmodified AWS SDK and CLI work
// against it, and plays AWS's resource lifecycles on a scaled clock.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options configure a sandbox.
type Options struct {
	// Listen is the loopback address to serve on; "127.0.0.1:0" picks a
	// free port.
	Listen string
	// Runtime is "sim" (state machines only; the default) or "linux"
	// (real instances; root on Linux only).
	Runtime string
	// StateDir holds the sandbox's files; a temporary directory when empty.
	StateDir string
	// TimeScale multiplies every duration the sandbox plays: 1 is AWS-like,
	// 0.01 is a hundred times faster.
	TimeScale float64
	// Log receives one line per notable event; nil discards.
	Log io.Writer
	// FaultSeed seeds the random source that decides whether a fault with
	// a probability fires, so that a run's decisions can be replayed
	// (given the same calls in the same order); 0 picks a seed, which
	// FaultSeed reports.
	FaultSeed uint64
}

// Sandbox is a running local cloud.
type Sandbox struct {
	world    *World
	hooks    hookState
	srv      *http.Server
	ln       net.Listener
	url      string
	stateDir string
	tmpState bool
	stop     chan struct{}
	done     sync.WaitGroup
	closed   sync.Once
	log      io.Writer
}

// CheckLoopback refuses listen addresses that are not on the loopback
// interface: the sandbox never serves anything else.
func CheckLoopback(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", listen, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q is not a loopback address (127.0.0.0/8 or ::1): the sandbox only serves this machine", listen)
	}
	return nil
}

// Start starts a sandbox and returns once it accepts requests.
func Start(opts Options) (*Sandbox, error) {
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if err := CheckLoopback(opts.Listen); err != nil {
		return nil, err
	}
	if opts.TimeScale < 0 {
		return nil, fmt.Errorf("time scale %v must be greater than 0", opts.TimeScale)
	}
	switch opts.Runtime {
	case "", "sim", "linux":
	default:
		return nil, fmt.Errorf("runtime %q is not available: use sim or linux", opts.Runtime)
	}
	s := &Sandbox{stop: make(chan struct{}), log: opts.Log}
	if s.log == nil {
		s.log = io.Discard
	}
	s.hooks.calls = map[string]map[string]int{}
	s.hooks.seed = opts.FaultSeed
	for s.hooks.seed == 0 {
		s.hooks.seed = mrand.Uint64()
	}
	s.hooks.rng = mrand.New(mrand.NewPCG(s.hooks.seed, 0))
	if opts.StateDir == "" {
		dir, err := os.MkdirTemp("", "phoenix-sandbox-")
		if err != nil {
			return nil, fmt.Errorf("creating state directory: %w", err)
		}
		s.stateDir, s.tmpState = dir, true
	} else {
		if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
			return nil, fmt.Errorf("creating state directory: %w", err)
		}
		s.stateDir = opts.StateDir
	}
	s.world = newWorld(newTiming(opts.TimeScale), nil)
	s.world.sandbox = s
	var rt Runtime = simRuntime{}
	if opts.Runtime == "linux" {
		lrt, err := newLinuxRuntime(s.world, s.stateDir, s.log)
		if err != nil {
			s.cleanupState()
			return nil, fmt.Errorf("linux runtime: %w", err)
		}
		rt = lrt
	}
	s.world.runtime = rt

	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		rt.Close()
		s.cleanupState()
		return nil, fmt.Errorf("listening on %s: %w", opts.Listen, err)
	}
	s.ln = ln
	s.url = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.done.Add(2)
	go func() {
		defer s.done.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(s.log, "sandbox: serving: %v\n", err)
		}
	}()
	go func() {
		defer s.done.Done()
		s.runControllers()
	}()
	info, _ := json.Marshal(map[string]any{"url": s.url, "pid": os.Getpid(), "runtime": rt.Name()})
	os.WriteFile(filepath.Join(s.stateDir, "sandbox.json"), info, 0o644)
	fmt.Fprintf(s.log, "sandbox: serving %s (runtime %s, time scale %g)\n", s.url, rt.Name(), s.world.timing.Scale())
	return s, nil
}

// URL is the endpoint to give AWS clients (AWS_ENDPOINT_URL).
func (s *Sandbox) URL() string { return s.url }

// StateDir is where the sandbox keeps its files.
func (s *Sandbox) StateDir() string { return s.stateDir }

// Close stops serving and the controllers, and removes a temporary state
// directory. It is safe to call more than once.
func (s *Sandbox) Close() error {
	var err error
	s.closed.Do(func() {
		close(s.stop)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.srv.Shutdown(ctx)
		s.done.Wait()
		if rerr := s.world.runtime.Close(); rerr != nil && err == nil {
			err = fmt.Errorf("closing the %s runtime: %w", s.world.runtime.Name(), rerr)
		}
		os.Remove(filepath.Join(s.stateDir, "sandbox.json"))
		s.cleanupState()
	})
	return err
}

func (s *Sandbox) cleanupState() {
	if s.tmpState && strings.Contains(s.stateDir, "phoenix-sandbox-") {
		os.RemoveAll(s.stateDir)
	}
}

// controllers advance every region's resources; service files add theirs.
var controllers []func(r *Region, now time.Time)

func addController(f func(r *Region, now time.Time)) { controllers = append(controllers, f) }

// tickEvery is how often controllers run. Scaled AWS durations are rarely
// shorter than a few tens of milliseconds in tests.
const tickEvery = 10 * time.Millisecond

func (s *Sandbox) runControllers() {
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Step()
		}
	}
}

// Step runs every controller once, in every region.
func (s *Sandbox) Step() {
	w := s.world
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	for _, r := range w.regions {
		for _, c := range controllers {
			c(r, now)
		}
	}
}
