package sim

import (
	"bytes"
	"compress/zlib"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
)

// esp32ROM plays the ESP32's ROM serial bootloader in download mode
// (reference/espressif.md §2): SLIP frames, command packets, responses with
// the ESP32 ROM's 4 status bytes. A pty has no reset lines, so the board
// boots straight into download mode and stays there until FLASH_END.
//
// Written from the reference and esptool 4.7's ROM-mode (--no-stub) code,
// independently of burner/esprom, so the two can disagree in a test.
//
// Choices where the reference is silent:
//   - Requests that are not well-formed packets (too short, direction not 0)
//     are ignored, as noise; a size field that disagrees with the data, or a
//     command's data of the wrong length, answers status 1, error 0x05.
//   - Flash commands before SPI_ATTACH answer error 0x06.
//   - FLASH_DATA writes block seq at offset + seq × block size, programming
//     NOR-style (new = old AND data), so 0xFF padding never harms; the
//     region was erased by FLASH_BEGIN.
//   - FLASH_DEFL_DATA keeps the stream and writes the inflated image when
//     its last block arrives (the real ROM writes as it inflates); a broken
//     or oversized stream answers 0x0B.
//   - READ_FLASH_SLOW always answers 64 bytes (esptool notes the ROM does).
//   - FLASH_END/FLASH_DEFL_END leave the bootloader: the board ignores
//     the protocol until it is replugged.
type esp32ROM struct {
	h   romHost
	in  slipIn
	mac [6]byte

	regs     map[uint32]uint32
	attached bool
	write    *romWrite
	left     bool // FLASH_END: running "user code", deaf to the protocol
	flashErr error
}

// romHost is what the ROM needs beyond every firmware's host.
type romHost interface {
	host
	flashPath() string
	setBaud(baud int)
	lineBaud() int // 0 or less when unpaced
}

// romWrite is a FLASH_BEGIN or FLASH_DEFL_BEGIN in progress.
type romWrite struct {
	defl                     bool
	offset, size, blocks, bs uint32
	z                        []byte // the deflate stream so far
	done                     bool
}

// ROM opcodes and error codes ([LDR] ESP_CMDS, [PROTO] ROM Loader Errors).
const (
	romFlashBegin     = 0x02
	romFlashData      = 0x03
	romFlashEnd       = 0x04
	romSync           = 0x08
	romWriteReg       = 0x09
	romReadReg        = 0x0A
	romSPISetParams   = 0x0B
	romSPIAttach      = 0x0D
	romReadFlashSlow  = 0x0E
	romChangeBaudrate = 0x0F
	romFlashDeflBegin = 0x10
	romFlashDeflData  = 0x11
	romFlashDeflEnd   = 0x12
	romSPIFlashMD5    = 0x13

	romErrInvalid   = 0x05 // invalid message: parameters or length
	romErrFailed    = 0x06 // failed to act on the message
	romErrChecksum  = 0x07 // invalid CRC in message
	romErrWrite     = 0x08 // flash write error
	romErrRead      = 0x09 // flash read error
	romErrReadLen   = 0x0A // flash read length error
	romErrDeflate   = 0x0B // deflate error
	romSyncValue    = 0x20120707
	romMaxBlock     = 0x4000
	romReadSlowSize = 64
)

// Registers esptool reads from an ESP32 in ROM mode (targets/esp32.py).
const (
	regChipMagic  = 0x40001000
	regEfuseBase  = 0x3FF5A000
	regAPBDate    = 0x3FF6607C
	regUARTClkDiv = 0x3FF40014
	regRTCCali    = 0x3FF5F06C
	regSPIBase    = 0x3FF42000
	regSPICmd     = regSPIBase
	regSPIUsr2    = regSPIBase + 0x24
	regSPIW0      = regSPIBase + 0x80
	spiCmdUsr     = 1 << 18
)

func newESP32(h host) firmware {
	rh, ok := h.(romHost)
	if !ok {
		panic("sim: the esp32 firmware needs a host with a flash file and a baud switch")
	}
	r := &esp32ROM{h: rh, regs: map[uint32]uint32{}}
	if hw, err := net.ParseMAC(h.file().MAC); err == nil && len(hw) == 6 {
		copy(r.mac[:], hw)
	}
	if err := ensureFlashFile(rh.flashPath()); err != nil {
		// The board still boots; its flash commands fail as a broken chip's would.
		r.flashErr = err
		h.logger().Error("sim: esp32 flash file", "err", err)
	}
	return r
}

// endsRequest: a garbled ROM answers noise once per frame delimiter.
func (r *esp32ROM) endsRequest(p []byte) bool { return bytes.IndexByte(p, 0xC0) >= 0 }

func (r *esp32ROM) receive(p []byte) { r.in.feed(p, r.handle) }

// slipIn reassembles SLIP frames; broken frames (bad escape) are dropped.
type slipIn struct {
	inFrame, esc, bad bool
	buf               []byte
}

func (s *slipIn) feed(p []byte, frame func([]byte)) {
	for _, c := range p {
		switch {
		case c == 0xC0:
			if s.inFrame && !s.bad && len(s.buf) > 0 {
				frame(s.buf)
			}
			s.inFrame, s.esc, s.bad, s.buf = true, false, false, s.buf[:0]
		case !s.inFrame:
		case s.esc:
			s.esc = false
			switch c {
			case 0xDC:
				s.buf = append(s.buf, 0xC0)
			case 0xDD:
				s.buf = append(s.buf, 0xDB)
			default:
				s.bad = true
			}
		case c == 0xDB:
			s.esc = true
		case len(s.buf) > romMaxBlock+64:
			s.bad = true
		default:
			s.buf = append(s.buf, c)
		}
	}
}

func slipOut(p []byte) []byte {
	out := make([]byte, 0, len(p)+8)
	out = append(out, 0xC0)
	for _, c := range p {
		switch c {
		case 0xC0:
			out = append(out, 0xDB, 0xDC)
		case 0xDB:
			out = append(out, 0xDB, 0xDD)
		default:
			out = append(out, c)
		}
	}
	return append(out, 0xC0)
}

// respond sends one response: direction 1, opcode, size, value, payload,
// then the ESP32 ROM's 4 status bytes (status, error, 2 reserved).
func (r *esp32ROM) respond(op byte, value uint32, payload []byte, errCode byte) {
	p := make([]byte, 8, 8+len(payload)+4)
	p[0], p[1] = 0x01, op
	binary.LittleEndian.PutUint16(p[2:], uint16(len(payload)+4))
	binary.LittleEndian.PutUint32(p[4:], value)
	p = append(p, payload...)
	status := byte(0)
	if errCode != 0 {
		status = 1
	}
	p = append(p, status, errCode, 0, 0)
	r.h.send(slipOut(p))
}

func (r *esp32ROM) ok(op byte)                { r.respond(op, 0, nil, 0) }
func (r *esp32ROM) fail(op byte, code byte)   { r.respond(op, 0, nil, code) }
func words(d []byte, i int) uint32            { return binary.LittleEndian.Uint32(d[4*i:]) }
func (r *esp32ROM) need(d []byte, n int) bool { return len(d) == n }

func (r *esp32ROM) handle(f []byte) {
	if r.left || len(f) < 8 || f[0] != 0x00 {
		return
	}
	op, size, chk, d := f[1], int(binary.LittleEndian.Uint16(f[2:])), binary.LittleEndian.Uint32(f[4:]), f[8:]
	r.h.logger().Debug("sim: rom command", "op", op, "len", len(d))
	if size != len(d) {
		r.fail(op, romErrInvalid)
		return
	}
	switch op {
	case romSync:
		if !bytes.Equal(d, append([]byte{0x07, 0x07, 0x12, 0x20}, bytes.Repeat([]byte{0x55}, 32)...)) {
			r.fail(op, romErrInvalid)
			return
		}
		// The ROM answers one SYNC with 8 identical replies.
		for range 8 {
			r.respond(op, romSyncValue, nil, 0)
		}
	case romReadReg:
		if !r.need(d, 4) {
			r.fail(op, romErrInvalid)
			return
		}
		r.respond(op, r.readReg(words(d, 0)), nil, 0)
	case romWriteReg:
		if !r.need(d, 16) {
			r.fail(op, romErrInvalid)
			return
		}
		r.writeReg(words(d, 0), words(d, 1), words(d, 2))
		r.ok(op)
	case romSPIAttach:
		if !r.need(d, 8) { // hspi_arg + the ROM's 4 extra bytes
			r.fail(op, romErrInvalid)
			return
		}
		r.attached = true
		r.ok(op)
	case romSPISetParams:
		if !r.need(d, 24) {
			r.fail(op, romErrInvalid)
			return
		}
		r.ok(op)
	case romChangeBaudrate:
		if !r.need(d, 8) || words(d, 0) == 0 {
			r.fail(op, romErrInvalid)
			return
		}
		r.ok(op) // at the old rate; then the UART switches
		r.h.setBaud(int(words(d, 0)))
	case romFlashBegin, romFlashDeflBegin:
		r.begin(op, d)
	case romFlashData, romFlashDeflData:
		r.data(op, d, chk)
	case romFlashEnd, romFlashDeflEnd:
		if !r.need(d, 4) {
			r.fail(op, romErrInvalid)
			return
		}
		if op == romFlashDeflEnd && r.write != nil && r.write.defl && !r.write.done {
			if code := r.inflate(); code != 0 {
				r.fail(op, code)
				return
			}
		}
		r.ok(op)
		r.write, r.left = nil, true
		if words(d, 0) == 0 { // reboot: the app's boot log, then silence for the protocol
			r.h.send([]byte("ets Jun  8 2016 00:22:57\r\n\r\nrst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"))
		}
	case romSPIFlashMD5:
		r.md5(op, d)
	case romReadFlashSlow:
		r.readSlow(op, d)
	default:
		r.fail(op, romErrInvalid) // unsupported, e.g. GET_SECURITY_INFO on an ESP32
	}
}

// readReg answers what esptool reads: the chip magic, the eFuse words (MAC,
// package D0WD, revision v3.0, no encryption), the clock registers, SPI
// registers written before.
func (r *esp32ROM) readReg(addr uint32) uint32 {
	m := r.mac
	switch addr {
	case regChipMagic:
		return 0x00F01D83
	case regEfuseBase + 4:
		return uint32(m[2])<<24 | uint32(m[3])<<16 | uint32(m[4])<<8 | uint32(m[5])
	case regEfuseBase + 8:
		return uint32(efuseMACCRC(m[:]))<<16 | uint32(m[0])<<8 | uint32(m[1])
	case regEfuseBase + 12:
		return 1<<15 | 1<<9 // CHIP_VER_REV1; package 1 (D0WD)
	case regEfuseBase + 16:
		return 100 // CK8M calibration: with regRTCCali, a 40 MHz crystal exactly
	case regEfuseBase + 20:
		return 1 << 20 // CHIP_VER_REV2
	case regAPBDate:
		return 1 << 31 // with REV1 and REV2: revision v3
	case regRTCCali:
		return 1024 << 7
	case regUARTClkDiv:
		baud := r.h.lineBaud()
		if baud <= 0 {
			baud = 115200
		}
		return uint32(40_000_000 / baud)
	}
	return r.regs[addr]
}

// writeReg stores a register; a write of SPI_CMD_REG's USR bit runs the user
// SPI command esptool set up (RDID answers a 4 MB Winbond, other commands
// leave W0 as written) and clears the bit, as the hardware does when done.
func (r *esp32ROM) writeReg(addr, value, mask uint32) {
	r.regs[addr] = r.regs[addr]&^mask | value&mask
	if addr == regSPICmd && r.regs[addr]&spiCmdUsr != 0 {
		if r.regs[regSPIUsr2]&0xFF == 0x9F { // RDID
			r.regs[regSPIW0] = 0x1640EF
		}
		r.regs[addr] &^= spiCmdUsr
	}
}

// efuseMACCRC is the ROM's esp_crc8 (CRC-8/MAXIM) over the MAC bytes.
func efuseMACCRC(mac []byte) byte {
	var crc byte
	for _, c := range mac {
		crc ^= c
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x8C
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

func (r *esp32ROM) flashReady(op byte) bool {
	switch {
	case !r.attached:
		r.fail(op, romErrFailed)
	case r.flashErr != nil:
		r.fail(op, romErrWrite)
	default:
		return true
	}
	return false
}

// begin erases the sectors the write will cover, durably, then answers.
func (r *esp32ROM) begin(op byte, d []byte) {
	if !r.need(d, 16) { // 4 words on the ESP32 ROM; the encrypted flag is for later chips
		r.fail(op, romErrInvalid)
		return
	}
	if !r.flashReady(op) {
		return
	}
	w := &romWrite{defl: op == romFlashDeflBegin, size: words(d, 0), blocks: words(d, 1), bs: words(d, 2), offset: words(d, 3)}
	if w.bs == 0 || w.bs > romMaxBlock || uint64(w.offset)+uint64(w.size) > ESP32FlashSize {
		r.fail(op, romErrInvalid)
		return
	}
	if w.size > 0 {
		start := w.offset &^ 0xFFF
		end := min(ESP32FlashSize, (uint64(w.offset)+uint64(w.size)+0xFFF)&^0xFFF)
		err := updateFlashFile(r.h.flashPath(), int(start), int(end)-int(start), func(b []byte) {
			for i := range b {
				b[i] = 0xFF
			}
		})
		if err != nil {
			r.fail(op, romErrWrite)
			return
		}
	}
	r.write = w
	r.ok(op)
}

// data takes one FLASH_DATA/FLASH_DEFL_DATA block: header (length, seq, 0, 0),
// then the block, whose checksum is in the packet header.
func (r *esp32ROM) data(op byte, d []byte, chk uint32) {
	w := r.write
	if w == nil || w.defl != (op == romFlashDeflData) {
		r.fail(op, romErrFailed)
		return
	}
	if w.done { // the stream is complete: only a retry of its last block is welcome
		if len(d) >= 16 && words(d, 1) == w.blocks-1 {
			r.ok(op)
		} else {
			r.fail(op, romErrFailed)
		}
		return
	}
	if len(d) < 16 {
		r.fail(op, romErrInvalid)
		return
	}
	n, seq, block := words(d, 0), words(d, 1), d[16:]
	if int(n) != len(block) || seq >= w.blocks || n > w.bs || (!w.defl && n != w.bs) {
		r.fail(op, romErrInvalid)
		return
	}
	sum := byte(0xEF)
	for _, c := range block {
		sum ^= c
	}
	if uint32(sum) != chk {
		r.fail(op, romErrChecksum)
		return
	}
	if r.h.fault() == FaultFailWrite {
		r.fail(op, romErrWrite)
		return
	}
	if w.defl {
		// Blocks come in order; a retried block (seq already taken) is
		// answered again without appending it twice.
		switch next := uint32(len(w.z)) / w.bs; {
		case seq == next && uint32(len(w.z))%w.bs == 0:
			w.z = append(w.z, block...)
		case seq < next:
			r.ok(op)
			return
		default:
			r.fail(op, romErrInvalid) // a gap: the stream cannot skip
			return
		}
		if seq == w.blocks-1 {
			if code := r.inflate(); code != 0 {
				r.fail(op, code)
				return
			}
		}
		r.ok(op)
		return
	}
	off := uint64(w.offset) + uint64(seq)*uint64(w.bs)
	end := min(ESP32FlashSize, off+uint64(n))
	if off < end {
		err := updateFlashFile(r.h.flashPath(), int(off), int(end-off), func(b []byte) {
			for i := range b {
				b[i] &= block[i] // NOR flash programs 1 → 0 only
			}
		})
		if err != nil {
			r.fail(op, romErrWrite)
			return
		}
	}
	r.ok(op)
}

// inflate writes the whole deflate stream's output; it returns a ROM error
// code, or 0.
func (r *esp32ROM) inflate() byte {
	w := r.write
	zr, err := zlib.NewReader(bytes.NewReader(w.z))
	if err != nil {
		return romErrDeflate
	}
	out, err := io.ReadAll(io.LimitReader(zr, int64(w.size)+1))
	if err != nil || len(out) > int(w.size) {
		return romErrDeflate
	}
	w.done = true
	if len(out) == 0 {
		return 0
	}
	err = updateFlashFile(r.h.flashPath(), int(w.offset), len(out), func(b []byte) {
		for i := range b {
			b[i] &= out[i]
		}
	})
	if err != nil {
		return romErrWrite
	}
	return 0
}

// md5 answers SPI_FLASH_MD5 the ROM's way: 32 lowercase hex characters.
func (r *esp32ROM) md5(op byte, d []byte) {
	if !r.need(d, 16) {
		r.fail(op, romErrInvalid)
		return
	}
	if !r.flashReady(op) {
		return
	}
	addr, size := words(d, 0), words(d, 1)
	if uint64(addr)+uint64(size) > ESP32FlashSize {
		r.fail(op, romErrInvalid)
		return
	}
	b, err := readFlashFile(r.h.flashPath(), int(addr), int(size))
	if err != nil {
		r.fail(op, romErrRead)
		return
	}
	sum := md5.Sum(b)
	r.respond(op, 0, []byte(hex.EncodeToString(sum[:])), 0)
}

// readSlow answers READ_FLASH_SLOW: at most 64 bytes, always a 64-byte buffer.
func (r *esp32ROM) readSlow(op byte, d []byte) {
	if !r.need(d, 8) {
		r.fail(op, romErrInvalid)
		return
	}
	if !r.flashReady(op) {
		return
	}
	addr, n := words(d, 0), words(d, 1)
	if n > romReadSlowSize {
		r.fail(op, romErrReadLen)
		return
	}
	if uint64(addr)+romReadSlowSize > ESP32FlashSize {
		r.fail(op, romErrInvalid)
		return
	}
	b, err := readFlashFile(r.h.flashPath(), int(addr), romReadSlowSize)
	if err != nil {
		r.fail(op, romErrRead)
		return
	}
	r.respond(op, 0, b, 0)
}

func (r *esp32ROM) String() string { return fmt.Sprintf("esp32 rom mac %x", r.mac) }
