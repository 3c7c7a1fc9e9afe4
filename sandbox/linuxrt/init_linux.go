package linuxrt

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The runtime starts an instance by re-executing its own binary with this
// variable set; Init then runs the instance init instead of the program.
const initEnv = "_PHOENIX_LINUXRT_INIT"

// Files the runtime hands to the instance init.
const (
	initFdControl = 3 // read: one JSON line of initConfig, then EOF when the runtime stops the instance or dies
	initFdStatus  = 4 // write: "ok\n" when sshd was started, or "error: ...\n"
)

// initCalled records that Init ran in the normal mode, so that Boot can tell
// a program that forgot to call it.
var initCalled bool

type initConfig struct {
	ID            string
	Hostname      string
	IP            string
	Lowers        []string // bottom first
	Upper         string
	Work          string
	Merged        string
	AuthorizedKey string
	UserData      []byte
}

// keptCaps is what processes of an instance may have: Docker's default set
// less CAP_MKNOD (there is no device cgroup here to make it harmless) and
// CAP_NET_RAW (raw packets would bypass the relays of the instance's network).
var keptCaps = []int{
	unix.CAP_CHOWN,
	unix.CAP_DAC_OVERRIDE,
	unix.CAP_FOWNER,
	unix.CAP_FSETID,
	unix.CAP_KILL,
	unix.CAP_SETGID,
	unix.CAP_SETUID,
	unix.CAP_SETPCAP,
	unix.CAP_NET_BIND_SERVICE,
	unix.CAP_SYS_CHROOT,
	unix.CAP_AUDIT_WRITE,
	unix.CAP_SETFCAP,
}

const instancePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Init must be called first thing in main (and in TestMain) by every program
// that boots instances. When the process is an instance init started by the
// runtime, Init runs the instance and exits; otherwise it returns at once.
func Init() {
	if os.Getenv(watchEnv) != "" {
		os.Exit(runWatcher())
	}
	if os.Getenv(initEnv) != "1" {
		initCalled = true
		return
	}
	// Capabilities, and the credentials children inherit, belong to a
	// thread: everything below runs on this one.
	runtime.LockOSThread()
	os.Exit(runInit())
}

// InitCalled reports whether Init ran in this program, as Boot requires.
func InitCalled() bool { return initCalled }

func initLog(format string, args ...any) {
	fmt.Fprintf(os.Stdout, "phoenix-init: "+format+"\n", args...)
}

func runInit() int {
	for _, fd := range []int{0, initFdControl, initFdStatus} {
		unix.CloseOnExec(fd)
	}
	status := os.NewFile(initFdStatus, "status")
	control := os.NewFile(initFdControl, "control")
	fail := func(err error) int {
		fmt.Fprintf(status, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		initLog("boot failed: %v", err)
		return 1
	}
	rd := bufio.NewReader(control)
	line, err := rd.ReadBytes('\n')
	if err != nil {
		return fail(fmt.Errorf("reading config: %w", err))
	}
	var cfg initConfig
	if err := json.Unmarshal(line, &cfg); err != nil {
		return fail(fmt.Errorf("reading config: %w", err))
	}
	// Stop (or the runtime's death) closes the control pipe.
	// Anything else the runtime writes is a console acknowledgement
	// (consoleSynced).
	stopRequested := make(chan struct{})
	consoleSynced := make(chan struct{}, 1)
	go func() {
		var b [64]byte
		for {
			n, err := control.Read(b[:])
			if err != nil {
				close(stopRequested)
				return
			}
			if n > 0 {
				select {
				case consoleSynced <- struct{}{}:
				default:
				}
			}
		}
	}()
	// Register before anything is started so that no SIGCHLD is missed.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)

	initLog("booting %s (%s) at %s", cfg.ID, cfg.Hostname, cfg.IP)
	firstBoot, err := setupInstance(&cfg)
	if err != nil {
		return fail(err)
	}
	if _, err := os.Stat(systemdPath); err == nil {
		err := bootSystemd(&cfg, firstBoot, status, consoleSynced)
		return fail(err) // bootSystemd returns only when it failed
	}
	if err := dropPrivileges(); err != nil {
		return fail(fmt.Errorf("dropping privileges: %w", err))
	}
	unix.Umask(0o022)

	if code, err := runWait([]string{"/usr/bin/ssh-keygen", "-A"}); err != nil || code != 0 {
		return fail(fmt.Errorf("ssh-keygen -A: exit %d: %v", code, err))
	}
	printHostKeys()

	// sshd listens on every address of the instance's own network, as on
	// EC2; the runtime relays the private IP's port 22 to it.
	sshdArgs := []string{"/usr/sbin/sshd", "-D", "-E", "/var/log/sshd.log"}
	sshd, err := spawn(sshdArgs, devNull, devNull)
	if err != nil {
		return fail(fmt.Errorf("starting sshd: %w", err))
	}
	fmt.Fprintf(status, "ok\n")
	status.Close()

	userData := 0
	if firstBoot {
		userData = runUserData(cfg.UserData)
	} else {
		markBootFinished(true)
	}

	sshdRestart := time.Time{}
	backoff := time.Second
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stopRequested:
			return shutdown()
		case sig := <-sigs:
			if sig != unix.SIGCHLD {
				initLog("got %v", sig)
				return shutdown()
			}
		case <-tick.C:
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			switch pid {
			case sshd:
				initLog("sshd exited (%s)", describeWait(ws))
				sshd = 0
				sshdRestart = time.Now().Add(backoff)
				backoff = min(2*backoff, 30*time.Second)
			case userData:
				initLog("user data script finished (%s)", describeWait(ws))
				userData = 0
				markBootFinished(ws.Exited() && ws.ExitStatus() == 0)
			}
		}
		if sshd == 0 && !sshdRestart.IsZero() && time.Now().After(sshdRestart) {
			if sshd, err = spawn(sshdArgs, devNull, devNull); err != nil {
				initLog("restarting sshd: %v", err)
				sshd = 0
				sshdRestart = time.Now().Add(backoff)
			} else {
				initLog("restarted sshd")
			}
		}
	}
}

