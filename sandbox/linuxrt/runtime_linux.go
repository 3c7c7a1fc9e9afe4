package linuxrt

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Options configure a Runtime.
type Options struct {
	// StateDir holds the instances' writable layers, pid files and default
	// console logs. Only one Runtime may use it at a time.
	StateDir string
	// BaseRootfs is the bottom layer of every instance, normally the path
	// EnsureBaseRootfs returned.
	BaseRootfs string
}

// InstanceSpec describes an instance to boot.
type InstanceSpec struct {
	// ID names the instance and its writable layer: booting the same ID
	// again after Stop continues with the same disk.
	ID string
	// Hostname is set in the instance's UTS namespace and /etc/hostname.
	Hostname string
	// IP is the instance's address, in 127.0.0.0/8. The instance has a
	// network namespace of its own; every TCP port it listens on is
	// reachable at this address from the machine (see netns_linux.go).
	IP string
	// Layers are image layers stacked on the base rootfs, bottom first.
	// An instance must be booted again with the layers it was first
	// booted with.
	Layers []string
	// AuthorizedKey is added to /home/admin/.ssh/authorized_keys.
	AuthorizedKey string
	// UserData is run as root in the background on the instance's first
	// boot if it starts with "#!" or "#cloud-config" (see cloudconfig.go),
	// like cloud-init does.
	UserData []byte
	// Metadata serves the instance metadata service at
	// http://169.254.169.254/ inside the instance (nil: nothing listens
	// there).
	Metadata http.Handler
	// ConsoleLog is the host file the init's messages and the user data's
	// output are appended to. Empty means console.log in the instance's
	// state directory.
	ConsoleLog string
}

// Runtime boots and tracks instances.
type Runtime struct {
	opts    Options
	lock    *os.File
	mu      sync.Mutex
	running map[string]*Instance
	closed  bool
	onBoot  func(*Instance) // test hook
}

// Instance is a booted instance. After it stopped, its writable layer stays
// for Snapshot or another Boot with the same ID.
type Instance struct {
	spec    InstanceSpec
	rt      *Runtime
	dir     string
	cmd     *exec.Cmd
	control *os.File // closing it asks the init to stop
	done    chan struct{}
	exitErr error
	pidns   string
	net     *instanceNet
	cgroup  string
	console chan struct{} // closed when the console log has everything
	// consoleTTY is the runtime's hold on the instance's end of the
	// console: systemd opens and closes /dev/console for each message,
	// and a terminal nobody holds is hung up (systemd then retries for a
	// second before each message).
	consoleTTY *os.File
	systemd    bool      // systemd is the instance's init
	watcher    *exec.Cmd // with systemd: holds the pipe (watch_linux.go)
}

// StopTimeout is how long Stop lets an instance shut down cleanly before
// it kills what is left.
var StopTimeout = 30 * time.Second

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
var hostnamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// New returns a Runtime that keeps its state in opts.StateDir. It takes a
// lock on the state directory, released by Close.
func New(opts Options) (*Runtime, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("linuxrt: needs root")
	}
	if opts.StateDir == "" || opts.BaseRootfs == "" {
		return nil, errors.New("linuxrt: StateDir and BaseRootfs are required")
	}
	var err error
	if opts.StateDir, err = filepath.Abs(opts.StateDir); err != nil {
		return nil, err
	}
	base, err := checkLayers([]string{opts.BaseRootfs})
	if err != nil {
		return nil, err
	}
	opts.BaseRootfs = base[0]
	if err := ensureIPTables(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(opts.StateDir, "instances"), 0o700); err != nil {
		return nil, err
	}
	lock, err := lockStateDir(opts.StateDir)
	if err != nil {
		return nil, err
	}
	return &Runtime{opts: opts, lock: lock, running: map[string]*Instance{}}, nil
}

func lockStateDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("linuxrt: state directory %s is in use by another runtime", dir)
		}
		return nil, err
	}
	return f, nil
}

func (r *Runtime) instanceDir(id string) string {
	return filepath.Join(r.opts.StateDir, "instances", id)
}

func checkSpec(spec *InstanceSpec) error {
	if !idPattern.MatchString(spec.ID) {
		return fmt.Errorf("linuxrt: invalid instance ID %q", spec.ID)
	}
	if spec.Hostname == "" {
		spec.Hostname = spec.ID
	}
	if len(spec.Hostname) > 64 || !hostnamePattern.MatchString(spec.Hostname) {
		return fmt.Errorf("linuxrt: invalid hostname %q", spec.Hostname)
	}
	ip := net.ParseIP(spec.IP).To4()
	if ip == nil || ip[0] != 127 || ip.Equal(net.IPv4(127, 0, 0, 0)) || ip.Equal(net.IPv4(127, 255, 255, 255)) {
		return fmt.Errorf("linuxrt: instance IP %q is not a host address in 127.0.0.0/8", spec.IP)
	}
	spec.IP = ip.String()
	if strings.ContainsAny(spec.AuthorizedKey, "\n\r") {
		return errors.New("linuxrt: AuthorizedKey must be a single line")
	}
	return nil
}

