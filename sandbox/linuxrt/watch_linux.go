package linuxrt

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// An instance whose init is systemd cannot watch the runtime's pipe
// itself, as phoenix's own init does: a small process on the host, the
// runtime's program started again in this mode, holds the pipe for it.
// When the pipe closes (Stop, or the runtime's process dying) it asks
// systemd to power off and kills the instance if it is still there after
// StopTimeout. It exits as soon as the instance's init has gone.

const watchEnv = "_PHOENIX_LINUXRT_WATCH"

// startWatcher starts the watcher of the init pid, handing it control
// (the read end of the runtime's pipe).
func startWatcher(pid int, control *os.File) (*exec.Cmd, error) {
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{"phoenix-watch"},
		Env:        []string{watchEnv + "=" + strconv.Itoa(pid), "_PHOENIX_LINUXRT_STOP_TIMEOUT=" + StopTimeout.String()},
		Dir:        "/",
		ExtraFiles: []*os.File{control}, // fd 3
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the instance's watcher: %w", err)
	}
	return cmd, nil
}

// runWatcher is the watcher's main.
func runWatcher() int {
	pid, err := strconv.Atoi(os.Getenv(watchEnv))
	if err != nil || pid <= 1 {
		return 2
	}
	timeout, err := time.ParseDuration(os.Getenv("_PHOENIX_LINUXRT_STOP_TIMEOUT"))
	if err != nil {
		timeout = 30 * time.Second
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0 // gone already
	}
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}, {Fd: 3, Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || fds[0].Revents != 0 {
			return 0 // the init has exited
		}
		if fds[1].Revents != 0 {
			var b [64]byte
			if n, err := unix.Read(3, b[:]); n > 0 && err == nil {
				continue
			}
			break // the runtime closed the pipe or died
		}
	}
	unix.PidfdSendSignal(pidfd, sigPowerOff, nil, 0)
	fds = fds[:1]
	n, err := unix.Poll(fds, int(timeout/time.Millisecond))
	if err == nil && n > 0 {
		return 0
	}
	unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
	return 0
}