func describeWait(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return "status " + strconv.Itoa(ws.ExitStatus())
}

// shutdown asks every process of the instance to stop, waits a little and
// kills what is left. The kernel kills anything still running once this
// process, the pid namespace's init, exits.
func shutdown() int {
	initLog("stopping")
	unix.Kill(-1, unix.SIGTERM)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.ECHILD) {
			break
		}
		if pid <= 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	unix.Kill(-1, unix.SIGKILL)
	initLog("stopped")
	return 0
}

// setupInstance builds the instance's file system view and pivots into it.
// It reports whether this is the first boot of this instance ID on this
// disk.
func setupInstance(cfg *initConfig) (firstBoot bool, err error) {
	unix.Umask(0)
	// Nothing mounted from here on may reach the host's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return false, fmt.Errorf("making mounts private: %w", err)
	}
	opts, err := overlayOptions(cfg.Lowers, cfg.Upper, cfg.Work)
	if err != nil {
		return false, err
	}
	if err := unix.Mount("overlay", cfg.Merged, "overlay", unix.MS_NODEV, opts); err != nil {
		return false, fmt.Errorf("mounting overlay: %w", err)
	}
	// The host's tools configure the instance's network namespace before
	// the pivot hides them.
	if err := setupNetwork(cfg); err != nil {
		return false, err
	}
	// The console (a terminal of the runtime's, which appends what it
	// reads to the console log) can only be bound into the tree while
	// the host's /dev/pts is still in this namespace.
	if err := setupDev(cfg.Merged); err != nil {
		return false, err
	}

	// pivot_root(".", ".") stacks the old root on top of the new one; the
	// detaching unmount then drops every host mount from this namespace.
	if err := unix.Chdir(cfg.Merged); err != nil {
		return false, err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return false, fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return false, fmt.Errorf("detaching host root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return false, err
	}
	// From here on every path is inside the instance: symlinks in the image
	// cannot lead out of it.
	if err := setupMounts(); err != nil {
		return false, err
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return false, fmt.Errorf("sethostname: %w", err)
	}
	if err := writeSystemFiles(cfg); err != nil {
		return false, err
	}
	firstBoot, err = markInstance(cfg.ID)
	if err != nil {
		return false, err
	}
	if err := linkCloudInstance(cfg.ID); err != nil {
		return false, fmt.Errorf("cloud-init's instance directory: %w", err)
	}
	if cfg.AuthorizedKey != "" {
		if err := installAuthorizedKey("admin", cfg.AuthorizedKey); err != nil {
			return false, fmt.Errorf("authorized key: %w", err)
		}
	}
	return firstBoot, nil
}

