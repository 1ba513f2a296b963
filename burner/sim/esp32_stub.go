package sim

import (
	"crypto/md5"
	"encoding/binary"
	"hash"
	"time"
)

// esp32Stub plays esptool's flasher stub for the ESP32, the one esptool
// v4.8.1 uploads: esptool/targets/stub_flasher/1/esp32.json, built from
// espressif/esptool-legacy-flasher-stub v1.3.0 (the README beside the JSON
// says so). Every behaviour below is read from that tag's flasher_stub/
// sources (stub_flasher.c, stub_commands.c, stub_write_flash.c, stub_io.c,
// slip.c, include/stub_flasher.h), named beside the code; none of it is
// copied.
//
// What the simulator cannot do and does instead, all harsher or equal:
//   - It receives one frame at a time and handles it on the reader's
//     goroutine, so a command the host sends while the stub is still busy
//     waits for it; the real stub has one command slot (ub.command), and a
//     second frame arriving meanwhile would replace the first. esptool never
//     sends one before the answer.
//   - Flash beyond the physical 4 MB: a real part ignores the high address
//     bits; the simulated one fails the operation (ESP_FAILED_SPI_OP where
//     the stub would notice, otherwise the write or erase is skipped).
//   - FLASH_ENCRYPT_DATA is acknowledged as the stub does, but the simulator
//     has no flash encryption: its write fails (ESP_FAILED_SPI_OP, reported
//     on the next data block or FLASH_END).
//   - Jumping to uploaded code (MEM_END with an entry) or running user code
//     (RUN_USER_CODE) leaves a chip the simulator cannot run: it goes deaf.
type esp32Stub struct {
	c *esp32Chip

	// Reception (stub_flasher.c uart_buf_t, stub_handle_rx_byte): a SLIP
	// state machine filling two buffers in turn; a finished frame is the
	// command, read from its buffer by the header's data_len whatever the
	// frame's length, so a short frame reads what the buffer held before.
	slip    slipState
	bufs    [2][stubMaxBlock + 64]byte
	reading int // which buffer is being filled
	n       int // bytes in it

	// The flash-writing state (stub_write_flash.c, fs).
	inFlash             bool
	nextWrite           uint32
	nextEraseSector     uint32
	remaining           uint32
	remainingErase      uint32
	lastErr             byte
	inf                 *inflater
	remainingCompressed uint32
	// out_buf and next_out of handle_flash_deflated_data are static: the
	// output waiting to be written survives from one block, and one FLASH_DEFL
	// session, to the next.
	outBuf [32768]byte
	outN   int

	// RAM upload (stub_commands.c handle_mem_*).
	memSet       bool // mem_offset != NULL
	memRemaining uint32

	chipSize uint32    // SPIParamCfg's chip size: FLASH_MAX_SIZE at start, then SPI_SET_PARAMS
	read     *stubRead // READ_FLASH in progress: reception is synchronous
}

// Stub constants (include/stub_flasher.h).
const (
	stubMaxBlock     = 0x4000 // MAX_WRITE_BLOCK
	stubFlashMaxSize = 16 << 20

	stubOK              = 0x00
	stubBadDataLen      = 0xC0
	stubBadDataChecksum = 0xC1
	stubBadBlocksize    = 0xC2
	stubFailedSPIOp     = 0xC4
	stubNotInFlashMode  = 0xC6
	stubInflateError    = 0xC7
	stubNotEnoughData   = 0xC8
	stubTooMuchData     = 0xC9
	stubNotImplemented  = 0xFF

	stubEraseFlash  = 0xD0
	stubEraseRegion = 0xD1
	stubReadFlash   = 0xD2
	stubRunUserCode = 0xD3
	stubEncryptData = 0xD4
)

func newStub(c *esp32Chip) *esp32Stub {
	s := &esp32Stub{c: c, chipSize: stubFlashMaxSize}
	// stub_main: the OHAI greeting, then the UART interrupt, the SPI flash
	// attached (spi_flash_attach) and SPIParamCfg(0, FLASH_MAX_SIZE, …).
	c.h.send(slipOut([]byte("OHAI")))
	return s
}

