package at

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/iotburn/iotburn/burner"
)

// conn is the generic AT line protocol on one port. It is not safe for
// concurrent use; one goroutine drives one board.
type conn struct {
	port    burner.Port
	pending []byte // received, not yet a whole line
	got     int    // bytes received since the last mark
	first   []byte // the first bytes since the last mark, for diagnostics
	buf     []byte
	log     *slog.Logger // the wire log (-v), secrets masked; nil: none
}

// poll bounds each blocking read so a cancelled context is noticed quickly.
const poll = 20 * time.Millisecond

// maxPending bounds a line; a longer run without CR/LF is noise, not an answer.
const maxPending = 4096

func newConn(p burner.Port) *conn { return &conn{port: p, buf: make([]byte, 512)} }

// mark starts counting received bytes afresh (see got/first).
func (c *conn) mark() { c.got, c.first = 0, c.first[:0] }

func (c *conn) vanished(err error) error {
	return &vanishedError{port: c.port.Name(), cause: err}
}

// write sends one command line with CRLF.
func (c *conn) write(ctx context.Context, line string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.log != nil {
		c.log.Debug("at", "port", c.port.Name(), "send", Masked(line))
	}
	if _, err := c.port.Write([]byte(line + "\r\n")); err != nil {
		return c.vanished(err)
	}
	return nil
}

// fill reads once, for at most poll or until deadline.
func (c *conn) fill(ctx context.Context, deadline time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	wait := time.Until(deadline)
	if wait <= 0 {
		return errTimeout
	}
	if err := c.port.SetReadTimeout(min(wait, poll)); err != nil {
		return c.vanished(err)
	}
	n, err := c.port.Read(c.buf)
	if n > 0 {
		c.got += n
		if len(c.first) < 32 {
			c.first = append(c.first, c.buf[:min(n, 32-len(c.first))]...)
		}
		c.pending = append(c.pending, c.buf[:n]...)
	}
	if err != nil {
		// A timeout is (0, nil); any error is the device going away: EIO from
		// a closed pty or pulled USB adapter, EOF, or the library's PortClosed.
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return c.vanished(err)
	}
	return nil
}

// readLine returns the next non-blank line (CR, LF or CRLF ended, trimmed).
func (c *conn) readLine(ctx context.Context, deadline time.Time) (string, error) {
	for {
		if i := bytes.IndexAny(c.pending, "\r\n"); i >= 0 {
			line := strings.TrimSpace(string(c.pending[:i]))
			c.pending = c.pending[i+1:]
			if line != "" {
				if c.log != nil {
					c.log.Debug("at", "port", c.port.Name(), "recv", Masked(line))
				}
				return line, nil
			}
			continue
		}
		if len(c.pending) > maxPending {
			c.pending = c.pending[:0] // noise; the caller will see got > 0 and no answer
		}
		if err := c.fill(ctx, deadline); err != nil {
			return "", err
		}
	}
}

// drain throws away whatever the board is still saying (an old answer, boot
// noise) until it has been quiet for a moment or limit passes.
func (c *conn) drain(ctx context.Context, quiet, limit time.Duration) error {
	c.pending = c.pending[:0]
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.port.SetReadTimeout(quiet); err != nil {
			return c.vanished(err)
		}
		n, err := c.port.Read(c.buf)
		if err != nil {
			return c.vanished(err)
		}
		if n == 0 {
			return nil
		}
	}
	return nil
}

// reply is a command's answer: the lines before the final result code, and
// that code.
type reply struct {
	lines []string
	final string
}

func (r reply) ok() bool { return r.final == "OK" }

// isFinal reports the result codes that end a command: OK, ERROR, FAIL,
// +CME ERROR: n, and ESP-AT's "busy p..." for a command sent too early.
func isFinal(l string) bool {
	return l == "OK" || l == "ERROR" || l == "FAIL" ||
		strings.HasPrefix(l, "+CME ERROR") || strings.HasPrefix(l, "busy ")
}

// command sends line and collects its answer until a final result code. The
// echo of line (before ATE0 takes effect) is dropped.
func (c *conn) command(ctx context.Context, line string, timeout time.Duration) (reply, error) {
	var r reply
	c.mark()
	if err := c.write(ctx, line); err != nil {
		return r, err
	}
	deadline := time.Now().Add(timeout)
	for {
		l, err := c.readLine(ctx, deadline)
		if err != nil {
			return r, err
		}
		switch {
		case l == line:
			continue
		case isFinal(l):
			r.final = l
			return r, nil
		}
		r.lines = append(r.lines, l)
	}
}

// next collects the answer that follows, without sending anything: the lines
// up to the next final result code.
func (c *conn) next(ctx context.Context, timeout time.Duration) (reply, error) {
	var r reply
	deadline := time.Now().Add(timeout)
	for {
		l, err := c.readLine(ctx, deadline)
		if err != nil {
			return r, err
		}
		if isFinal(l) {
			r.final = l
			return r, nil
		}
		r.lines = append(r.lines, l)
	}
}

// urcResult looks for the result URC of the named command ("+TCDEVINFOSET")
// in line: "+NAME:OK", "+NAME: OK", "+NAME:FAIL…", and the doc's "NAME:FAIL…"
// without the plus. It returns the text after the colon.
func urcResult(line, name string) (string, bool) {
	bare := strings.TrimPrefix(name, "+")
	for _, p := range []string{"+" + bare + ":", bare + ":"} {
		if rest, ok := strings.CutPrefix(line, p); ok {
			rest = strings.TrimSpace(rest)
			if rest == "OK" || strings.HasPrefix(rest, "FAIL") {
				return rest, true
			}
		}
	}
	return "", false
}

// result is the result URC of name for a command that answered r: found
// among r's lines (a fast board may report before its OK arrives), or
// waited for up to timeout.
func (c *conn) result(ctx context.Context, r reply, name string, timeout time.Duration) (string, error) {
	for _, l := range r.lines {
		if res, found := urcResult(l, name); found {
			return res, nil
		}
	}
	c.mark()
	return c.waitURC(ctx, name, timeout)
}

// waitURC waits for the result URC of name; an ERROR or +CME ERROR in its
// place is returned as the result.
func (c *conn) waitURC(ctx context.Context, name string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		l, err := c.readLine(ctx, deadline)
		if err != nil {
			return "", err
		}
		if res, ok := urcResult(l, name); ok {
			return res, nil
		}
		if l == "ERROR" || strings.HasPrefix(l, "+CME ERROR") {
			return l, nil
		}
	}
}
