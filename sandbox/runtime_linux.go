//go:build linux

package sandbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/linuxrt"
)

// The linux runtime: instances are real Debian 12 systems booted by
// linuxrt, images are their frozen writable layers, health checks are
// real requests and load balancers are real reverse proxies (lbproxy.go).
//
// Addresses: every region's default VPC is linuxVPCCIDR, so an instance's
// private IP is a loopback address the host routes to itself; one
// address is never given to two live instances (across regions) nor to
// one a program on the machine already listens on (port 22). Load
// balancers get addresses from linuxLBNet.
//
// Files, under the sandbox's state directory:
//
//	.sandbox-linux.lock  held while the sandbox runs: a crashed run's
//	                     directory is recognised by a free lock
//	linuxrt/             linuxrt's state: instances' writable layers,
//	                     pid files, and mounts of OpenImage
//	layers/snap-…        image layers, one per CreateImage snapshot
//	console/i-….log      console logs (GetConsoleOutput)
const (
	linuxVPCCIDR = "127.31.0.0/16"
	linuxLBNet   = "127.10" // load balancers: 127.10.0.1 upwards
	linuxLock    = ".sandbox-linux.lock"
)

// linuxBootTimeout bounds one boot: init, overlay, host keys, sshd.
const linuxBootTimeout = 2 * time.Minute

type linuxRuntime struct {
	w         *World
	rt        *linuxrt.Runtime
	lock      *os.File
	stateDir  string
	layersDir string
	consoles  string
	log       io.Writer
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	lbs       *lbServer
	client    *http.Client
	base      string

	mu     sync.Mutex
	closed bool
	ips    map[string]*linuxrt.Lease    // claimed instance and load balancer addresses
	queues map[string]chan struct{}     // per instance: closed when its last queued work is done
	insts  map[string]*linuxrt.Instance // booted at least once and not terminated
	layers map[string]*pending          // layers made by this runtime: their creation
	nextLB int
	mounts map[string]func() error // OpenImage mounts still open
}

func newLinuxRuntime(w *World, stateDir string, log io.Writer) (*linuxRuntime, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the linux runtime needs root: it mounts overlay file systems and creates namespaces (use --runtime sim otherwise)")
	}
	if !linuxrt.InitCalled() {
		return nil, errors.New("the linux runtime needs linuxrt.Init() called at the start of main (or TestMain)")
	}
	cleanupStaleSandboxes(log)
	lock, err := lockSandboxDir(stateDir)
	if err != nil {
		return nil, err
	}
	l := &linuxRuntime{
		w: w, lock: lock, stateDir: stateDir, log: log,
		layersDir: filepath.Join(stateDir, "layers"), consoles: filepath.Join(stateDir, "console"),
		ips: map[string]*linuxrt.Lease{}, queues: map[string]chan struct{}{}, insts: map[string]*linuxrt.Instance{},
		layers: map[string]*pending{}, mounts: map[string]func() error{},
	}
	// A state directory given again after a crash still holds that run's
	// instances and layers: the world they belonged to is gone.
	if err := l.removeFiles(); err != nil {
		lock.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	base, err := linuxrt.EnsureBaseRootfs(ctx, os.Getenv("PHOENIX_ROOTFS_CACHE"), log)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("preparing the Debian 12 base root file system: %w", err)
	}
	for _, d := range []string{l.layersDir, l.consoles} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			lock.Close()
			return nil, err
		}
	}
	l.base = base
	l.rt, err = linuxrt.New(linuxrt.Options{StateDir: filepath.Join(stateDir, "linuxrt"), BaseRootfs: base})
	if err != nil {
		lock.Close()
		return nil, err
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.client = &http.Client{
		Transport: &http.Transport{
			DisableKeepAlives: true,                                  // a health check is one connection, as on AWS
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // as ELB: any certificate
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	l.lbs = newLBServer(w, log)
	return l, nil
}

// lockSandboxDir takes the sandbox's lock in dir. The lock file appears
// already locked (made under another name, then renamed), so a cleanup
// scan never mistakes a starting sandbox for a crashed one.
func lockSandboxDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, linuxLock)
	if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			return nil, fmt.Errorf("state directory %s is in use by another sandbox", dir)
		}
		return f, nil
	}
	f, err := os.CreateTemp(dir, linuxLock+".tmp-")
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// cleanupStaleSandboxes removes what linux sandboxes that crashed left in
// temporary state directories: processes, mounts, files. A directory
// whose lock is held belongs to a live sandbox and stays.
func cleanupStaleSandboxes(log io.Writer) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "phoenix-sandbox-*", linuxLock))
	for _, lockPath := range dirs {
		dir := filepath.Dir(lockPath)
		f, err := os.OpenFile(lockPath, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			f.Close()
			continue
		}
		err = linuxrt.CleanupStale(filepath.Join(dir, "linuxrt"))
		if err == nil {
			err = os.RemoveAll(dir)
		}
		f.Close()
		if err != nil {
			fmt.Fprintf(log, "sandbox: cleaning up crashed sandbox %s: %v\n", dir, err)
		} else {
			fmt.Fprintf(log, "sandbox: cleaned up crashed sandbox %s\n", dir)
		}
	}
}

