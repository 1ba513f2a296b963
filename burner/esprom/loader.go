package esprom

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"go.bug.st/serial"

	"github.com/iotburn/iotburn/burner"
)

// Defaults, from esptool 4.7 (loader.py): a 3 s command timeout, 7 connect
// attempts of up to 5 SYNCs each, SYNC answered within 0.1 s.
const (
	DefaultTimeout         = 3 * time.Second
	DefaultConnectAttempts = 7
	DefaultFlashSize       = 4 << 20
	syncTimeout            = 100 * time.Millisecond
	syncTries              = 5
	writeBlockAttempts     = 3 // esptool's WRITE_BLOCK_ATTEMPTS
)

// Per-megabyte timeouts (esptool): the ROM erases the whole region before it
// answers FLASH_BEGIN, writes each inflated block before it answers
// FLASH_DEFL_DATA, and hashes at flash read speed.
const (
	eraseRegionPerMB = 30 * time.Second
	eraseWritePerMB  = 40 * time.Second
	md5PerMB         = 8 * time.Second
)

// Flash geometry the ROM works in.
const (
	blockSize  = 0x400  // ROM FLASH_WRITE_SIZE
	sectorSize = 0x1000 // erase unit
	readBlock  = 64     // READ_FLASH_SLOW's limit per command
)

// Registers read through READ_REG (esptool targets/esp32.py).
const (
	chipDetectMagicReg = 0x40001000
	efuseRdRegBase     = 0x3FF5A000
	rtcCaliCfg1        = 0x3FF5F06C
)

// syncPayload is SYNC's data: 07 07 12 20 then 32 × 0x55, which lets the ROM
// measure the baud rate.
var syncPayload = append([]byte{0x07, 0x07, 0x12, 0x20}, bytes.Repeat([]byte{0x55}, 32)...)

// Loader talks to one board's ROM bootloader. It is not safe for concurrent
// use; one goroutine drives one board. Set the exported fields before Connect.
type Loader struct {
	// Timeout is the default per-command timeout; the long operations scale
	// it by size as esptool does. 0 means DefaultTimeout.
	Timeout time.Duration
	// ConnectAttempts is how many reset-and-sync rounds Connect makes; 0
	// means DefaultConnectAttempts.
	ConnectAttempts int
	// FlashSize is what SPI_SET_PARAMS tells the ROM, and the bound for
	// writes; 0 means DefaultFlashSize (4 MB, the common ESP32 module).
	// DetectFlashSize sets it from the flash's JEDEC id.
	FlashSize uint32
	// Rates are the line rates Connect tries in turn when the board does not
	// answer: a board that a failed or killed run left at a fast rate
	// (CHANGE_BAUDRATE lasts until reset) answers only there, and a port
	// without DTR/RTS cannot reset it. The first is where the port is now;
	// nil means just that (the ROM's 115200).
	Rates []int
	// Log, if set, gets each command at debug level: its name, the bytes
	// sent, the status and how long it took. Never the data: an image holds
	// a credential.
	Log *slog.Logger

	port     burner.Port
	buf, out []byte
	dec      slipDecoder
	frames   [][]byte
	got      int // bytes received since the last command was sent
	valid    int // responses parsed since then

	chip     Chip
	noReset  bool // the port has no DTR/RTS
	attached bool
	baud     int  // the line rate now, for the wire time of each command
	stub     bool // the flasher stub answers, not the ROM (RunStub)
}

// New returns a loader on p, which is open at the ROM's 115200 (burner.Open
// with burner.DefaultBaud). It sends nothing until Connect.
func New(p burner.Port) *Loader {
	return &Loader{port: p, buf: make([]byte, 4096), baud: burner.DefaultBaud}
}

// Baud is the line rate the loader and the board speak now.
func (l *Loader) Baud() int { return l.baud }

// wire is how long n bytes take on the line at the current rate (8N1: ten
// bits a byte), plus half again for a USB adapter's latency and the host's
// scheduling: a command's deadline starts when its bytes are handed to the
// port, not when they have left it.
func (l *Loader) wire(n int) time.Duration {
	return time.Duration(n) * 15 * time.Second / time.Duration(max(l.baud, 300))
}

func (l *Loader) timeout() time.Duration {
	if l.Timeout > 0 {
		return l.Timeout
	}
	return DefaultTimeout
}

