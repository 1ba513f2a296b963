package esprom_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/iotburn/iotburn/burner/esprom"
)

func TestSLIP(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		wire    []byte
	}{
		{"plain", []byte{0x01, 0x02, 0x03}, []byte{0xC0, 0x01, 0x02, 0x03, 0xC0}},
		{"C0 escaped", []byte{0xC0}, []byte{0xC0, 0xDB, 0xDC, 0xC0}},
		{"DB escaped", []byte{0xDB}, []byte{0xC0, 0xDB, 0xDD, 0xC0}},
		{"DB before C0 stays two escapes", []byte{0xDB, 0xC0}, []byte{0xC0, 0xDB, 0xDD, 0xDB, 0xDC, 0xC0}},
		{"escape bytes alone are data", []byte{0xDC, 0xDD}, []byte{0xC0, 0xDC, 0xDD, 0xC0}},
		{"mixed", []byte{0x00, 0xC0, 0xC0, 0xDB, 0x55}, []byte{0xC0, 0x00, 0xDB, 0xDC, 0xDB, 0xDC, 0xDB, 0xDD, 0x55, 0xC0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := esprom.EncodeSLIP(tc.payload); !bytes.Equal(got, tc.wire) {
				t.Fatalf("encode % x, want % x", got, tc.wire)
			}
			frames, err := esprom.DecodeSLIP(tc.wire)
			if err != nil || len(frames) != 1 || !bytes.Equal(frames[0], tc.payload) {
				t.Fatalf("decode %x %v, want % x", frames, err, tc.payload)
			}
		})
	}
}

func TestSLIPDecodeStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		wire   []byte
		frames [][]byte
		bad    bool
	}{
		{"noise before a frame is skipped", []byte{'e', 't', 's', 0xC0, 0x01, 0xC0}, [][]byte{{0x01}}, false},
		{"back to back", []byte{0xC0, 0x01, 0xC0, 0xC0, 0x02, 0xC0}, [][]byte{{0x01}, {0x02}}, false},
		{"shared delimiter", []byte{0xC0, 0x01, 0xC0, 0x02, 0xC0}, [][]byte{{0x01}, {0x02}}, false},
		{"empty frames ignored", []byte{0xC0, 0xC0, 0xC0}, nil, false},
		{"unfinished frame ignored", []byte{0xC0, 0x01, 0x02}, nil, false},
		{"bad escape drops the frame only", []byte{0xC0, 0xDB, 0x01, 0xC0, 0xC0, 0x07, 0xC0}, [][]byte{{0x07}}, true},
		{"escape then C0 ends the frame", []byte{0xC0, 0x05, 0xDB, 0xC0, 0x06, 0xC0}, [][]byte{{0x06}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frames, err := esprom.DecodeSLIP(tc.wire)
			if (err != nil) != tc.bad || (err != nil && !errors.Is(err, esprom.ErrSLIP)) {
				t.Fatalf("err %v, want bad=%v", err, tc.bad)
			}
			if len(frames) != len(tc.frames) {
				t.Fatalf("frames % x, want % x", frames, tc.frames)
			}
			for i := range frames {
				if !bytes.Equal(frames[i], tc.frames[i]) {
					t.Fatalf("frame %d % x, want % x", i, frames[i], tc.frames[i])
				}
			}
		})
	}
}

