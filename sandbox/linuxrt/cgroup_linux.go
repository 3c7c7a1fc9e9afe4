package linuxrt

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Each instance runs in a cgroup of its own, in the machine's cgroup v2
// hierarchy (on a host in hybrid mode, the one mounted at
// /sys/fs/cgroup/unified): systemd inside sees it as the root of its
// hierarchy (a cgroup namespace) and builds its slices and scopes below
// it, never touching the host's. The cgroups are named after the
// runtime's state directory, so that CleanupStale finds a crashed
// runtime's.

const cgroupParent = "phoenix-linuxrt"

// cgroup2Mount finds where the machine's cgroup v2 hierarchy is mounted.
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var found []string
	for sc.Scan() {
		line := sc.Text()
		_, after, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		if fs := strings.Fields(after); len(fs) > 0 && fs[0] == "cgroup2" {
			found = append(found, unescapeMountinfo(strings.Fields(line)[4]))
		}
	}
	for _, p := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		for _, m := range found {
			if m == p {
				return m, nil
			}
		}
	}
	if len(found) > 0 {
		return found[0], nil
	}
	return "", errors.New("linuxrt: no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup/unified)")
}

// cgroupPrefix names the cgroups of one state directory's instances.
func cgroupPrefix(stateDir string) string {
	h := sha256.Sum256([]byte(stateDir))
	return "rt-" + hex.EncodeToString(h[:6]) + "-"
}

// instanceCgroup makes the instance's cgroup and moves pid into it.
func instanceCgroup(stateDir, id string, pid int) (string, error) {
	root, err := cgroup2Mount()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, cgroupParent, cgroupPrefix(stateDir)+id)
	if _, err := os.Stat(dir); err == nil {
		if err := removeCgroup(dir); err != nil {
			return "", err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("making the instance's cgroup: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		removeCgroup(dir)
		return "", fmt.Errorf("moving the instance into its cgroup: %w", err)
	}
	return dir, nil
}

// removeCgroup removes a cgroup and every cgroup below it, once their
// processes are gone (a killed process leaves its cgroup a moment
// later).
func removeCgroup(dir string) error {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var last error
	for i := len(dirs) - 1; i >= 0; i-- {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := os.Remove(dirs[i])
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				last = fmt.Errorf("linuxrt: removing cgroup %s: %w", dirs[i], err)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return last
}

// removeStaleCgroups removes the cgroups of a state directory's instances.
func removeStaleCgroups(stateDir string) error {
	root, err := cgroup2Mount()
	if err != nil {
		return nil
	}
	dirs, _ := filepath.Glob(filepath.Join(root, cgroupParent, cgroupPrefix(stateDir)+"*"))
	var errs []error
	for _, d := range dirs {
		if err := removeCgroup(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