func (l *Loader) flashSize() uint32 {
	if l.FlashSize > 0 {
		return l.FlashSize
	}
	return DefaultFlashSize
}

// scaled is esptool's timeout_per_mb: perMB × size, at least the default.
func (l *Loader) scaled(perMB time.Duration, size int) time.Duration {
	return max(l.timeout(), time.Duration(float64(perMB)*float64(size)/1e6))
}

// Chip is the chip Connect found.
func (l *Loader) Chip() Chip { return l.chip }

// AutoReset reports whether Connect could drive DTR/RTS; false after it
// found the port has no modem lines.
func (l *Loader) AutoReset() bool { return !l.noReset }

// Connect resets the board into its ROM bootloader where the port can (DTR
// and RTS, esptool's classic reset), SYNCs, and checks that the chip is an
// ESP32. A port without modem lines (a pty, a bare adapter) answers ENOTTY:
// then the reset is skipped and the board must already be in download mode
// (hold BOOT and press EN). Like esptool it tries ConnectAttempts rounds of
// up to 5 SYNCs, alternating a short and a long reset delay.
func (l *Loader) Connect(ctx context.Context) error {
	attempts := l.ConnectAttempts
	if attempts <= 0 {
		attempts = DefaultConnectAttempts
	}
	rates := l.Rates
	if len(rates) == 0 {
		rates = []int{l.baud}
	}
	var last error
	for a := range attempts {
		// Once the board cannot be reset, try the rates it may be stuck at.
		if l.noReset {
			if err := l.setRate(rates[a%len(rates)]); err != nil {
				return err
			}
		}
		if !l.noReset {
			// esptool's DEFAULT_RESET_DELAY, then the extra-long variant for
			// boards with a large capacitor on EN.
			delay := 50 * time.Millisecond
			if a%2 == 1 {
				delay = 550 * time.Millisecond
			}
			if err := l.reset(ctx, delay); err != nil {
				return err
			}
		}
		for range syncTries {
			if err := l.flush(ctx); err != nil {
				return err
			}
			err := l.sync(ctx)
			if err == nil {
				return l.detect(ctx)
			}
			if errors.Is(err, ErrVanished) || ctx.Err() != nil {
				return err
			}
			last = err
			if err := sleep(ctx, 50*time.Millisecond); err != nil {
				return err
			}
		}
	}
	how := "auto-reset by DTR/RTS did not bring it into download mode"
	if l.noReset {
		how = "this port has no DTR/RTS, so iotburn cannot reset it"
		if len(rates) > 1 {
			how += fmt.Sprintf("; tried %s baud", joinRates(rates))
		}
	}
	if errors.Is(last, ErrGarbage) {
		return fmt.Errorf("the board on %s answers garbage, not the ROM bootloader (%s): check the baud rate (the ROM starts at 115200); %s: %w", l.port.Name(), how, hint, last)
	}
	return fmt.Errorf("no answer from the ROM bootloader on %s (%s): %s: %w", l.port.Name(), how, hint, ErrNoAnswer)
}

// setRate moves the port (not the board) to baud, where it is not there yet.
func (l *Loader) setRate(baud int) error {
	if baud == l.baud || baud <= 0 {
		return nil
	}
	bs, ok := l.port.(burner.BaudSetter)
	if !ok {
		return nil // a port that cannot change speed stays where it is
	}
	if err := bs.SetBaud(baud); err != nil {
		return l.vanished(err)
	}
	l.baud = baud
	return nil
}

func joinRates(rates []int) string {
	s := make([]string, len(rates))
	for i, r := range rates {
		s[i] = fmt.Sprint(r)
	}
	return strings.Join(s, " and ")
}

