package deployer_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
)

// endedPID returns the id of a process that has ended.
func endedPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// A lock whose process has ended is taken over by its own owner's next
// deploy, at once rather than after the lock's 30 minutes; anyone else's
// lock, or one whose process still runs, still refuses.
func TestLockOfEndedProcessIsTakenOverByItsOwner(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("stale-1", deploytest.ImageOptions{})
	f.Stack("stale", old, deploytest.StackOptions{Desired: 1})
	newAMI := f.Image("stale-2", deploytest.ImageOptions{})
	ctx := context.Background()
	expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	dead := endedPID(t)

	for _, tc := range []struct{ name, value, want string }{
		{"another owner's lock", fmt.Sprintf("owner=bob@ci-3 deploy=0badf00d pid=%d expires=%s", dead, expires), "locked by bob@ci-3 (deploy 0badf00d, pid "},
		{"a lock whose process runs", fmt.Sprintf("owner=test@phoenix deploy=0badf00d pid=%d expires=%s", os.Getpid(), expires), fmt.Sprintf("locked by test@phoenix (deploy 0badf00d, pid %d)", os.Getpid())},
		{"a lock that names no process", "owner=test@phoenix deploy=0badf00d expires=" + expires, "locked by test@phoenix (deploy 0badf00d) until"},
	} {
		setLock(t, f, "stale", tc.value)
		f.SB.ResetCalls()
		_, err := newDeployer(f, "stale", nil, nil).Run(ctx, newAMI)
		if deployer.OutcomeOf(err) != deployer.Refused || !strings.Contains(fmt.Sprint(err), tc.want) {
			t.Errorf("%s: %v, want refused: %q", tc.name, err, tc.want)
		}
		if m := f.Mutating(); m != 0 {
			t.Errorf("%s: %d mutating calls", tc.name, m)
		}
	}

	setLock(t, f, "stale", fmt.Sprintf("owner=test@phoenix deploy=0dead000 pid=%d expires=%s", dead, expires))
	st, err := newDeployer(f, "stale", nil, nil).Status(ctx)
	if err != nil || st.Lock == nil || !st.Lock.Stale || st.Lock.PID != dead {
		t.Fatalf("status of a stale lock: %+v %v", st, err)
	}
	if want := fmt.Sprintf("process %d has ended: the same owner's next deploy or rollback takes the lock over", dead); !strings.Contains(st.Lock.String(), want) {
		t.Errorf("lock %q lacks %q", st.Lock, want)
	}
	var ev events
	res, err := newDeployer(f, "stale", nil, &ev).Run(ctx, newAMI)
	if err != nil || res.Outcome != deployer.Succeeded {
		t.Fatalf("deploy over a stale lock: %v\n%s", err, ev.messages())
	}
	if want := fmt.Sprintf(`warning: taking over the lock on "stale" left by deploy 0dead000: its process %d has ended`, dead); !strings.Contains(ev.messages(), want) {
		t.Errorf("events lack %q:\n%s", want, ev.messages())
	}
	for _, tag := range f.Group("stale").Tags {
		if aws.ToString(tag.Key) == deployer.LockTag {
			t.Errorf("lock left: %s", aws.ToString(tag.Value))
		}
	}
}

// Ctrl-C while a mutating call is in flight interrupts the deploy (exit
// 1, nothing rolled back); it is not a failed deploy whose rollback was
// interrupted (exit 2).
func TestInterruptDuringAMutatingCall(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	old := f.Image("cut-1", deploytest.ImageOptions{})
	f.Stack("cut", old, deploytest.StackOptions{Desired: 1})
	newAMI := f.Image("cut-2", deploytest.ImageOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	f.SB.OnCall(func(_, action string) {
		if action == "StartInstanceRefresh" {
			once.Do(cancel)
		}
	})
	defer f.SB.OnCall(nil)
	var ev events
	res, err := newDeployer(f, "cut", nil, &ev).Run(ctx, newAMI)
	if deployer.OutcomeOf(err) != deployer.RolledBack || !res.Interrupted || !strings.Contains(fmt.Sprint(err), "deploy interrupted (context canceled)") {
		t.Fatalf("interrupted deploy: %v (%+v)\n%s", err, res, ev.messages())
	}
	if strings.Contains(ev.messages(), "rolling back") {
		t.Errorf("rolled back after an interrupt:\n%s", ev.messages())
	}
	calls := f.SB.Calls()["autoscaling"]
	if calls["RollbackInstanceRefresh"]+calls["CancelInstanceRefresh"] != 0 {
		t.Errorf("rollback calls after an interrupt: %v", calls)
	}
}
