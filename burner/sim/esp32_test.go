package sim

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// romFake runs the simulated ESP32 without a pty: replies are collected, each
// with the chip's time when it was sent; time is virtual unless wall is set.
type romFake struct {
	fakeHost
	path  string
	baud  int
	bauds []int // every setBaud
	clk   *fakeClock
	wall  bool
	sent  []timedSend
}

type timedSend struct {
	at time.Time
	p  []byte
}

func (h *romFake) flashPath() string { return h.path }
func (h *romFake) setBaud(b int)     { h.baud = b; h.bauds = append(h.bauds, b) }
func (h *romFake) lineBaud() int {
	if h.baud == 0 {
		return 115200
	}
	return h.baud
}
func (h *romFake) send(p []byte) {
	h.fakeHost.send(p)
	h.sent = append(h.sent, timedSend{h.esp32Clock().now(), append([]byte(nil), p...)})
}
func (h *romFake) esp32Clock() esp32Clock {
	if h.wall {
		return wallClock{context.Background()}
	}
	if h.clk == nil {
		h.clk = &fakeClock{t: time.Unix(1_000_000, 0)}
	}
	return h.clk
}

// fakeClock is virtual time: sleeping moves it, instantly.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }
func (c *fakeClock) sleepUntil(t time.Time) bool {
	if t.After(c.t) {
		c.t = t
	}
	return true
}

// newROMFake is a fresh board with MAC 24:0a:c4:01:02:03 and an erased flash.
func newROMFake(t *testing.T) (*romFake, firmware) {
	t.Helper()
	h := &romFake{path: filepath.Join(t.TempDir(), "board-00.flash")}
	h.bf.MAC = "24:0a:c4:01:02:03"
	return h, newESP32(h)
}

func (h *romFake) busy() ESP32Busy { return esp32AccountFor(h.path).get() }

