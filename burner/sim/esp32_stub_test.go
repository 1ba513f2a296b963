package sim

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"time"
)

// upload runs esptool's run_stub sequence on the ROM (MEM_BEGIN, MEM_DATA,
// MEM_END with an IRAM entry) and checks the ROM's answer and the stub's OHAI.
func upload(t *testing.T, h *romFake, fw firmware) {
	t.Helper()
	code := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	fw.receive(req(0x05, 0, le(uint32(len(code)), 1, 0x1800, 0x40080000)...))
	fw.receive(dataReq(0x07, 0, code))
	h.out.Reset()
	fw.receive(req(0x06, 0, le(0, 0x40080004)...))
	f := frames(t, []byte(h.out.String()))
	if len(f) != 2 || len(f[0]) != 12 || f[0][1] != 0x06 || f[0][8] != 0 || string(f[1]) != "OHAI" {
		t.Fatalf("MEM_END then OHAI expected, the board sent % x", h.out.String())
	}
	h.out.Reset()
}

// stubAnswer is the last frame the stub sent: value, data before the two
// status bytes, error, status.
type stubAnswer struct {
	op          byte
	size        int
	value       uint32
	data        []byte
	err, status byte
}

func lastAnswer(t *testing.T, h *romFake) stubAnswer {
	t.Helper()
	f := frames(t, []byte(h.out.String()))
	if len(f) == 0 {
		t.Fatal("no answer")
	}
	p := f[len(f)-1]
	if len(p) < 10 || p[0] != 1 {
		t.Fatalf("not a stub answer: % x", p)
	}
	return stubAnswer{op: p[1], size: int(binary.LittleEndian.Uint16(p[2:])), value: binary.LittleEndian.Uint32(p[4:]),
		data: p[8 : len(p)-2], err: p[len(p)-2], status: p[len(p)-1]}
}

func TestESP32StubStarts(t *testing.T) {
	h, fw := newROMFake(t)
	upload(t, h, fw)
	// SYNC: eight answers with value 0 and the stub's two status bytes.
	fw.receive(req(0x08, 0, append([]byte{7, 7, 0x12, 0x20}, bytes.Repeat([]byte{0x55}, 32)...)...))
	one := []byte{0xC0, 0x01, 0x08, 0x02, 0x00, 0, 0, 0, 0, 0, 0, 0xC0}
	if got := h.out.String(); got != string(bytes.Repeat(one, 8)) {
		t.Fatalf("stub SYNC answers % x", got)
	}
	h.out.Reset()
	fw.receive(req(0x0A, 0, le(0x40001000)...))
	if a := lastAnswer(t, h); a.value != 0x00F01D83 || a.err != 0 || a.size != 2 {
		t.Fatalf("READ_REG of the chip magic: %+v", a)
	}
}

func TestESP32MemEndElsewhereIsDeaf(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry uint32
	}{
		{"entry outside the upload", 0x40090000},
		{"entry in DRAM", 0x3FFB0000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, fw := newROMFake(t)
			fw.receive(req(0x05, 0, le(8, 1, 0x1800, 0x40080000)...))
			fw.receive(dataReq(0x07, 0, []byte{1, 2, 3, 4, 5, 6, 7, 8}))
			fw.receive(req(0x05, 0, le(8, 1, 0x1800, 0x3FFB0000)...))
			fw.receive(dataReq(0x07, 0, []byte{1, 2, 3, 4, 5, 6, 7, 8}))
			fw.receive(req(0x06, 0, le(0, tc.entry)...))
			h.out.Reset()
			fw.receive(req(0x08, 0, append([]byte{7, 7, 0x12, 0x20}, bytes.Repeat([]byte{0x55}, 32)...)...))
			if h.out.Len() != 0 {
				t.Fatalf("a chip running unknown code answered SYNC: % x", h.out.String())
			}
		})
	}
	// An upload missing a block does not start either.
	h, fw := newROMFake(t)
	fw.receive(req(0x05, 0, le(0x2000, 2, 0x1800, 0x40080000)...))
	fw.receive(dataReq(0x07, 0, make([]byte, 0x1800)))
	fw.receive(req(0x06, 0, le(0, 0x40080000)...))
	if strings.Contains(h.out.String(), "OHAI") {
		t.Fatal("the stub started from half an upload")
	}
	// MEM_END with "don't run" stays in the ROM.
	h, fw = newROMFake(t)
	fw.receive(req(0x06, 0, le(1, 0)...))
	h.out.Reset()
	fw.receive(req(0x0A, 0, le(0x40001000)...))
	if st, _ := lastStatus(t, h.out.String()); st != 0 || !strings.HasSuffix(h.out.String(), "\x00\x00\x00\x00\xc0") {
		t.Fatalf("the ROM should still answer with 4 status bytes: % x", h.out.String())
	}
}

