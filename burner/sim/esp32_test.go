package sim

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"testing"
)

// romFake runs the ESP32 ROM without a pty: replies are collected.
type romFake struct {
	fakeHost
	path string
	baud int
}

func (h *romFake) flashPath() string { return h.path }
func (h *romFake) setBaud(b int)     { h.baud = b }
func (h *romFake) lineBaud() int     { return 115200 }

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
		{"broken deflate stream", [][]byte{attach, req(0x10, 0, le(0x400, 1, 0x400, 0x9000)...), req(0x11, 0xEF^0x01^0x02, append(le(2, 0, 0, 0), 0x01, 0x02)...)}, 1, 0x0B},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &romFake{path: filepath.Join(t.TempDir(), "board-00.flash")}
			h.bf.MAC = "24:0a:c4:01:02:03"
			fw := newESP32(h)
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
	h := &romFake{path: filepath.Join(t.TempDir(), "board-00.flash")}
	h.bf.MAC = "24:0a:c4:01:02:03"
	fw := newESP32(h)
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
