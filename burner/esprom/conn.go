package esprom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// poll bounds each blocking read so a cancelled context is noticed quickly.
const poll = 20 * time.Millisecond

func (l *Loader) vanished(err error) error {
	return &vanishedError{port: l.port.Name(), cause: err}
}

// send writes one request, SLIP-framed, in full.
func (l *Loader) send(ctx context.Context, op byte, data []byte, chk uint32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.sendRaw(Request(op, data, chk))
}

// sendRaw writes p SLIP-framed, in full: a request, or the stub's
// READ_FLASH acknowledgements, which are bare words.
func (l *Loader) sendRaw(p []byte) error {
	frame := AppendSLIP(l.out[:0], p)
	l.out = frame
	for len(frame) > 0 {
		n, err := l.port.Write(frame)
		if err != nil {
			return l.vanished(err)
		}
		if n == 0 {
			return l.vanished(io.ErrShortWrite)
		}
		frame = frame[n:]
	}
	return nil
}

// fill reads once, for at most poll or until deadline, and decodes what came.
func (l *Loader) fill(ctx context.Context, deadline time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	wait := time.Until(deadline)
	if wait <= 0 {
		return errTimeout
	}
	if err := l.port.SetReadTimeout(min(wait, poll)); err != nil {
		return l.vanished(err)
	}
	n, err := l.port.Read(l.buf)
	if n > 0 {
		l.got += n
		l.dec.feed(l.buf[:n], func(f []byte) { l.frames = append(l.frames, append([]byte(nil), f...)) })
	}
	if err != nil {
		// A timeout is (0, nil); any error is the device going away: EIO from
		// a closed pty or pulled adapter, EOF, or go.bug.st/serial's PortClosed.
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return l.vanished(err)
	}
	return nil
}

// readResponse returns the next frame that parses as a ROM response.
func (l *Loader) readResponse(ctx context.Context, deadline time.Time) (Response, error) {
	for {
		for len(l.frames) > 0 {
			f := l.frames[0]
			l.frames = l.frames[1:]
			if r, err := ParseResponse(f); err == nil {
				l.valid++
				return r, nil
			}
		}
		if err := l.fill(ctx, deadline); err != nil {
			return Response{}, err
		}
	}
}

// maxSkip is how many stale or foreign responses a command passes over
// before giving up, as esptool does ("Response doesn't match request").
const maxSkip = 100

// command sends a request and returns the response with the same opcode,
// skipping others (the ROM answers one SYNC with ~8 replies; a retried block
// may be answered twice). It does not look at the status bytes.
func (l *Loader) command(ctx context.Context, op byte, data []byte, chk uint32, timeout time.Duration) (Response, error) {
	l.got, l.valid = 0, 0
	if err := l.send(ctx, op, data, chk); err != nil {
		return Response{}, err
	}
	// The timeout is the ROM's time to act; the bytes' time on the wire both
	// ways comes on top (a 16 KB block is 1.4 s at 115200 before the ROM
	// has it all).
	timeout += l.wire(len(l.out) + 128)
	deadline := time.Now().Add(timeout)
	for range maxSkip {
		r, err := l.readResponse(ctx, deadline)
		if errors.Is(err, errTimeout) {
			return Response{}, l.silence(op, timeout)
		}
		if err != nil {
			return Response{}, err
		}
		if r.Op == op {
			return r, nil
		}
		// esptool's test for "unsupported command": a bare status answer
		// under another opcode with status 1, error 0x05.
		if len(r.Data) == l.trailer() && r.Data[0] != 0 && r.Data[1] == 0x05 {
			return Response{}, &unsupportedError{port: l.port.Name(), op: op}
		}
	}
	return Response{}, &noAnswerError{port: l.port.Name(), op: op, stale: true}
}

// silence explains a command that timed out: garbage if bytes came but no
// response, else no answer.
func (l *Loader) silence(op byte, timeout time.Duration) error {
	if l.got > 0 && l.valid == 0 {
		return &garbageError{port: l.port.Name(), op: op, n: l.got}
	}
	return &noAnswerError{port: l.port.Name(), op: op, timeout: timeout}
}

// check runs a command and checks the ROM's status bytes; it returns the
// payload before them and the header's value field.
func (l *Loader) check(ctx context.Context, op byte, data []byte, chk uint32, timeout time.Duration) (payload []byte, value uint32, err error) {
	if l.Log != nil {
		start := time.Now()
		defer func() { l.logCommand(op, len(data), value, err, time.Since(start)) }()
	}
	r, err := l.command(ctx, op, data, chk, timeout)
	if err != nil {
		return nil, 0, err
	}
	payload, st, code, err := r.status(l.trailer())
	if err != nil {
		return nil, 0, err
	}
	if st != 0 {
		return nil, 0, &ROMError{Port: l.port.Name(), Op: op, Code: code}
	}
	return payload, r.Value, nil
}

// logCommand is one line of the wire log (-v).
func (l *Loader) logCommand(op byte, n int, value uint32, err error, took time.Duration) {
	who := "rom"
	if l.stub {
		who = "stub"
	}
	attrs := []any{"port", l.port.Name(), "cmd", opName(op), "bytes", n, "baud", l.baud, "took", took.Round(100 * time.Microsecond)}
	if err != nil {
		attrs = append(attrs, "err", err)
	} else {
		attrs = append(attrs, "status", "ok")
		if op == opReadReg {
			attrs = append(attrs, "value", fmt.Sprintf("0x%08x", value))
		}
	}
	l.Log.Debug(who, attrs...)
}

// trailer is the status trailer's length in the dialect spoken now.
func (l *Loader) trailer() int {
	if l.stub {
		return stubStatusLen
	}
	return statusLen
}

// inputFlusher is go.bug.st/serial's ResetInputBuffer, where the port has it.
type inputFlusher interface{ ResetInputBuffer() error }

// flush forgets whatever has arrived and not been read: stale replies, boot
// chatter, bytes sent across a baud change.
func (l *Loader) flush(ctx context.Context) error {
	if f, ok := l.port.(inputFlusher); ok {
		_ = f.ResetInputBuffer() // best effort: the drain below does the rest
	}
	l.frames, l.dec = l.frames[:0], slipDecoder{frame: l.dec.frame[:0]}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.port.SetReadTimeout(time.Millisecond); err != nil {
			return l.vanished(err)
		}
		n, err := l.port.Read(l.buf)
		if err != nil {
			return l.vanished(err)
		}
		if n == 0 {
			return nil
		}
	}
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
