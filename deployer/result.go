package deployer

import (
	"errors"
	"fmt"
	"time"
)

// Outcome is how a deploy ended. Its value is the phoenix CLI's exit code.
type Outcome int

const (
	// Succeeded: the new AMI is live and every target is healthy on it.
	Succeeded Outcome = 0
	// RolledBack: the deploy failed and the target is back where it was.
	RolledBack Outcome = 1
	// RollbackFailed: the deploy failed and so did the rollback; a person
	// has to look.
	RollbackFailed Outcome = 2
	// Refused: nothing was changed: bad input, a failed precondition or a
	// target locked by another deploy.
	Refused Outcome = 3
)

func (o Outcome) String() string {
	switch o {
	case Succeeded:
		return "succeeded"
	case RolledBack:
		return "rolled back"
	case RollbackFailed:
		return "rollback failed"
	case Refused:
		return "refused"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// MarshalText writes the outcome as its name.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Error is a deploy that did not succeed, with its outcome.
type Error struct {
	Outcome Outcome
	Err     error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// refuse marks err as found before anything was changed.
func refuse(format string, args ...any) error {
	return &Error{Outcome: Refused, Err: fmt.Errorf(format, args...)}
}

// asRefused keeps err's outcome when it has one and marks it refused
// otherwise: used for errors met before the first mutating call.
func asRefused(err error) error {
	var e *Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	return &Error{Outcome: Refused, Err: err}
}

// OutcomeOf returns the outcome err stands for: Succeeded for nil,
// the Error's outcome, or RolledBack for any other error (the deploy
// failed and phoenix did not change anything it could not undo).
func OutcomeOf(err error) Outcome {
	if err == nil {
		return Succeeded
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Outcome
	}
	return RolledBack
}

// Result is what a deploy or a rollback did.
type Result struct {
	Outcome  Outcome `json:"outcome"`
	Target   string  `json:"target"`
	Region   string  `json:"region"`
	Group    string  `json:"group"`
	Strategy string  `json:"strategy"`
	AMI      string  `json:"ami"`
	Previous string  `json:"previous_ami,omitempty"`
	Template string  `json:"launch_template,omitempty"`
	Version  int64   `json:"launch_template_version,omitempty"`
	Refresh  string  `json:"instance_refresh,omitempty"`
	Message  string  `json:"message"`
	// Interrupted: the deploy was stopped (Ctrl-C) and did not roll back;
	// whatever AWS was doing goes on.
	Interrupted bool      `json:"interrupted,omitempty"`
	Started     time.Time `json:"started"`
	Ended       time.Time `json:"ended"`
}

// SettingError is a problem with one setting.
type SettingError struct {
	Setting string
	Err     error
}

func (e *SettingError) Error() string { return e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }
