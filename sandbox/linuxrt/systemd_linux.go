package linuxrt

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// An image with systemd boots as an EC2 instance of Debian's cloud image
// does: systemd is PID 1 and starts the units enabled in the image (sshd
// among them). What cloud-init does on EC2 before and around that is done
// here: the host name, the network (as DHCP would), the authorized key,
// new ssh host keys on an instance's first boot, and the user data, run
// once per instance by a unit with its output on the console.
//
// systemd runs as in a container (container=phoenix): in its own cgroup
// namespace, with a cgroup v2 hierarchy of its own that the runtime made
// for the instance (cgroup_linux.go), /run on a tmpfs, and /dev/console
// the runtime's terminal for the console log.
//
// Stop asks systemd to power off (SIGRTMIN+4, as `systemctl poweroff`
// does), and kills the instance if it has not stopped within
// StopTimeout: EC2 stops (and terminates) an instance with a graceful OS
// shutdown first, and shuts it down forcibly when that does not finish.
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StopInstances.html
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-terminate-methods.html

// systemdPath is the init an image with systemd has.
const systemdPath = "/lib/systemd/systemd"

// sigPowerOff is SIGRTMIN+4 as glibc (and systemd) numbers it: systemd
// as PID 1 powers the system off when it gets it.
const sigPowerOff = syscall.Signal(34 + 4)

const userDataUnit = "phoenix-user-data.service"

// consoleSyncLine is the init's last line on the console before systemd
// starts; the runtime answers it on the control pipe once it has read it.
const consoleSyncLine = "starting systemd"

// bootSystemd finishes what the init does for an instance of an image
// with systemd and replaces the init with systemd. It returns only on
// failure.
func bootSystemd(cfg *initConfig, firstBoot bool, status *os.File, consoleSynced <-chan struct{}) error {
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return fmt.Errorf("cgroup namespace: %w", err)
	}
	if err := unix.Mount("cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting the instance's cgroup hierarchy: %w", err)
	}
	unix.Umask(0o022)
	if code, err := runWait([]string{"/usr/bin/ssh-keygen", "-A"}); err != nil || code != 0 {
		return fmt.Errorf("ssh-keygen -A: exit %d: %v", code, err)
	}
	printHostKeys()
	if err := os.MkdirAll("/run/phoenix", 0o755); err != nil {
		return err
	}
	if firstBoot && hasUserData(cfg.UserData) {
		if err := installUserDataUnit(cfg.UserData); err != nil {
			initLog("user data: %v", err)
			markBootFinished(false)
		}
	} else {
		markBootFinished(true)
	}
	if err := dropPrivileges(); err != nil {
		return fmt.Errorf("dropping privileges: %w", err)
	}
	// systemd flushes the console's terminal when it takes it over: what
	// the runtime has not read by then (the host keys among it) would be
	// lost. The runtime acknowledges this line once it has read it.
	initLog(consoleSyncLine)
	select {
	case <-consoleSynced:
	case <-time.After(10 * time.Second):
		initLog("the console was not acknowledged; some lines may be missing")
	}
	fmt.Fprintf(status, "ok systemd\n")
	status.Close()
	env := []string{"container=phoenix", "PATH=" + instancePath, "LANG=C.UTF-8"}
	err := unix.Exec(systemdPath, []string{"/sbin/init"}, env)
	return fmt.Errorf("starting systemd: %w", err)
}

func hasUserData(data []byte) bool {
	return bytes.HasPrefix(data, []byte("#!")) || bytes.HasPrefix(data, []byte(cloudConfigHeader))
}

// installUserDataUnit writes the user data script and a unit that runs it
// once, after the system is up, as cloud-init's final stage does. The
// unit lives in /run: it is not part of the disk, so an image made from
// the instance does not carry it.
func installUserDataUnit(data []byte) error {
	script := data
	if bytes.HasPrefix(data, []byte(cloudConfigHeader)) {
		s, err := cloudConfigScript(data)
		if err != nil {
			return err
		}
		initLog("user data is #cloud-config")
		script = []byte(s)
	}
	const path = "/var/lib/phoenix/user-data"
	if err := writeFile(path, script, 0o700, 0, 0); err != nil {
		return err
	}
	unit := strings.Join([]string{
		"[Unit]",
		"Description=Instance user data (phoenix's cloud-init)",
		"After=multi-user.target network-online.target",
		"",
		"[Service]",
		"Type=oneshot",
		"RemainAfterExit=yes",
		"TimeoutStartSec=0",
		"StandardOutput=journal+console",
		"StandardError=journal+console",
		"ExecStart=/bin/sh -c '" + path + "; rc=$?; if [ $rc = 0 ]; then s=done; else s=error; fi; echo \"phoenix-init: user data script finished (status $rc)\"; echo $s > " + bootFinishedFile + "; echo phoenix > " + cloudBootFinished + "; exit $rc'",
		"",
	}, "\n")
	dir := "/run/systemd/system"
	if err := writeFile(filepath.Join(dir, userDataUnit), []byte(unit), 0o644, 0, 0); err != nil {
		return err
	}
	wants := filepath.Join(dir, "multi-user.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		return err
	}
	initLog("running user data script")
	return os.Symlink("../"+userDataUnit, filepath.Join(wants, userDataUnit))
}
