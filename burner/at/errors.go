package at

import (
	"errors"
	"fmt"
)

// Kinds of failure, for errors.Is; the errors themselves say what to do.
var (
	// ErrVanished: the port went away mid-command (USB pulled, board reset
	// its USB bridge, simulator unplugged it).
	ErrVanished = errors.New("board vanished")
	// ErrNoAnswer: nothing came back within the command timeout.
	ErrNoAnswer = errors.New("no answer")
	// ErrGarbage: bytes came back, but no AT answer among them.
	ErrGarbage = errors.New("garbage answer")
	// ErrRefused: the board answered ERROR, +CME ERROR, busy or a FAIL URC.
	ErrRefused = errors.New("board refused the command")
	// ErrMismatch: the read-back differs from what should be on the board.
	ErrMismatch = errors.New("read-back mismatch")
)

// errTimeout is conn's internal "deadline passed"; the driver turns it into
// ErrNoAnswer or ErrGarbage depending on whether anything arrived.
var errTimeout = errors.New("timeout")

// vanishedError carries the port and the OS's words.
type vanishedError struct {
	port  string
	cause error
}

func (e *vanishedError) Error() string {
	return fmt.Sprintf("board on %s vanished mid-burn: replug it (%v)", e.port, e.cause)
}

func (e *vanishedError) Is(target error) bool { return target == ErrVanished }
func (e *vanishedError) Unwrap() error        { return e.cause }