// Boot starts an instance and returns once its sshd was started (not
// necessarily accepting connections yet: see WaitSSH).
func (r *Runtime) Boot(ctx context.Context, spec InstanceSpec) (*Instance, error) {
	if !initCalled {
		return nil, errors.New("linuxrt: the program must call linuxrt.Init() at the start of main (or TestMain)")
	}
	spec.Layers = append([]string(nil), spec.Layers...)
	if err := checkSpec(&spec); err != nil {
		return nil, err
	}
	layers, err := checkLayers(append([]string{r.opts.BaseRootfs}, spec.Layers...))
	if err != nil {
		return nil, err
	}
	inst := &Instance{spec: spec, rt: r, dir: r.instanceDir(spec.ID), done: make(chan struct{})}
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return nil, errors.New("linuxrt: runtime closed")
	case r.running[spec.ID] != nil:
		r.mu.Unlock()
		return nil, fmt.Errorf("linuxrt: instance %s is running", spec.ID)
	}
	for _, other := range r.running {
		if other.spec.IP == spec.IP {
			r.mu.Unlock()
			return nil, fmt.Errorf("linuxrt: IP %s is used by instance %s", spec.IP, other.spec.ID)
		}
	}
	r.running[spec.ID] = inst
	r.mu.Unlock()

	if err := inst.start(ctx, layers); err != nil {
		r.mu.Lock()
		delete(r.running, spec.ID)
		r.mu.Unlock()
		return nil, fmt.Errorf("linuxrt: booting %s: %w", spec.ID, err)
	}
	go inst.wait()
	if r.onBoot != nil {
		r.onBoot(inst)
	}
	return inst, nil
}

func (i *Instance) start(ctx context.Context, layers []string) error {
	// Fail early and clearly if another program holds the ssh address.
	if l, err := net.Listen("tcp", net.JoinHostPort(i.spec.IP, "22")); err != nil {
		return fmt.Errorf("address %s:22 is not free: %w", i.spec.IP, err)
	} else {
		l.Close()
	}
	upper, work, merged := filepath.Join(i.dir, "upper"), filepath.Join(i.dir, "work"), filepath.Join(i.dir, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if i.spec.ConsoleLog == "" {
		i.spec.ConsoleLog = filepath.Join(i.dir, "console.log")
	}
	console, err := os.OpenFile(i.spec.ConsoleLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	console.Close()
	master, slave, err := openConsole()
	if err != nil {
		return err
	}
	i.console, i.consoleTTY = make(chan struct{}), slave
	controlR, controlW, err := os.Pipe()
	if err != nil {
		slave.Close()
		master.Close()
		return err
	}
	defer controlR.Close()
	synced := func() { controlW.Write([]byte("console\n")) }
	go copyConsole(master, i.spec.ConsoleLog, synced, i.console)
	cfg, err := json.Marshal(initConfig{
		ID: i.spec.ID, Hostname: i.spec.Hostname, IP: i.spec.IP,
		Lowers: layers, Upper: upper, Work: work, Merged: merged,
		AuthorizedKey: i.spec.AuthorizedKey, UserData: i.spec.UserData,
	})
	if err != nil {
		controlW.Close()
		slave.Close()
		<-i.console
		return err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		controlW.Close()
		slave.Close()
		<-i.console
		return err
	}
	defer statusR.Close()

	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{"phoenix-init"},
		Env:        []string{initEnv + "=1"},
		Dir:        "/",
		Stdout:     slave,
		Stderr:     slave,
		ExtraFiles: []*os.File{controlR, statusW}, // fds 3 and 4
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET,
			Setsid:     true,
		},
	}
	if err := cmd.Start(); err != nil {
		statusW.Close()
		controlW.Close()
		slave.Close()
		<-i.console
		return fmt.Errorf("starting init: %w", err)
	}
	statusW.Close()
	i.cmd, i.control = cmd, controlW
	pid := cmd.Process.Pid
	if err := writePidFile(filepath.Join(i.dir, "init.pid"), pid); err != nil {
		i.kill()
		return err
	}
	// Into its own cgroup before it reads its configuration, so that the
	// cgroup namespace it makes has this cgroup as its root.
	if i.cgroup, err = instanceCgroup(i.rt.opts.StateDir, i.spec.ID, pid); err != nil {
		i.kill()
		return err
	}
	i.pidns, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	consoleLog := i.spec.ConsoleLog
	i.net, err = startNet(pid, i.spec.IP, i.spec.Metadata, func(format string, args ...any) {
		if f, err := os.OpenFile(consoleLog, os.O_WRONLY|os.O_APPEND, 0); err == nil {
			fmt.Fprintf(f, "phoenix-net: "+format+"\n", args...)
			f.Close()
		}
	})
	if err != nil {
		i.kill()
		return err
	}
	if _, err := controlW.Write(append(cfg, '\n')); err != nil {
		i.kill()
		return fmt.Errorf("configuring init: %w", err)
	}

	// Wait for the init to report, unless ctx ends first.
	type result struct {
		line string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(statusR).ReadString('\n')
		res <- result{strings.TrimSpace(line), err}
	}()
	select {
	case <-ctx.Done():
		i.kill()
		return ctx.Err()
	case r := <-res:
		switch r.line {
		case "ok":
			return nil
		case "ok systemd":
			i.systemd = true
			// The init's end of the pipe closed with the exec; the
			// watcher holds one in its place.
			if i.watcher, err = startWatcher(pid, controlR); err != nil {
				i.kill()
				return err
			}
			return nil
		}
		i.kill()
		if strings.HasPrefix(r.line, "error: ") {
			return errors.New(strings.TrimPrefix(r.line, "error: "))
		}
		return fmt.Errorf("init exited during boot (see console log %s)", i.spec.ConsoleLog)
	}
}

