package sim

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
)

// esp32Chip is one power cycle of a simulated ESP32: in download mode the
// ROM's serial bootloader (reference/espressif.md §2), and after a RAM upload
// that MEM_END starts, esptool's flasher stub (esp32_stub.go). A pty has no
// reset lines, so the board comes up in download mode when plugged in; a
// software reset (the stub's FLASH_END with reboot) comes back there too, at
// the boot baud rate. The ROM's FLASH_END, or Board.Reset(false), boots it
// from its flash (esp32_boot.go): the bootloader, the partition table, the
// app, a model of the kit it is.
//
// The chip is as slow as the real one (esp32_time.go, spiflash.go): the ROM
// erases a region before it answers FLASH_BEGIN, programs every page and
// inflates every deflated block before it answers, and reads nothing while it
// does; the stub erases as it writes and receives the next block meanwhile.
type esp32Chip struct {
	h        romHost
	mac      [6]byte
	regs     map[uint32]uint32
	flashErr error // the flash file is unusable: flash commands fail
	t        *esp32Time
	bootBaud int

	rom     *esp32ROM  // the ROM loader is listening, or
	stub    *esp32Stub // the flasher stub is
	dead    bool       // running code the simulator cannot run: deaf to the protocol
	running bool       // booted from flash (esp32_boot.go): deaf to the protocol
}

// esp32ROM plays the ESP32's ROM serial bootloader: SLIP frames, command
// packets, responses with the ESP32 ROM's 4 status bytes.
//
// Written from the reference and esptool's ROM-mode (--no-stub) code,
// independently of burner/esprom, so the two can disagree in a test.
//
// Choices where the reference is silent:
//   - Requests that are not well-formed packets (too short, direction not 0)
//     are ignored, as noise; a size field that disagrees with the data, or a
//     command's data of the wrong length, answers status 1, error 0x05.
//   - Flash commands before SPI_ATTACH answer error 0x06.
//   - FLASH_BEGIN at an offset that is not sector-aligned answers 0x06: the
//     ROM's area erase refuses one (esp_rom_spiflash_erase_area returns an
//     error); which code the ROM then answers is not published.
//   - FLASH_DATA writes block seq at offset + seq × block size, programming
//     NOR-style (new = old AND data), so 0xFF padding never harms; the
//     region was erased by FLASH_BEGIN.
//   - FLASH_DEFL_DATA inflates each block as it arrives and writes its output
//     before answering; a broken stream, output beyond the size given to
//     FLASH_DEFL_BEGIN, or a stream still unfinished at its last block
//     answers 0x0B. Blocks come in order; a retried block (its answer was
//     lost) is answered again without being written twice.
//   - READ_FLASH_SLOW always answers 64 bytes (esptool notes the ROM does).
//   - MEM_BEGIN outside the chip's RAM (esptool targets/esp32.py MEMORY_MAP)
//     answers 0x05; MEM_DATA is checked like FLASH_DATA.
//   - FLASH_END/FLASH_DEFL_END leave the bootloader: the chip boots from
//     its flash (esp32_boot.go) and ignores the protocol until it is reset
//     into download mode or replugged.
type esp32ROM struct {
	c        *esp32Chip
	in       slipIn
	attached bool
	write    *romWrite
	mem      *romMem   // MEM_BEGIN in progress
	uploads  []*romMem // RAM uploads of this power cycle
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
	inf                      *inflater // FLASH_DEFL: the stream so far
	next                     uint32    // FLASH_DEFL: the next block expected
	written                  uint32    // FLASH_DEFL: output bytes written
	done                     bool
}

// romMem is a MEM_BEGIN upload.
type romMem struct {
	offset, size, blocks, bs uint32
	got                      map[uint32]bool // blocks received
	bytes                    uint32
}

func (m *romMem) complete() bool { return m.bytes == m.size && uint32(len(m.got)) == m.blocks }

