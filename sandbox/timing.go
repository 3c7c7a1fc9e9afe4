package sandbox

import (
	"sort"
	"sync"
	"time"
)

// Timing is the sandbox's profile of how long AWS takes, and the scale at
// which the sandbox plays it back. A scale of 0.01 runs a 15 s instance
// start in 150 ms, and a user's 30 s health check interval in 300 ms.
type Timing struct {
	mu        sync.RWMutex
	durations map[string]time.Duration
	timeScale float64
}

// DefaultTiming returns AWS-like durations, seen in us-east-1 for small
// instances and 8 GiB volumes.
func DefaultTiming() map[string]time.Duration {
	return map[string]time.Duration{
		"instance_pending":       15 * time.Second,  // pending -> running
		"instance_stopping":      30 * time.Second,  // stopping -> stopped
		"instance_shutting_down": 20 * time.Second,  // shutting-down -> terminated
		"instance_visible_after": 60 * time.Minute,  // terminated instances stay listed
		"image_create":           90 * time.Second,  // CreateImage pending -> available
		"image_copy":             180 * time.Second, // CopyImage pending -> available
		"image_copy_cross":       300 * time.Second, // CopyImage from another region
		"volume_create":          5 * time.Second,
		"load_balancer_active":   60 * time.Second, // provisioning -> active
		"target_registration":    10 * time.Second, // RegisterTargets -> the load balancer may route to the target (once healthy)
		"lb_config_propagation":  5 * time.Second,  // ModifyListener / ModifyRule -> requests follow the new actions
		"asg_launch":             5 * time.Second,  // scaling activity start -> instance launched
		"refresh_pending":        5 * time.Second,  // Pending -> InProgress
		"refresh_cancel":         10 * time.Second, // Cancelling -> Cancelled
		"refresh_instance_wait":  time.Hour,        // a refresh waits this long for protected / standby instances, then fails
		"kms_grant":              0,
		"snapshot_in_use":        0,                // DeregisterImage -> its snapshots may be deleted; AWS plays it only sometimes (docs/sandbox.md)
		"ssm_image_validation":   20 * time.Second, // an aws:ec2:image PutParameter -> the version is visible (or dropped)
		"ssm_recreate_after":     30 * time.Second, // DeleteParameter -> the name may be created again
	}
}

func newTiming(scale float64) *Timing {
	if scale <= 0 {
		scale = 1
	}
	return &Timing{durations: DefaultTiming(), timeScale: scale}
}

// scale returns d as played back by the sandbox.
func (t *Timing) scale(d time.Duration) time.Duration {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return time.Duration(float64(d) * t.timeScale)
}

// d returns the scaled duration of a named profile entry.
func (t *Timing) d(name string) time.Duration {
	t.mu.RLock()
	raw, ok := t.durations[name]
	s := t.timeScale
	t.mu.RUnlock()
	if !ok {
		panic("sandbox: no timing entry " + name)
	}
	return time.Duration(float64(raw) * s)
}

// Scale returns the time scale.
func (t *Timing) Scale() float64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.timeScale
}

// TimingProfile is the JSON form of the profile served at /_sandbox/timing.
type TimingProfile struct {
	TimeScale float64            `json:"time_scale"`
	Seconds   map[string]float64 `json:"seconds"`
}

func (t *Timing) profile() TimingProfile {
	t.mu.RLock()
	defer t.mu.RUnlock()
	p := TimingProfile{TimeScale: t.timeScale, Seconds: map[string]float64{}}
	for k, v := range t.durations {
		p.Seconds[k] = v.Seconds()
	}
	return p
}

// set changes the scale (when > 0) and the named durations; unknown names
// are an error so a typo does not go unnoticed.
func (t *Timing) set(p TimingProfile) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var unknown []string
	for k := range p.Seconds {
		if _, ok := t.durations[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return unknown
	}
	if p.TimeScale > 0 {
		t.timeScale = p.TimeScale
	}
	for k, v := range p.Seconds {
		t.durations[k] = time.Duration(v * float64(time.Second))
	}
	return nil
}
