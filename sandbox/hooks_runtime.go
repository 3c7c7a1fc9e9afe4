package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
)

// Hooks into what the linux runtime really runs: the files of baked
// images and the addresses of load balancers.

// OpenImage mounts the merged file tree of an available image read-only
// and returns its directory; cleanup unmounts it (Close does too). Only
// the linux runtime has files: Debian 12 public images and the images
// made from them.
func (s *Sandbox) OpenImage(region, ami string) (dir string, cleanup func() error, err error) {
	lrt, ok := s.world.runtime.(*linuxRuntime)
	if !ok {
		return "", nil, fmt.Errorf("images have files only in the linux runtime, not %s", s.world.runtime.Name())
	}
	w := s.world
	w.mu.Lock()
	r, aerr := w.region(region)
	if aerr != nil {
		w.mu.Unlock()
		return "", nil, errors.New(aerr.Message)
	}
	im := r.Images[ami]
	if im == nil || im.State == "deregistered" {
		w.mu.Unlock()
		return "", nil, fmt.Errorf("image %s does not exist in %s", ami, region)
	}
	if im.State != "available" {
		w.mu.Unlock()
		return "", nil, fmt.Errorf("image %s is %s, not available", ami, im.State)
	}
	rootfs, layers := im.Rootfs, append([]string(nil), im.Layers...)
	w.mu.Unlock()
	return lrt.openImage(rootfs, layers)
}

// LoadBalancerInfo says where a load balancer serves.
type LoadBalancerInfo struct {
	Region  string `json:"region"`
	ARN     string `json:"arn"`
	Name    string `json:"name"`
	DNSName string `json:"dns_name"`
	// Address is the loopback address its listeners bind (linux
	// runtime); "" when nothing serves it (sim runtime).
	Address string `json:"address,omitempty"`
	Ports   []int  `json:"ports"`
}

// LoadBalancers lists every load balancer with its address and listener
// ports.
func (s *Sandbox) LoadBalancers() []LoadBalancerInfo {
	w := s.world
	w.mu.Lock()
	defer w.mu.Unlock()
	out := []LoadBalancerInfo{}
	for _, r := range w.sortedRegions() {
		for _, lb := range r.LoadBalancers {
			info := LoadBalancerInfo{Region: r.Name, ARN: lb.ARN, Name: lb.Name, DNSName: lb.DNSName, Address: lb.Address, Ports: []int{}}
			for _, l := range r.Listeners {
				if l.LoadBalancerARN == lb.ARN {
					info.Ports = append(info.Ports, l.Port)
				}
			}
			sort.Ints(info.Ports)
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Region != out[j].Region {
			return out[i].Region < out[j].Region
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// serveImageFiles answers GET /_sandbox/images/<ami>/files?region=R&path=P:
// a file's bytes, or a directory's entries as JSON.
func (s *Sandbox) serveImageFiles(rw http.ResponseWriter, req *http.Request, ami string) {
	fail := func(status int, err error) {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(status)
		json.NewEncoder(rw).Encode(map[string]string{"error": err.Error()})
	}
	region := req.URL.Query().Get("region")
	if region == "" {
		region = "us-east-1"
	}
	p := req.URL.Query().Get("path")
	if p == "" {
		p = "/"
	}
	dir, cleanup, err := s.OpenImage(region, ami)
	if err != nil {
		fail(http.StatusNotFound, err)
		return
	}
	defer cleanup()
	root, err := os.OpenRoot(dir)
	if err != nil {
		fail(http.StatusInternalServerError, err)
		return
	}
	defer root.Close()
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" {
		name = "."
	}
	f, err := root.Open(name)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, fs.ErrNotExist) {
			status = http.StatusNotFound
		}
		fail(status, fmt.Errorf("%s in %s: %w", p, ami, err))
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		fail(http.StatusInternalServerError, err)
		return
	}
	if fi.IsDir() {
		ents, err := f.ReadDir(-1)
		if err != nil {
			fail(http.StatusInternalServerError, err)
			return
		}
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			n := e.Name()
			if e.IsDir() {
				n += "/"
			}
			names = append(names, n)
		}
		rw.Header().Set("Content-Type", "application/json")
		json.NewEncoder(rw).Encode(map[string]any{"path": p, "entries": names})
		return
	}
	if !fi.Mode().IsRegular() {
		fail(http.StatusBadRequest, fmt.Errorf("%s in %s is not a regular file", p, ami))
		return
	}
	rw.Header().Set("Content-Type", "application/octet-stream")
	io.Copy(rw, f)
}
