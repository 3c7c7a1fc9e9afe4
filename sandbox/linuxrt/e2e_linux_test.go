package linuxrt

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

var (
	baseOnce sync.Once
	basePath string
	baseErr  error
)

// testBase returns the cached base rootfs, building it on first use.
// PHOENIX_ROOTFS_CACHE overrides the cache directory.
func testBase(t testing.TB) string {
	t.Helper()
	baseOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		var log bytes.Buffer
		start := time.Now()
		basePath, baseErr = EnsureBaseRootfs(ctx, os.Getenv("PHOENIX_ROOTFS_CACHE"), &log)
		if baseErr != nil {
			baseErr = fmt.Errorf("%w\n%s", baseErr, lastLines(log.String(), 40))
		}
		t.Logf("base rootfs %s ready in %s", basePath, time.Since(start).Round(time.Millisecond))
	})
	if baseErr != nil {
		t.Fatalf("EnsureBaseRootfs: %v", baseErr)
	}
	return basePath
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// testIP returns an instance address unlikely to clash with other test
// processes on the machine.
func testIP(n int) string {
	pid := os.Getpid()
	return fmt.Sprintf("127.99.%d.%d", pid%250+1, n)
}

// newTestRuntime returns a runtime on a fresh state directory and, at the
// end of the test, closes it and checks that no mount or process of it is
// left.
func newTestRuntime(t testing.TB) (*Runtime, string) {
	t.Helper()
	state, err := os.MkdirTemp("", "linuxrt-state-")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := New(Options{StateDir: state, BaseRootfs: testBase(t)})
	if err != nil {
		os.RemoveAll(state)
		t.Fatal(err)
	}
	var nsMu sync.Mutex
	namespaces := map[string]bool{}
	rt.onBoot = func(i *Instance) {
		nsMu.Lock()
		namespaces[i.pidns] = true
		nsMu.Unlock()
		recordNSInit(i.pidns, i.Pid())
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		checkNoMounts(t, state)
		nsMu.Lock()
		defer nsMu.Unlock()
		checkNoProcesses(t, namespaces)
		if err := removeAllSafe(state); err != nil {
			t.Errorf("removing state: %v", err)
		}
	})
	return rt, state
}

// checkNoMounts fails t if anything is mounted below dir, or some layer
// view is still mounted.
func checkNoMounts(t testing.TB, dir string) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if strings.HasPrefix(mp, dir) || strings.Contains(mp, "phoenix-layers-") {
			t.Errorf("mount left behind: %s", l)
		}
	}
}

// checkNoProcesses fails t if a process lives in one of the given pid
// namespaces (as named by readlink /proc/PID/ns/pid).
func checkNoProcesses(t testing.TB, namespaces map[string]bool) {
	t.Helper()
	if left := processesIn(namespaces); len(left) > 0 {
		var desc []string
		for _, pid := range left {
			desc = append(desc, strings.TrimSpace(readFile(fmt.Sprintf("/proc/%d/stat", pid))))
		}
		t.Errorf("processes left behind in instance namespaces:\n%s", strings.Join(desc, "\n"))
	}
}

func processesIn(namespaces map[string]bool) []int {
	ents, _ := os.ReadDir("/proc")
	var left []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
		// Zombies are dead; the host's init may take its time reaping an
		// init adopted from a killed runtime.
		if err != nil || !namespaces[ns] || strings.Contains(readFile(fmt.Sprintf("/proc/%d/stat", pid)), ") Z ") {
			continue
		}
		// A namespace's inode number is reused once the namespace is
		// gone, and other runtimes run on the machine: a namespace whose
		// init has died is empty (the kernel kills the rest of it before
		// the init's exit completes), and a process found under its name
		// lives in someone else's.
		if !nsInitAlive(ns) {
			continue
		}
		left = append(left, pid)
	}
	return left
}

func newKey(t testing.TB) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " test@phoenix"
}

