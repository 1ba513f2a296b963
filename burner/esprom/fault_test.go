package esprom_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/esprom"
	"github.com/iotburn/iotburn/burner/sim"
)

func says(t *testing.T, err error, parts ...string) {
	t.Helper()
	for _, s := range parts {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

func TestConnectFaults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fault    sim.Fault
		clientBd int
		is       error
		says     []string
	}{
		{name: "garble", fault: sim.FaultGarble, is: esprom.ErrGarbage,
			says: []string{"answers garbage", "baud rate", "hold BOOT and press EN, then retry"}},
		{name: "wrong baud", clientBd: 9600, is: esprom.ErrGarbage, says: []string{"answers garbage"}},
		{name: "drop", fault: sim.FaultDrop, is: esprom.ErrNoAnswer,
			says: []string{"no answer from the ROM bootloader on", "hold BOOT and press EN, then retry", "no DTR/RTS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := farm(t, 1, 115200)
			b := f.Boards()[0]
			b.SetFault(tc.fault)
			bd := tc.clientBd
			if bd == 0 {
				bd = 115200
			}
			l, _ := open(t, b, bd)
			err := l.Connect(ctx(t))
			if !errors.Is(err, tc.is) {
				t.Fatalf("got %v, want %v", err, tc.is)
			}
			says(t, err, append(tc.says, b.Path())...)
		})
	}
}

func TestWriteFaults(t *testing.T) {
	img := image(t)
	for _, tc := range []struct {
		name    string
		fault   sim.Fault
		corrupt int  // FLASH_DATA frames to corrupt on the wire, -1 = all
		unplug  bool // pull the board after the first block
		late    bool // set the fault after the first block
		is      error
		code    byte // ROM error code expected, if any
		says    []string
	}{
		{name: "drop mid-write", fault: sim.FaultDrop, late: true, is: esprom.ErrNoAnswer, says: []string{"no answer to FLASH_DATA", "hold BOOT and press EN", "block 1"}},
		{name: "unplug mid-write", unplug: true, is: esprom.ErrVanished, says: []string{"vanished: replug it"}},
		{name: "bad checksum", corrupt: -1, is: esprom.ErrRefused, code: 0x07, says: []string{"refused FLASH_DATA", "checksum error", "error 0x07", "block 0"}},
		{name: "flash write error", fault: sim.FaultFailWrite, is: esprom.ErrRefused, code: 0x08, says: []string{"flash write error"}},
		{name: "one bad checksum is retried", corrupt: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := farm(t, 1, 921600)
			b := f.Boards()[0]
			p, err := burner.Open(b.Path(), 921600)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			cp := &corruptPort{Port: p, left: tc.corrupt}
			l := esprom.New(cp)
			l.Timeout, l.ConnectAttempts = 300*time.Millisecond, 1
			if err := l.Connect(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if err := l.Attach(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if !tc.late {
				b.SetFault(tc.fault)
			}
			err = l.WriteFlash(ctx(t), nvsOffset, img, false, func(done, total int) {
				if tc.unplug && done == 0x400 {
					b.Unplug()
				}
				if tc.late && done == 0x400 {
					b.SetFault(tc.fault)
				}
			})
			if tc.is == nil {
				if err != nil {
					t.Fatal(err)
				}
				if err := l.VerifyFlash(ctx(t), nvsOffset, img); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.is) {
				t.Fatalf("got %v, want %v", err, tc.is)
			}
			if tc.code != 0 {
				var re *esprom.ROMError
				if !errors.As(err, &re) || re.Code != tc.code {
					t.Fatalf("got %v, want ROM error 0x%02x", err, tc.code)
				}
			}
			says(t, err, append(tc.says, b.Path())...)
		})
	}
}

// corruptPort flips one data byte of outgoing FLASH_DATA frames, so the
// checksum in the header no longer matches: what a noisy line does.
type corruptPort struct {
	burner.Port
	left int
}

func (c *corruptPort) Write(p []byte) (int, error) {
	if c.left != 0 && len(p) > 64 && p[0] == 0xC0 && p[1] == 0x00 && p[2] == 0x03 {
		q := append([]byte(nil), p...)
		for i := len(q) - 2; i > 40; i-- {
			if v := q[i] ^ 0x01; q[i] != 0xC0 && q[i] != 0xDB && v != 0xC0 && v != 0xDB && q[i-1] != 0xDB {
				q[i] = v
				break
			}
		}
		c.left--
		return c.Port.Write(q)
	}
	return c.Port.Write(p)
}

// TestWrongChip: an ESP8266 ROM (2 status bytes, its own magic) is named.
func TestWrongChip(t *testing.T) {
	l := esprom.New(&fakeROM{magic: 0xFFF0C101})
	l.ConnectAttempts = 1
	err := l.Connect(ctx(t))
	if !errors.Is(err, esprom.ErrWrongChip) {
		t.Fatalf("got %v", err)
	}
	says(t, err, "wrong chip", "found ESP8266", "this line burns ESP32")
}

// fakeROM answers SYNC and READ_REG like an ESP8266 ROM, in memory.
type fakeROM struct {
	out     bytes.Buffer
	timeout time.Duration
	magic   uint32
}

func (f *fakeROM) Name() string                         { return "fake" }
func (f *fakeROM) Close() error                         { return nil }
func (f *fakeROM) SetReadTimeout(d time.Duration) error { f.timeout = d; return nil }
func (f *fakeROM) Read(p []byte) (int, error) {
	if f.out.Len() == 0 {
		time.Sleep(f.timeout)
		return 0, nil
	}
	return f.out.Read(p)
}

func (f *fakeROM) Write(p []byte) (int, error) {
	frames, _ := esprom.DecodeSLIP(p)
	for _, fr := range frames {
		resp := func(v uint32) {
			r := []byte{0x01, fr[1], 2, 0, 0, 0, 0, 0, 0, 0}
			binary.LittleEndian.PutUint32(r[4:], v)
			f.out.Write(esprom.EncodeSLIP(r))
		}
		switch fr[1] {
		case 0x08:
			for range 8 {
				resp(0x20120707)
			}
		case 0x0A:
			resp(f.magic)
		}
	}
	return len(p), nil
}