// kill ends a boot that failed and reaps the init.
func (i *Instance) kill() {
	i.cmd.Process.Kill()
	i.cmd.Wait()
	i.control.Close()
	i.release()
}

// release frees what the instance held on the host once its init has
// been reaped (and so every process of its pid namespace is gone): its
// relays and their connections, its cgroup, its console.
func (i *Instance) release() {
	if i.net != nil {
		i.net.Close()
	}
	if i.watcher != nil {
		i.watcher.Wait() // it exits when the init has
	}
	if i.cgroup != "" {
		if err := removeCgroup(i.cgroup); err != nil {
			fmt.Fprintf(os.Stderr, "%v\n", err)
		}
	}
	if i.console != nil {
		i.consoleTTY.Close() // the console ends once the reader has the rest
		select {
		case <-i.console:
		case <-time.After(5 * time.Second):
			// Something outside the instance holds its terminal.
		}
	}
	os.Remove(filepath.Join(i.dir, "init.pid"))
}

func (i *Instance) wait() {
	err := i.cmd.Wait()
	i.control.Close()
	i.release()
	i.rt.mu.Lock()
	if i.rt.running[i.spec.ID] == i {
		delete(i.rt.running, i.spec.ID)
	}
	i.rt.mu.Unlock()
	i.exitErr = err
	close(i.done)
}

// ID returns the instance's ID.
func (i *Instance) ID() string { return i.spec.ID }

// Spec returns the spec the instance was booted with.
func (i *Instance) Spec() InstanceSpec { return i.spec }

// Pid returns the host pid of the instance's init.
func (i *Instance) Pid() int { return i.cmd.Process.Pid }

// UpperDir returns the instance's writable layer.
func (i *Instance) UpperDir() string { return filepath.Join(i.dir, "upper") }

// Done is closed when the instance has stopped: every one of its processes
// is gone.
func (i *Instance) Done() <-chan struct{} { return i.done }

// Running reports whether the instance is still running.
func (i *Instance) Running() bool {
	select {
	case <-i.done:
		return false
	default:
		return true
	}
}