// ROM opcodes and error codes ([LDR] ESP_CMDS, [PROTO] ROM Loader Errors).
const (
	romFlashBegin     = 0x02
	romFlashData      = 0x03
	romFlashEnd       = 0x04
	romMemBegin       = 0x05
	romMemEnd         = 0x06
	romMemData        = 0x07
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

// The ESP32's RAM, as esptool's targets/esp32.py MEMORY_MAP names it: where a
// RAM upload may go, and (exec) where code may run from.
var esp32RAM = []struct {
	start, end uint32
	exec       bool
}{
	{0x3FF80000, 0x3FF82000, false}, // RTC_DRAM
	{0x3FFAE000, 0x40000000, false}, // DRAM
	{0x40080000, 0x400A0000, true},  // IRAM
	{0x400A0000, 0x400BFFFC, true},  // DIRAM_IRAM
	{0x400C0000, 0x400C2000, true},  // RTC_IRAM
	{0x50000000, 0x50002000, false}, // RTC_DATA
}

func inRAM(start, size uint32, exec bool) bool {
	end := uint64(start) + uint64(size)
	for _, r := range esp32RAM {
		if start >= r.start && end <= uint64(r.end) && (r.exec || !exec) {
			return true
		}
	}
	return false
}

func newESP32(h host) firmware {
	rh, ok := h.(romHost)
	if !ok {
		panic("sim: the esp32 firmware needs a host with a flash file and a baud switch")
	}
	c := &esp32Chip{h: rh, regs: map[uint32]uint32{}, bootBaud: rh.lineBaud()}
	if hw, err := net.ParseMAC(h.file().MAC); err == nil && len(hw) == 6 {
		copy(c.mac[:], hw)
	}
	var clk esp32Clock = wallClock{h.ctx()}
	if ch, ok := h.(clockHost); ok {
		clk = ch.esp32Clock()
	}
	c.t = &esp32Time{clk: clk, acct: esp32AccountFor(rh.flashPath())}
	if err := ensureFlashFile(rh.flashPath()); err != nil {
		// The board still boots; its flash commands fail as a broken chip's would.
		c.flashErr = err
		h.logger().Error("sim: esp32 flash file", "err", err)
	}
	c.rom = &esp32ROM{c: c}
	if bh, ok := h.(bootHost); ok {
		switch bh.bootMode() {
		case bootDownload: // EN pressed with BOOT held: the ROM's banner ([BOOT]; EN is a power-on reset)
			h.send([]byte(romDate + "\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\nwaiting for download\r\n"))
		case bootFlash:
			c.bootFromFlash(rstPowerOn)
		}
	}
	return c
}

// bootHost tells how the board was started (Board.Reset, or plugged in).
type bootHost interface{ bootMode() bootKind }

// endsRequest: a garbled chip answers noise once per frame delimiter.
func (c *esp32Chip) endsRequest(p []byte) bool { return bytes.IndexByte(p, 0xC0) >= 0 }

// receive hands the bytes to whichever loader is listening; a frame can
// switch it (MEM_END starts the stub, a reboot brings the ROM back), and the
// rest of the bytes go to the new one.
func (c *esp32Chip) receive(p []byte) {
	for len(p) > 0 && !c.dead && !c.running {
		if c.stub != nil {
			p = p[c.stub.receive(p):]
		} else {
			p = p[c.rom.receive(p):]
		}
	}
}

// softReset is the chip's software reset (the stub's software_reset()): the
// registers and the loaders start afresh and the UART is back at the boot
// rate. A software reset does not sample the strapping pins again (esptool's
// docs: only a chip reset re-samples the boot pins; its soft_reset relies on
// the stub's reset coming back to the ROM loader), so the chip boots into
// download mode once more and prints the ROM banner ([BOOT]; rst:0x3 is the
// software system reset, SW_RESET).
func (c *esp32Chip) softReset() {
	c.regs = map[uint32]uint32{}
	c.stub = nil
	c.rom = &esp32ROM{c: c}
	if c.bootBaud > 0 {
		c.h.setBaud(c.bootBaud)
	}
	c.h.send([]byte("ets Jun  8 2016 00:22:57\r\n\r\nrst:0x3 (SW_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\nwaiting for download\r\n"))
}

// readReg answers what esptool reads: the chip magic, the eFuse words (MAC,
// package D0WD, revision v3.0, no encryption), the clock registers, SPI
// registers written before.
func (c *esp32Chip) readReg(addr uint32) uint32 {
	m := c.mac
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
		baud := c.h.lineBaud()
		if baud <= 0 {
			baud = 115200
		}
		return uint32(40_000_000 / baud)
	}
	return c.regs[addr]
}