// Error answers, from stub_flasher.c cmd_loop: C's || turns a failed check
// chained to a handler into error 1; the rest are the stub's own codes.
func TestESP32StubErrors(t *testing.T) {
	blk := bytes.Repeat([]byte{0x11}, 0x100)
	begin := req(0x02, 0, le(0x100, 1, 0x4000, 0x9000)...)
	for _, tc := range []struct {
		name   string
		in     [][]byte
		err    byte
		status byte
	}{
		{"5-word FLASH_BEGIN (|| makes it 1)", [][]byte{req(0x02, 0, le(0x100, 1, 0x4000, 0x9000, 0)...)}, 0x01, 0},
		{"block size over 0x4000", [][]byte{req(0x02, 0, le(0x100, 1, 0x4001, 0x9000)...)}, 0xC2, 0},
		{"FLASH_DATA before FLASH_BEGIN", [][]byte{dataReq(0x03, 0, blk)}, 0xC6, 0},
		{"bad checksum", [][]byte{begin, frame(0x03, 0x42, append(le(0x100, 0, 0, 0), blk...))}, 0xC1, 0},
		{"length word disagrees", [][]byte{begin, frame(0x03, sum(blk), append(le(0xFF, 0, 0, 0), blk...))}, 0xC0, 0},
		{"good block", [][]byte{begin, dataReq(0x03, 0, blk)}, 0, 0},
		{"FLASH_END before the data", [][]byte{begin, req(0x04, 0, le(1)...)}, 0xC8, 0},
		{"FLASH_END outside flash mode", [][]byte{req(0x04, 0, le(1)...)}, 0xC6, 0},
		{"FLASH_END after the data", [][]byte{begin, dataReq(0x03, 0, blk), req(0x04, 0, le(1)...)}, 0, 0},
		{"ROM-style SPI_ATTACH of 8 bytes", [][]byte{req(0x0D, 0, make([]byte, 8)...)}, 0x01, 0},
		{"SPI_ATTACH", [][]byte{req(0x0D, 0, make([]byte, 4)...)}, 0, 0},
		{"ERASE_REGION unaligned (0x32, then ||)", [][]byte{req(0xD1, 0, le(0x9800, 0x1000)...)}, 0x01, 0},
		{"ERASE_REGION", [][]byte{req(0xD1, 0, le(0x9000, 0x1000)...)}, 0, 0},
		{"READ_FLASH_SLOW is the ROM's only", [][]byte{req(0x0E, 0, le(0, 64)...)}, 0xFF, 0},
		{"GET_SECURITY_INFO is not in the ESP32 stub", [][]byte{req(0x14, 0)}, 0xFF, 0},
		{"data_len over MAX_WRITE_BLOCK+16", [][]byte{{0xC0, 0x00, 0x03, 0x11, 0x40, 0, 0, 0, 0, 0xC0}}, 0xC0, 0xEE},
		{"WRITE_REG not in 16-byte records", [][]byte{req(0x09, 0, le(0x3FF42000, 0, 0)...)}, 0xC0, 0},
		{"two WRITE_REG records", [][]byte{req(0x09, 0, le(0x3FF42080, 7, 0xFFFFFFFF, 0, 0x3FF42084, 8, 0xFFFFFFFF, 10)...)}, 0, 0},
		{"MEM_DATA without MEM_BEGIN", [][]byte{frame(0x07, 0, append(le(4, 0, 0, 0), 1, 2, 3, 4))}, 0xC6, 0},
		{"MD5 past SPI_SET_PARAMS' size (|| → 1)", [][]byte{req(0x0B, 0, le(0, 1<<20, 0x10000, 0x1000, 0x100, 0xFFFF)...), req(0x13, 0, le(0xFF000, 0x2000, 0, 0)...)}, 0x01, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, fw := newROMFake(t)
			upload(t, h, fw)
			for _, p := range tc.in {
				fw.receive(p)
			}
			if a := lastAnswer(t, h); a.err != tc.err || a.status != tc.status {
				t.Fatalf("error 0x%02x status 0x%02x, want 0x%02x 0x%02x", a.err, a.status, tc.err, tc.status)
			}
		})
	}
}