// slipState is slip.c's SLIP_recv_byte: a C0 starts a frame when none is
// open and ends it otherwise (so an empty frame is a frame), bytes outside a
// frame are dropped, and an escape followed by anything but DC/DD drops that
// byte and stays escaping.
type slipState int

const (
	slipNoFrame slipState = iota
	slipFrame
	slipEscaping
)

const (
	slipNoByte   = -1
	slipFinished = -2
)

func (s *slipState) recv(b byte) int {
	if b == 0xC0 {
		if *s == slipNoFrame {
			*s = slipFrame
			return slipNoByte
		}
		*s = slipNoFrame
		return slipFinished
	}
	switch *s {
	case slipFrame:
		if b == 0xDB {
			*s = slipEscaping
			return slipNoByte
		}
		return int(b)
	case slipEscaping:
		switch b {
		case 0xDC:
			*s = slipFrame
			return 0xC0
		case 0xDD:
			*s = slipFrame
			return 0xDB
		}
	}
	return slipNoByte
}

// receive is the UART interrupt (stub_io.c uart_isr → stub_handle_rx_byte):
// it takes bytes until a command hands the UART back to the ROM or leaves the
// chip deaf, and returns how many it took.
func (s *esp32Stub) receive(p []byte) int {
	for i, b := range p {
		if s.read != nil {
			s.read.recv(s, b)
		} else {
			r := s.slip.recv(b)
			if r >= 0 {
				s.bufs[s.reading][s.n] = byte(r)
				s.n++
				if s.n == len(s.bufs[0]) { // "shouldn't happen unless there are data errors"
					r = slipFinished
				}
			}
			if r == slipFinished {
				cmd := &s.bufs[s.reading]
				s.reading ^= 1
				s.n = 0
				s.command(cmd[:])
			}
		}
		if s.c.stub != s || s.c.dead {
			return i + 1
		}
	}
	return len(p)
}

// Response framing (stub_flasher.c cmd_loop): the 8-byte header goes out
// when the command is taken, data and the two status bytes (error, then
// status) after it has run.
func (s *esp32Stub) header(op byte, lenRet uint16, value uint32) {
	var h [8]byte
	h[0], h[1] = 1, op
	binary.LittleEndian.PutUint16(h[2:], lenRet)
	binary.LittleEndian.PutUint32(h[4:], value)
	s.c.h.send(append([]byte{0xC0}, slipEscape(h[:])...))
}

func (s *esp32Stub) trailer(errCode, status byte) {
	s.c.h.send(append(slipEscape([]byte{errCode, status}), 0xC0))
}

// or is C's ||, which the stub uses to chain checks: its value is 1, not the
// error code, when either side fails (error = verify_data_len(...) ||
// handle_...(...)).
func or(a byte, b func() byte) byte {
	if a != 0 || b() != 0 {
		return 1
	}
	return 0
}

func (s *esp32Stub) verifyLen(dataLen, n int) byte {
	if dataLen != n {
		return stubBadDataLen
	}
	return stubOK
}