// req frames a request by hand (independent of both SLIP implementations
// under test only as far as these bytes need no escaping).
func req(op byte, chk uint32, data ...byte) []byte {
	p := []byte{0xC0, 0x00, op, byte(len(data)), byte(len(data) >> 8), 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(p[5:], chk)
	return append(append(p, data...), 0xC0)
}

func le(ws ...uint32) []byte {
	b := make([]byte, 4*len(ws))
	for i, w := range ws {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	return b
}

// status returns the status and error byte of the last response.
func lastStatus(t *testing.T, out string) (byte, byte) {
	t.Helper()
	b := []byte(out)
	if len(b) < 14 || b[len(b)-1] != 0xC0 {
		t.Fatalf("no response frame in % x", b)
	}
	return b[len(b)-5], b[len(b)-4]
}

func TestESP32ROMErrors(t *testing.T) {
	attach := req(0x0D, 0, make([]byte, 8)...)
	begin := req(0x02, 0, le(0x400, 1, 0x400, 0x9000)...)
	block := bytes.Repeat([]byte{0x11}, 0x400)
	data := func(chk uint32) []byte { return req(0x03, chk, append(le(0x400, 0, 0, 0), block...)...) }
	for _, tc := range []struct {
		name     string
		in       [][]byte
		st, code byte
	}{
		{"unsupported GET_SECURITY_INFO", [][]byte{req(0x14, 0)}, 1, 0x05},
		{"size field disagrees", [][]byte{{0xC0, 0x00, 0x0A, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x10, 0x00, 0x40, 0xC0}}, 1, 0x05},
		{"READ_REG with 3 bytes", [][]byte{req(0x0A, 0, 1, 2, 3)}, 1, 0x05},
		{"SPI_ATTACH without the ROM's extra 4 bytes", [][]byte{req(0x0D, 0, 0, 0, 0, 0)}, 1, 0x05},
		{"flash before SPI_ATTACH", [][]byte{begin}, 1, 0x06},
		{"5-word FLASH_BEGIN", [][]byte{attach, req(0x02, 0, le(0x400, 1, 0x400, 0x9000, 0)...)}, 1, 0x05},
		{"FLASH_DATA before FLASH_BEGIN", [][]byte{attach, data(0)}, 1, 0x06},
		{"bad checksum", [][]byte{attach, begin, data(0x42)}, 1, 0x07},
		{"good checksum", [][]byte{attach, begin, data(0xEF)}, 0, 0}, // 0x11 × 1024 XORs to 0
		{"short block", [][]byte{attach, begin, req(0x03, 0xEF^0x11, append(le(1, 0, 0, 0), 0x11)...)}, 1, 0x05},
		{"READ_FLASH_SLOW over 64", [][]byte{attach, req(0x0E, 0, le(0x9000, 65)...)}, 1, 0x0A},
		{"unaligned FLASH_BEGIN", [][]byte{attach, req(0x02, 0, le(0x400, 1, 0x400, 0x9800)...)}, 1, 0x06},
		{"FLASH_DEFL_END before the stream ends", [][]byte{attach, req(0x10, 0, le(0x400, 2, 0x400, 0x9000)...), req(0x12, 0, le(1)...)}, 1, 0x0B},
		{"MEM_BEGIN into flash-mapped DROM", [][]byte{req(0x05, 0, le(0x100, 1, 0x1800, 0x3F400000)...)}, 1, 0x05},
		{"MEM_BEGIN into IRAM", [][]byte{req(0x05, 0, le(0x100, 1, 0x1800, 0x40080000)...)}, 0, 0},
		{"MEM_DATA bad checksum", [][]byte{req(0x05, 0, le(4, 1, 0x1800, 0x40080000)...), req(0x07, 0x42, append(le(4, 0, 0, 0), 1, 2, 3, 4)...)}, 1, 0x07},
		{"MEM_DATA beyond the upload", [][]byte{req(0x05, 0, le(4, 1, 0x1800, 0x40080000)...), req(0x07, 0xEF^0x0C, append(le(8, 0, 0, 0), 1, 2, 3, 4, 1, 2, 3, 4, 0x0C, 0, 0, 0)[:24]...)}, 1, 0x05},
		{"broken deflate stream", [][]byte{attach, req(0x10, 0, le(0x400, 1, 0x400, 0x9000)...), req(0x11, 0xEF^0x01^0x02, append(le(2, 0, 0, 0), 0x01, 0x02)...)}, 1, 0x0B},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, fw := newROMFake(t)
			for _, p := range tc.in {
				fw.receive(p)
			}
			st, code := lastStatus(t, h.out.String())
			if st != tc.st || code != tc.code {
				t.Fatalf("status %d error 0x%02x, want %d 0x%02x", st, code, tc.st, tc.code)
			}
		})
	}
}

func TestESP32SyncAndMAC(t *testing.T) {
	h, fw := newROMFake(t)
	fw.receive(req(0x08, 0, append([]byte{7, 7, 0x12, 0x20}, bytes.Repeat([]byte{0x55}, 32)...)...))
	one := []byte{0xC0, 0x01, 0x08, 0x04, 0x00, 0x07, 0x07, 0x12, 0x20, 0, 0, 0, 0, 0xC0}
	if got := h.out.String(); got != string(bytes.Repeat(one, 8)) {
		t.Fatalf("SYNC answers % x", got)
	}
	h.out.Reset()
	fw.receive(req(0x0A, 0, le(0x3FF5A008)...))
	// word 2: CRC-8/MAXIM of the MAC above the first two bytes 24 0a.
	want := []byte{0xC0, 0x01, 0x0A, 0x04, 0x00, 0x0a, 0x24, efuseMACCRC([]byte{0x24, 0x0a, 0xc4, 1, 2, 3}), 0, 0, 0, 0, 0, 0xC0}
	if got := h.out.String(); got != string(want) {
		t.Fatalf("eFuse word 2 % x, want % x", got, want)
	}
}

