package sandbox

import "fmt"

// Runtime decides what an instance really is. The sim runtime has no
// processes: it answers health checks from the instance's image.
type Runtime interface {
	Name() string
	// HealthCheck runs one load balancer health check of a running
	// instance on port and reports the result with AWS's reason code and
	// description when it fails.
	HealthCheck(r *Region, inst *Instance, tg *TargetGroup, port int) (ok bool, reason, description string)
}

// HealthTag is the image tag the sim runtime reads: "fail" fails every
// health check, "flaky" fails at random; anything else passes.
const HealthTag = "sandbox:health"

type simRuntime struct{}

func (simRuntime) Name() string { return "sim" }

func (simRuntime) HealthCheck(r *Region, inst *Instance, tg *TargetGroup, port int) (bool, string, string) {
	img := r.Images[inst.ImageID]
	mode := ""
	if img != nil {
		mode = img.Tags[HealthTag]
	}
	fail := func() (bool, string, string) {
		if tg.HealthCheck.Protocol == "TCP" {
			return false, "Target.FailedHealthChecks", "Health checks failed"
		}
		return false, "Target.ResponseCodeMismatch", fmt.Sprintf("Health checks failed with these codes: [500]")
	}
	switch mode {
	case "fail":
		return fail()
	case "flaky":
		if r.w.chance(0.5) {
			return fail()
		}
	}
	return true, "", ""
}
