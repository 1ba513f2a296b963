package sim_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/sim"
	"go.bug.st/serial"
)

var (
	romSync      = []byte{0xC0, 0x00, 0x08, 0x24, 0x00, 0, 0, 0, 0, 0x07, 0x07, 0x12, 0x20}
	romSyncReply = []byte{0xC0, 0x01, 0x08, 0x04, 0x00, 0x07, 0x07, 0x12, 0x20, 0, 0, 0, 0, 0xC0}
	// The ROM answers a SYNC eight times: wait for all of them, so none is
	// left on the line for the next exchange.
	romSyncReplies = bytes.Repeat(romSyncReply, 8)
)

func syncFrame() []byte {
	return append(append(append([]byte(nil), romSync...), bytes.Repeat([]byte{0x55}, 32)...), 0xC0)
}

// exchange writes req and collects what comes back until it holds want or d
// has passed.
func exchange(t *testing.T, p serial.Port, req, want []byte, d time.Duration) []byte {
	t.Helper()
	if err := p.ResetInputBuffer(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write(req); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 256)
	for end := time.Now().Add(d); time.Now().Before(end) && !bytes.Contains(got, want); {
		n, err := p.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	return got
}

// TestESP32ROMKeepsItsBaud: after CHANGE_BAUDRATE the ROM stays at the new
// rate (a client back at 115200 gets noise) until the board is reset; a
// power cycle (Replug) brings it back at 115200.
func TestESP32ROMKeepsItsBaud(t *testing.T) {
	f, err := sim.Start(sim.Options{Dir: t.TempDir(), Kind: "esp32", Count: 1, Baud: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := f.Boards()[0]
	open := func() serial.Port {
		p, err := serial.Open(b.Path(), &serial.Mode{BaudRate: 115200})
		if err != nil {
			t.Fatal(err)
		}
		p.SetReadTimeout(50 * time.Millisecond)
		return p
	}
	p := open()
	if got := exchange(t, p, syncFrame(), romSyncReplies, 5*time.Second); !bytes.Contains(got, romSyncReplies) {
		t.Fatalf("no SYNC reply at 115200: % x", got)
	}
	change := []byte{0xC0, 0x00, 0x0F, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x10, 0x0E, 0x00, 0, 0, 0, 0, 0xC0} // 921600, 0
	changed := []byte{0xC0, 0x01, 0x0F, 0x04, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0xC0}
	if got := exchange(t, p, change, changed, 5*time.Second); !bytes.Contains(got, changed) {
		t.Fatalf("no CHANGE_BAUDRATE reply: % x", got)
	}
	if err := p.SetMode(&serial.Mode{BaudRate: 921600}); err != nil {
		t.Fatal(err)
	}
	if got := exchange(t, p, syncFrame(), romSyncReplies, 5*time.Second); !bytes.Contains(got, romSyncReplies) {
		t.Fatalf("no SYNC reply at 921600: % x", got)
	}
	if err := p.SetMode(&serial.Mode{BaudRate: 115200}); err != nil {
		t.Fatal(err)
	}
	if got := exchange(t, p, syncFrame(), romSyncReply, 500*time.Millisecond); bytes.Contains(got, romSyncReply) {
		t.Fatal("the ROM answered at 115200 after switching to 921600")
	}
	p.Close()
	if err := b.Replug(); err != nil {
		t.Fatal(err)
	}
	p = open()
	defer p.Close()
	if got := exchange(t, p, syncFrame(), romSyncReplies, 5*time.Second); !bytes.Contains(got, romSyncReplies) {
		t.Fatalf("no SYNC reply at 115200 after a replug: % x", got)
	}
}