// command is one turn of cmd_loop for a finished frame in buf.
func (s *esp32Stub) command(buf []byte) {
	t := s.c.t
	if !t.take() {
		return
	}
	op := buf[1]
	dataLen := int(binary.LittleEndian.Uint16(buf[2:]))
	chk := binary.LittleEndian.Uint32(buf[4:])
	data := buf[8:]
	w := func(i int) uint32 { return binary.LittleEndian.Uint32(data[4*i:]) }
	// The data blocks' payload is data_len - 16 bytes, an unsigned length in
	// the handlers: a packet shorter than its 16-byte header makes it huge,
	// trimmed by the handler to what is left, and read from the buffer's old
	// contents (the simulator stops at the buffer's end).
	payload := dataLen - 16
	block := data[16:max(dataLen, 16)]
	if payload < 0 {
		block = data[16:]
	}
	s.c.h.logger().Debug("sim: stub command", "op", op, "len", dataLen)

	var value uint32
	lenRet := uint16(2)
	switch op {
	case romReadReg:
		if dataLen == 4 {
			value = s.c.readReg(w(0))
		}
	case romSPIFlashMD5:
		lenRet = 16 + 2
	}
	s.header(op, lenRet, value)
	if dataLen > stubMaxBlock+16 {
		s.trailer(stubBadDataLen, 0xEE)
		return
	}

	errCode, status := byte(stubNotImplemented), byte(0)
	switch op {
	case romSync:
		// Eight identical answers, as the ROM gives, value 0 (how esptool
		// tells the stub from the ROM).
		if errCode = s.verifyLen(dataLen, 36); errCode == stubOK {
			for range 7 {
				s.trailer(0, 0)
				s.header(op, 2, 0)
			}
		}
	case stubEraseFlash:
		errCode = or(s.verifyLen(dataLen, 0), s.eraseChip)
	case stubEraseRegion:
		errCode = or(s.verifyLen(dataLen, 8), func() byte { return s.eraseRegion(w(0), w(1)) })
	case romChangeBaudrate: // new and old rate; the switch happens after the answer
		errCode = s.verifyLen(dataLen, 8)
	case stubReadFlash: // the data goes after the answer
		errCode = s.verifyLen(dataLen, 16)
	case romSPIFlashMD5:
		errCode = or(s.verifyLen(dataLen, 16), func() byte { return s.md5(w(0), w(1)) })
	case romFlashBegin, romFlashDeflBegin:
		if dataLen == 16 && w(2) > stubMaxBlock {
			errCode = stubBadBlocksize
		} else if op == romFlashBegin {
			errCode = or(s.verifyLen(dataLen, 16), func() byte { return s.flashBegin(w(0), w(3)) })
		} else {
			errCode = or(s.verifyLen(dataLen, 16), func() byte {
				e := s.flashBegin(w(0), w(3))
				s.inf = newInflater()
				s.remainingCompressed = w(1) * w(2)
				return e
			})
		}
	case romFlashData, romFlashDeflData, stubEncryptData:
		// Acknowledged at once, written after the answer: the next block
		// arrives while this one is being written.
		if s.inFlash {
			errCode = s.lastErr
			if w(0) != uint32(payload) {
				errCode = stubBadDataLen
			}
			if uint32(checksum(data[16:16+max(payload, 0)])) != chk {
				errCode = stubBadDataChecksum
			}
		} else {
			errCode = stubNotInFlashMode
		}
	case romFlashEnd, romFlashDeflEnd:
		errCode = s.flashEnd()
	case romSPISetParams:
		// handle_spi_set_params: status is SPIParamCfg's result, which the
		// ROM does not document failing; the chip size is what flash
		// reads are checked against from now on.
		errCode = or(s.verifyLen(dataLen, 24), func() byte { s.chipSize = w(1); return 0 })
	case romSPIAttach:
		errCode = or(s.verifyLen(dataLen, 4), func() byte { return 0 }) // handle_spi_attach: ESP_OK
	case romWriteReg:
		if dataLen%16 != 0 {
			errCode = stubBadDataLen
		} else {
			errCode = s.writeRegs(data[:dataLen])
		}
	case romReadReg:
		errCode = s.verifyLen(dataLen, 4) // read above, into the header
	case romMemBegin:
		// handle_mem_begin keeps the address as a pointer: at 0 it is NULL,
		// and MEM_DATA then answers ESP_NOT_IN_FLASH_MODE.
		errCode = or(s.verifyLen(dataLen, 16), func() byte { s.memSet, s.memRemaining = w(3) != 0, w(0); return 0 })
	case romMemData:
		errCode = s.memData(uint32(payload))
	case romMemEnd:
		errCode = or(s.verifyLen(dataLen, 8), s.memFinish)
	case stubRunUserCode:
		// cmd_loop returns with the answer's header sent and nothing more:
		// the chip goes on to run its app.
		s.c.dead = true
		return
	}
	// GET_SECURITY_INFO is compiled in for the ESP32-S2 and later only; on
	// the ESP32 it, READ_FLASH_SLOW and any other opcode stay
	// ESP_CMD_NOT_IMPLEMENTED.
	if !t.settle() {
		return
	}
	s.trailer(errCode, status)
	if errCode != stubOK {
		return
	}

	// After the answer (cmd_loop's second switch).
	switch op {
	case romChangeBaudrate:
		s.setBaud(w(1), w(0))
	case stubReadFlash:
		s.startRead(w(0), w(1), w(2), w(3))
	case romFlashData:
		s.flashData(block)
	case stubEncryptData:
		n := min(uint32(len(block)), s.remaining)
		s.lastErr = stubFailedSPIOp
		s.nextWrite += n
		s.remaining -= n
	case romFlashDeflData:
		s.deflData(block)
	case romFlashEnd, romFlashDeflEnd:
		if w(0) == 0 { // reboot: flush the answer, 10 ms, software_reset()
			t.work(10 * time.Millisecond)
			if t.settle() {
				s.c.softReset()
			}
		}
	case romMemEnd:
		if w(1) != 0 {
			s.c.h.logger().Info("sim: esp32 stub jumped to uploaded code it cannot run: deaf until replugged")
			s.c.dead = true
		}
	}
}

