//go:build linux

package sim

import (
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// openPTY opens a pty pair and puts the slave in raw mode at baud before any
// client sees it: a cooked pty would echo the client's bytes back to it, turn
// CR into LF and hold input until a newline. The slave's speed is set to the
// board's baud so a client that never sets one (echo > DIR/ttySIM00) matches.
func openPTY(baud int) (master, slave *os.File, err error) {
	master, slave, err = pty.Open()
	if err != nil {
		return nil, nil, err
	}
	if master, err = pollable(master); err != nil {
		slave.Close()
		return nil, nil, err
	}
	err = withFd(slave, func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS2)
		if err != nil {
			return err
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		if baud > 0 {
			t.Cflag &^= unix.CBAUD
			t.Cflag |= unix.BOTHER
			t.Ispeed, t.Ospeed = uint32(baud), uint32(baud)
		}
		return unix.IoctlSetTermios(fd, unix.TCSETS2, t)
	})
	if err != nil {
		master.Close()
		slave.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

// pollable returns f's descriptor as a non-blocking *os.File. creack/pty's
// ioctls go through File.Fd, which leaves the master in blocking mode, where a
// Read cannot be interrupted: Unplug would wait forever for the reader. A
// non-blocking descriptor goes to Go's poller, and Close wakes the reader.
func pollable(f *os.File) (*os.File, error) {
	defer f.Close()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// lineBaud is the speed the client last set on the line, 0 if unknown.
// termios2 carries the number itself whichever way the client set it.
func lineBaud(slave *os.File) int {
	var baud int
	_ = withFd(slave, func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS2)
		if err == nil {
			baud = int(t.Ospeed)
		}
		return err
	})
	return baud
}

// withFd runs f on the raw descriptor without os.File.Fd's side effect of
// switching the file to blocking mode.
func withFd(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// lockDir takes an exclusive flock on DIR/.sim.lock so two simulators never
// play the same boards (both would write the same flash files).
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir+"/.sim.lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
