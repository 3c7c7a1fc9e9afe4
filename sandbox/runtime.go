package sandbox

import "fmt"

// Runtime decides what an instance really is. The sim runtime has no
// processes: instances are state machines and health checks answer from
// the instance's image. The linux runtime (runtime_linux.go) boots real
// Debian systems, freezes real file layers into images, checks health over
// HTTP and runs load balancers as reverse proxies.
//
// Every method is called with World.mu held and must return at once.
// Slow work (booting, stopping, copying layers, health check requests)
// runs in the runtime's goroutines; a method that starts such work returns
// a *pending that the controllers poll on later ticks, so the lock is
// never held while a runtime waits. A nil *pending means "done, no error".
type Runtime interface {
	Name() string
	// DefaultVPCCIDR is the CIDR block of every region's default VPC; its
	// default subnets are the /20s at its start.
	DefaultVPCCIDR() string
	// CheckImage says why instances of img cannot run ("" when they can);
	// such a launch is accepted and the instance terminates with the
	// reason, as AWS does with launches that fail after the call.
	CheckImage(img *Image) string
	// ClaimIP reports whether ip may be given to a new instance and, if
	// so, reserves it until ReleaseIP.
	ClaimIP(ip string) bool
	ReleaseIP(ip string)

	// Boot starts inst (entering pending from a launch or a start); the
	// instance becomes running when it is done. Stop ends every process
	// and keeps the disk; Terminate ends them and removes the disk. Work on
	// one instance runs in the order it was asked for.
	Boot(r *Region, inst *Instance) *pending
	Stop(inst *Instance) *pending
	Terminate(inst *Instance) *pending
	// ConsoleOutput is the tail of the instance's console (init messages
	// and user data output); nil when there is none.
	ConsoleOutput(inst *Instance) []byte

	// ImageLayer freezes the writable layer of inst into a new read-only
	// layer for the image being created, named after snapshot id snap. It
	// returns the layer's path (known at once, filled when the pending is
	// done; pending.bytes is the layer's size) or "" when images have no
	// layers in this runtime.
	ImageLayer(inst *Instance, snap string) (string, *pending)
	// ReleaseLayers deletes the layers the runtime made that are not in
	// live.
	ReleaseLayers(live map[string]bool)

	// HealthCheck runs one load balancer health check of a running
	// instance (or ip target) on ip:port. The result, with AWS's reason
	// code and description when it fails, is in the pending's health
	// fields.
	HealthCheck(r *Region, inst *Instance, tg *TargetGroup, ip string, port int) *pending
	// LoadBalancerAddress is the address a new load balancer serves on;
	// "" when load balancers are not served.
	LoadBalancerAddress() string

	// Close ends everything the runtime runs and removes what it made.
	Close() error
}

// pending is runtime work that finishes outside the world lock.
type pending struct {
	done chan struct{}
	err  error
	// bytes is a new image layer's size in bytes.
	bytes int64
	// A health check's result.
	healthy             bool
	reason, description string
}

func newPending() *pending { return &pending{done: make(chan struct{})} }

// finish records the outcome; the runtime's goroutine calls it once.
func (p *pending) finish(err error) {
	p.err = err
	close(p.done)
}

// ready reports whether the work is done. A nil pending is.
func (p *pending) ready() bool {
	if p == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// failed returns the work's error once it is done.
func (p *pending) failed() error {
	if p == nil || !p.ready() {
		return nil
	}
	return p.err
}

// healthResult is a finished health check.
func healthResult(ok bool, reason, desc string) *pending {
	p := &pending{done: make(chan struct{}), healthy: ok, reason: reason, description: desc}
	close(p.done)
	return p
}

// HealthTag is the image tag the sim runtime reads: "fail" fails every
// health check, "flaky" fails at random; anything else passes.
const HealthTag = "sandbox:health"

type simRuntime struct{}

func (simRuntime) Name() string                                    { return "sim" }
func (simRuntime) DefaultVPCCIDR() string                          { return defaultVPCCIDR }
func (simRuntime) CheckImage(*Image) string                        { return "" }
func (simRuntime) ClaimIP(string) bool                             { return true }
func (simRuntime) ReleaseIP(string)                                {}
func (simRuntime) Boot(*Region, *Instance) *pending                { return nil }
func (simRuntime) Stop(*Instance) *pending                         { return nil }
func (simRuntime) Terminate(*Instance) *pending                    { return nil }
func (simRuntime) ConsoleOutput(inst *Instance) []byte             { return inst.Console }
func (simRuntime) ImageLayer(*Instance, string) (string, *pending) { return "", nil }
func (simRuntime) ReleaseLayers(map[string]bool)                   {}
func (simRuntime) LoadBalancerAddress() string                     { return "" }
func (simRuntime) Close() error                                    { return nil }

func (simRuntime) HealthCheck(r *Region, inst *Instance, tg *TargetGroup, ip string, port int) *pending {
	img := r.Images[inst.ImageID]
	mode := ""
	if img != nil {
		mode = img.Tags[HealthTag]
	}
	fail := func() *pending {
		if tg.HealthCheck.Protocol == "TCP" {
			return healthResult(false, "Target.FailedHealthChecks", "Health checks failed")
		}
		return healthResult(false, "Target.ResponseCodeMismatch", fmt.Sprintf("Health checks failed with these codes: [%d]", 500))
	}
	switch mode {
	case "fail":
		return fail()
	case "flaky":
		if r.w.chance(0.5) {
			return fail()
		}
	}
	return healthResult(true, "", "")
}
