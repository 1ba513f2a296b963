package burner

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"go.bug.st/serial"
)

// Port is one board's serial line as the drivers need it. Read returns 0, nil
// when the read timeout expires with nothing received (go.bug.st/serial's
// contract), and an error once the device is gone.
type Port interface {
	io.ReadWriteCloser
	SetReadTimeout(d time.Duration) error
	Name() string // the path it was opened with
}

// The kinds of Open failure, for errors.Is. The error text itself says what to do.
var (
	ErrNotExist   = errors.New("port does not exist")
	ErrBusy       = errors.New("port is busy")
	ErrPermission = errors.New("permission denied on port")
	ErrNotSerial  = errors.New("not a serial port")
)

// DefaultBaud is what the AT firmwares speak out of the box.
const DefaultBaud = 115200

// Open opens path at baud (8N1, no flow control) for exclusive use by this
// process. DTR and RTS are left alone (InitialStatusBits nil) because a pty has
// no modem lines and setting them fails with ENOTTY; drivers that want an
// auto-reset must treat that as "this port has none".
func Open(path string, baud int) (Port, error) {
	if baud <= 0 {
		baud = DefaultBaud
	}
	if _, err := os.Stat(path); err != nil {
		return nil, openError(path, err)
	}
	// go.bug.st/serial sets TIOCEXCL, but the kernel lets root (CAP_SYS_ADMIN)
	// open an exclusive tty anyway, and factory stations often run as root.
	// An flock on the device node closes that gap for every user.
	lock, err := lockPort(path)
	if err != nil {
		return nil, openError(path, err)
	}
	sp, err := serial.Open(path, &serial.Mode{
		BaudRate: baud,
		DataBits: 8,
		Parity:   serial.NoParity,
		StopBits: serial.OneStopBit,
	})
	if err != nil {
		unlockPort(lock)
		return nil, openError(path, err)
	}
	return &serialPort{Port: sp, name: path, lock: lock}, nil
}

// serialPort adds the path and the lock to a go.bug.st/serial port.
type serialPort struct {
	serial.Port
	name string
	lock *os.File
}

func (p *serialPort) Name() string { return p.name }

func (p *serialPort) Close() error {
	err := p.Port.Close()
	unlockPort(p.lock)
	p.lock = nil
	return err
}

// openError turns whatever the OS or go.bug.st/serial said into a sentence that
// names the problem and the fix.
func openError(path string, err error) error {
	var pe *serial.PortError
	if errors.As(err, &pe) {
		switch pe.Code() {
		case serial.PortBusy:
			err = ErrBusy
		case serial.PermissionDenied:
			err = fs.ErrPermission
		case serial.PortNotFound:
			err = fs.ErrNotExist
		case serial.InvalidSerialPort:
			return fmt.Errorf("%s is %w (%v): give the path of a serial device", path, ErrNotSerial, pe)
		}
	}
	switch {
	case errors.Is(err, ErrBusy):
		return fmt.Errorf("port %s is busy: another program has it open (close it; two iotburn processes never drive one board): %w", path, ErrBusy)
	case errors.Is(err, fs.ErrNotExist) || isNoDevice(err):
		return fmt.Errorf("port %s does not exist: run `iotburn ports` to see what is plugged in: %w", path, ErrNotExist)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("no permission to open port %s: add yourself to the dialout group (sudo usermod -aG dialout $USER, then log in again): %w", path, ErrPermission)
	}
	return fmt.Errorf("open port %s: %w", path, err)
}
