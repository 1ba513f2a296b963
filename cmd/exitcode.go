package cmd

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/flashmap"
	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/aliyun"
	"github.com/iotburn/iotburn/registry/tencent"
)

// Exit codes, one per kind of failure, so a script can tell them apart
// (listed in `iotburn --help` and the README). exitCode is the one place
// that maps errors to them.
const (
	exitFailure             = 1   // anything not below
	exitUsage               = 2   // a flag, an argument, an input file or a flash map is wrong: nothing was done
	exitLedger              = 3   // the ledger is missing, unreadable or locked
	exitPlatformAuth        = 4   // the platform refused the cloud keys
	exitPlatformUnreachable = 5   // the platform could not be reached
	exitNoPorts             = 6   // no serial port to work on
	exitNoCredentials       = 7   // the product has no free credentials left
	exitBoardsFailed        = 8   // one or more boards failed (burn or QA)
	exitInterrupted         = 130 // Ctrl-C or SIGTERM (128 + SIGINT)
)

const exitCodesHelp = `Exit codes: 0 done; 1 other failure; 2 usage (a flag, an argument, an input file or a flash
map is wrong: nothing was done); 3 ledger; 4 the platform refused the cloud keys; 5 the platform
could not be reached; 6 no ports; 7 no credentials left; 8 boards failed; 130 interrupted.`

// The error kinds of the command layer; library errors have their own.
var (
	errFailed       = errors.New("failed")
	errUsage        = errors.New("usage")
	errLedger       = errors.New("ledger")
	errBoardsFailed = errors.New("boards failed")
	errInterrupted  = errors.New("interrupted")
)

// kindError attaches a kind to an error without changing its text.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string        { return e.err.Error() }
func (e *kindError) Unwrap() []error      { return []error{e.err, e.kind} }
func (e *kindError) Is(target error) bool { return target == e.kind }

func withKind(kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: kind, err: err}
}

// usagef is an error in what the user gave: nothing was done.
func usagef(format string, a ...any) error { return withKind(errUsage, fmt.Errorf(format, a...)) }

// exitCode maps an error to its documented exit code.
func exitCode(err error) int {
	var ne net.Error
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errInterrupted), errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, errUsage), errors.Is(err, flashmap.ErrUnsafe):
		return exitUsage
	case errors.Is(err, errLedger):
		return exitLedger
	case errors.Is(err, tencent.ErrAuth), errors.Is(err, aliyun.ErrAuth):
		return exitPlatformAuth
	case errors.Is(err, registry.ErrUnreachable), errors.As(err, &ne):
		return exitPlatformUnreachable
	case errors.Is(err, provision.ErrNoPorts), errors.Is(err, burner.ErrNotExist):
		return exitNoPorts
	case errors.Is(err, ledger.ErrNoCredentials):
		return exitNoCredentials
	case errors.Is(err, errBoardsFailed):
		return exitBoardsFailed
	}
	return exitFailure
}

// usageErrors marks the errors cobra and pflag find in the command line
// (unknown flags, bad values, wrong arguments) as usage errors, on every
// command.
func usageErrors(c *cobra.Command) {
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withKind(errUsage, err) })
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error { return withKind(errUsage, args(cmd, a)) }
	}
	for _, sub := range c.Commands() {
		usageErrors(sub)
	}
}
