package deployer

import "time"

// Event is one thing a deploy reports while it runs: a step it takes, the
// progress it reads on each pass, a warning. Printers turn events into
// progress lines on a terminal or JSON lines.
type Event struct {
	Time   time.Time `json:"time"`
	Target string    `json:"target"`
	// Kind is "step" (an action or a phase starts), "progress" (what a
	// pass read), "warning" or "rollback".
	Kind    string    `json:"kind"`
	Message string    `json:"message,omitempty"`
	Refresh *Refresh  `json:"refresh,omitempty"`
	Health  *Health   `json:"health,omitempty"`
	Action  string    `json:"action,omitempty"`
	Step    string    `json:"step,omitempty"`
	Extra   []KeyText `json:"extra,omitempty"`
	// Verdict is the canary judge's, on "judge" steps.
	Verdict *Verdict `json:"verdict,omitempty"`
}

// KeyText is a named detail of an event.
type KeyText struct {
	Key  string `json:"key"`
	Text string `json:"text"`
}

// Refresh is an instance refresh as a pass reads it.
type Refresh struct {
	ID      string     `json:"id"`
	Status  string     `json:"status"`
	Percent int        `json:"percent"`
	Reason  string     `json:"reason,omitempty"`
	Started time.Time  `json:"started"`
	Ended   *time.Time `json:"ended,omitempty"`
	// Template and Version are the launch template the refresh moves to.
	Template string `json:"launch_template,omitempty"`
	Version  string `json:"launch_template_version,omitempty"`
}

// Event kinds.
const (
	EventStep     = "step"
	EventProgress = "progress"
	EventWarning  = "warning"
)