// removeFiles removes the runtime's files from the state directory,
// after stopping what a crashed run left running there.
func (l *linuxRuntime) removeFiles() error {
	rtDir := filepath.Join(l.stateDir, "linuxrt")
	if err := linuxrt.CleanupStale(rtDir); err != nil {
		return fmt.Errorf("cleaning up %s: %w", rtDir, err)
	}
	var errs []error
	for _, d := range []string{rtDir, l.layersDir, l.consoles} {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (l *linuxRuntime) Name() string           { return "linux" }
func (l *linuxRuntime) DefaultVPCCIDR() string { return linuxVPCCIDR }

func (l *linuxRuntime) CheckImage(img *Image) string {
	if img.Rootfs != RootfsDebian12 || img.Architecture != "x86_64" {
		return fmt.Sprintf("the sandbox's linux runtime boots only Debian 12 x86_64 images and images made from them, not %s (%s)", img.ID, img.Name)
	}
	return ""
}

// addressFree reports whether nothing listens on ip:port.
func addressFree(ip string, port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func (l *linuxRuntime) ClaimIP(ip string) bool {
	if !strings.HasPrefix(ip, "127.") {
		return true // a VPC of the user's outside 127.0.0.0/8: the boot says why it cannot work
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.claimLocked(ip, 22)
}

// claimLocked leases ip machine-wide (another sandbox on the machine may
// be handing out the same addresses) if nothing listens on its port yet.
func (l *linuxRuntime) claimLocked(ip string, port int) bool {
	if l.ips[ip] != nil {
		return false
	}
	lease, err := linuxrt.LeaseAddress(ip)
	if err != nil {
		return false
	}
	if !addressFree(ip, port) {
		lease.Release()
		return false
	}
	l.ips[ip] = lease
	return true
}

func (l *linuxRuntime) ReleaseIP(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ips[ip].Release()
	delete(l.ips, ip)
}

func (l *linuxRuntime) LoadBalancerAddress() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.nextLB < 1<<16-2 {
		l.nextLB++
		ip := fmt.Sprintf("%s.%d.%d", linuxLBNet, l.nextLB>>8, l.nextLB&0xff)
		if l.nextLB&0xff == 0 || !l.claimLocked(ip, 80) {
			continue
		}
		return ip
	}
	return ""
}

// enqueue runs work for instance id in a goroutine, after the work asked
// for earlier on the same instance.
func (l *linuxRuntime) enqueue(id string, work func(ctx context.Context, p *pending) error) *pending {
	p := newPending()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		p.finish(errors.New("the sandbox is shutting down"))
		return p
	}
	prev := l.queues[id]
	l.queues[id] = p.done
	l.wg.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.wg.Done()
		if prev != nil {
			<-prev
		}
		p.finish(work(l.ctx, p))
		l.mu.Lock()
		if l.queues[id] == p.done {
			delete(l.queues, id)
		}
		l.mu.Unlock()
	}()
	return p
}

func (l *linuxRuntime) Boot(r *Region, inst *Instance) *pending {
	spec := linuxrt.InstanceSpec{
		ID: inst.ID, IP: inst.PrivateIP, Hostname: "ip-" + strings.ReplaceAll(inst.PrivateIP, ".", "-"),
		ConsoleLog: l.consolePath(inst.ID),
	}
	spec.Layers = append(spec.Layers, inst.Layers...)
	if kp := r.KeyPairs[inst.KeyName]; kp != nil {
		spec.AuthorizedKey = kp.PublicKey
	}
	if inst.UserData != "" {
		spec.UserData = decodeUserData(inst.UserData)
	}
	spec.Metadata = newIMDSServer(l.w, r.Account, r.Name, inst.ID)
	return l.enqueue(inst.ID, func(ctx context.Context, _ *pending) error {
		ctx, cancel := context.WithTimeout(ctx, linuxBootTimeout)
		defer cancel()
		i, err := l.rt.Boot(ctx, spec)
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.insts[spec.ID] = i
		l.mu.Unlock()
		if err := i.WaitSSH(ctx); err != nil {
			i.Stop(context.Background())
			return err
		}
		return nil
	})
}

func (l *linuxRuntime) instance(id string) *linuxrt.Instance {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.insts[id]
}

func (l *linuxRuntime) Stop(inst *Instance) *pending {
	id := inst.ID
	return l.enqueue(id, func(ctx context.Context, _ *pending) error {
		if i := l.instance(id); i != nil && i.Running() {
			return i.Stop(ctx)
		}
		return nil
	})
}

func (l *linuxRuntime) Terminate(inst *Instance) *pending {
	id := inst.ID
	return l.enqueue(id, func(ctx context.Context, _ *pending) error {
		err := l.rt.Terminate(ctx, id)
		l.mu.Lock()
		delete(l.insts, id)
		l.mu.Unlock()
		return err
	})
}

func (l *linuxRuntime) consolePath(id string) string { return filepath.Join(l.consoles, id+".log") }

// consoleMax is what GetConsoleOutput returns at most, as on AWS.
const consoleMax = 64 << 10

func (l *linuxRuntime) ConsoleOutput(inst *Instance) []byte {
	f, err := os.Open(l.consolePath(inst.ID))
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > consoleMax {
		f.Seek(fi.Size()-consoleMax, io.SeekStart)
	}
	data, _ := io.ReadAll(io.LimitReader(f, consoleMax))
	return data
}

func (l *linuxRuntime) ImageLayer(inst *Instance, snap string) (string, *pending) {
	id, dst := inst.ID, filepath.Join(l.layersDir, snap)
	p := l.enqueue(id, func(ctx context.Context, p *pending) error {
		i := l.instance(id)
		if i == nil {
			return fmt.Errorf("instance %s has no disk", id)
		}
		n, err := i.Snapshot(dst)
		p.bytes = n
		return err
	})
	l.mu.Lock()
	l.layers[dst] = p
	l.mu.Unlock()
	return dst, p
}

func (l *linuxRuntime) ReleaseLayers(live map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	for path, made := range l.layers {
		if live[path] {
			continue
		}
		delete(l.layers, path)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			<-made.done
			if err := os.RemoveAll(path); err != nil {
				fmt.Fprintf(l.log, "sandbox: removing image layer %s: %v\n", path, err)
			}
		}()
	}
}

