//go:build unix

package burner

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockPort takes an exclusive, non-blocking flock on the device node. The lock
// lives on its own descriptor, held for as long as the port is open; the kernel
// drops it if the process dies, so a crashed station never leaves a port stuck.
// O_NONBLOCK keeps a real UART without carrier from blocking the open.
func lockPort(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.EBUSY) { // TIOCEXCL held by another, non-root, process
			return nil, ErrBusy
		}
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrBusy
		}
		return nil, err
	}
	return f, nil
}

func unlockPort(f *os.File) {
	if f != nil {
		f.Close() // closing the descriptor releases the flock
	}
}

// isNoDevice reports errors that mean the device node is there but nothing is
// behind it (a USB adapter pulled out between listing and opening).
func isNoDevice(err error) bool {
	return errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV)
}