// writeReg stores a register; a write of SPI_CMD_REG's USR bit runs the user
// SPI command esptool set up (RDID answers the W25Q32JV, other commands leave
// W0 as written) and clears the bit, as the hardware does when done.
func (c *esp32Chip) writeReg(addr, value, mask uint32) {
	c.regs[addr] = c.regs[addr]&^mask | value&mask
	if addr == regSPICmd && c.regs[addr]&spiCmdUsr != 0 {
		if c.regs[regSPIUsr2]&0xFF == 0x9F { // RDID: manufacturer EF, type 40, capacity 16
			c.regs[regSPIW0] = 0x1640EF
		}
		c.regs[addr] &^= spiCmdUsr
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

// eraseFile applies an erase to the flash file (durably).
func (c *esp32Chip) eraseFile(op eraseOp) error {
	if c.flashErr != nil {
		return c.flashErr
	}
	if uint64(op.addr)+uint64(op.size) > ESP32FlashSize {
		return fmt.Errorf("sim: %v is outside the %d-byte flash", op, ESP32FlashSize)
	}
	return updateFlashFile(c.h.flashPath(), int(op.addr), int(op.size), func(b []byte) {
		for i := range b {
			b[i] = 0xFF
		}
	})
}

// programFile programs data at addr, NOR-style: bits go from 1 to 0 only.
func (c *esp32Chip) programFile(addr uint32, data []byte) error {
	if c.flashErr != nil {
		return c.flashErr
	}
	if uint64(addr)+uint64(len(data)) > ESP32FlashSize {
		return fmt.Errorf("sim: a write of %d bytes at 0x%x is outside the %d-byte flash", len(data), addr, ESP32FlashSize)
	}
	if len(data) == 0 {
		return nil
	}
	return updateFlashFile(c.h.flashPath(), int(addr), len(data), func(b []byte) {
		for i := range b {
			b[i] &= data[i]
		}
	})
}

func (c *esp32Chip) readFile(addr, n uint32) ([]byte, error) {
	if c.flashErr != nil {
		return nil, c.flashErr
	}
	return readFlashFile(c.h.flashPath(), int(addr), int(n))
}

// receive takes SLIP frames until one of them hands the UART to the stub.
func (r *esp32ROM) receive(p []byte) int {
	return r.in.feed(p, func(f []byte) bool {
		r.handle(f)
		return r.c.rom == r && !r.c.dead
	})
}

// slipIn reassembles SLIP frames; broken frames (bad escape) are dropped.
type slipIn struct {
	inFrame, esc, bad bool
	buf               []byte
}

// feed reassembles frames from p and hands each to frame, stopping early when
// frame returns false; it returns how many bytes of p it took.
func (s *slipIn) feed(p []byte, frame func([]byte) bool) int {
	for i, c := range p {
		switch {
		case c == 0xC0:
			more := true
			if s.inFrame && !s.bad && len(s.buf) > 0 {
				more = frame(s.buf)
			}
			s.inFrame, s.esc, s.bad, s.buf = true, false, false, s.buf[:0]
			if !more {
				return i + 1
			}
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
	return len(p)
}

// slipEscape escapes p for the inside of a SLIP frame.
func slipEscape(p []byte) []byte {
	out := make([]byte, 0, len(p)+8)
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
	return out
}

func slipOut(p []byte) []byte {
	return append(append([]byte{0xC0}, slipEscape(p)...), 0xC0)
}

// respond sends one response once the chip has done what it was charged:
// direction 1, opcode, size, value, payload, then the ESP32 ROM's 4 status
// bytes (status, error, 2 reserved).
func (r *esp32ROM) respond(op byte, value uint32, payload []byte, errCode byte) {
	if !r.c.t.settle() {
		return // the board lost power before it could answer
	}
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
	r.c.h.send(slipOut(p))
}

func (r *esp32ROM) ok(op byte)                { r.respond(op, 0, nil, 0) }
func (r *esp32ROM) fail(op byte, code byte)   { r.respond(op, 0, nil, code) }
func words(d []byte, i int) uint32            { return binary.LittleEndian.Uint32(d[4*i:]) }
func (r *esp32ROM) need(d []byte, n int) bool { return len(d) == n }

func (r *esp32ROM) handle(f []byte) {
	if len(f) < 8 || f[0] != 0x00 {
		return
	}
	op, size, chk, d := f[1], int(binary.LittleEndian.Uint16(f[2:])), binary.LittleEndian.Uint32(f[4:]), f[8:]
	r.c.h.logger().Debug("sim: rom command", "op", op, "len", len(d))
	if !r.c.t.take() {
		return
	}
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
		r.respond(op, r.c.readReg(words(d, 0)), nil, 0)
	case romWriteReg:
		if !r.need(d, 16) {
			r.fail(op, romErrInvalid)
			return
		}
		r.c.writeReg(words(d, 0), words(d, 1), words(d, 2))
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
		// The ROM stays at the new rate until the chip is reset: nothing
		// but a power cycle (replug) or a software reset sets it back.
		r.ok(op) // at the old rate; then the UART switches
		r.c.h.setBaud(int(words(d, 0)))
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
			r.fail(op, romErrDeflate) // the stream never finished
			return
		}
		r.ok(op)
		r.write = nil
		if words(d, 0) == 0 { // reboot, then boot from flash (esp32_boot.go)
			r.c.bootFromFlash(rstFlashEnd)
		} else { // run user code: the same without a reset
			r.c.bootFromFlash("")
		}
	case romSPIFlashMD5:
		r.md5(op, d)
	case romReadFlashSlow:
		r.readSlow(op, d)
	case romMemBegin:
		r.memBegin(op, d)
	case romMemData:
		r.memData(op, d, chk)
	case romMemEnd:
		r.memEnd(op, d)
	default:
		r.fail(op, romErrInvalid) // unsupported, e.g. GET_SECURITY_INFO on an ESP32
	}
}

func (r *esp32ROM) flashReady(op byte) bool {
	switch {
	case !r.attached:
		r.fail(op, romErrFailed)
	case r.c.flashErr != nil:
		r.fail(op, romErrWrite)
	default:
		return true
	}
	return false
}

// begin erases the area the write will cover, the ROM's way and at the
// flash's pace (romEraseArea), durably, then answers.
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
	if w.offset%flashSector != 0 {
		r.fail(op, romErrFailed)
		return
	}
	r.write = nil
	for _, e := range romEraseArea(w.offset, w.size) {
		r.c.t.erase(e, true)
		if !r.c.t.settle() {
			return // power lost mid-erase: what was erased so far stays erased
		}
		if err := r.c.eraseFile(e); err != nil {
			r.fail(op, romErrWrite)
			return
		}
	}
	if w.defl {
		w.inf = newInflater()
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
		if len(d) >= 16 && words(d, 1) == w.next-1 {
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
	if checksum(block) != chk {
		r.fail(op, romErrChecksum)
		return
	}
	if r.c.h.fault() == FaultFailWrite {
		r.fail(op, romErrWrite)
		return
	}
	if w.defl {
		r.deflData(op, w, seq, block)
		return
	}
	off := uint64(w.offset) + uint64(seq)*uint64(w.bs)
	end := min(ESP32FlashSize, off+uint64(n))
	if off < end {
		r.c.t.program(pagePrograms(uint32(off), uint32(end-off)))
		if !r.c.t.settle() {
			return
		}
		if err := r.c.programFile(uint32(off), block[:end-off]); err != nil {
			r.fail(op, romErrWrite)
			return
		}
	}
	r.ok(op)
}

// deflData inflates one block of the stream and writes its output, then
// answers: the ROM inflates as the blocks arrive.
func (r *esp32ROM) deflData(op byte, w *romWrite, seq uint32, block []byte) {
	switch {
	case seq < w.next: // a retry: that block is in flash already
		r.ok(op)
		return
	case seq > w.next:
		r.fail(op, romErrInvalid) // a gap: the stream cannot skip
		return
	}
	out, st := inflateAll(w.inf, block)
	if st < 0 || uint64(w.written)+uint64(len(out)) > uint64(w.size) || (seq == w.blocks-1 && st != inflateDone) {
		r.fail(op, romErrDeflate)
		return
	}
	at := w.offset + w.written
	r.c.t.inflate(len(out))
	r.c.t.program(pagePrograms(at, uint32(len(out))))
	if !r.c.t.settle() {
		return
	}
	if err := r.c.programFile(at, out); err != nil {
		r.fail(op, romErrWrite)
		return
	}
	w.written += uint32(len(out))
	w.next++
	w.done = st == inflateDone
	r.ok(op)
}

// inflateAll runs the inflater over one whole block.
func inflateAll(z *inflater, in []byte) ([]byte, inflateStatus) {
	var out []byte
	buf := make([]byte, 32<<10)
	for {
		nIn, nOut, st := z.inflate(in, buf, true)
		out = append(out, buf[:nOut]...)
		in = in[nIn:]
		if st != inflateHasOutput {
			return out, st
		}
	}
}

// checksum is the protocol's block checksum ([PROTO] Checksum): 0xEF XOR
// every byte.
func checksum(b []byte) uint32 {
	sum := byte(0xEF)
	for _, c := range b {
		sum ^= c
	}
	return uint32(sum)
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
	b, err := r.c.readFile(addr, size)
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
	b, err := r.c.readFile(addr, romReadSlowSize)
	if err != nil {
		r.fail(op, romErrRead)
		return
	}
	r.respond(op, 0, b, 0)
}

// memBegin starts a RAM upload: size, blocks, block size, address (esptool
// mem_begin). The simulator keeps no RAM contents, only what was uploaded
// where.
func (r *esp32ROM) memBegin(op byte, d []byte) {
	if !r.need(d, 16) {
		r.fail(op, romErrInvalid)
		return
	}
	m := &romMem{size: words(d, 0), blocks: words(d, 1), bs: words(d, 2), offset: words(d, 3), got: map[uint32]bool{}}
	if m.bs == 0 || m.bs > romMaxBlock || uint64(m.blocks)*uint64(m.bs) < uint64(m.size) || !inRAM(m.offset, m.size, false) {
		r.fail(op, romErrInvalid)
		return
	}
	r.mem = m
	r.uploads = append(r.uploads, m)
	r.ok(op)
}

// memData takes one MEM_DATA block, checked as FLASH_DATA is (checksum in
// the header; esptool mem_block).
func (r *esp32ROM) memData(op byte, d []byte, chk uint32) {
	m := r.mem
	if m == nil {
		r.fail(op, romErrFailed)
		return
	}
	if len(d) < 16 {
		r.fail(op, romErrInvalid)
		return
	}
	n, seq, block := words(d, 0), words(d, 1), d[16:]
	if int(n) != len(block) || seq >= m.blocks || n > m.bs || uint64(seq)*uint64(m.bs)+uint64(n) > uint64(m.size) {
		r.fail(op, romErrInvalid)
		return
	}
	if checksum(block) != chk {
		r.fail(op, romErrChecksum)
		return
	}
	if !m.got[seq] {
		m.got[seq] = true
		m.bytes += n
	}
	r.ok(op)
}

// memEnd ends the upload: words int(entry == 0), entry (esptool mem_finish).
// The ROM answers, then jumps to the entry point when told to.
//
// The simulator cannot run Xtensa code. This is the one place it assumes what
// the code does: a jump to an entry point in the ESP32's instruction RAM
// (IRAM, DIRAM_IRAM, RTC_IRAM), inside a RAM upload of this power cycle that
// arrived whole, is taken to start esptool's flasher stub, and from then on
// the chip speaks the stub's dialect (esp32_stub.go). A jump anywhere else
// would crash a real chip: the simulated one goes deaf.
func (r *esp32ROM) memEnd(op byte, d []byte) {
	if !r.need(d, 8) {
		r.fail(op, romErrInvalid)
		return
	}
	stay, entry := words(d, 0), words(d, 1)
	r.ok(op)
	r.mem = nil
	if stay != 0 {
		return
	}
	for _, m := range r.uploads {
		if m.complete() && entry >= m.offset && entry < m.offset+m.size && inRAM(entry, 4, true) {
			r.c.rom, r.c.stub = nil, newStub(r.c)
			return
		}
	}
	r.c.h.logger().Info("sim: esp32 jumped to code it cannot run: deaf until replugged", "entry", fmt.Sprintf("0x%08x", entry))
	r.c.dead = true
}

func (c *esp32Chip) String() string { return fmt.Sprintf("esp32 mac %x", c.mac) }
