package esprom_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/esprom"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates/nvs"
)

const nvsOffset = 0x9000

var cred = registry.Credential{Platform: "tencent", ProductID: "ABCDEFGHIJ", DeviceName: "dev001",
	DeviceSecret: "7WmFA/MEs+Fy+32QwJWtYw==", Region: "ap-guangzhou"}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// farm starts n simulated ESP32 boards in a fresh directory.
func farm(t testing.TB, n, baud int) *sim.Farm {
	t.Helper()
	f, err := sim.Start(sim.Options{Dir: t.TempDir(), Kind: "esp32", Count: n, Baud: baud})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// open opens a board's port through burner.Open (go.bug.st/serial on the
// pty) and wraps it in a Loader with timeouts short enough for fault tests.
func open(t testing.TB, b *sim.Board, baud int) (*esprom.Loader, burner.Port) {
	t.Helper()
	p, err := burner.Open(b.Path(), baud)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	l := esprom.New(p)
	l.Timeout = 500 * time.Millisecond
	l.ConnectAttempts = 1
	return l, p
}

func image(t testing.TB) []byte {
	t.Helper()
	img, err := nvs.Format{}.Render(cred)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestBurnNVS burns a real NVS partition at 0x9000, raw and deflated, and
// checks it three independent ways: the sim's flash file read directly, the
// ROM's MD5 against crypto/md5, and a read-back parsed as NVS.
func TestBurnNVS(t *testing.T) {
	img := image(t)
	for _, compress := range []bool{false, true} {
		name := map[bool]string{false: "raw", true: "deflate"}[compress]
		t.Run(name, func(t *testing.T) {
			f := farm(t, 1, 921600)
			b := f.Boards()[0]
			l, _ := open(t, b, 921600)
			if err := l.Connect(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if l.Chip() != esprom.ESP32 || l.AutoReset() {
				t.Fatalf("chip %v, auto-reset %v on a pty", l.Chip(), l.AutoReset())
			}
			mac, err := l.MAC(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if mac.String() != b.MAC() {
				t.Fatalf("eFuse MAC %s, board has %s", mac, b.MAC())
			}
			if err := l.Attach(ctx(t)); err != nil {
				t.Fatal(err)
			}
			var last, calls int
			err = l.WriteFlash(ctx(t), nvsOffset, img, compress, func(done, total int) {
				if total != len(img) || done < last || done > total {
					t.Errorf("progress %d/%d after %d", done, total, last)
				}
				last, calls = done, calls+1
			})
			if err != nil {
				t.Fatal(err)
			}
			if last != len(img) || calls == 0 {
				t.Fatalf("progress ended at %d/%d", last, len(img))
			}

			raw, err := os.ReadFile(filepath.Join(f.Dir(), "board-00.flash"))
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) != sim.ESP32FlashSize {
				t.Fatalf("flash file is %d bytes", len(raw))
			}
			if !bytes.Equal(raw[nvsOffset:nvsOffset+len(img)], img) {
				t.Fatal("flash file does not hold the image at 0x9000")
			}
			if !allFF(raw[:nvsOffset]) || !allFF(raw[nvsOffset+len(img):]) {
				t.Fatal("bytes outside the image are not erased 0xFF")
			}

			sum, err := l.FlashMD5(ctx(t), nvsOffset, uint32(len(img)))
			if err != nil {
				t.Fatal(err)
			}
			if sum != md5.Sum(img) {
				t.Fatalf("ROM MD5 %x, image %x", sum, md5.Sum(img))
			}
			if err := l.VerifyFlash(ctx(t), nvsOffset, img); err != nil {
				t.Fatal(err)
			}
			// A wrong expectation must fail: the check can fail.
			other := append([]byte(nil), img...)
			other[100] ^= 1
			if err := l.VerifyFlash(ctx(t), nvsOffset, other); err == nil {
				t.Fatal("VerifyFlash accepted a different image")
			}

			back, err := l.ReadFlash(ctx(t), nvsOffset, 4096)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, img[:4096]) {
				t.Fatal("READ_FLASH_SLOW read-back differs")
			}
		})
	}
}

// TestRestartKeepsFlash: the flash is a file in DIR; a restarted simulator
// brings the same board (MAC) back with what was burned.
func TestRestartKeepsFlash(t *testing.T) {
	img := image(t)
	dir := t.TempDir()
	opts := sim.Options{Dir: dir, Kind: "esp32", Count: 1, Baud: sim.Unpaced}
	f, err := sim.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	mac := f.Boards()[0].MAC()
	l, p := open(t, f.Boards()[0], 115200)
	if err := l.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := l.WriteFlash(ctx(t), nvsOffset, img, true, nil); err != nil {
		t.Fatal(err)
	}
	p.Close()
	f.Close()

	saved, err := sim.LoadFlashImage(dir, 0)
	if err != nil || !bytes.Equal(saved[nvsOffset:nvsOffset+len(img)], img) {
		t.Fatalf("flash image after stop: %v", err)
	}
	f, err = sim.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := f.Boards()[0]
	if b.MAC() != mac {
		t.Fatalf("MAC %s after restart, was %s", b.MAC(), mac)
	}
	got, err := b.ReadFlash(nvsOffset, len(img))
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("board flash after restart: %v", err)
	}
	l, _ = open(t, b, 115200)
	if err := l.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := l.VerifyFlash(ctx(t), nvsOffset, img); err != nil {
		t.Fatal(err)
	}
	if m, err := l.MAC(ctx(t)); err != nil || m.String() != mac {
		t.Fatalf("MAC after restart %v %v", m, err)
	}
}

// TestChangeBaud: the ROM answers at the old rate, both sides switch, and a
// burn at the new rate works on a paced board (a mismatch would be garbage).
// That the board's UART moved is read from the chip itself: UART0's clock
// divider (esptool targets/esp32.py UART_CLKDIV_REG) is APB 40 MHz / baud.
func TestChangeBaud(t *testing.T) {
	img := image(t)
	f := farm(t, 1, 115200)
	l, _ := open(t, f.Boards()[0], 115200)
	if err := l.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	const uartClkDiv = 0x3FF40014
	if div, err := l.ReadReg(ctx(t), uartClkDiv); err != nil || div != 40_000_000/115200 {
		t.Fatalf("clock divider %d (%v) at 115200, want %d", div, err, 40_000_000/115200)
	}
	if err := l.ChangeBaud(ctx(t), 921600); err != nil {
		t.Fatal(err)
	}
	if div, err := l.ReadReg(ctx(t), uartClkDiv); err != nil || div != 40_000_000/921600 {
		t.Fatalf("clock divider %d (%v) after the switch, want %d (921600)", div, err, 40_000_000/921600)
	}
	if err := l.WriteFlash(ctx(t), nvsOffset, img, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.VerifyFlash(ctx(t), nvsOffset, img); err != nil {
		t.Fatal(err)
	}
}

func allFF(b []byte) bool {
	for _, c := range b {
		if c != 0xFF {
			return false
		}
	}
	return true
}

// TestFlashID reads the JEDEC id the way esptool's flash_id does. The
// simulated board carries a Winbond W25Q32JV, whose datasheet gives the id
// EFh (Winbond), 40h (memory type), 16h (capacity: 2^0x16 = 4 MB);
// esptool prints it as 0x1640ef and detects "4MB" (cmds.py
// DETECTED_FLASH_SIZES[0x16]).
func TestFlashID(t *testing.T) {
	f := farm(t, 1, sim.Unpaced)
	l, _ := open(t, f.Boards()[0], 115200)
	if err := l.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	id, err := l.FlashID(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if id != 0x1640EF {
		t.Fatalf("flash id %#x, want 0x1640ef", id)
	}
	for _, tc := range []struct {
		id   uint32
		size uint32
	}{
		{0x1640EF, 4 << 20}, {0x1540EF, 2 << 20}, {0x1840C8, 16 << 20}, {0x2020C2, 64 << 20},
		{0x3660C8, 4 << 20}, {0x0040EF, 0}, {0xFFFFFF, 0},
	} {
		if got := esprom.FlashSizeFromID(tc.id); got != tc.size {
			t.Errorf("FlashSizeFromID(%#x) = %d, want %d", tc.id, got, tc.size)
		}
	}
}

// TestRecoverFastRate: a run that switched the ROM to 921600 and died leaves
// the board there until it is reset (a pty has no DTR/RTS to reset it).
// Connecting at 115200 alone sees garbage; with the fast rate among Rates the
// loader finds the board there and carries on at that rate.
func TestRecoverFastRate(t *testing.T) {
	f := farm(t, 1, 115200)
	b := f.Boards()[0]
	l, p := open(t, b, 115200)
	if err := l.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := l.ChangeBaud(ctx(t), 921600); err != nil {
		t.Fatal(err)
	}
	p.Close() // the host dies here

	l, p = open(t, b, 115200)
	if err := l.Connect(ctx(t)); err == nil {
		t.Fatal("connected at 115200 to a board left at 921600")
	}
	p.Close()
	l, _ = open(t, b, 115200)
	l.Rates = []int{115200, 921600}
	l.ConnectAttempts = 2
	if err := l.Connect(ctx(t)); err != nil {
		t.Fatalf("did not find the board at 921600: %v", err)
	}
	if l.Baud() != 921600 {
		t.Fatalf("loader at %d baud, want 921600", l.Baud())
	}
	if err := l.ChangeBaud(ctx(t), 921600); err != nil {
		t.Fatal(err)
	}
	img := image(t)
	if err := l.WriteFlash(ctx(t), nvsOffset, img, true, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.VerifyFlash(ctx(t), nvsOffset, img); err != nil {
		t.Fatal(err)
	}
}

// The wire log (-v) names each command, its size and status, and never the
// data: an image holds a credential.
func TestWireLog(t *testing.T) {
	var log bytes.Buffer
	f := farm(t, 1, sim.Unpaced)
	l, _ := open(t, f.Boards()[0], 115200)
	l.Log = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := l.Connect(ctx(t)); err != nil {
		t.Fatal(err)
	}
	img := image(t)
	if err := l.WriteFlash(ctx(t), nvsOffset, img, true, nil); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	for _, want := range []string{"cmd=READ_REG", "cmd=SPI_ATTACH", "cmd=FLASH_DEFL_BEGIN", "cmd=FLASH_DEFL_DATA", "status=ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("wire log has no %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, cred.DeviceSecret) || strings.Contains(out, cred.DeviceName) {
		t.Errorf("wire log shows the credential:\n%s", out)
	}
}
