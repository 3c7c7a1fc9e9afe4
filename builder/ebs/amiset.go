package ebs

import (
	"sort"
	"sync"
)

// amiSet records every AMI and snapshot this build created, by region, so
// that cleanup and Destroy can remove exactly those. Copies run in
// parallel, hence the lock.
type amiSet struct {
	mu        sync.Mutex
	amis      map[string]string   // region -> AMI id
	snapshots map[string][]string // region -> snapshot ids
	done      bool                // the build finished: keep everything
}

func newAMISet() *amiSet {
	return &amiSet{amis: map[string]string{}, snapshots: map[string][]string{}}
}

func (s *amiSet) setAMI(region, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.amis[region] = id
}

func (s *amiSet) addSnapshots(region string, ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if !contains(s.snapshots[region], id) {
			s.snapshots[region] = append(s.snapshots[region], id)
		}
	}
}

func (s *amiSet) ami(region string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.amis[region]
}

// regions lists the regions with an AMI or snapshot, sorted.
func (s *amiSet) regions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for r := range s.amis {
		seen[r] = true
	}
	for r := range s.snapshots {
		seen[r] = true
	}
	out := make([]string, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// snapshot returns a copy of the contents.
func (s *amiSet) snapshot() (map[string]string, map[string][]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	amis := make(map[string]string, len(s.amis))
	for k, v := range s.amis {
		amis[k] = v
	}
	snaps := make(map[string][]string, len(s.snapshots))
	for k, v := range s.snapshots {
		snaps[k] = append([]string(nil), v...)
	}
	return amis, snaps
}

func (s *amiSet) markDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
}

func (s *amiSet) isDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}