func (l *linuxRuntime) HealthCheck(r *Region, inst *Instance, tg *TargetGroup, ip string, port int) *pending {
	hc := tg.HealthCheck
	timeout := max(r.w.timing.scale(time.Duration(hc.TimeoutSeconds)*time.Second), 500*time.Millisecond)
	p := newPending()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		p.healthy, p.reason, p.description = false, "Elb.InternalError", "The sandbox is shutting down"
		p.finish(nil)
		return p
	}
	l.wg.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.wg.Done()
		ctx, cancel := context.WithTimeout(l.ctx, timeout)
		defer cancel()
		p.healthy, p.reason, p.description = l.check(ctx, hc, ip, port)
		p.finish(nil)
	}()
	return p
}

// check runs one health check the way an ELB node does.
func (l *linuxRuntime) check(ctx context.Context, hc TargetGroupHealthCheck, ip string, port int) (bool, string, string) {
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	timedOut := func(err error) bool {
		var ne net.Error
		return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
	}
	if !isHTTP(hc.Protocol) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			if timedOut(err) {
				return false, "Target.Timeout", "Request timed out"
			}
			return false, "Target.FailedHealthChecks", "Health checks failed"
		}
		c.Close()
		return true, "", ""
	}
	scheme := "http"
	if hc.Protocol == "HTTPS" {
		scheme = "https"
	}
	path := hc.Path
	if path == "" {
		path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+path, nil)
	if err != nil {
		return false, "Target.FailedHealthChecks", "Health checks failed"
	}
	req.Header.Set("User-Agent", "ELB-HealthChecker/2.0")
	resp, err := l.client.Do(req)
	if err != nil {
		if timedOut(err) {
			return false, "Target.Timeout", "Request timed out"
		}
		return false, "Target.FailedHealthChecks", "Health checks failed"
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if !matchesCode(hc.Matcher, resp.StatusCode) {
		return false, "Target.ResponseCodeMismatch", fmt.Sprintf("Health checks failed with these codes: [%d]", resp.StatusCode)
	}
	return true, "", ""
}

