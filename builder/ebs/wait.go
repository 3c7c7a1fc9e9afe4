package ebs

import (
	"context"
	"fmt"
	"time"
)

// waitError says what a wait was still waiting for and which setting to
// raise.
type waitError struct {
	What    string
	Status  string
	Timeout time.Duration
	Setting string
}

func (e *waitError) Error() string {
	return fmt.Sprintf("timed out after %s waiting for %s (still %s); raise %s if this is expected to take longer",
		e.Timeout, e.What, e.Status, e.Setting)
}

// maxPollFactor bounds how far a long wait backs off: to this many poll
// intervals between polls.
const maxPollFactor = 4

// nextPoll is the delay before the next poll of a wait that has gone on
// for elapsed: a quarter of elapsed, at least interval and at most
// maxPollFactor intervals, and never past the deadline, left from now.
// A quarter keeps a wait from overshooting its end by more than a quarter
// of its length, so short waits (instance start and stop) poll at the
// interval and a 30-minute region copy polls at 4 intervals.
func nextPoll(elapsed, left, interval time.Duration) time.Duration {
	next := min(max(elapsed/4, interval), maxPollFactor*interval)
	return max(min(next, left), 0)
}

// waitFor polls check until it reports done, it fails, ctx ends or
// timeout passes: at first every interval, then less often as the wait
// goes on (nextPoll). check returns the current status for messages.
func waitFor(ctx context.Context, what, setting string, timeout, interval time.Duration, check func(context.Context) (done bool, status string, err error)) error {
	start := time.Now()
	deadline := start.Add(timeout)
	status := "unknown"
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
		done, st, err := check(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if st != "" {
			status = st
		}
		if done {
			return nil
		}
		if !time.Now().Before(deadline) {
			return &waitError{What: what, Status: status, Timeout: timeout, Setting: setting}
		}
		t.Reset(nextPoll(time.Since(start), time.Until(deadline), interval))
	}
}

// cleanupContext is the context for Cleanup: fresh, so that Ctrl-C, which
// cancelled the build's context, does not stop the cleanup, but bounded.
func cleanupContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), timeout)
}