// consoleHostKeys parses the host keys the init printed on the console.
func consoleHostKeys(t testing.TB, console string) []ssh.PublicKey {
	t.Helper()
	data, err := os.ReadFile(console)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	begin := strings.LastIndex(text, "-----BEGIN SSH HOST KEY KEYS-----")
	end := strings.LastIndex(text, "-----END SSH HOST KEY KEYS-----")
	if begin < 0 || end < begin {
		t.Fatalf("no host keys on the console:\n%s", text)
	}
	var keys []ssh.PublicKey
	for _, l := range strings.Split(text[begin:end], "\n")[1:] {
		if strings.TrimSpace(l) == "" {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(l))
		if err != nil {
			t.Fatalf("bad host key line %q: %v", l, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		t.Fatal("empty host key block on the console")
	}
	return keys
}

// sshTo waits for the instance's sshd and logs in as admin, accepting only
// a host key printed on its console. It returns the client and the host key
// the server presented.
func sshTo(t testing.TB, ctx context.Context, inst *Instance, signer ssh.Signer) (*ssh.Client, ssh.PublicKey) {
	t.Helper()
	if err := inst.WaitSSH(ctx); err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, readFile(inst.Spec().ConsoleLog))
	}
	known := consoleHostKeys(t, inst.Spec().ConsoleLog)
	var presented ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User: "admin",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			for _, k := range known {
				if bytes.Equal(k.Marshal(), key.Marshal()) {
					presented = key
					return nil
				}
			}
			return errors.New("host key not on the console")
		},
		Timeout: 10 * time.Second,
	}
	var lastErr error
	for ctx.Err() == nil {
		c, err := ssh.Dial("tcp", net.JoinHostPort(inst.Spec().IP, "22"), cfg)
		if err == nil {
			return c, presented
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("ssh to %s: %v\nsshd log:\n%s", inst.ID(), lastErr, readFile(filepath.Join(inst.UpperDir(), "var/log/sshd.log")))
	return nil, nil
}

func readFile(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func run(c *ssh.Client, cmd string) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	return string(out), err
}

func mustRun(t testing.TB, c *ssh.Client, cmd string) string {
	t.Helper()
	out, err := run(c, cmd)
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	return strings.TrimSpace(out)
}

func waitConsole(t testing.TB, console, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(readFile(console), want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("console never showed %q:\n%s", want, readFile(console))
}

// sshListeners returns the local addresses listening on TCP port 22.
func sshListeners(t testing.TB) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 4 || f[3] != "0A" { // LISTEN
			continue
		}
		host, port, _ := strings.Cut(f[1], ":")
		if port != "0016" {
			continue
		}
		b, _ := hex.DecodeString(host)
		if len(b) == 4 {
			out = append(out, net.IPv4(b[3], b[2], b[1], b[0]).String())
		}
	}
	return out
}

