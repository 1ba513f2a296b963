package esprom_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/esprom"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates/nvs"
)

// esptool finds Espressif's esptool: a source tree named by
// IOTBURN_ESPTOOL_SRC (a directory holding esptool.py), run with the first
// Python that imports serial and intelhex ($IOTBURN_ESPTOOL_PYTHON, python3
// on PATH, /usr/bin/python3), or esptool / esptool.py on PATH. It returns the
// command's first words, or skips the test saying what is missing.
func esptool(t *testing.T) []string {
	t.Helper()
	if src := os.Getenv("IOTBURN_ESPTOOL_SRC"); src != "" {
		script := filepath.Join(src, "esptool.py")
		if _, err := os.Stat(script); err != nil {
			t.Skipf("IOTBURN_ESPTOOL_SRC=%s holds no esptool.py (%v): point it at an esptool source tree (tag v4.8.1)", src, err)
		}
		var tried []string
		for _, py := range []string{os.Getenv("IOTBURN_ESPTOOL_PYTHON"), "python3", "/usr/bin/python3"} {
			if py == "" {
				continue
			}
			tried = append(tried, py)
			if exec.Command(py, "-c", "import serial, intelhex").Run() == nil {
				return []string{py, script}
			}
		}
		t.Skipf("IOTBURN_ESPTOOL_SRC is set, but no Python of %v imports serial and intelhex "+
			"(Debian: apt-get install python3-serial python3-intelhex; or name one in IOTBURN_ESPTOOL_PYTHON)", tried)
	}
	for _, name := range []string{"esptool", "esptool.py"} {
		if p, err := exec.LookPath(name); err == nil {
			if out, err := exec.Command(p, "version").CombinedOutput(); err != nil {
				t.Skipf("%s is on PATH but does not run (%v): %s", p, err, out)
			}
			return []string{p}
		}
	}
	t.Skip("esptool not found: set IOTBURN_ESPTOOL_SRC to an esptool source tree (see README), or put esptool on PATH")
	return nil
}

// region is one file esptool writes, and what the test expects of it.
type region struct {
	off  uint32
	data []byte
	file string
}

// testData is reproducible: bytes from a fixed seed; half is random and half
// repeated text, so it deflates about 2:1 (an app image is about that).
func testData(n int, seed uint64, compressible bool) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	text := []byte("iotburn checks its simulated ESP32 against esptool. ")
	out := make([]byte, 0, n)
	for len(out) < n {
		if !compressible || r.IntN(2) == 0 {
			for range 512 {
				out = append(out, byte(r.Uint32()))
			}
		} else {
			for i := range 512 {
				out = append(out, text[i%len(text)])
			}
		}
	}
	return out[:n]
}

// romEraseTime is what the ESP32 ROM's erase of size bytes at off costs on a
// W25Q32JV (typical times), computed here from ESP-IDF's
// esp_rom_spiflash_erase_area: 16 − sector%16 head sectors (16 when
// aligned), 64 KB blocks while more than 16 sectors are left, tail sectors.
func romEraseTime(off, size uint32) time.Duration {
	const se, be = 45 * time.Millisecond, 150 * time.Millisecond
	total := (size + 0xFFF) / 0x1000
	head := min(16-off/0x1000%16, total)
	total -= head
	d := time.Duration(head) * se
	for total > 16 {
		d += be
		total -= 16
	}
	return d + time.Duration(total)*se
}

var tookRE = regexp.MustCompile(`Took ([0-9.]+)s to erase flash block`)

// TestEsptool checks the simulated ESP32 against Espressif's own esptool,
// in ROM mode (--no-stub: the ROM protocol only) and in its default mode
// (esptool uploads its flasher stub into RAM and talks to it): read_mac,
// flash_id, write_flash -z of four regions (a ~1 MB app among them),
// verify_flash, read_flash and (stub only: esptool has no ROM version)
// erase_region, each checked byte for byte against the board's flash file,
// with the expected bytes built from the test's own inputs. In ROM mode
// iotburn's loader then writes and esptool verifies. The board starts at
// 115200 and esptool changes to IOTBURN_ESPTOOL_BAUD (921600 by default);
// IOTBURN_ESPTOOL_VERBOSE=1 logs everything esptool prints.
func TestEsptool(t *testing.T) {
	tool := esptool(t)
	baud := 921600
	if s := os.Getenv("IOTBURN_ESPTOOL_BAUD"); s != "" {
		var err error
		if baud, err = strconv.Atoi(s); err != nil {
			t.Fatalf("IOTBURN_ESPTOOL_BAUD=%q: %v", s, err)
		}
	}
	if v, err := exec.Command(tool[0], append(tool[1:], "version")...).CombinedOutput(); err == nil {
		t.Logf("esptool: %s", strings.Join(strings.Fields(string(v)), " "))
	}
	boot := testData(0x5A31, 1, false)
	boot[0] = 0x00 // not an image header (0xE9): esptool rewrites flash parameters in those
	regions := []region{
		{off: 0x1000, data: boot},
		{off: 0x8000, data: testData(0xC00, 2, false)},
		{off: nvsOffset, data: image(t)},
		{off: 0x10000, data: testData(0xF3A10, 3, true)},
	}
	for _, mode := range []string{"rom", "stub"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			esptoolMode(t, tool, mode, baud, append([]region(nil), regions...))
		})
	}
}

