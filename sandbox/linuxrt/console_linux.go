package linuxrt

import (
	"bytes"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The instance's console is a terminal whose other end the runtime reads
// and appends to the console log, as EC2 records an instance's serial
// console: whatever the init, systemd and units write to /dev/console.

// openConsole makes a terminal pair: the runtime reads master, the
// instance's init gets slave as its stdout and stderr.
func openConsole() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening a console terminal: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlocking the console terminal: %w", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	// A log, not a screen: no "\n" to "\r\n", no echo.
	if t, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS); err == nil {
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ICANON
		unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, t)
	}
	return m, s, nil
}

// copyConsole appends what the instance writes to its console to log
// until the last holder of the terminal's other end closes it. When the
// init's line consoleSyncLine has been read (and written to the log),
// synced is called once.
func copyConsole(master *os.File, log string, synced func(), done chan<- struct{}) {
	defer close(done)
	defer master.Close()
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		f = nil
	}
	defer f.Close()
	marker := []byte("phoenix-init: " + consoleSyncLine + "\n")
	var tail []byte // the end of what was read, for a marker split across reads
	buf := make([]byte, 32<<10)
	for {
		n, err := master.Read(buf)
		if n > 0 {
			if f != nil {
				f.Write(buf[:n])
			}
			if synced != nil {
				tail = append(tail, buf[:n]...)
				if bytes.Contains(tail, marker) {
					synced()
					synced, tail = nil, nil
				} else if len(tail) > len(marker) {
					tail = append(tail[:0], tail[len(tail)-len(marker):]...)
				}
			}
		}
		if err != nil {
			return // EIO when the instance has gone
		}
	}
}
