package esprom

import (
	"errors"
	"fmt"
	"time"
)

// Kinds of failure, for errors.Is; the errors themselves say what to do.
var (
	// ErrVanished: the port went away (USB pulled, simulator unplugged it).
	ErrVanished = errors.New("board vanished")
	// ErrNoAnswer: nothing came back within the command's timeout.
	ErrNoAnswer = errors.New("no answer")
	// ErrGarbage: bytes came back, but no ROM response among them.
	ErrGarbage = errors.New("garbage answer")
	// ErrRefused: the ROM answered with a failure status (see ROMError).
	ErrRefused = errors.New("ROM refused the command")
	// ErrUnsupported: the ROM does not know the command.
	ErrUnsupported = errors.New("command not supported by this ROM")
	// ErrWrongChip: the board is not an ESP32.
	ErrWrongChip = errors.New("wrong chip")
	// ErrMismatch: flash content differs from what was written.
	ErrMismatch = errors.New("flash does not match")
	// ErrBadMAC: the eFuse MAC fails its CRC.
	ErrBadMAC = errors.New("eFuse MAC fails its CRC")
)

// errTimeout is the reader's internal "deadline passed"; command turns it
// into ErrNoAnswer or ErrGarbage depending on what arrived.
var errTimeout = errors.New("timeout")

// vanishedError carries the port and the OS's words.
type vanishedError struct {
	port  string
	cause error
}

func (e *vanishedError) Error() string {
	return fmt.Sprintf("board on %s vanished: replug it (%v)", e.port, e.cause)
}

func (e *vanishedError) Is(target error) bool { return target == ErrVanished }
func (e *vanishedError) Unwrap() error        { return e.cause }

// hint is the manual way into download mode, for boards and ports without
// auto-reset (ptys, adapters without DTR/RTS, boards without the circuit).
const hint = "hold BOOT and press EN, then retry"

type noAnswerError struct {
	port    string
	op      byte
	timeout time.Duration
	stale   bool // answers came, none for this command
}

func (e *noAnswerError) Error() string {
	if e.stale {
		return fmt.Sprintf("no answer to %s from the ROM bootloader on %s among %d others: the line is out of step; %s", opName(e.op), e.port, maxSkip, hint)
	}
	return fmt.Sprintf("no answer to %s from the ROM bootloader on %s within %v: is it still in download mode? %s", opName(e.op), e.port, e.timeout, hint)
}

func (e *noAnswerError) Is(target error) bool { return target == ErrNoAnswer }

type garbageError struct {
	port string
	op   byte
	n    int
}

func (e *garbageError) Error() string {
	return fmt.Sprintf("the board on %s answers garbage to %s (%d bytes, no ROM response): wrong baud rate, or not in download mode; %s", e.port, opName(e.op), e.n, hint)
}

func (e *garbageError) Is(target error) bool { return target == ErrGarbage }

type unsupportedError struct {
	port string
	op   byte
}

func (e *unsupportedError) Error() string {
	return fmt.Sprintf("the bootloader on %s does not support %s: is it an ESP32 ROM in download mode (not an app, not a stub)?", e.port, opName(e.op))
}

func (e *unsupportedError) Is(target error) bool { return target == ErrUnsupported }