// The answers' shapes: MD5 is 16 raw bytes (size 18 even when it fails),
// READ_REG's value is in the header, WRITE_REG records keep the bits outside
// the mask.
func TestESP32StubAnswers(t *testing.T) {
	h, fw := newROMFake(t)
	prefill(t, h.path)
	upload(t, h, fw)
	fw.receive(req(0x13, 0, le(0x1000, 0x3000, 0, 0)...))
	want := md5.Sum(bytes.Repeat([]byte{0x5A}, 0x3000))
	if a := lastAnswer(t, h); a.size != 18 || !bytes.Equal(a.data, want[:]) || a.err != 0 {
		t.Fatalf("MD5 answer %+v, want 16 raw bytes %x", a, want)
	}
	h.out.Reset()
	fw.receive(req(0x13, 0, le(0x3FF000, 0x2000, 0, 0)...)) // past the 4 MB chip
	if a := lastAnswer(t, h); a.size != 18 || len(a.data) != 0 || a.err != 1 {
		t.Fatalf("failed MD5 answer %+v", a)
	}
	fw.receive(req(0x09, 0, le(0x3FF42080, 0x12345678, 0xFFFFFFFF, 0, 0x3FF42080, 0xAB, 0xFF, 0)...))
	h.out.Reset()
	fw.receive(req(0x0A, 0, le(0x3FF42080)...))
	if a := lastAnswer(t, h); a.value != 0x123456AB {
		t.Fatalf("register after a masked write: %08x", a.value)
	}
}

// One FLASH_DEFL_DATA of a broken stream is acknowledged; the inflate error
// comes with the next block's answer (handle_flash_deflated_data: "error
// won't get sent back to esptool.py until next block is sent") and stays.
func TestESP32StubInflateErrorShowsLater(t *testing.T) {
	h, fw := newROMFake(t)
	upload(t, h, fw)
	fw.receive(req(0x10, 0, le(0x1000, 2, 0x4000, 0x9000)...))
	bad := []byte{0x78, 0x9C, 0x07, 1, 2, 3}
	fw.receive(dataReq(0x11, 0, bad))
	if a := lastAnswer(t, h); a.err != 0 {
		t.Fatalf("first block answered 0x%02x, want 0 (errors are late)", a.err)
	}
	fw.receive(dataReq(0x11, 1, bad))
	if a := lastAnswer(t, h); a.err != 0xC7 {
		t.Fatalf("second block answered 0x%02x, want 0xC7 (ESP_INFLATE_ERROR)", a.err)
	}
}

// The stub's write of 512 KB at 0x10000, deflated in 16 KB blocks: it erases
// as it writes (start_next_erase: 64 KB blocks when aligned and a block is
// left: 8 × tBE2), programs every page and inflates every byte; the flash
// ends up holding the image. Virtual time.
func TestESP32StubWriteCharged(t *testing.T) {
	t.Parallel()
	h, fw := newROMFake(t)
	upload(t, h, fw)
	img := noFF(512<<10, 21)
	z := deflated(t, img, 9)
	blocks := (len(z) + 0x3FFF) / 0x4000
	fw.receive(frame(0x10, 0, le(uint32(len(img)), uint32(blocks), 0x4000, 0x10000)))
	for seq := range blocks {
		fw.receive(dataReq(0x11, seq, z[seq*0x4000:min(len(z), (seq+1)*0x4000)]))
		if a := lastAnswer(t, h); a.err != 0 {
			t.Fatalf("block %d: error 0x%02x", seq, a.err)
		}
		if seq < blocks-1 {
			// out_buf (32 KB) is written when full: the written part is whole
			// 32 KB pieces until the stream ends.
			if n := writtenPrefix(t, h.path, 0x10000, img); n%0x8000 != 0 {
				t.Fatalf("after block %d the flash holds %d bytes of the image: not whole 32 KB writes", seq, n)
			}
		}
	}
	fw.receive(req(0x12, 0, le(1)...))
	if a := lastAnswer(t, h); a.err != 0 {
		t.Fatalf("FLASH_DEFL_END: error 0x%02x", a.err)
	}
	b := h.busy()
	if b.BlockErases != 8 || b.SectorErases != 0 || b.Erase != 8*150*time.Millisecond {
		t.Fatalf("erases: %d blocks, %d sectors, %v; want 8 blocks, 1.2 s", b.BlockErases, b.SectorErases, b.Erase)
	}
	if b.Pages != 2048 || b.Program != 2048*400*time.Microsecond {
		t.Fatalf("%d page programs (%v), want 2048 (819.2 ms)", b.Pages, b.Program)
	}
	if b.Inflate != (512<<10)*2*time.Microsecond {
		t.Fatalf("inflate %v, want %v", b.Inflate, (512<<10)*2*time.Microsecond)
	}
	raw, _ := os.ReadFile(h.path)
	if !bytes.Equal(raw[0x10000:0x90000], img) || !allFF(raw[:0x10000]) || !allFF(raw[0x90000:]) {
		t.Fatal("the flash does not hold the image at 0x10000 with the rest erased")
	}
}

