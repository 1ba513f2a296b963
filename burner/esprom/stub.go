package esprom

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// Stub is a flasher stub: a small program the ROM loads into RAM and runs,
// which then speaks a faster dialect of the same protocol (16 KB blocks,
// erasing while it receives, READ_FLASH at line rate). iotburn does not ship
// one: it reads Espressif's own from an esptool installation
// (esptool/targets/stub_flasher/1/esp32.json), the file esptool itself
// uploads, so what runs on the board is exactly what esptool runs.
type Stub struct {
	Text, Data           []byte
	TextStart, DataStart uint32
	Entry                uint32
	Source               string
}

// LoadStub reads esptool's stub JSON: base64 "text" and "data" with their
// load addresses "text_start", "data_start", and the "entry" point
// (esptool loader.py StubFlasher).
func LoadStub(path string) (*Stub, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("flasher stub: %w (give esptool's esptool/targets/stub_flasher/1/esp32.json)", err)
	}
	var j struct {
		Text      string  `json:"text"`
		TextStart *uint32 `json:"text_start"`
		Data      string  `json:"data"`
		DataStart *uint32 `json:"data_start"`
		Entry     *uint32 `json:"entry"`
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("flasher stub %s is not esptool's stub JSON: %w", path, err)
	}
	if j.Text == "" || j.TextStart == nil || j.Entry == nil {
		return nil, fmt.Errorf("flasher stub %s has no text, text_start or entry: is it esptool's stub JSON?", path)
	}
	s := &Stub{TextStart: *j.TextStart, Entry: *j.Entry, Source: path}
	if s.Text, err = base64.StdEncoding.DecodeString(j.Text); err != nil {
		return nil, fmt.Errorf("flasher stub %s: text: %w", path, err)
	}
	if j.Data != "" && j.DataStart != nil {
		s.DataStart = *j.DataStart
		if s.Data, err = base64.StdEncoding.DecodeString(j.Data); err != nil {
			return nil, fmt.Errorf("flasher stub %s: data: %w", path, err)
		}
	}
	return s, nil
}

// Block sizes: the ROM's RAM download takes 0x1800-byte blocks, the stub's
// flash writes 0x4000 (esptool loader.py ESP_RAM_BLOCK; targets/esp32.py
// ESP32StubLoader.FLASH_WRITE_SIZE, "matches MAX_WRITE_BLOCK in
// stub_loader.c").
const (
	ramBlock      = 0x1800
	stubBlockSize = 0x4000
)

// memEndTimeout is esptool's MEM_END_ROM_TIMEOUT: the program may start
// before the ROM's answer has left the UART, so it is waited for briefly.
const memEndTimeout = 200 * time.Millisecond

// Stub reports whether the flasher stub, not the ROM, is answering.
func (l *Loader) Stub() bool { return l.stub }

// RunStub uploads s into RAM (MEM_BEGIN, MEM_DATA in 0x1800-byte blocks,
// for the text and the data segment), starts it (MEM_END with its entry
// point) and waits for its greeting, the SLIP frame "OHAI". From then on
// the loader speaks the stub's dialect. A stub already running (Connect saw
// SYNC answered with 0) is used as it is.
func (l *Loader) RunStub(ctx context.Context, s *Stub) error {
	if l.stub {
		return nil
	}
	for _, seg := range []struct {
		data []byte
		addr uint32
	}{{s.Text, s.TextStart}, {s.Data, s.DataStart}} {
		if len(seg.data) == 0 {
			continue
		}
		n := (len(seg.data) + ramBlock - 1) / ramBlock
		if _, _, err := l.check(ctx, opMemBegin, le32(uint32(len(seg.data)), uint32(n), ramBlock, seg.addr), 0, l.timeout()); err != nil {
			return fmt.Errorf("uploading the flasher stub: %w", err)
		}
		for seq := range n {
			block := seg.data[seq*ramBlock : min(len(seg.data), (seq+1)*ramBlock)]
			pkt := append(le32(uint32(len(block)), uint32(seq), 0, 0), block...)
			if _, _, err := l.check(ctx, opMemData, pkt, Checksum(block), l.timeout()); err != nil {
				return fmt.Errorf("uploading the flasher stub: %w", err)
			}
		}
	}
	// MEM_END: int(entry == 0), entry. Its answer may be lost when the
	// program starts (esptool ignores a failure here), the greeting not.
	entry := uint32(0)
	if s.Entry == 0 {
		entry = 1
	}
	if _, _, err := l.check(ctx, opMemEnd, le32(entry, s.Entry), 0, memEndTimeout); err != nil && !errors.Is(err, ErrNoAnswer) {
		return fmt.Errorf("starting the flasher stub: %w", err)
	}
	deadline := time.Now().Add(l.timeout())
	for {
		for len(l.frames) > 0 {
			f := l.frames[0]
			l.frames = l.frames[1:]
			if bytes.Equal(f, []byte("OHAI")) {
				l.stub, l.attached = true, false
				return nil
			}
		}
		if err := l.fill(ctx, deadline); err != nil {
			if errors.Is(err, errTimeout) {
				return fmt.Errorf("the flasher stub from %s did not greet on %s: is it esptool's stub for the ESP32? %w", s.Source, l.port.Name(), ErrNoAnswer)
			}
			return err
		}
	}
}

// readFlashStub is the stub's READ_FLASH: offset, length, packet size (a
// sector), 64 packets in flight; the data then comes as raw SLIP frames of
// up to a sector, each acknowledged by the host with the total so far (a
// SLIP-framed u32), and a final frame with the MD5 of all of it
// (esptool loader.py read_flash; the stub's handle_read_flash).
func (l *Loader) readFlashStub(ctx context.Context, offset, size uint32) ([]byte, error) {
	const packet, inFlight = sectorSize, 64
	if _, _, err := l.check(ctx, opReadFlash, le32(offset, size, packet, inFlight), 0, l.timeout()); err != nil {
		return nil, err
	}
	out := make([]byte, 0, size)
	next := func() ([]byte, error) {
		deadline := time.Now().Add(l.timeout() + l.wire(packet))
		for {
			if len(l.frames) > 0 {
				f := l.frames[0]
				l.frames = l.frames[1:]
				return f, nil
			}
			if err := l.fill(ctx, deadline); err != nil {
				if errors.Is(err, errTimeout) {
					return nil, l.silence(opReadFlash, l.timeout())
				}
				return nil, err
			}
		}
	}
	for uint32(len(out)) < size {
		f, err := next()
		if err != nil {
			return nil, err
		}
		out = append(out, f...)
		if uint32(len(out)) < size && len(f) < packet {
			return nil, fmt.Errorf("%w: READ_FLASH packet of %d bytes, want %d", ErrBadResponse, len(f), packet)
		}
		ack := make([]byte, 4)
		binary.LittleEndian.PutUint32(ack, uint32(len(out)))
		if err := l.sendRaw(ack); err != nil {
			return nil, err
		}
	}
	if uint32(len(out)) > size {
		return nil, fmt.Errorf("%w: READ_FLASH sent %d bytes, asked %d", ErrBadResponse, len(out), size)
	}
	digest, err := next()
	if err != nil {
		return nil, err
	}
	if sum := md5.Sum(out); len(digest) != 16 || !bytes.Equal(digest, sum[:]) {
		return nil, fmt.Errorf("READ_FLASH from %s: the data does not match the stub's MD5: the line garbled it; retry: %w", l.port.Name(), ErrMismatch)
	}
	return out, nil
}
