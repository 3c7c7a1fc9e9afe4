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

// waitFor polls check every interval until it reports done, it fails, ctx
// ends or timeout passes. check returns the current status for messages.
func waitFor(ctx context.Context, what, setting string, timeout, interval time.Duration, check func(context.Context) (done bool, status string, err error)) error {
	deadline := time.Now().Add(timeout)
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
		next := interval
		if left := time.Until(deadline); left < next {
			next = left
		}
		t.Reset(next)
	}
}

// cleanupContext is the context for Cleanup: fresh, so that Ctrl-C, which
// cancelled the build's context, does not stop the cleanup, but bounded.
func cleanupContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), timeout)
}
