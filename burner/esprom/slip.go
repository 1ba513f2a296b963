package esprom

import (
	"errors"
	"fmt"
)

// SLIP framing (RFC 1055 as the ROM uses it): a frame is 0xC0, the payload
// with 0xDB escaped as DB DD and 0xC0 as DB DC, then 0xC0.
const (
	slipEnd    = 0xC0
	slipEsc    = 0xDB
	slipEscEnd = 0xDC
	slipEscEsc = 0xDD
)

// AppendSLIP appends payload to dst as one SLIP frame.
func AppendSLIP(dst, payload []byte) []byte {
	dst = append(dst, slipEnd)
	for _, c := range payload {
		switch c {
		case slipEnd:
			dst = append(dst, slipEsc, slipEscEnd)
		case slipEsc:
			dst = append(dst, slipEsc, slipEscEsc)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, slipEnd)
}

// EncodeSLIP returns payload as one SLIP frame.
func EncodeSLIP(payload []byte) []byte {
	return AppendSLIP(make([]byte, 0, len(payload)+len(payload)/64+4), payload)
}

// ErrSLIP is what a malformed frame decodes to, for errors.Is.
var ErrSLIP = errors.New("malformed SLIP frame")

// maxFrame bounds a frame: the largest the ROM sends is READ_FLASH_SLOW's
// 64 bytes + header + status, the largest request a 0x400 block + header. A
// longer run between delimiters is noise, not a frame.
const maxFrame = 0x4000 + 64

// slipDecoder reassembles frames from a byte stream. Unlike esptool's reader,
// which gives up on the first byte outside a frame ("Invalid head of
// packet"), it skips noise and broken frames and counts them, so that a burst
// of boot chatter or line noise costs a frame, not the connection; the
// caller decides from the count whether the line is garbage.
type slipDecoder struct {
	in     bool // between an opening C0 and the closing one
	esc    bool // the previous byte was DB
	bad    bool // the current frame is broken; drop it at its end
	frame  []byte
	noise  int   // bytes outside frames, broken frames
	lastEr error // why the last frame was dropped
}

// feed consumes p and calls emit for every complete, well-formed frame. The
// slice passed to emit is only valid during the call.
func (d *slipDecoder) feed(p []byte, emit func(frame []byte)) {
	for _, c := range p {
		if !d.in {
			if c == slipEnd {
				d.in, d.esc, d.bad, d.frame = true, false, false, d.frame[:0]
			} else {
				d.noise++
			}
			continue
		}
		switch {
		case d.esc:
			d.esc = false
			switch c {
			case slipEscEnd:
				d.add(slipEnd)
			case slipEscEsc:
				d.add(slipEsc)
			default:
				d.broken(fmt.Errorf("%w: invalid escape 0xdb 0x%02x", ErrSLIP, c))
				if c == slipEnd { // the escape swallowed the delimiter: the frame ends here
					d.end(emit)
				}
			}
		case c == slipEsc:
			d.esc = true
		case c == slipEnd:
			d.end(emit)
			// Frames in practice are sent back to back as C0 … C0 C0 … C0;
			// treating the closing C0 as also opening the next frame costs
			// nothing: an empty frame is never emitted.
		default:
			d.add(c)
		}
	}
}

func (d *slipDecoder) add(c byte) {
	if len(d.frame) >= maxFrame {
		d.broken(fmt.Errorf("%w: longer than %d bytes", ErrSLIP, maxFrame))
		return
	}
	d.frame = append(d.frame, c)
}

func (d *slipDecoder) broken(err error) {
	if !d.bad {
		d.bad, d.lastEr = true, err
		d.noise++
	}
}

// end closes the current frame. A closing C0 also opens the next frame, so
// back-to-back frames sharing one delimiter decode too.
func (d *slipDecoder) end(emit func([]byte)) {
	if !d.bad && len(d.frame) > 0 {
		emit(d.frame)
	}
	d.in, d.esc, d.bad, d.frame = true, false, false, d.frame[:0]
}

// DecodeSLIP splits a byte stream into the payloads of its complete frames.
// Bytes outside frames and an unfinished last frame are ignored; a broken
// frame (bad escape, too long) is dropped and reported in err, and decoding
// goes on with the next frame.
func DecodeSLIP(stream []byte) (frames [][]byte, err error) {
	var d slipDecoder
	d.feed(stream, func(f []byte) { frames = append(frames, append([]byte(nil), f...)) })
	if d.lastEr != nil {
		err = d.lastEr
	}
	return frames, err
}