// setBaud is stub_io_set_baudrate(old, new): 10 ms for the answer to leave,
// then the divider is scaled by old/new from the current one, which gives
// current × new / old: exact only when the host told the rate it uses.
func (s *esp32Stub) setBaud(old, new uint32) {
	t := s.c.t
	t.work(10 * time.Millisecond)
	if !t.settle() {
		return
	}
	if old == 0 || new == 0 {
		// A zero divider (old 0) leaves the UART dead; new 0 divides by zero.
		s.c.dead = true
		return
	}
	if cur := s.c.h.lineBaud(); cur > 0 {
		s.c.h.setBaud(int(uint64(cur) * uint64(new) / uint64(old)))
	}
	t.work(time.Millisecond)
}

// writeRegs is handle_write_reg: each (addr, value, mask, delay_us) waits its
// delay, then writes, keeping the bits outside a mask that is not all ones.
func (s *esp32Stub) writeRegs(d []byte) byte {
	for ; len(d) >= 16; d = d[16:] {
		addr, v, mask, delay := words(d, 0), words(d, 1), words(d, 2), words(d, 3)
		s.c.t.work(time.Duration(delay) * time.Microsecond)
		s.c.writeReg(addr, v, mask)
	}
	return stubOK
}

// spiOK reports whether an erase or program of the physical flash can be
// done (see the type's comment).
func (s *esp32Stub) spiOK(addr, n uint32) bool {
	return s.c.flashErr == nil && uint64(addr)+uint64(n) <= ESP32FlashSize
}

// eraseChip is SPIEraseChip (the ROM's, which waits for the erase): tCE.
func (s *esp32Stub) eraseChip() byte {
	op := eraseOp{0, ESP32FlashSize}
	s.c.t.erase(op, true)
	if !s.c.t.settle() {
		return 0
	}
	if s.c.eraseFile(op) != nil {
		return 1
	}
	return 0
}

// eraseRegion is handle_flash_erase: alignment checks (0x32, 0x33), then
// stubRegionErase's sequence through the ROM's SPIEraseSector/SPIEraseBlock,
// which refuse what lies beyond the chip size (0x35, 0x36, 0x37) and wait
// for each erase.
func (s *esp32Stub) eraseRegion(addr, length uint32) byte {
	if addr%flashSector != 0 {
		return 0x32
	}
	if length%flashSector != 0 {
		return 0x33
	}
	for _, op := range stubRegionErase(addr, length) {
		if uint64(op.addr)+uint64(op.size) > uint64(s.chipSize) || !s.spiOK(op.addr, op.size) {
			return 0x35
		}
		s.c.t.erase(op, true)
		if !s.c.t.settle() {
			return 0
		}
		if s.c.eraseFile(op) != nil {
			return 0x35
		}
	}
	return 0
}