// WaitSSH waits until the instance's sshd accepts TCP connections.
func (i *Instance) WaitSSH(ctx context.Context) error {
	addr := net.JoinHostPort(i.spec.IP, "22")
	for {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("linuxrt: waiting for sshd of %s: %w", i.spec.ID, ctx.Err())
		case <-i.done:
			return fmt.Errorf("linuxrt: instance %s stopped", i.spec.ID)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Stop shuts the instance down: systemd is asked to power off (without
// systemd, every process gets SIGTERM), and whatever is left after
// StopTimeout, or when ctx ends, is killed. The instance's mounts live
// only in its own mount namespace and go with it. The writable layer is
// kept. When Stop returns, nothing of the instance is left on the host:
// no process, no relay listening at its address, no relayed connection.
func (i *Instance) Stop(ctx context.Context) error {
	if i.systemd {
		i.cmd.Process.Signal(sigPowerOff)
	}
	i.control.Close()
	grace := time.NewTimer(StopTimeout)
	defer grace.Stop()
	select {
	case <-i.done:
		return nil
	case <-ctx.Done():
	case <-grace.C:
	}
	i.cmd.Process.Signal(unix.SIGKILL)
	<-i.done
	return nil
}

// Snapshot copies the instance's writable layer into the new directory dst,
// which can then serve as an image layer. Deletions are kept as overlayfs
// whiteouts. It returns the number of bytes of file content copied.
//
// The instance should be stopped: a snapshot of a running instance is only
// as consistent as a copy of a disk in use.
func (i *Instance) Snapshot(dst string) (int64, error) {
	return snapshotDir(i.UpperDir(), dst)
}

func snapshotDir(upper, dst string) (int64, error) {
	dst, err := filepath.Abs(dst)
	if err != nil {
		return 0, err
	}
	if _, err := os.Lstat(dst); err == nil {
		return 0, fmt.Errorf("linuxrt: snapshot destination %s exists", dst)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	n, err := copyLayer(upper, filepath.Join(tmp, "layer"))
	if err != nil {
		return 0, fmt.Errorf("linuxrt: snapshot: %w", err)
	}
	if err := os.Rename(filepath.Join(tmp, "layer"), dst); err != nil {
		return 0, err
	}
	return n, nil
}

// Terminate stops the instance if it runs and deletes its writable layer
// and state directory.
func (r *Runtime) Terminate(ctx context.Context, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("linuxrt: invalid instance ID %q", id)
	}
	r.mu.Lock()
	inst := r.running[id]
	r.mu.Unlock()
	if inst != nil {
		if err := inst.Stop(ctx); err != nil {
			return err
		}
	}
	return removeAllSafe(r.instanceDir(id))
}

// Close stops every running instance and releases the state directory.
func (r *Runtime) Close() error {
	r.mu.Lock()
	r.closed = true
	var insts []*Instance
	for _, i := range r.running {
		insts = append(insts, i)
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, i := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i.Stop(ctx)
		}()
	}
	wg.Wait()
	err := unmountUnder(r.opts.StateDir)
	r.lock.Close()
	return err
}

func writePidFile(path string, pid int) error {
	start, err := procStartTime(pid)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(fmt.Sprintf("%d %d\n", pid, start)), 0o600)
}

// procStartTime returns field 22 of /proc/pid/stat: with the pid, it names
// a process for good.
func procStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(data)
	j := strings.LastIndexByte(s, ')')
	if j < 0 {
		return 0, fmt.Errorf("linuxrt: bad /proc/%d/stat", pid)
	}
	f := strings.Fields(s[j+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("linuxrt: bad /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// CleanupStale removes what a runtime that crashed left in stateDir: it
// kills instance inits still running (only processes recorded in its pid
// files, checked by start time) and detaches mounts below stateDir. It fails
// if a live runtime uses stateDir.
func CleanupStale(stateDir string) error {
	stateDir, err := filepath.Abs(stateDir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(stateDir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	lock, err := lockStateDir(stateDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	pidFiles, _ := filepath.Glob(filepath.Join(stateDir, "instances", "*", "init.pid"))
	var errs []error
	for _, pf := range pidFiles {
		if err := killRecorded(pf); err != nil {
			errs = append(errs, err)
			continue
		}
		os.Remove(pf)
	}
	if err := unmountUnder(stateDir); err != nil {
		errs = append(errs, err)
	}
	if err := removeStaleCgroups(stateDir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func killRecorded(pidFile string) error {
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return err
	}
	var pid int
	var start uint64
	if _, err := fmt.Sscanf(string(data), "%d %d", &pid, &start); err != nil || pid <= 1 {
		return nil // not ours to interpret; drop it
	}
	if now, err := procStartTime(pid); err != nil || now != start {
		return nil // gone, or the pid now names another process
	}
	ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("linuxrt: killing stale init %d: %w", pid, err)
	}
	// The init is gone once reaped by whoever adopted it. Its thread group
	// leader may show as a zombie earlier, while another of its threads is
	// still killing the namespace: then wait for the namespace to empty.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if now, err := procStartTime(pid); err != nil || now != start {
			return nil
		}
		if ns != "" && len(pidsInNamespace(ns, pid)) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("linuxrt: stale init %d did not die", pid)
}

// pidsInNamespace lists the processes whose pid namespace is ns (as
// readlink /proc/PID/ns/pid shows it), except the one given.
func pidsInNamespace(ns string, except int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == except {
			continue
		}
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && l == ns {
			out = append(out, pid)
		}
	}
	return out
}