// frame builds a request with real SLIP escaping (C0 → DB DC, DB → DB DD),
// written here independently of the simulator's.
func frame(op byte, chk uint32, data []byte) []byte {
	p := make([]byte, 8, 8+len(data))
	p[1] = op
	binary.LittleEndian.PutUint16(p[2:], uint16(len(data)))
	binary.LittleEndian.PutUint32(p[4:], chk)
	p = append(p, data...)
	out := []byte{0xC0}
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

// sum is the protocol's checksum, by the book: 0xEF XOR each byte.
func sum(b []byte) uint32 {
	s := byte(0xEF)
	for _, c := range b {
		s ^= c
	}
	return uint32(s)
}

// dataReq is a FLASH_DATA-style block request: length, seq, 0, 0, block.
func dataReq(op byte, seq int, block []byte) []byte {
	return frame(op, sum(block), append(le(uint32(len(block)), uint32(seq), 0, 0), block...))
}

// frames splits what the board sent into SLIP frames (unescaped), skipping
// bytes outside frames (a boot banner).
func frames(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	var cur []byte
	in, esc := false, false
	for _, c := range b {
		switch {
		case c == 0xC0 && in:
			out = append(out, cur)
			cur, in = nil, false
		case c == 0xC0:
			in = true
		case !in:
		case esc:
			esc = false
			switch c {
			case 0xDC:
				cur = append(cur, 0xC0)
			case 0xDD:
				cur = append(cur, 0xDB)
			default:
				t.Fatalf("bad escape DB %02x from the board", c)
			}
		case c == 0xDB:
			esc = true
		default:
			cur = append(cur, c)
		}
	}
	return out
}

// prefill writes a 4 MB flash file of 0x5A, so erases show.
func prefill(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Repeat([]byte{0x5A}, ESP32FlashSize), 0o600); err != nil {
		t.Fatal(err)
	}
}

// FLASH_BEGIN erases the whole area before it answers, at the datasheet's
// pace, the ROM's way (ESP-IDF esp_rom_spiflash_erase_area; worked by hand:
// a block-aligned start erases 16 sectors first, blocks only while more than
// 16 sectors are left). Virtual time: the account and the answer's time are
// exact.
func TestESP32ROMEraseCharged(t *testing.T) {
	const se, be = 45 * time.Millisecond, 150 * time.Millisecond // W25Q32JV tSE, tBE2 (typical)
	for _, tc := range []struct {
		name           string
		offset, size   uint32
		eraseFrom, end uint32
		want           time.Duration
	}{
		// 1 MB at 0x10000: 16 sectors, 14 blocks, 16 sectors = 3.54 s; not
		// the 16 × tBE2 = 2.4 s a plain "blocks when aligned" reading gives.
		{"1 MB app at 0x10000", 0x10000, 0x100000, 0x10000, 0x110000, 32*se + 14*be},
		{"NVS at 0x9000", 0x9000, 0x6000, 0x9000, 0xF000, 6 * se},
		{"bootloader at 0x1000, odd size", 0x1000, 0x5A31, 0x1000, 0x7000, 6 * se},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &romFake{path: filepath.Join(t.TempDir(), "board-00.flash")}
			h.bf.MAC = "24:0a:c4:01:02:03"
			prefill(t, h.path)
			fw := newESP32(h)
			fw.receive(req(0x0D, 0, make([]byte, 8)...))
			before, asked := h.busy(), h.clk.now()
			fw.receive(req(0x02, 0, le(tc.size, (tc.size+0x3FF)/0x400, 0x400, tc.offset)...))
			if st, code := lastStatus(t, h.out.String()); st != 0 {
				t.Fatalf("FLASH_BEGIN refused: error 0x%02x", code)
			}
			got := h.busy().Erase - before.Erase
			if got != tc.want {
				t.Fatalf("charged %v for the erase, want %v", got, tc.want)
			}
			if answered := h.sent[len(h.sent)-1].at; answered.Sub(asked) < tc.want {
				t.Fatalf("answered %v after the request, before the erase's %v", answered.Sub(asked), tc.want)
			}
			raw, err := os.ReadFile(h.path)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range raw {
				erased := uint32(i) >= tc.eraseFrom && uint32(i) < tc.end
				if erased && c != 0xFF || !erased && c != 0x5A {
					t.Fatalf("flash byte 0x%x is %02x after erasing [0x%x, 0x%x)", i, c, tc.eraseFrom, tc.end)
				}
			}
		})
	}
}