func TestInstanceLifecycle(t *testing.T) {
	requireE2E(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	base := testBase(t)
	rt, state := newTestRuntime(t)
	if err := CleanupStale(state); err == nil {
		t.Error("CleanupStale succeeded on the state directory of a live runtime")
	}
	signer, authorized := newKey(t)
	logs := t.TempDir()

	spec1 := InstanceSpec{
		ID:            "i-0001",
		Hostname:      "ip-127-99-0-1",
		IP:            testIP(1),
		AuthorizedKey: authorized,
		UserData:      []byte("#!/bin/sh\necho \"user data says hello from $(hostname) as $(id -u)\"\necho ran >> /root/user-data-runs\n"),
		ConsoleLog:    filepath.Join(logs, "i-0001.log"),
	}
	start := time.Now()
	i1, err := rt.Boot(ctx, spec1)
	if err != nil {
		t.Fatal(err)
	}
	c1, hostKey1 := sshTo(t, ctx, i1, signer)
	t.Logf("first boot to ssh login: %s", time.Since(start).Round(time.Millisecond))

	if got := mustRun(t, c1, "sudo id -u"); got != "0" {
		t.Errorf("sudo id -u = %q, want 0", got)
	}
	if got := mustRun(t, c1, "id -un"); got != "admin" {
		t.Errorf("id -un = %q", got)
	}
	if got := mustRun(t, c1, "hostname"); got != spec1.Hostname {
		t.Errorf("hostname = %q, want %q", got, spec1.Hostname)
	}
	if got := mustRun(t, c1, "grep ^ID= /etc/os-release; cat /etc/debian_version"); !strings.Contains(got, "ID=debian") || !strings.HasPrefix(strings.Split(got, "\n")[1], "12") {
		t.Errorf("not Debian 12: %q", got)
	}
	mustRun(t, c1, "echo persisted > /home/admin/marker && sudo rm /etc/issue.net && sync")

	// Root inside is not root of the machine.
	hostForward := readFile("/proc/sys/net/ipv4/ip_forward")
	if out, err := run(c1, "sudo sysctl -w net.ipv4.ip_forward=1"); err == nil {
		t.Errorf("sysctl -w succeeded inside the instance: %s", out)
	}
	if got := readFile("/proc/sys/net/ipv4/ip_forward"); got != hostForward {
		t.Errorf("host ip_forward changed from %q to %q", hostForward, got)
	}
	if out, err := run(c1, "sudo mount -t tmpfs x /mnt"); err == nil {
		t.Errorf("mount succeeded inside the instance: %s", out)
	}
	// PID 1 is the image's systemd, not a program of the host's.
	if out, err := run(c1, "sudo readlink /proc/1/exe"); err != nil || strings.TrimSpace(out) != "/usr/lib/systemd/systemd" {
		t.Errorf("init's /proc/1/exe inside the instance: %q, %v", out, err)
	}
	capBnd := mustRun(t, c1, "sudo grep CapBnd /proc/self/status")
	if want := fmt.Sprintf("%016x", keptCapMask()); !strings.HasSuffix(capBnd, want) {
		t.Errorf("bounding set inside: %q, want %s", capBnd, want)
	}
	if got := mustRun(t, c1, "ps -e -o comm= | sort | tr '\\n' ' '"); strings.Contains(got, "go") || !strings.Contains(got, "sshd") {
		t.Logf("processes inside: %s", got)
	}
	if got := mustRun(t, c1, "awk '$5 != \"/\" {print $5}' /proc/self/mountinfo | sort | tr '\\n' ' '"); strings.Contains(got, "/tmp") || strings.Contains(got, "/work") {
		t.Errorf("host mounts visible inside: %s", got)
	}
	for _, a := range sshListeners(t) {
		if !strings.HasPrefix(a, "127.") || a == "0.0.0.0" {
			t.Errorf("something listens on %s:22", a)
		}
	}
	waitConsole(t, spec1.ConsoleLog, "user data says hello from "+spec1.Hostname+" as 0", 30*time.Second)
	c1.Close()

	if err := i1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if i1.Running() {
		t.Fatal("instance still running after Stop")
	}
	if c, err := net.DialTimeout("tcp", spec1.IP+":22", time.Second); err == nil {
		c.Close()
		t.Error("sshd still accepts connections after Stop")
	}

	// Start it again: same disk, same host key, user data not run again.
	i1, err = rt.Boot(ctx, spec1)
	if err != nil {
		t.Fatal(err)
	}
	c1, hostKey1b := sshTo(t, ctx, i1, signer)
	if got := mustRun(t, c1, "cat /home/admin/marker; sudo cat /root/user-data-runs"); got != "persisted\nran" {
		t.Errorf("after restart: %q", got)
	}
	if !bytes.Equal(hostKey1.Marshal(), hostKey1b.Marshal()) {
		t.Error("host key changed across a restart")
	}
	c1.Close()
	if err := i1.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	layer := filepath.Join(t.TempDir(), "layer-1")
	n, err := i1.Snapshot(layer)
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 {
		t.Errorf("Snapshot copied %d bytes", n)
	}
	t.Logf("snapshot: %d bytes", n)

	merged, cleanup, err := OpenMerged([]string{base, layer})
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(filepath.Join(merged, "home/admin/marker")); got != "persisted\n" {
		t.Errorf("marker in merged image: %q", got)
	}
	if _, err := os.Lstat(filepath.Join(merged, "etc/issue.net")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleted file in merged image: %v", err)
	}
	if _, err := os.Stat(filepath.Join(merged, "etc/issue")); err != nil {
		t.Errorf("base file missing from merged image: %v", err)
	}
	if err := cleanup(); err != nil {
		t.Error(err)
	}

	spec2 := InstanceSpec{
		ID:            "i-0002",
		Hostname:      "ip-127-99-0-2",
		IP:            testIP(2),
		Layers:        []string{layer},
		AuthorizedKey: authorized,
		ConsoleLog:    filepath.Join(logs, "i-0002.log"),
	}
	i2, err := rt.Boot(ctx, spec2)
	if err != nil {
		t.Fatal(err)
	}
	c2, hostKey2 := sshTo(t, ctx, i2, signer)
	if got := mustRun(t, c2, "cat /home/admin/marker; test ! -e /etc/issue.net && echo gone; hostname"); got != "persisted\ngone\n"+spec2.Hostname {
		t.Errorf("instance from snapshot: %q", got)
	}
	if bytes.Equal(hostKey1.Marshal(), hostKey2.Marshal()) {
		t.Error("instance from an image kept the host key of the instance it was made from")
	}
	c2.Close()
	if err := rt.Terminate(ctx, "i-0002"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rt.instanceDir("i-0002")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("instance directory left after Terminate: %v", err)
	}
	if _, err := os.Stat(filepath.Join(layer, "home/admin/marker")); err != nil {
		t.Errorf("layer damaged by Terminate: %v", err)
	}
}

func keptCapMask() uint64 {
	var m uint64
	for _, c := range keptCaps {
		m |= 1 << uint(c)
	}
	return m
}

func TestBootErrors(t *testing.T) {
	requireE2E(t)
	rt, _ := newTestRuntime(t)
	ctx := context.Background()
	for _, spec := range []InstanceSpec{
		{ID: "bad/id", IP: testIP(9)},
		{ID: "i-x", IP: "10.0.0.1"},
		{ID: "i-x", IP: testIP(9), Layers: []string{"/nonexistent-layer"}},
		{ID: "i-x", IP: testIP(9), Layers: []string{"relative"}},
		{ID: "i-x", IP: testIP(9), AuthorizedKey: "a\nb"},
	} {
		if inst, err := rt.Boot(ctx, spec); err == nil {
			inst.Stop(ctx)
			t.Errorf("Boot(%+v) succeeded", spec)
		}
	}
	// A failure inside the instance init is reported by Boot.
	comma := filepath.Join(t.TempDir(), "a,b")
	if err := os.Mkdir(comma, 0o755); err != nil {
		t.Fatal(err)
	}
	if inst, err := rt.Boot(ctx, InstanceSpec{ID: "i-x", IP: testIP(9), Layers: []string{comma}}); err == nil {
		inst.Stop(ctx)
		t.Error("Boot with a layer path containing ',' succeeded")
	} else if !strings.Contains(err.Error(), "contains") {
		t.Errorf("unexpected error: %v", err)
	}
	// An address somebody else listens on.
	l, err := net.Listen("tcp", testIP(9)+":22")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if inst, err := rt.Boot(ctx, InstanceSpec{ID: "i-x", IP: testIP(9)}); err == nil {
		inst.Stop(ctx)
		t.Error("Boot on a busy address succeeded")
	}
}

// The helper process of TestCleanupStale: boots an instance, hands the pipe
// that keeps it alive to a child that outlives this process, reports, and
// waits to be killed.
const staleHelperEnv = "_PHOENIX_LINUXRT_TEST_STALE_HELPER"

func init() {
	if os.Getenv(staleHelperEnv) == "" {
		return
	}
	// TestMain's Init() has not run yet: this runs before it.
	initCalled = true
	err := func() error {
		rt, err := New(Options{StateDir: os.Getenv("STATE"), BaseRootfs: os.Getenv("BASE")})
		if err != nil {
			return err
		}
		ctx := context.Background()
		inst, err := rt.Boot(ctx, InstanceSpec{ID: "i-stale", IP: os.Getenv("IP")})
		if err != nil {
			return err
		}
		if err := inst.WaitSSH(ctx); err != nil {
			return err
		}
		holder := exec.Command("sleep", "600")
		holder.ExtraFiles = []*os.File{inst.control}
		holder.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := holder.Start(); err != nil {
			return err
		}
		fmt.Printf("ready %d %d\n", inst.Pid(), holder.Process.Pid)
		return nil
	}()
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	select {}
}

func TestCleanupStale(t *testing.T) {
	requireE2E(t)
	base := testBase(t)
	state, err := os.MkdirTemp("", "linuxrt-stale-")
	if err != nil {
		t.Fatal(err)
	}
	defer removeAllSafe(state)
	ip := testIP(3)

	helper := exec.Command("/proc/self/exe", "-test.run=^$")
	helper.Env = append(os.Environ(), staleHelperEnv+"=1", "STATE="+state, "BASE="+base, "IP="+ip)
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	var initPid, holderPid int
	if _, err := fmt.Sscanf(line, "ready %d %d", &initPid, &holderPid); err != nil {
		helper.Process.Kill()
		helper.Wait()
		t.Fatalf("helper: %q", line)
	}
	defer syscall.Kill(holderPid, syscall.SIGKILL)
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", initPid))
	if err != nil {
		t.Fatal(err)
	}
	recordNSInit(ns, initPid)
	// The runtime's process dies without cleaning up.
	helper.Process.Kill()
	helper.Wait()
	time.Sleep(200 * time.Millisecond)
	if len(processesIn(map[string]bool{ns: true})) == 0 {
		t.Fatal("the instance died with its runtime although its pipe was held open")
	}

	if err := CleanupStale(state); err != nil {
		t.Fatal(err)
	}
	checkNoProcesses(t, map[string]bool{ns: true})
	checkNoMounts(t, state)
	if _, err := os.Stat(filepath.Join(state, "instances/i-stale/init.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left: %v", err)
	}
	if c, err := net.DialTimeout("tcp", ip+":22", time.Second); err == nil {
		c.Close()
		t.Error("stale sshd still accepts connections")
	}

	// The disk survived: boot it again from a new runtime.
	syscall.Kill(holderPid, syscall.SIGKILL)
	rt, err := New(Options{StateDir: state, BaseRootfs: base})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	inst, err := rt.Boot(ctx, InstanceSpec{ID: "i-stale", IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.WaitSSH(ctx); err != nil {
		t.Fatal(err)
	}
	ns2 := inst.pidns
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoProcesses(t, map[string]bool{ns2: true})
	if strings.Count(readFile(inst.Spec().ConsoleLog), "booting i-stale") != 2 {
		t.Errorf("console log:\n%s", readFile(inst.Spec().ConsoleLog))
	}
}

// A runtime that dies takes its instances with it.
func TestInstancesDieWithRuntime(t *testing.T) {
	requireE2E(t)
	rt, _ := newTestRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	inst, err := rt.Boot(ctx, InstanceSpec{ID: "i-orphan", IP: testIP(4)})
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.WaitSSH(ctx); err != nil {
		t.Fatal(err)
	}
	inst.control.Close() // what the kernel does when the runtime's process dies
	select {
	case <-inst.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("instance still running 10s after its runtime's pipe closed")
	}
	// systemd powered the system off.
	if !strings.Contains(readFile(inst.Spec().ConsoleLog), "Reached target poweroff.target") {
		t.Errorf("console log:\n%s", readFile(inst.Spec().ConsoleLog))
	}
}

func BenchmarkBootTwo(b *testing.B) {
	requireE2E(b)
	rt, _ := newTestRuntime(b)
	_, authorized := newKey(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var total time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for k := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				inst, err := rt.Boot(ctx, InstanceSpec{
					ID: fmt.Sprintf("bench-%d-%d", n, k), IP: testIP(10 + k), AuthorizedKey: authorized,
				})
				if err == nil {
					err = inst.WaitSSH(ctx)
				}
				errs[k] = err
			}()
		}
		wg.Wait()
		total += time.Since(start)
		b.StopTimer()
		for k := range 2 {
			if errs[k] != nil {
				b.Fatal(errs[k])
			}
			if err := rt.Terminate(ctx, fmt.Sprintf("bench-%d-%d", n, k)); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/boot-two")
}

// nsInits records the init of each instance namespace the tests made, by
// pid and start time (a pid alone may name another process later).
var nsInits sync.Map // pid namespace -> [2]uint64{pid, start}

func recordNSInit(ns string, pid int) {
	if start, err := procStartTime(pid); err == nil {
		nsInits.Store(ns, [2]uint64{uint64(pid), start})
	}
}

// nsInitAlive reports whether the init of ns still runs; true when the
// init was not recorded.
func nsInitAlive(ns string) bool {
	v, ok := nsInits.Load(ns)
	if !ok {
		return true
	}
	id := v.([2]uint64)
	start, err := procStartTime(int(id[0]))
	return err == nil && start == id[1]
}