// setupDev mounts the instance's /dev and binds its console there: the
// terminal that is this process's stdout, when it is one.
func setupDev(root string) error {
	dev := filepath.Join(root, "dev")
	if err := mkdirMountpoint(dev, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return fmt.Errorf("mounting tmpfs on /dev: %w", err)
	}
	if _, err := unix.IoctlGetTermios(1, unix.TCGETS); err != nil {
		return nil // no terminal: the console log is a plain file
	}
	console := filepath.Join(dev, "console")
	if err := os.WriteFile(console, nil, 0o600); err != nil {
		return err
	}
	// By its path: the file descriptor belongs to the runtime's mount
	// namespace, and a bind mount's source must be in this one.
	tty, err := os.Readlink("/proc/self/fd/1")
	if err != nil || !strings.HasPrefix(tty, "/dev/pts/") {
		return fmt.Errorf("the console %q is not a terminal of /dev/pts", tty)
	}
	if err := unix.Mount(tty, console, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding the console: %w", err)
	}
	return nil
}

func setupMounts() error {
	const (
		nosuid = unix.MS_NOSUID
		nodev  = unix.MS_NODEV
		noexec = unix.MS_NOEXEC
	)
	type m struct {
		src, dst, fstype string
		flags            uintptr
		data             string
		mode             uint32
	}
	mounts := []m{
		{"proc", "/proc", "proc", nosuid | nodev | noexec, "", 0o555},
		{"sysfs", "/sys", "sysfs", nosuid | nodev | noexec | unix.MS_RDONLY, "", 0o555},
		{"devpts", "/dev/pts", "devpts", nosuid | noexec, "newinstance,ptmxmode=0666,mode=0620,gid=5", 0o755},
		{"tmpfs", "/dev/shm", "tmpfs", nosuid | nodev, "mode=1777,size=65536k", 0o1777},
		{"mqueue", "/dev/mqueue", "mqueue", nosuid | nodev | noexec, "", 0o755},
		{"tmpfs", "/run", "tmpfs", nosuid | nodev, "mode=755,size=65536k", 0o755},
		// systemd needs it mounted, and may not mount it itself.
		{"tmpfs", "/run/lock", "tmpfs", nosuid | nodev | noexec, "mode=1777,size=5120k", 0o1777},
	}
	for _, x := range mounts {
		if err := mkdirMountpoint(x.dst, x.mode); err != nil {
			return err
		}
		if err := unix.Mount(x.src, x.dst, x.fstype, x.flags, x.data); err != nil {
			return fmt.Errorf("mounting %s on %s: %w", x.fstype, x.dst, err)
		}
	}
	devices := []struct {
		name         string
		major, minor uint32
	}{
		{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
	}
	for _, d := range devices {
		if err := unix.Mknod("/dev/"+d.name, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return fmt.Errorf("mknod /dev/%s: %w", d.name, err)
		}
	}
	links := [][2]string{
		{"pts/ptmx", "/dev/ptmx"}, {"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
	}
	for _, l := range links {
		if err := os.Symlink(l[0], l[1]); err != nil {
			return err
		}
	}
	for _, d := range []struct {
		path string
		mode uint32
	}{{"/run/sshd", 0o755}} {
		if err := unix.Mkdir(d.path, d.mode); err != nil {
			return err
		}
	}
	// Like container runtimes: kernel knobs read-only, sensitive files hidden.
	for _, p := range []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"} {
		if err := bindReadOnly(p); err != nil {
			return err
		}
	}
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := unix.Mount("/dev/null", p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("masking %s: %w", p, err)
		}
	}
	for _, p := range []string{"/proc/acpi", "/proc/scsi", "/sys/firmware"} {
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			continue
		}
		if err := unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|nosuid|nodev|noexec, "size=0"); err != nil {
			return fmt.Errorf("masking %s: %w", p, err)
		}
	}
	return nil
}

func bindReadOnly(p string) error {
	if _, err := os.Stat(p); err != nil {
		return nil
	}
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", p, err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount("", p, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", p, err)
	}
	return nil
}