// TestDocTraces checks the packets against the traces in Espressif's
// serial-protocol document, written out by hand.
func TestDocTraces(t *testing.T) {
	// READ_REG of the chip-detect register 0x40001000.
	want := []byte{0xc0, 0x00, 0x0a, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x40, 0xc0}
	if got := esprom.EncodeSLIP(esprom.Request(0x0a, []byte{0x00, 0x10, 0x00, 0x40}, 0)); !bytes.Equal(got, want) {
		t.Fatalf("READ_REG request\n got % x\nwant % x", got, want)
	}
	// SYNC response: value 0x20120707 and the ESP32 ROM's 4 status bytes.
	r, err := esprom.ParseResponse([]byte{0x01, 0x08, 0x04, 0x00, 0x07, 0x07, 0x12, 0x20, 0x00, 0x00, 0x00, 0x00})
	if err != nil || r.Op != 0x08 || r.Value != 0x20120707 || !bytes.Equal(r.Data, []byte{0, 0, 0, 0}) {
		t.Fatalf("SYNC response %+v %v", r, err)
	}
	// SYNC request: 36 bytes 07 07 12 20 + 32 × 55, checksum field 0.
	sync := append([]byte{0x07, 0x07, 0x12, 0x20}, bytes.Repeat([]byte{0x55}, 32)...)
	req := esprom.Request(0x08, sync, 0)
	if !bytes.Equal(req[:8], []byte{0x00, 0x08, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00}) {
		t.Fatalf("SYNC header % x", req[:8])
	}
}

func TestParseResponseRejects(t *testing.T) {
	for name, f := range map[string][]byte{
		"short":          {0x01, 0x08, 0x00},
		"request":        {0x00, 0x08, 0x04, 0x00, 0, 0, 0, 0, 0, 0, 0, 0},
		"size too big":   {0x01, 0x08, 0x05, 0x00, 0, 0, 0, 0, 0, 0, 0, 0},
		"size too small": {0x01, 0x08, 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0},
	} {
		if _, err := esprom.ParseResponse(f); !errors.Is(err, esprom.ErrBadResponse) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestChecksumAndCRC(t *testing.T) {
	if c := esprom.Checksum(nil); c != 0xEF {
		t.Fatalf("checksum of nothing 0x%x", c)
	}
	if c := esprom.Checksum([]byte{0xEF}); c != 0 {
		t.Fatalf("checksum 0x%x", c)
	}
	if c := esprom.Checksum([]byte{0x01, 0x02, 0x04}); c != 0xEF^0x07 {
		t.Fatalf("checksum 0x%x", c)
	}
	// CRC-8/MAXIM's catalogued check value.
	if c := esprom.MACCRC([]byte("123456789")); c != 0xA1 {
		t.Fatalf("CRC-8/MAXIM check 0x%02x, want 0xa1", c)
	}
}

func FuzzDecodeSLIP(f *testing.F) {
	f.Add([]byte{0xc0, 0x00, 0x0a, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x40, 0xc0})
	f.Add([]byte{0xC0, 0xDB, 0xDC, 0xDB, 0xDD, 0xC0, 0xDB})
	f.Fuzz(func(t *testing.T, wire []byte) {
		frames, _ := esprom.DecodeSLIP(wire)
		// What decodes re-encodes and decodes to the same frames.
		var again []byte
		for _, fr := range frames {
			if len(fr) == 0 {
				t.Fatal("empty frame emitted")
			}
			again = esprom.AppendSLIP(again, fr)
		}
		back, err := esprom.DecodeSLIP(again)
		if err != nil || len(back) != len(frames) {
			t.Fatalf("round trip: %d frames → %d (%v)", len(frames), len(back), err)
		}
		for i := range back {
			if !bytes.Equal(back[i], frames[i]) {
				t.Fatalf("frame %d changed in a round trip", i)
			}
			if _, err := esprom.ParseResponse(back[i]); err != nil && !errors.Is(err, esprom.ErrBadResponse) {
				t.Fatalf("parse error not ErrBadResponse: %v", err)
			}
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte{0x01, 0x08, 0x04, 0x00, 0x07, 0x07, 0x12, 0x20, 0x00, 0x00, 0x00, 0x00})
	f.Add([]byte{0x01, 0x13, 0x24, 0x00, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, frame []byte) {
		r, err := esprom.ParseResponse(frame)
		if err != nil {
			return
		}
		if len(r.Data) != len(frame)-8 || r.Op != frame[1] {
			t.Fatalf("parsed %+v from % x", r, frame)
		}
	})
}