// md5 is handle_flash_get_md5sum: SPIRead in 4 KB pieces (each refused past
// the chip size: 0x63), then the 16 raw digest bytes inside the answer.
func (s *esp32Stub) md5(addr, length uint32) byte {
	s.c.t.waitFlash()
	if !s.c.t.settle() {
		return 0
	}
	if uint64(addr)+uint64(length) > uint64(s.chipSize) || uint64(addr)+uint64(length) > ESP32FlashSize {
		return 0x63
	}
	b, err := s.c.readFile(addr, length)
	if err != nil {
		return 0x63
	}
	sum := md5.Sum(b)
	s.c.h.send(slipEscape(sum[:]))
	return 0
}

// flashBegin is handle_flash_begin: nothing is erased yet (the stub erases
// as it writes), only the write state is set and the flash unlocked.
func (s *esp32Stub) flashBegin(size, offset uint32) byte {
	s.inFlash = true
	s.nextWrite = offset
	s.nextEraseSector = offset / flashSector
	s.remaining = size
	s.remainingErase = (offset%flashSector + size + flashSector - 1) / flashSector
	s.lastErr = stubOK
	return 0
}

func (s *esp32Stub) flashEnd() byte {
	if !s.inFlash {
		return stubNotInFlashMode
	}
	if s.remaining > 0 {
		return stubNotEnoughData
	}
	s.inFlash = false
	return s.lastErr
}

// startNextErase is start_next_erase: a 64 KB block erase when at least a
// block is left and the next sector starts one (">="), else a sector erase.
// It does not wait for the erase; wait makes it wait for the flash to be
// ready first (handle_flash_data calls it in a loop until it has erased far
// enough; handle_flash_deflated_data calls it once and moves on if the flash
// is busy).
func (s *esp32Stub) startNextErase(wait bool) {
	if s.remainingErase == 0 {
		return
	}
	if !wait && !s.c.t.flashIdle() {
		return
	}
	op := eraseOp{s.nextEraseSector * flashSector, flashSector}
	if s.remainingErase >= sectorsPerBlock && s.nextEraseSector%sectorsPerBlock == 0 {
		op.size = flashBlock
	}
	if s.spiOK(op.addr, op.size) {
		s.c.t.erase(op, false)
		if s.c.eraseFile(op) != nil {
			s.lastErr = stubFailedSPIOp
		}
	}
	n := op.size / flashSector
	s.remainingErase -= n
	s.nextEraseSector += n
}

// flashData is handle_flash_data: the block trimmed to what is left, erased
// as far as the sector it ends in, then written with SPIWrite (the ROM's,
// which checks the chip size and waits for every page).
func (s *esp32Stub) flashData(data []byte) {
	n := min(uint32(len(data)), s.remaining)
	if n == 0 {
		return
	}
	lastSector := (s.nextWrite + n) / flashSector
	for s.remainingErase > 0 && s.nextEraseSector <= lastSector {
		s.startNextErase(true)
	}
	s.c.t.waitFlash()
	switch {
	case uint64(s.nextWrite)+uint64(n) > uint64(s.chipSize) || !s.spiOK(s.nextWrite, n) || s.c.h.fault() == FaultFailWrite:
		s.lastErr = stubFailedSPIOp
	default:
		s.c.t.program(pagePrograms(s.nextWrite, n))
		if s.c.programFile(s.nextWrite, data[:n]) != nil {
			s.lastErr = stubFailedSPIOp
		}
	}
	s.nextWrite += n
	s.remaining -= n
}