// The same erase on the wall clock: it really takes the time it is charged
// (a lower bound only; the machine may be slow, never fast).
func TestESP32ROMEraseTakesRealTime(t *testing.T) {
	t.Parallel()
	h := &romFake{path: filepath.Join(t.TempDir(), "board-00.flash"), wall: true}
	h.bf.MAC = "24:0a:c4:01:02:03"
	fw := newESP32(h)
	fw.receive(req(0x0D, 0, make([]byte, 8)...))
	start := time.Now()
	fw.receive(req(0x02, 0, le(0x100000, 0x400, 0x400, 0x10000)...))
	elapsed := time.Since(start)
	if st, code := lastStatus(t, h.out.String()); st != 0 {
		t.Fatalf("FLASH_BEGIN refused: error 0x%02x", code)
	}
	charged := h.busy().Erase
	if want := 32*45*time.Millisecond + 14*150*time.Millisecond; charged != want {
		t.Fatalf("charged %v, want %v", charged, want)
	}
	if elapsed < charged {
		t.Fatalf("FLASH_BEGIN answered after %v, under the %v it was charged", elapsed, charged)
	}
}

// noFF is n bytes of test data without 0xFF, so the written part of the
// flash shows as the prefix before the first erased byte.
func noFF(n int, seed uint64) []byte {
	b := halfCompressible(n, seed)
	for i := range b {
		if b[i] == 0xFF {
			b[i] = 0xFE
		}
	}
	return b
}

// writtenPrefix is how much of img the flash at off holds, checking the
// rest is erased.
func writtenPrefix(t *testing.T, path string, off int, img []byte) int {
	t.Helper()
	got, err := readFlashFile(path, off, len(img))
	if err != nil {
		t.Fatal(err)
	}
	n := bytes.IndexByte(got, 0xFF)
	if n < 0 {
		n = len(got)
	}
	if !bytes.Equal(got[:n], img[:n]) || !allFF(got[n:]) {
		t.Fatalf("flash at 0x%x is neither the image's first %d bytes then erased", off, n)
	}
	return n
}

// The ROM inflates each FLASH_DEFL_DATA block as it arrives and writes its
// output before answering: the flash grows block by block, and the account
// holds the inflate time of every byte and a page program for every page.
func TestESP32ROMInflatesPerBlock(t *testing.T) {
	h, fw := newROMFake(t)
	img := noFF(200_000, 11)
	z := deflated(t, img, 9)
	const off = 0x10000
	blocks := (len(z) + 0x3FF) / 0x400
	fw.receive(req(0x0D, 0, make([]byte, 8)...))
	fw.receive(frame(0x10, 0, le(uint32((len(img)+0x3FF)/0x400*0x400), uint32(blocks), 0x400, off)))
	before := h.busy()
	last, grew := 0, 0
	for seq := range blocks {
		h.out.Reset()
		fw.receive(dataReq(0x11, seq, z[seq*0x400:min(len(z), (seq+1)*0x400)]))
		if st, code := lastStatus(t, h.out.String()); st != 0 {
			t.Fatalf("block %d refused: error 0x%02x", seq, code)
		}
		n := writtenPrefix(t, h.path, off, img)
		if n < last {
			t.Fatalf("block %d: the flash holds %d bytes of the image, %d before", seq, n, last)
		}
		if n > last {
			grew++
		}
		last = n
	}
	if last != len(img) {
		t.Fatalf("the flash holds %d of %d bytes after the last block", last, len(img))
	}
	if grew < blocks*9/10 {
		t.Fatalf("the flash grew at %d of %d blocks: not written as they came", grew, blocks)
	}
	b := h.busy()
	if inflate := b.Inflate - before.Inflate; inflate != time.Duration(len(img))*2*time.Microsecond { // 500 kB/s
		t.Fatalf("inflate charged %v for %d bytes", inflate, len(img))
	}
	pages := b.Pages - before.Pages
	if min := (len(img) + 255) / 256; pages < min || pages > min+blocks {
		t.Fatalf("%d page programs for %d bytes in %d blocks", pages, len(img), blocks)
	}
}
