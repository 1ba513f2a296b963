package at

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/iotburn/iotburn/burner"
)

// Driver talks to one AT module. Not safe for concurrent use.
type Driver struct {
	// Timeout bounds each command from sending it to its final answer, and
	// again to its URC. Zero means DefaultTimeout.
	Timeout time.Duration
	// Attempts is how often Hello tries before giving up. Zero means 3.
	Attempts int
	// Dialect is the firmware's command set for Identify and Restore; the
	// zero value is Tencent, so New keeps meaning what it always did.
	Dialect Dialect
	// ConnectWait bounds Connect's wait for the module's cloud login; zero
	// means ConnectTimeout.
	ConnectWait time.Duration

	port burner.Port
	c    *conn
}

// DefaultTimeout leaves room for a flash write on a real module (~100 ms)
// many times over while still failing a dead board quickly.
const DefaultTimeout = 3 * time.Second

// New wraps a port opened with burner.Open, for the Tencent firmware.
func New(p burner.Port) *Driver { return &Driver{port: p, c: newConn(p)} }

// NewDialect wraps a port for the firmware family d.
func NewDialect(p burner.Port, d Dialect) *Driver {
	drv := New(p)
	drv.Dialect = d
	return drv
}

func (d *Driver) timeout() time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return DefaultTimeout
}

// Hello gets the module's attention: flush what it was saying, turn echo off
// (ATE0), and expect OK to a bare AT, retrying a few times because a module
// just powered up may still be printing its boot banner.
func (d *Driver) Hello(ctx context.Context) error {
	attempts := d.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	// A healthy module answers in milliseconds; do not wait the full
	// per-command budget on each of several attempts at a dead one.
	t := min(d.timeout(), time.Second)
	var first []byte
	var refused string
	note := func() {
		if len(first) == 0 && d.c.got > 0 {
			first = append([]byte(nil), d.c.first...)
		}
	}
	for range attempts {
		if err := d.c.drain(ctx, 20*time.Millisecond, 300*time.Millisecond); err != nil {
			return d.fail("AT", err)
		}
		// ATE0's answer does not matter (some firmwares lack it); AT's does.
		_, err := d.c.command(ctx, "ATE0", t)
		note()
		if err != nil && !errors.Is(err, errTimeout) {
			return d.fail("ATE0", err)
		}
		if err != nil {
			continue
		}
		r, err := d.c.command(ctx, "AT", t)
		note()
		switch {
		case err == nil && r.ok():
			in, serr := d.inStep(ctx, t)
			if serr != nil {
				return d.fail("AT", serr)
			}
			if in {
				return nil
			}
			// Out of step: a late answer to a dead host's command. Let the
			// module finish what it was doing, then start over.
			if err := d.c.drain(ctx, 200*time.Millisecond, 3*time.Second); err != nil {
				return d.fail("AT", err)
			}
			continue
		case err == nil:
			refused = r.final
		case !errors.Is(err, errTimeout):
			return d.fail("AT", err)
		}
	}
	port := d.port.Name()
	switch {
	case refused != "":
		return fmt.Errorf("board on %s answers %q to AT: check that it runs the AT firmware: %w", port, refused, ErrRefused)
	case len(first) > 0:
		return fmt.Errorf("board on %s answers garbage (%q…): check the baud rate (--baud) and that it runs the AT firmware: %w",
			port, first[:min(len(first), 16)], ErrGarbage)
	}
	return fmt.Errorf("no answer from %s: is the board powered and in AT mode?: %w", port, ErrNoAnswer)
}

// quietAfterSync is how long the line must stay silent after Hello's last
// AT for the host to believe every answer so far was the one it asked for.
// No vendor gives a module's longest late answer; 100 ms covers the flash
// write a module does for a credential (~100 ms, DefaultTimeout's note), as
// the simulator models it.
const quietAfterSync = 100 * time.Millisecond

// inStep checks that host and module agree on which answer is whose. A
// module whose last host died mid-command (kill -9, a pulled cable) may
// still be working on that command and answer it late; every answer after
// would then be taken for the one before (an AT's OK for AT+TCMODULE's, and
// the board would seem to have no MAC). Two more ATs must each get a bare
// OK, and then nothing more may come.
func (d *Driver) inStep(ctx context.Context, t time.Duration) (bool, error) {
	for range 2 {
		r, err := d.c.command(ctx, "AT", t)
		if errors.Is(err, ErrVanished) || ctx.Err() != nil {
			return false, err
		}
		if err != nil || !r.ok() || len(r.lines) > 0 {
			return false, nil
		}
	}
	// What is left of the last line's end (the LF of its CRLF) is not an
	// answer; anything else is.
	if len(bytes.TrimSpace(d.c.pending)) > 0 {
		return false, nil
	}
	if err := d.c.port.SetReadTimeout(quietAfterSync); err != nil {
		return false, d.c.vanished(err)
	}
	n, err := d.c.port.Read(d.c.buf)
	if err != nil {
		return false, d.c.vanished(err)
	}
	return len(bytes.TrimSpace(d.c.buf[:n])) == 0, nil
}

// fail turns a conn error during the named command into what the technician
// should read. The name is all that is said about the command: never its line.
func (d *Driver) fail(name string, err error) error {
	port := d.port.Name()
	switch {
	case errors.Is(err, ErrVanished):
		return err
	case errors.Is(err, errTimeout) && d.c.got > 0:
		return fmt.Errorf("board on %s answered garbage to %s: check the baud rate (--baud) and that it runs the AT firmware: %w", port, name, ErrGarbage)
	case errors.Is(err, errTimeout):
		return fmt.Errorf("no answer from %s to %s within %v: is the board powered and in AT mode?: %w", port, name, d.timeout(), ErrNoAnswer)
	}
	return fmt.Errorf("%s on %s: %w", name, port, err)
}

// refused reports a command the board answered with anything but OK.
func (d *Driver) refused(name string, r reply, sent string) error {
	return fmt.Errorf("board on %s refused %s: %s: %w", d.port.Name(), name, boardWords(append(r.lines, r.final), sent), ErrRefused)
}

// commandName is the part of a line that may appear in an error: "AT+X" of
// "AT+X=…"/"AT+X?", restricted to the characters command names use.
func commandName(line string) string {
	if i := strings.IndexAny(line, "=?"); i >= 0 {
		line = line[:i]
	}
	if len(line) > 32 {
		line = line[:32]
	}
	ok := len(line) > 0
	for _, c := range line {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("+&_%$#@", c)) {
			ok = false
		}
	}
	if !ok {
		return "a script line"
	}
	return line
}

// boardWords quotes what the board said for an error message, leaving out any
// line that could be an echo of the command sent (which may hold a secret):
// lines starting "AT" and lines containing one of the sent line's quoted values.
func boardWords(lines []string, sent string) string {
	var secrets []string
	for _, f := range splitFields(sent) {
		if f.quoted && len(f.val) >= 4 {
			secrets = append(secrets, f.val)
		}
	}
	var out []string
next:
	for _, l := range lines {
		if l == "" || strings.HasPrefix(strings.ToUpper(l), "AT") {
			continue
		}
		for _, s := range secrets {
			if strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return "no usable answer"
	}
	return strings.Join(out, " / ")
}

// SetLog sends every line to and from the module to log at debug level,
// each secret parameter replaced by its fingerprint (Masked): the wire log
// of -v.
func (d *Driver) SetLog(log *slog.Logger) { d.c.log = log }