func esptoolMode(t *testing.T, tool []string, mode string, baud int, regions []region) {
	dir := t.TempDir()
	// A flash that is not blank: what esptool does not write must stay.
	want := testData(sim.ESP32FlashSize, 4, false)
	if err := os.WriteFile(filepath.Join(dir, "board-00.flash"), want, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := sim.Start(sim.Options{Dir: dir, Kind: "esp32", Count: 1, Baud: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := f.Boards()[0]
	rom := mode == "rom"

	run := func(args ...string) (string, error) {
		t.Helper()
		if rom {
			// The ROM stays at the rate esptool set until the chip is reset;
			// without reset lines on a pty, a power cycle is that reset (the
			// stub resets the chip itself at --after no_reset).
			if err := b.Replug(); err != nil {
				t.Fatal(err)
			}
		}
		argv := append(append([]string(nil), tool[1:]...), "--chip", "esp32", "--port", b.Path(), "--baud", strconv.Itoa(baud),
			"--before", "no_reset", "--after", "no_reset")
		if rom {
			argv = append(argv, "--no-stub")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, tool[0], append(argv, args...)...)
		cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
		out, err := cmd.CombinedOutput()
		if os.Getenv("IOTBURN_ESPTOOL_VERBOSE") != "" {
			t.Logf("esptool %s (%v):\n%s", strings.Join(args, " "), err, out)
		}
		if err != nil && !rom {
			// A failed run ends before esptool's --after handling: the stub
			// is left running at the high rate. Power-cycle, as on a bench.
			if err := b.Replug(); err != nil {
				t.Fatal(err)
			}
		}
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("esptool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	checkFlash := func(what string) {
		t.Helper()
		got, err := os.ReadFile(filepath.Join(dir, "board-00.flash"))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("after %s the flash file has %d bytes", what, len(got))
		}
		if i := firstDiff(got, want); i >= 0 {
			t.Fatalf("after %s the flash differs from what was written at 0x%06x: %02x, want %02x", what, i, got[i], want[i])
		}
	}

	out := must("read_mac")
	if !strings.Contains(out, "MAC: "+b.MAC()) || !strings.Contains(out, "Chip is ESP32") {
		t.Fatalf("read_mac does not show MAC %s:\n%s", b.MAC(), out)
	}
	if !rom && !strings.Contains(out, "Stub running...") {
		t.Fatalf("esptool did not run its stub:\n%s", out)
	}
	out = must("flash_id")
	if !strings.Contains(out, "Manufacturer: ef") || !strings.Contains(out, "Device: 4016") || !strings.Contains(out, "Detected flash size: 4MB") {
		t.Fatalf("flash_id does not show the W25Q32JV:\n%s", out)
	}

	// write_flash -z: every region deflated on the wire.
	args := []string{"write_flash", "-z", "--flash_mode", "keep", "--flash_freq", "keep", "--flash_size", "keep"}
	for i, r := range regions {
		regions[i].file = filepath.Join(dir, fmt.Sprintf("region-%x.bin", r.off))
		if err := os.WriteFile(regions[i].file, r.data, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, fmt.Sprintf("0x%x", r.off), regions[i].file)
		// esptool pads to 4 bytes with 0xFF and erases the sectors it
		// covers ("Flash will be erased from … to …").
		padded := append(append([]byte(nil), r.data...), bytes.Repeat([]byte{0xFF}, (4-len(r.data)%4)%4)...)
		end := (int(r.off) + len(padded) + 0xFFF) &^ 0xFFF
		copy(want[r.off&^0xFFF:end], bytes.Repeat([]byte{0xFF}, end-int(r.off&^0xFFF)))
		copy(want[r.off:], padded)
	}
	start := time.Now()
	out = must(args...)
	t.Logf("%s mode, %d baud: write_flash -z of %d regions (%d KB) took %v", mode, baud, len(regions), total(regions)/1024, time.Since(start).Round(100*time.Millisecond))
	if n := strings.Count(out, "Hash of data verified."); n != len(regions) {
		t.Fatalf("write_flash verified %d of %d regions:\n%s", n, len(regions), out)
	}
	checkFlash("write_flash")
	if rom {
		// The ROM erases each region before answering FLASH_DEFL_BEGIN, which
		// esptool times: at least the datasheet's typical erase time.
		took := tookRE.FindAllStringSubmatch(out, -1)
		if len(took) != len(regions) {
			t.Fatalf("esptool timed %d erases, want %d:\n%s", len(took), len(regions), out)
		}
		for i, m := range took {
			s, _ := strconv.ParseFloat(m[1], 64)
			size := (uint32(len(regions[i].data)) + 3) &^ 3
			wantErase := romEraseTime(regions[i].off, (size+0x3FF)&^0x3FF)
			if time.Duration(s*float64(time.Second)) < wantErase-5*time.Millisecond {
				t.Errorf("region at 0x%x: the ROM erased in %ss, under the flash's %v", regions[i].off, m[1], wantErase)
			}
		}
	}

	verify := []string{"verify_flash"}
	for _, r := range regions {
		verify = append(verify, fmt.Sprintf("0x%x", r.off), r.file)
	}
	if out = must(verify...); strings.Count(out, "-- verify OK") != len(regions) {
		t.Fatalf("verify_flash:\n%s", out)
	}
	// The check can fail: one byte off in the app.
	bad := append([]byte(nil), regions[3].data...)
	bad[len(bad)/2] ^= 0x40
	badFile := filepath.Join(dir, "bad.bin")
	if err := os.WriteFile(badFile, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run("verify_flash", fmt.Sprintf("0x%x", regions[3].off), badFile); err == nil || !strings.Contains(out, "verify FAILED") {
		t.Fatalf("verify_flash of a different image passed (%v):\n%s", err, out)
	}

	// read_flash: the stub's is fast (4 KB packets), the ROM's 64 bytes a
	// command, so it reads less.
	from, n := uint32(0x8000), uint32(0x28000)
	if rom {
		n = 0x2000
	}
	back := filepath.Join(dir, "back.bin")
	must("read_flash", fmt.Sprintf("0x%x", from), fmt.Sprintf("0x%x", n), back)
	if got, err := os.ReadFile(back); err != nil || !bytes.Equal(got, want[from:from+n]) {
		t.Fatalf("read_flash 0x%x+0x%x gave something else (%v, first difference at +0x%x)", from, n, err, firstDiff(got, want[from:from+n]))
	}

	if !rom {
		// erase_region: an aligned 64 KB plus a sector, across regions.
		must("erase_region", "0x8000", "0x11000")
		copy(want[0x8000:0x19000], bytes.Repeat([]byte{0xFF}, 0x11000))
		checkFlash("erase_region")
		t.Logf("stub mode: the board was charged %+v", b.ESP32Busy())
		return
	}
	t.Logf("ROM mode: the board was charged %+v", b.ESP32Busy())

	// iotburn writes (deflated), esptool verifies and reads back.
	other, err := nvs.Format{}.Render(registry.Credential{Platform: "tencent", ProductID: "ABCDEFGHIJ", DeviceName: "dev002", DeviceSecret: "c2Vjb25kIHNlY3JldCEhIQ=="})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Replug(); err != nil {
		t.Fatal(err)
	}
	p, err := burner.Open(b.Path(), 115200)
	if err != nil {
		t.Fatal(err)
	}
	l := esprom.New(p)
	err = l.Connect(ctx(t))
	if err == nil {
		err = l.WriteFlash(ctx(t), nvsOffset, other, true, nil)
	}
	p.Close()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "other.bin")
	if err := os.WriteFile(file, other, 0o600); err != nil {
		t.Fatal(err)
	}
	if out = must("verify_flash", fmt.Sprintf("0x%x", nvsOffset), file); !strings.Contains(out, "verify OK") {
		t.Fatalf("verify_flash of iotburn's write:\n%s", out)
	}
	must("read_flash", fmt.Sprintf("0x%x", nvsOffset), fmt.Sprintf("0x%x", len(other)), back)
	if got, err := os.ReadFile(back); err != nil || !bytes.Equal(got, other) {
		t.Fatalf("read_flash of iotburn's write gave something else (%v)", err)
	}
}

func total(rs []region) int {
	n := 0
	for _, r := range rs {
		n += len(r.data)
	}
	return n
}

// firstDiff is the first index where a and b differ, -1 if they are equal.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}