// matchesCode applies a target group's matcher: "200", "200,202" or
// "200-299".
func matchesCode(matcher string, code int) bool {
	if matcher == "" {
		matcher = "200"
	}
	for _, part := range strings.Split(matcher, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		if code >= a && code <= b {
			return true
		}
	}
	return false
}

// openImage mounts the merged file tree of an image's layers read-only.
func (l *linuxRuntime) openImage(rootfs string, layers []string) (string, func() error, error) {
	if rootfs != RootfsDebian12 {
		return "", nil, errors.New("the image has no files in the linux runtime: only Debian 12 images and images made from them do")
	}
	l.mu.Lock()
	for _, layer := range layers {
		if p := l.layers[layer]; p != nil && !p.ready() {
			l.mu.Unlock()
			return "", nil, errors.New("the image is not available yet")
		}
	}
	l.mu.Unlock()
	all := append([]string{l.base}, layers...)
	dir, cleanup, err := linuxrt.OpenMergedIn(filepath.Join(l.stateDir, "linuxrt", "mnt"), all)
	if err != nil {
		return "", nil, err
	}
	var once sync.Once
	var cerr error
	done := func() error {
		once.Do(func() {
			l.mu.Lock()
			delete(l.mounts, dir)
			l.mu.Unlock()
			cerr = cleanup()
		})
		return cerr
	}
	l.mu.Lock()
	l.mounts[dir] = done
	l.mu.Unlock()
	return dir, done, nil
}

// Close stops the load balancers, every goroutine and instance, and
// removes the runtime's files. Instances get a few seconds to shut down.
func (l *linuxRuntime) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	var mounts []func() error
	for _, m := range l.mounts {
		mounts = append(mounts, m)
	}
	l.mu.Unlock()
	var errs []error
	l.lbs.close()
	for _, m := range mounts {
		if err := m(); err != nil {
			errs = append(errs, err)
		}
	}
	l.cancel()
	l.wg.Wait()
	if err := l.rt.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := l.removeFiles(); err != nil {
		errs = append(errs, err)
	}
	// Every instance and load balancer is gone: their addresses are free.
	l.mu.Lock()
	for ip, lease := range l.ips {
		lease.Release()
		delete(l.ips, ip)
	}
	l.mu.Unlock()
	os.Remove(filepath.Join(l.stateDir, linuxLock))
	l.lock.Close()
	return errors.Join(errs...)
}
