//go:build linux

package sandboxtest

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RuntimeLeaks watches a linux-runtime sandbox while a test runs: it
// records the pid and mount namespaces of this process's instance inits,
// and Check, once the sandbox has closed, finds any mount left under its
// state directory and any process still in one of those namespaces.
type RuntimeLeaks struct {
	mu   sync.Mutex
	ns   map[string]bool
	stop chan struct{}
	done chan struct{}
}

// WatchRuntime starts watching; call Check when the sandbox has closed.
func WatchRuntime() *RuntimeLeaks {
	n := &RuntimeLeaks{ns: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(n.done)
		for {
			n.scan()
			select {
			case <-n.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return n
}

// parent is pid's parent process, 0 when it cannot be read.
func parent(pid int) int {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// descendsFrom reports whether ancestor is among pid's ancestors.
func descendsFrom(pid, ancestor int) bool {
	for p := parent(pid); p > 1; p = parent(p) {
		if p == ancestor {
			return true
		}
	}
	return false
}

// scan records the namespaces of this process's children that are
// instance inits.
func (n *RuntimeLeaks) scan() {
	me := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err != nil || parent(pid) != me {
			continue
		}
		if env, _ := os.ReadFile("/proc/" + e.Name() + "/environ"); !bytes.Contains(env, []byte("_PHOENIX_LINUXRT_INIT=1")) {
			continue
		}
		for _, kind := range []string{"pid", "mnt"} {
			if l, err := os.Readlink("/proc/" + e.Name() + "/ns/" + kind); err == nil {
				n.mu.Lock()
				n.ns[l] = true
				n.mu.Unlock()
			}
		}
	}
}

// Seen is how many instance namespaces were recorded: a test that booted
// instances checks it is not 0, or the leak check proved nothing.
func (n *RuntimeLeaks) Seen() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.ns)
}

// Check stops watching and fails t for a state directory, mount or
// process the sandbox left behind. A nil RuntimeLeaks checks nothing (the
// sandbox never started).
func (n *RuntimeLeaks) Check(t testing.TB, stateDir string) {
	t.Helper()
	if n == nil {
		return
	}
	close(n.stop)
	<-n.done
	if stateDir == "" {
		return
	}
	if _, err := os.Stat(stateDir); err == nil {
		t.Errorf("state directory %s still exists after the sandbox closed", stateDir)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, stateDir) {
			t.Errorf("mount left after the sandbox closed: %s", line)
		}
	}
	// A namespace's number is reused once it is gone, e.g. by another
	// program's instances: a process counts when this process is its
	// ancestor, as it is of every instance init and what runs inside.
	me := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !descendsFrom(pid, me) {
			continue
		}
		for _, kind := range []string{"pid", "mnt"} {
			if l, err := os.Readlink("/proc/" + e.Name() + "/ns/" + kind); err == nil && n.ns[l] {
				t.Errorf("process %s is still in instance namespace %s after the sandbox closed", e.Name(), l)
			}
		}
	}
	t.Logf("after the sandbox closed: no mount, process or namespace left (%d namespaces tracked)", len(n.ns))
}
