package ebs

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestNextPoll(t *testing.T) {
	const iv = time.Second
	for _, c := range []struct {
		elapsed, left, want time.Duration
	}{
		{0, time.Hour, iv},                                                   // the first polls: the interval
		{3 * time.Second, time.Hour, iv},                                     // a quarter of 3 s is below it
		{8 * time.Second, time.Hour, 2 * iv},                                 // a quarter of the time waited
		{10 * time.Minute, time.Hour, 4 * iv},                                // never more than 4 intervals
		{10 * time.Minute, 1500 * time.Millisecond, 1500 * time.Millisecond}, // never past the deadline
		{10 * time.Minute, -time.Second, 0},                                  // the deadline has passed: at once
	} {
		if got := nextPoll(c.elapsed, c.left, iv); got != c.want {
			t.Errorf("nextPoll(%s, %s, %s) = %s, want %s", c.elapsed, c.left, iv, got, c.want)
		}
	}
}

// TestWaitForBacksOff: a wait of 60 intervals polls far fewer than 60
// times, every gap is within a quarter of the time waited (or the
// interval) and 4 intervals, and it ends within a quarter of its length
// after the thing it waits for.
func TestWaitForBacksOff(t *testing.T) {
	const iv = 10 * time.Millisecond
	const ready = 60 * iv
	const slack = 30 * time.Millisecond // a shared machine's scheduling
	start := time.Now()
	var polls []time.Duration
	err := waitFor(context.Background(), "a slow thing", "slow_timeout", time.Minute, iv, func(context.Context) (bool, string, error) {
		polls = append(polls, time.Since(start))
		return time.Since(start) >= ready, "pending", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if len(polls) > 30 {
		t.Errorf("%d polls in a wait of %s at interval %s; polling at the interval makes 61", len(polls), ready, iv)
	}
	for i := 1; i < len(polls); i++ {
		gap := polls[i] - polls[i-1]
		limit := min(max(polls[i-1]/4, iv), 4*iv)
		if gap > limit+slack {
			t.Errorf("poll %d came %s after the one at %s; at most %s", i, gap, polls[i-1], limit)
		}
	}
	if over := took - ready; over > ready/4+slack {
		t.Errorf("the wait ended %s after the thing was ready (polls at %v)", over, polls)
	}
}

// TestWaitForStopsAtTimeout: backing off never waits past the timeout:
// the last poll is at the deadline and the wait fails there.
func TestWaitForStopsAtTimeout(t *testing.T) {
	const iv, timeout = 40 * time.Millisecond, 500 * time.Millisecond
	start := time.Now()
	polls := 0
	err := waitFor(context.Background(), "a stuck thing", "stuck_timeout", timeout, iv, func(context.Context) (bool, string, error) {
		polls++
		return false, "pending", nil
	})
	took := time.Since(start)
	var we *waitError
	if !errors.As(err, &we) || we.Setting != "stuck_timeout" || we.Status != "pending" {
		t.Fatalf("err = %v, want a timeout naming stuck_timeout", err)
	}
	if took < timeout || took > timeout+60*time.Millisecond {
		t.Errorf("failed after %s, want at the timeout of %s", took, timeout)
	}
	if polls < 2 || polls >= int(timeout/iv) {
		t.Errorf("%d polls in %s at interval %s", polls, timeout, iv)
	}
}
