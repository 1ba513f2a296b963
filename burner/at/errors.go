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
	// ErrNoHardwareID: the module tells no MAC, IMEI or serial of its own
	// (Alibaba's IDMAU firmware has no command that does): the board's id
	// must come from elsewhere, e.g. its label.
	ErrNoHardwareID = errors.New("the module reports no hardware id")
	// ErrUnsupported: the firmware has no command for what was asked.
	ErrUnsupported = errors.New("not supported by the module's firmware")
	// ErrNoCertCommands: the module's firmware has no certificate commands
	// (AT+TCCERTADD), so a certificate device cannot be burned onto it.
	ErrNoCertCommands = errors.New("the module's firmware takes no certificate")
	// ErrNotConnected: the module did not report a cloud connection in time.
	ErrNotConnected = errors.New("the module did not connect to the cloud")
)

// RefusalError is a failure result a module reported for a command that
// answered OK first, such as "+TCDEVREG:FAIL,1020": the command and the
// code as the module printed it (a number for Tencent's firmware: the
// cloud's own, AT command set V3.2.1 §8.3, or the C SDK's, §8.1). It is an
// ErrRefused for errors.Is; Code never holds a secret (only digits, '-'
// and letters are kept).
type RefusalError struct {
	Port, Command, Code string
}

func (e *RefusalError) Error() string {
	return fmt.Sprintf("board on %s failed %s: %s (code %s)", e.Port, e.Command, codeMeaning(e.Code), e.Code)
}

func (e *RefusalError) Is(target error) bool { return target == ErrRefused }

// codeMeaning says what a Tencent registration code means, as the AT
// command set (V3.2.1 §8.1, §8.3) lists it; "the module reported a failure"
// for codes it does not list.
func codeMeaning(code string) string {
	if m, ok := tencentCodes[code]; ok {
		return m
	}
	return "the module reported a failure"
}

var tencentCodes = map[string]string{
	"1000":  "the cloud's internal error",
	"1004":  "the product does not exist",
	"1006":  "the cloud refused a parameter",
	"1010":  "the signature does not verify: the product secret is not the product's",
	"1011":  "the product does not allow dynamic registration: switch it on in the console",
	"1012":  "the device has registered too many times",
	"1020":  "the name is not pre-created on the platform (pre-registered mode): create it with `iotburn create`",
	"1021":  "the device is registered and has connected already: reset it on the platform to register it again",
	"1031":  "the product's auto-create quota is used up",
	"-8":    "the module could not reach the registration server",
	"-11":   "the registration server did not answer in time",
	"-1001": "the module could not use the server's answer",
}

// RefusalCode returns the code of a RefusalError in err's chain.
func RefusalCode(err error) (string, bool) {
	var e *RefusalError
	if errors.As(err, &e) {
		return e.Code, true
	}
	return "", false
}

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