// deflData is handle_flash_deflated_data: the block goes through the ROM's
// tinfl into the 32 KB out_buf, an erase started before each call (inflating
// takes time, the erase runs meanwhile), out_buf written when full or when
// the stream is done. Errors show on the next block's answer or FLASH_END.
func (s *esp32Stub) deflData(data []byte) {
	if s.remaining == 0 && len(data) > 4 { // only an Adler-32 may come after the end
		s.lastErr = stubTooMuchData
		return
	}
	st := inflateNeedsInput
	for len(data) > 0 && s.remaining > 0 && st > inflateDone {
		hasMore := s.remainingCompressed > uint32(len(data))
		s.startNextErase(false)
		nIn, nOut, next := s.inf.inflate(data, s.outBuf[s.outN:], hasMore)
		st = next
		s.c.t.inflate(nOut)
		s.remainingCompressed -= uint32(nIn)
		data = data[nIn:]
		s.outN += nOut
		if st == inflateDone || s.outN == len(s.outBuf) {
			s.flashData(s.outBuf[:s.outN])
			s.outN = 0
		}
	}
	if st < inflateDone {
		s.lastErr = stubInflateError
	}
	if st == inflateDone && s.remaining > 0 {
		s.lastErr = stubNotEnoughData
	}
}

// memData is handle_mem_data (no checksum: the stub does not check one for
// MEM_DATA). The simulator keeps no RAM contents.
func (s *esp32Stub) memData(n uint32) byte {
	switch {
	case !s.memSet && n > 0:
		return stubNotInFlashMode
	case n > s.memRemaining:
		return stubTooMuchData
	case n%4 != 0:
		return stubBadDataLen
	}
	s.memRemaining -= n
	return stubOK
}

func (s *esp32Stub) memFinish() byte {
	e := byte(stubOK)
	if s.memRemaining > 0 {
		e = stubNotEnoughData
	}
	s.memSet, s.memRemaining = false, 0
	return e
}

// stubRead is handle_flash_read in progress: packets of block_size bytes,
// no more unacknowledged bytes than max_in_flight (bytes, though esptool's
// docs call them packets: esptool asks 4096-byte packets with 64 in flight,
// so one packet at a time), each acknowledgement a SLIP frame with the total
// the host has (SLIP_recv into num_acked, at most 4 bytes kept), then the
// MD5 of what was sent. Reception is synchronous meanwhile (interrupts off).
type stubRead struct {
	addr, length, bs, max uint32
	sent, acked           uint32
	sum                   hash.Hash
	slip                  slipState
	ack                   []byte
}

func (s *esp32Stub) startRead(addr, length, bs, maxInFlight uint32) {
	if bs > flashSector {
		// handle_flash_read returns before turning interrupts back on: the
		// stub never hears another command.
		s.c.dead = true
		return
	}
	s.read = &stubRead{addr: addr, length: length, bs: bs, max: maxInFlight, sum: md5.New()}
	s.pump()
}

// pump sends what may be sent, then waits for an acknowledgement or ends.
func (s *esp32Stub) pump() {
	r := s.read
	t := s.c.t
	if !(r.acked < r.length && r.acked <= r.sent) {
		s.c.h.send(slipOut(r.sum.Sum(nil)))
		s.read = nil
		return
	}
	t.waitFlash()
	if !t.settle() {
		return
	}
	for r.sent < r.length && r.sent-r.acked < r.max {
		n := min(r.length-r.sent, r.bs)
		if uint64(r.addr)+uint64(n) > uint64(s.chipSize) || uint64(r.addr)+uint64(n) > ESP32FlashSize {
			break // SPIRead failed: nothing sent, wait for an acknowledgement all the same
		}
		b, err := s.c.readFile(r.addr, n)
		if err != nil {
			break
		}
		s.c.h.send(slipOut(b))
		r.sum.Write(b)
		r.addr += n
		r.sent += n
	}
	r.slip, r.ack = slipNoFrame, r.ack[:0]
}

// recv is SLIP_recv(&num_acked, 4) a byte at a time.
func (r *stubRead) recv(s *esp32Stub, b byte) {
	c := r.slip.recv(b)
	if c >= 0 && len(r.ack) < 4 {
		r.ack = append(r.ack, byte(c))
	}
	if c != slipFinished {
		return
	}
	var v [4]byte
	binary.LittleEndian.PutUint32(v[:], r.acked)
	copy(v[:], r.ack)
	r.acked = binary.LittleEndian.Uint32(v[:])
	if len(r.ack) != 4 {
		s.c.h.send(slipOut(r.sum.Sum(nil))) // the loop breaks: the digest of what was sent
		s.read = nil
		return
	}
	s.pump()
}