// The stub acknowledges a data block before writing it and writes while the
// next one arrives: the block's answer is immediate, the next command's waits
// for the write (cmd_loop: ACK first, handle_flash_data after).
func TestESP32StubAcksBeforeWriting(t *testing.T) {
	h, fw := newROMFake(t)
	upload(t, h, fw)
	blk := bytes.Repeat([]byte{0x11}, 0x4000)
	fw.receive(req(0x02, 0, le(0x4000, 1, 0x4000, 0x20000)...))
	t0 := h.clk.now()
	fw.receive(dataReq(0x03, 0, blk))
	acked := h.sent[len(h.sent)-1].at
	fw.receive(req(0x0A, 0, le(0x40001000)...))
	answered := h.sent[len(h.sent)-1].at
	// The write: 0x20000 is block-aligned but only 4 sectors are to be
	// erased, so 4 sector erases, then 64 page programs.
	write := 4*45*time.Millisecond + 64*400*time.Microsecond
	if acked.Sub(t0) != 0 {
		t.Fatalf("the block was acknowledged after %v, not at once", acked.Sub(t0))
	}
	if answered.Sub(acked) < write {
		t.Fatalf("READ_REG answered %v after the ACK, before the write's %v", answered.Sub(acked), write)
	}
}

// READ_FLASH: packets of the size asked, no more unacknowledged bytes than
// max_in_flight (64 here, as esptool asks: one 4 KB packet at a time), each
// acknowledgement the total received, then the 16-byte MD5.
func TestESP32StubReadFlash(t *testing.T) {
	h, fw := newROMFake(t)
	upload(t, h, fw)
	img := halfCompressible(10000, 5)
	fw.receive(req(0x02, 0, le(uint32(len(img)), 1, 0x4000, 0x30000)...))
	fw.receive(dataReq(0x03, 0, append(img, bytes.Repeat([]byte{0xFF}, 0x4000-len(img))...)))
	h.out.Reset()
	fw.receive(req(0xD2, 0, le(0x30000, uint32(len(img)), 4096, 64)...))
	f := frames(t, []byte(h.out.String()))
	if len(f) != 2 || f[0][1] != 0xD2 || f[0][len(f[0])-2] != 0 || !bytes.Equal(f[1], img[:4096]) {
		t.Fatalf("want the answer then one 4096-byte packet, got %d frames", len(f))
	}
	var got []byte
	got = append(got, f[1]...)
	for len(got) < len(img) {
		h.out.Reset()
		fw.receive(slipOf(le(uint32(len(got)))))
		f = frames(t, []byte(h.out.String()))
		if len(f) != 1 {
			t.Fatalf("after ack %d: %d frames", len(got), len(f))
		}
		got = append(got, f[0]...)
	}
	if !bytes.Equal(got, img) {
		t.Fatal("READ_FLASH data differs from what was written")
	}
	h.out.Reset()
	fw.receive(slipOf(le(uint32(len(got)))))
	f = frames(t, []byte(h.out.String()))
	want := md5.Sum(img)
	if len(f) != 1 || !bytes.Equal(f[0], want[:]) {
		t.Fatalf("final frame % x, want the MD5 %x", f, want)
	}
	// Back to commands.
	h.out.Reset()
	fw.receive(req(0x0A, 0, le(0x40001000)...))
	if a := lastAnswer(t, h); a.value != 0x00F01D83 {
		t.Fatalf("READ_REG after READ_FLASH: %+v", a)
	}
}