// mkdirMountpoint makes sure p is a real directory (not a symlink) to mount
// on.
func mkdirMountpoint(p string, mode uint32) error {
	fi, err := os.Lstat(p)
	if err == nil && fi.IsDir() {
		return nil
	}
	if err == nil {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return unix.Mkdir(p, mode)
}

// writeFile replaces p (never writing through a symlink) with data.
func writeFile(p string, data []byte, mode os.FileMode, uid, gid int) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".phoenix-tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// writeSystemFiles does what cloud-init and DHCP do at every boot of an EC2
// instance.
func writeSystemFiles(cfg *initConfig) error {
	hosts := fmt.Sprintf(`127.0.0.1 localhost
%s %s
::1 localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
`, cfg.IP, cfg.Hostname)
	files := []struct {
		path string
		data string
	}{
		{"/etc/hostname", cfg.Hostname + "\n"},
		{"/etc/hosts", hosts},
		// As DHCP on EC2: the Amazon DNS server.
		{"/etc/resolv.conf", "nameserver " + dnsIP + "\n"},
	}
	// Instances of earlier versions shared the host's network and wrote a
	// listen address for sshd; their images may still carry it.
	os.Remove("/etc/ssh/sshd_config.d/00-phoenix-listen.conf")
	for _, f := range files {
		if err := writeFile(f.path, []byte(f.data), 0o644, 0, 0); err != nil {
			return fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	return nil
}

// markInstance records the instance ID on its disk. A disk that carries
// another ID (or none) was cloned from an image: its ssh host keys are
// removed so that new ones are made, as cloud-init does.
func markInstance(id string) (firstBoot bool, err error) {
	const idFile = "/var/lib/phoenix/instance-id"
	old, _ := os.ReadFile(idFile)
	if strings.TrimSpace(string(old)) == id {
		return false, nil
	}
	keys, _ := filepath.Glob("/etc/ssh/ssh_host_*")
	for _, k := range keys {
		os.Remove(k)
	}
	if err := writeFile(idFile, []byte(id+"\n"), 0o644, 0, 0); err != nil {
		return false, err
	}
	return true, nil
}

// installAuthorizedKey appends key to the user's authorized_keys unless it
// is there already.
func installAuthorizedKey(user, key string) error {
	uid, gid, home, err := lookupUser(user)
	if err != nil {
		return err
	}
	key = strings.TrimSpace(key)
	dir := filepath.Join(home, ".ssh")
	if fi, err := os.Lstat(dir); err == nil && !fi.IsDir() {
		if err := os.Remove(dir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Lchown(dir, uid, gid); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(dir, "authorized_keys")
	old, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(old), "\n") {
		if strings.TrimSpace(l) == key {
			return nil
		}
	}
	data := string(old)
	if data != "" && !strings.HasSuffix(data, "\n") {
		data += "\n"
	}
	data += key + "\n"
	return writeFile(path, []byte(data), 0o600, uid, gid)
}

func lookupUser(name string) (uid, gid int, home string, err error) {
	data, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return 0, 0, "", err
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ":")
		if len(f) < 7 || f[0] != name {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || !filepath.IsAbs(f[5]) {
			break
		}
		return uid, gid, f[5], nil
	}
	return 0, 0, "", fmt.Errorf("no valid user %q in /etc/passwd", name)
}

// dropPrivileges reduces the capabilities of this thread, the one that
// starts every process of the instance, to keptCaps, bounding set included,
// so that root inside the instance (even through sudo) gets no more. The
// init process is also made non-dumpable: nothing in the instance may
// ptrace it or open its /proc files (exe, mem, fd, ...).
func dropPrivileges() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_DUMPABLE: %w", err)
	}
	keep := map[int]bool{}
	for _, c := range keptCaps {
		keep[c] = true
	}
	last := unix.CAP_LAST_CAP
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = n
		}
	}
	for c := 0; c <= last; c++ {
		if keep[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("PR_CAPBSET_DROP %d: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	var data [2]unix.CapUserData
	for _, c := range keptCaps {
		data[c/32].Effective |= 1 << (uint(c) % 32)
		data[c/32].Permitted |= 1 << (uint(c) % 32)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

const devNull = -1

// spawn starts argv inside the instance as root with a clean environment, in
// a session of its own. stdout and stderr are file descriptors of this
// process, or devNull.
func spawn(argv []string, stdout, stderr int) (int, error) {
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(null)
	if stdout == devNull {
		stdout = null
	}
	if stderr == devNull {
		stderr = null
	}
	env := []string{"PATH=" + instancePath, "HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/sh", "LANG=C.UTF-8"}
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   env,
		Files: []uintptr{uintptr(null), uintptr(stdout), uintptr(stderr)},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	return syscall.ForkExec(argv[0], argv, attr)
}

// runWait runs argv with its output on the console and waits for it.
func runWait(argv []string) (int, error) {
	pid, err := spawn(argv, 1, 2)
	if err != nil {
		return -1, err
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, err
		}
		return ws.ExitStatus(), nil
	}
}

// printHostKeys writes the public host keys to the console the way
// cloud-init does, so that clients can verify them.
func printHostKeys() {
	keys, _ := filepath.Glob("/etc/ssh/ssh_host_*_key.pub")
	var b strings.Builder
	b.WriteString("-----BEGIN SSH HOST KEY KEYS-----\n")
	for _, k := range keys {
		if data, err := os.ReadFile(k); err == nil {
			b.Write(bytes.TrimSpace(data))
			b.WriteByte('\n')
		}
	}
	b.WriteString("-----END SSH HOST KEY KEYS-----\n")
	os.Stdout.WriteString(b.String())
}

// startUserData runs a user data script as root in the background, its
// output appended to the console log (this process's stdout).
func startUserData(script []byte) (int, error) {
	const path = "/var/lib/phoenix/user-data"
	if err := writeFile(path, script, 0o700, 0, 0); err != nil {
		return 0, err
	}
	initLog("running user data script")
	return spawn([]string{path}, 1, 1)
}

// setupNetwork configures the instance's network namespace with the host's
// ip and iptables (the instance's image need not have them): lo up with
// the private IP and the DNS address, a default route, and
// every TCP connection to an address that is not the instance's own
// redirected to the runtime's outbound relay (see netns_linux.go).
func setupNetwork(cfg *initConfig) error {
	ipt := findIPTables()
	if ipt == "" {
		return errors.New("iptables is not installed on this machine (apt-get install iptables): the instance's network needs it")
	}
	ip := "/usr/sbin/ip"
	if _, err := os.Stat(ip); err != nil {
		ip = "/sbin/ip"
	}
	to := strconv.Itoa(outboundPort)
	cmds := [][]string{
		{ip, "link", "set", "lo", "up"},
		{ip, "addr", "add", cfg.IP + "/32", "dev", "lo"},
		{ip, "addr", "add", dnsIP + "/32", "dev", "lo"},
		{ip, "route", "add", "default", "dev", "lo", "src", cfg.IP},
		{ipt, "-w", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "127.0.0.1/32", "-j", "RETURN"},
		{ipt, "-w", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", cfg.IP + "/32", "-j", "RETURN"},
		// Other instances and load balancers: reached through the host.
		{ipt, "-w", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "127.0.0.0/8", "-j", "REDIRECT", "--to-ports", to},
		{ipt, "-w", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-m", "addrtype", "!", "--dst-type", "LOCAL", "-j", "REDIRECT", "--to-ports", to},
	}
	for _, argv := range cmds {
		code, err := runWait(argv)
		if err != nil || code != 0 {
			return fmt.Errorf("configuring the network (%s): exit %d: %v", strings.Join(argv, " "), code, err)
		}
	}
	return nil
}

// bootFinishedFile tells the cloud-init stand-in ("cloud-init status
// --wait") that the user data has finished: "done", or "error" when it
// failed. It is on /run, so every boot writes it again.
const bootFinishedFile = "/run/phoenix/boot-finished"

func markBootFinished(ok bool) {
	status := "done\n"
	if !ok {
		status = "error\n"
	}
	if err := writeFile(bootFinishedFile, []byte(status), 0o644, 0, 0); err != nil {
		initLog("writing %s: %v", bootFinishedFile, err)
	}
	// What cloud-init writes at the end of every boot, and what many
	// templates wait for before they provision.
	if err := writeFile(cloudBootFinished, []byte("phoenix\n"), 0o644, 0, 0); err != nil {
		initLog("writing %s: %v", cloudBootFinished, err)
	}
}

// cloudBootFinished is cloud-init's mark of a finished boot, in the
// directory of the current instance (/var/lib/cloud/instance links to
// /var/lib/cloud/instances/ID).
const cloudBootFinished = "/var/lib/cloud/instance/boot-finished"

// linkCloudInstance points /var/lib/cloud/instance at this instance's
// directory, as cloud-init does at every boot, and removes the mark of
// the boot before.
func linkCloudInstance(id string) error {
	dir := "/var/lib/cloud/instances/" + id
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	os.Remove(filepath.Join(dir, "boot-finished"))
	link := "/var/lib/cloud/instance"
	if fi, err := os.Lstat(link); err == nil && fi.IsDir() {
		if err := os.RemoveAll(link); err != nil {
			return err
		}
	} else {
		os.Remove(link)
	}
	return os.Symlink(dir, link)
}

// runUserData starts the user data of an instance's first boot as
// cloud-init would: a "#!" script as it is, a #cloud-config document as
// the script it renders to. It returns the pid of the script, or 0 when
// nothing runs (and then has marked the boot finished).
func runUserData(data []byte) int {
	script := data
	switch {
	case bytes.HasPrefix(data, []byte("#!")):
	case bytes.HasPrefix(data, []byte(cloudConfigHeader)):
		s, err := cloudConfigScript(data)
		if err != nil {
			initLog("user data: %v", err)
			markBootFinished(false)
			return 0
		}
		initLog("user data is #cloud-config")
		script = []byte(s)
	default:
		markBootFinished(true)
		return 0
	}
	pid, err := startUserData(script)
	if err != nil {
		initLog("user data: %v", err)
		markBootFinished(false)
		return 0
	}
	return pid
}
