package deployer

import (
	"context"
	"testing"
	"time"
)

// LockForTest takes d's lock as a deploy does, and returns what gives it
// back.
func LockForTest(ctx context.Context, d *Deployer) (func(), error) {
	d.defaults()
	s := &Session{ID: newDeployID(), Clients: d.Clients, Target: d.Target, d: d}
	if err := d.acquireLock(ctx, s); err != nil {
		return nil, err
	}
	return func() { d.releaseLock(s) }, nil
}

// SetSnapshotInUseLimitForTest shortens how long a prune retries a
// snapshot still in use, until t ends; t must not be parallel.
func SetSnapshotInUseLimitForTest(t testing.TB, d time.Duration) {
	old := snapshotInUseLimit
	snapshotInUseLimit = d
	t.Cleanup(func() { snapshotInUseLimit = old })
}