func allFF(b []byte) bool { return bytes.Count(b, []byte{0xFF}) == len(b) }

func slipOf(p []byte) []byte {
	return append(append([]byte{0xC0}, p...), 0xC0) // (test values need no escaping)
}

// CHANGE_BAUDRATE (new, old): the stub scales its divider by old/new, so the
// new rate is exact only when old is the rate in use (stub_io.c
// get_new_uart_divider).
func TestESP32StubChangeBaud(t *testing.T) {
	for _, tc := range []struct {
		newBd, oldBd uint32
		want         int
	}{
		{921600, 115200, 921600},
		{921600, 230400, 460800},
	} {
		h, fw := newROMFake(t)
		upload(t, h, fw)
		fw.receive(req(0x0F, 0, le(tc.newBd, tc.oldBd)...))
		if a := lastAnswer(t, h); a.err != 0 {
			t.Fatalf("CHANGE_BAUDRATE: error 0x%02x", a.err)
		}
		if h.baud != tc.want {
			t.Fatalf("(%d, %d) at 115200 set the UART to %d, want %d", tc.newBd, tc.oldBd, h.baud, tc.want)
		}
	}
}

// FLASH_END with reboot: the stub answers and resets the chip, which comes
// back in the ROM loader at the boot rate with its banner.
func TestESP32StubRebootsToROM(t *testing.T) {
	h, fw := newROMFake(t)
	upload(t, h, fw)
	fw.receive(req(0x0F, 0, le(921600, 115200)...))
	fw.receive(req(0x02, 0, le(0, 0, 0x4000, 0)...))
	h.out.Reset()
	fw.receive(req(0x04, 0, le(0)...))
	out := h.out.String()
	if a := lastAnswerOf(t, out[:strings.IndexByte(out[1:], 0xC0)+2]); a.err != 0 {
		t.Fatalf("FLASH_END: error 0x%02x", a.err)
	}
	if !strings.Contains(out, "rst:0x3 (SW_RESET),boot:0x3 (DOWNLOAD_BOOT") || !strings.Contains(out, "waiting for download") {
		t.Fatalf("no ROM banner after the reset: %q", out)
	}
	if h.baud != 115200 {
		t.Fatalf("the UART is at %d after the reset, want 115200", h.baud)
	}
	h.out.Reset()
	fw.receive(req(0x08, 0, append([]byte{7, 7, 0x12, 0x20}, bytes.Repeat([]byte{0x55}, 32)...)...))
	one := []byte{0xC0, 0x01, 0x08, 0x04, 0x00, 0x07, 0x07, 0x12, 0x20, 0, 0, 0, 0, 0xC0}
	if got := h.out.String(); got != string(bytes.Repeat(one, 8)) {
		t.Fatalf("after the reset SYNC answers % x, want the ROM's", got)
	}
}

func lastAnswerOf(t *testing.T, s string) stubAnswer {
	t.Helper()
	h := &romFake{}
	h.out.WriteString(s)
	return lastAnswer(t, h)
}

// ERASE_REGION and ERASE_FLASH take the datasheet's times before answering.
func TestESP32StubEraseCharged(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  []byte
		want time.Duration
	}{
		{"aligned 64 KB: 16 sector erases", req(0xD1, 0, le(0x10000, 0x10000)...), 16 * 45 * time.Millisecond},
		{"the chip", req(0xD0, 0), 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, fw := newROMFake(t)
			prefill(t, h.path)
			upload(t, h, fw)
			t0 := h.clk.now()
			fw.receive(tc.req)
			if a := lastAnswer(t, h); a.err != 0 {
				t.Fatalf("error 0x%02x", a.err)
			}
			if got := h.busy().Erase; got != tc.want {
				t.Fatalf("charged %v, want %v", got, tc.want)
			}
			if d := h.sent[len(h.sent)-1].at.Sub(t0); d < tc.want {
				t.Fatalf("answered after %v, before the erase's %v", d, tc.want)
			}
		})
	}
}