// reset is esptool's ClassicReset: DTR drives IO0 and RTS drives EN through
// the usual two-transistor circuit (true = asserted = pin low). EN low, IO0
// high; then IO0 low while EN is released, so the chip boots into download
// mode; then IO0 released.
func (l *Loader) reset(ctx context.Context, delay time.Duration) error {
	ml, ok := l.port.(burner.ModemLines)
	if !ok {
		l.noReset = true
		return nil
	}
	steps := []struct {
		dtr, rts *bool
		wait     time.Duration
	}{
		{dtr: ptr(false)}, {rts: ptr(true), wait: 100 * time.Millisecond},
		{dtr: ptr(true)}, {rts: ptr(false), wait: delay},
		{dtr: ptr(false)},
	}
	for _, s := range steps {
		var err error
		if s.dtr != nil {
			err = ml.SetDTR(*s.dtr)
		} else {
			err = ml.SetRTS(*s.rts)
		}
		if err != nil {
			if gone(err) {
				return l.vanished(err)
			}
			// ENOTTY on a pty, EINVAL or "not implemented" elsewhere: this
			// port has no modem lines. esptool warns and goes on to SYNC.
			l.noReset = true
			return nil
		}
		if s.wait > 0 {
			if err := sleep(ctx, s.wait); err != nil {
				return err
			}
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// gone reports errors that mean the device itself went away.
func gone(err error) bool {
	var pe *serial.PortError
	if errors.As(err, &pe) && pe.Code() == serial.PortClosed {
		return true
	}
	return errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV)
}

// sync sends one SYNC and collects its echoes. The ROM answers a SYNC with
// about 8 identical replies (esptool reads 7 more after the first); they come
// back to back, so a short quiet spell ends the wait. Any left over are
// skipped by the next command as stale.
func (l *Loader) sync(ctx context.Context) error {
	// Like esptool, the status is not looked at: any SYNC answer means a ROM
	// is listening (an ESP8266's has 2 status bytes, and must reach detect
	// to be named).
	start := time.Now()
	r, err := l.command(ctx, opSync, syncPayload, 0, syncTimeout)
	if l.Log != nil {
		l.logCommand(opSync, len(syncPayload), r.Value, err, time.Since(start))
	}
	if err != nil {
		return err
	}
	// The ROM answers SYNC with a value; the flasher stub with 0 (esptool
	// loader.py sync: sync_stub_detected). A stub left running by an
	// earlier connection is used as it is.
	stub := r.Value == 0
	for range 7 {
		r, err := l.readResponse(ctx, time.Now().Add(syncTimeout))
		if err != nil {
			if errors.Is(err, errTimeout) {
				break
			}
			return err
		}
		stub = stub && r.Value == 0
	}
	l.stub = stub
	return nil
}

// detect reads the chip-detect magic register, as esptool does on chips
// without GET_SECURITY_INFO (the ESP32 ROM has none).
func (l *Loader) detect(ctx context.Context) error {
	// Not check(): the ESP8266 ROM sends 2 status bytes, not 4, and a wrong
	// chip must be reported as such. esptool's read_reg looks at data[0] only.
	start := time.Now()
	r, err := l.command(ctx, opReadReg, le32(chipDetectMagicReg), 0, l.timeout())
	if l.Log != nil {
		l.logCommand(opReadReg, 4, r.Value, err, time.Since(start))
	}
	if err != nil {
		return err
	}
	if len(r.Data) < 2 || r.Data[0] != 0 {
		return fmt.Errorf("the bootloader on %s refused to read the chip-detect register (secure download mode?): %w", l.port.Name(), ErrRefused)
	}
	v := r.Value
	l.chip = chipFromMagic(v)
	if l.chip != ESP32 {
		return fmt.Errorf("wrong chip on %s: found %s (magic 0x%08x), this line burns ESP32: %w", l.port.Name(), l.chip, v, ErrWrongChip)
	}
	return nil
}

// ReadReg reads a 32-bit register or memory word (READ_REG).
func (l *Loader) ReadReg(ctx context.Context, addr uint32) (uint32, error) {
	_, v, err := l.check(ctx, opReadReg, le32(addr), 0, l.timeout())
	return v, err
}

// MAC is the factory MAC from eFuse, read as esptool's read_mac does: words
// 1 and 2 of the eFuse read registers; word 2 holds the first two bytes and,
// above them, the MAC's CRC-8, which is checked because the ROM's responses
// carry no checksum and this MAC is the board's identity in the ledger.
func (l *Loader) MAC(ctx context.Context) (net.HardwareAddr, error) {
	w1, err := l.ReadReg(ctx, efuseRdRegBase+4)
	if err != nil {
		return nil, err
	}
	w2, err := l.ReadReg(ctx, efuseRdRegBase+8)
	if err != nil {
		return nil, err
	}
	mac := net.HardwareAddr{byte(w2 >> 8), byte(w2), byte(w1 >> 24), byte(w1 >> 16), byte(w1 >> 8), byte(w1)}
	if crc := byte(w2 >> 16); crc != MACCRC(mac) {
		return nil, fmt.Errorf("the eFuse MAC read from %s (%s) fails its CRC (0x%02x, expected 0x%02x): a garbled line? retry: %w", l.port.Name(), mac, crc, MACCRC(mac), ErrBadMAC)
	}
	return mac, nil
}

// MACCRC is the ROM's esp_crc8 over the 6 MAC bytes: CRC-8, reflected
// polynomial 0x8C, initial value 0 (CRC-8/MAXIM), as stored in eFuse.
func MACCRC(mac []byte) byte {
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

// Attach enables the SPI flash: SPI_ATTACH (hspi_arg 0 plus the ESP32 ROM's
// extra 4 zero bytes) and SPI_SET_PARAMS with FlashSize. The ROM needs it
// before any flash command; the flash methods call it if it was not done.
func (l *Loader) Attach(ctx context.Context) error {
	// The ESP32 ROM takes an extra word ("is legacy" and 3 reserved bytes);
	// the stub takes hspi_arg alone (esptool loader.py flash_spi_attach).
	arg := make([]byte, 8)
	if l.stub {
		arg = arg[:4]
	}
	if _, _, err := l.check(ctx, opSPIAttach, arg, 0, l.timeout()); err != nil {
		return err
	}
	// id 0, total size, block 64 KB, sector 4 KB, page 256, status mask.
	params := le32(0, l.flashSize(), 0x10000, sectorSize, 0x100, 0xFFFF)
	if _, _, err := l.check(ctx, opSPISetParams, params, 0, l.timeout()); err != nil {
		return err
	}
	l.attached = true
	return nil
}

func (l *Loader) attach(ctx context.Context) error {
	if l.attached {
		return nil
	}
	return l.Attach(ctx)
}

// ChangeBaud asks the ROM to switch to baud (CHANGE_BAUDRATE baud, 0: the
// ROM takes 0 as the old rate) and then switches the port. The ROM answers at
// the old rate. The port must implement burner.BaudSetter; that is checked
// before anything is sent, so board and host never end up at different rates.
//
// Like esptool on the ESP32 it corrects for the ROM's drifting 8 MHz clock:
// the ROM derives its divider from a crystal frequency it calibrated at
// boot, so the rate sent is scaled by calibrated/true crystal frequency.
func (l *Loader) ChangeBaud(ctx context.Context, baud int) error {
	bs, ok := l.port.(burner.BaudSetter)
	if !ok {
		return fmt.Errorf("port %s cannot change its speed: stay at the current baud rate", l.port.Name())
	}
	if baud <= 0 {
		return fmt.Errorf("invalid baud rate %d", baud)
	}
	if baud == l.baud {
		return nil // already there: e.g. found there by Connect's Rates
	}
	romBaud := uint32(baud)
	if l.stub {
		// no correction: the stub's own UART set-up takes the rate as it is
	} else if f, err := l.romCrystal(ctx); err != nil {
		return err
	} else if f > 0 {
		valid := 26e6
		if f > 33e6 {
			valid = 40e6
		}
		romBaud = uint32(float64(baud) * f / valid)
	}
	// The stub takes the old rate as the second word, the ROM 0 (esptool
	// loader.py change_baud); the stub needs no crystal correction.
	old := uint32(0)
	if l.stub {
		old = uint32(l.baud)
	}
	if _, _, err := l.check(ctx, opChangeBaudrate, le32(romBaud, old), 0, l.timeout()); err != nil {
		return err
	}
	if err := bs.SetBaud(baud); err != nil {
		return l.vanished(err)
	}
	l.baud = baud
	// esptool: "get rid of crap sent during baud rate change".
	if err := sleep(ctx, 50*time.Millisecond); err != nil {
		return err
	}
	return l.flush(ctx)
}

// romCrystal is esptool's get_rom_cal_crystal_freq: the crystal frequency the
// ROM calibrated (RTCCALICFG1 × eFuse CK8M), 0 if the registers say nothing.
func (l *Loader) romCrystal(ctx context.Context) (float64, error) {
	cal, err := l.ReadReg(ctx, rtcCaliCfg1)
	if err != nil {
		return 0, err
	}
	w4, err := l.ReadReg(ctx, efuseRdRegBase+4*4)
	if err != nil {
		return 0, err
	}
	return float64((cal>>7)&0x01FFFFFF) * 15625 * float64(w4&0xFF) / 40, nil
}

// WriteFlash writes data at offset: NewImage, then WriteImage.
func (l *Loader) WriteFlash(ctx context.Context, offset uint32, data []byte, compress bool, progress func(done, total int)) error {
	return l.WriteImage(ctx, NewImage("image", offset, data, compress), progress)
}

// WriteImage writes a prepared image at its offset, which must be
// sector-aligned (the ROM erases whole 4 KB sectors; esptool would silently
// erase what precedes an unaligned offset).
//
// Uncompressed: FLASH_BEGIN (4 words on the ESP32 ROM: size, blocks, 0x400,
// offset), then FLASH_DATA in 0x400-byte blocks, the last padded with 0xFF.
// Compressed: FLASH_DEFL_BEGIN (size rounded up to whole blocks, as the ROM
// wants) and FLASH_DEFL_DATA blocks of the zlib stream. No FLASH_END is sent:
// it would make the ROM leave the bootloader (esptool skips it too). Each
// block is retried up to 3 times on a ROM error or timeout. progress, if set,
// gets bytes of the image done and its size. Verify with VerifyImage after.
func (l *Loader) WriteImage(ctx context.Context, img *Image, progress func(done, total int)) error {
	offset, image := img.Offset, img.data
	if offset%sectorSize != 0 {
		return fmt.Errorf("flash offset 0x%x is not a multiple of 0x%x: the ROM erases whole sectors and would wipe what precedes it", offset, sectorSize)
	}
	if len(image) == 0 {
		return errors.New("nothing to write: the image is empty")
	}
	if uint64(offset)+uint64(len(image)) > uint64(l.flashSize()) {
		return fmt.Errorf("%d bytes at 0x%x do not fit in %d bytes of flash", len(image), offset, l.flashSize())
	}
	if err := l.attach(ctx); err != nil {
		return err
	}
	if progress == nil {
		progress = func(int, int) {}
	}
	total := img.size
	// The ROM erases the whole region before it answers BEGIN; the stub
	// erases as it writes, so its BEGIN answers at once and each block may
	// wait for an erase (esptool loader.py flash_begin, flash_defl_begin).
	bs, beginTimeout := blockSize, l.scaled(eraseRegionPerMB, len(image))
	if l.stub {
		bs, beginTimeout = stubBlockSize, l.timeout()
	}
	if img.z == nil {
		n := (len(image) + bs - 1) / bs
		begin := le32(uint32(len(image)), uint32(n), uint32(bs), offset)
		if _, _, err := l.check(ctx, opFlashBegin, begin, 0, beginTimeout); err != nil {
			return err
		}
		block := make([]byte, bs)
		for seq := range n {
			c := copy(block, image[seq*bs:])
			for i := c; i < bs; i++ {
				block[i] = 0xFF
			}
			timeout := l.timeout()
			if l.stub {
				timeout = l.scaled(eraseWritePerMB, bs)
			}
			if err := l.writeBlock(ctx, opFlashData, block, seq, timeout); err != nil {
				return err
			}
			progress(min(total, (seq+1)*bs), total)
		}
		return nil
	}
	z := img.z
	n := (len(z) + bs - 1) / bs
	// The ROM wants the erase size rounded up to whole blocks, the stub the
	// exact byte count (esptool flash_defl_begin).
	size := (len(image) + blockSize - 1) / blockSize * blockSize
	if l.stub {
		size = len(image)
	}
	begin := le32(uint32(size), uint32(n), uint32(bs), offset)
	if _, _, err := l.check(ctx, opFlashDeflBegin, begin, 0, beginTimeout); err != nil {
		return err
	}
	for seq := range n {
		block := z[seq*bs : min(len(z), (seq+1)*bs)]
		// The ROM inflates and writes a block before it answers. esptool
		// times that by the block's inflated size; deflate expands at most
		// ~1032:1, which bounds it without inflating here.
		out := min(len(image), 1032*len(block))
		if err := l.writeBlock(ctx, opFlashDeflData, block, seq, l.scaled(eraseWritePerMB, out)); err != nil {
			return err
		}
		progress(int(int64(total)*int64(seq*bs+len(block))/int64(len(z))), total)
	}
	return nil
}

// writeBlock sends one FLASH_DATA/FLASH_DEFL_DATA block with its checksum,
// retrying as esptool does. A retry first drains the line, so a late answer
// to the failed attempt is not taken for the answer to the next block.
func (l *Loader) writeBlock(ctx context.Context, op byte, block []byte, seq int, timeout time.Duration) error {
	pkt := append(le32(uint32(len(block)), uint32(seq), 0, 0), block...)
	var err error
	for attempt := range writeBlockAttempts {
		if attempt > 0 {
			if ferr := l.flush(ctx); ferr != nil {
				return ferr
			}
		}
		if _, _, err = l.check(ctx, op, pkt, Checksum(block), timeout); err == nil {
			return nil
		}
		if errors.Is(err, ErrVanished) || ctx.Err() != nil {
			return err
		}
	}
	return fmt.Errorf("block %d: %w", seq, err)
}

// FlashMD5 asks the ROM for the MD5 of size bytes of flash at offset
// (SPI_FLASH_MD5). The ROM answers 32 ASCII hex characters; a stub's 16 raw
// bytes are accepted too.
func (l *Loader) FlashMD5(ctx context.Context, offset, size uint32) ([16]byte, error) {
	var sum [16]byte
	if err := l.attach(ctx); err != nil {
		return sum, err
	}
	p, _, err := l.check(ctx, opSPIFlashMD5, le32(offset, size, 0, 0), 0, l.scaled(md5PerMB, int(size)))
	if err != nil {
		return sum, err
	}
	switch len(p) {
	case 32:
		if _, err := hex.Decode(sum[:], p); err != nil {
			return sum, fmt.Errorf("%w: SPI_FLASH_MD5 answer is not hex", ErrBadResponse)
		}
	case 16:
		copy(sum[:], p)
	default:
		return sum, fmt.Errorf("%w: SPI_FLASH_MD5 answer has %d bytes, want 32 hex characters", ErrBadResponse, len(p))
	}
	return sum, nil
}

// VerifyFlash compares the flash's MD5 at offset with data's, padded as
// WriteFlash pads it.
func (l *Loader) VerifyFlash(ctx context.Context, offset uint32, data []byte) error {
	return l.VerifyImage(ctx, NewImage("image", offset, data, false))
}

// VerifyImage compares the flash's MD5 at the image's offset with the image's.
func (l *Loader) VerifyImage(ctx context.Context, img *Image) error {
	got, err := l.FlashMD5(ctx, img.Offset, uint32(len(img.data)))
	if err != nil {
		return err
	}
	if got != img.sum {
		return fmt.Errorf("flash of the board on %s at 0x%x holds something else (MD5 %x, image %x): burn it again: %w", l.port.Name(), img.Offset, got, img.sum, ErrMismatch)
	}
	return nil
}

// ReadFlash reads size bytes at offset: through the ROM with
// READ_FLASH_SLOW, 64 bytes a command (the ROM's limit, about 40 % of line
// rate, fine for a partition), through the stub with READ_FLASH.
func (l *Loader) ReadFlash(ctx context.Context, offset, size uint32) ([]byte, error) {
	if err := l.attach(ctx); err != nil {
		return nil, err
	}
	if l.stub {
		return l.readFlashStub(ctx, offset, size)
	}
	out := make([]byte, 0, size)
	for uint32(len(out)) < size {
		n := min(readBlock, size-uint32(len(out)))
		p, _, err := l.check(ctx, opReadFlashSlow, le32(offset+uint32(len(out)), n), 0, l.timeout())
		if err != nil {
			return nil, err
		}
		if uint32(len(p)) < n {
			return nil, fmt.Errorf("%w: READ_FLASH_SLOW gave %d bytes, asked %d", ErrBadResponse, len(p), n)
		}
		out = append(out, p[:n]...)
	}
	return out, nil
}

// le32 packs words little-endian, the way every ROM payload is laid out.
func le32(words ...uint32) []byte {
	b := make([]byte, 4*len(words))
	for i, w := range words {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	return b
}
