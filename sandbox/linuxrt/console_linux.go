package linuxrt

import (
	"fmt"
	"io"
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
// until the last holder of the terminal's other end closes it.
func copyConsole(master *os.File, log string, done chan<- struct{}) {
	defer close(done)
	defer master.Close()
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		io.Copy(io.Discard, master)
		return
	}
	defer f.Close()
	io.Copy(f, master) // ends with EIO when the instance has gone
}
