package esprom_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/esprom"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates/nvs"
)

// TestEsptool checks the simulated ESP32 and this package against Espressif's
// own esptool in ROM mode (--no-stub: no stub is uploaded, the ROM protocol
// only), when esptool or esptool.py is on PATH: read_mac, write_flash +
// verify_flash, read_flash; then each side verifies what the other wrote.
func TestEsptool(t *testing.T) {
	tool := ""
	for _, name := range []string{"esptool", "esptool.py"} {
		if p, err := exec.LookPath(name); err == nil {
			tool = p
			break
		}
	}
	if tool == "" {
		t.Skip("esptool not on PATH (Debian: apt-get install esptool, trixie and later)")
	}
	dir := t.TempDir()
	f, err := sim.Start(sim.Options{Dir: dir, Kind: "esp32", Count: 1, Baud: sim.Unpaced})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := f.Boards()[0]
	run := func(args ...string) string {
		t.Helper()
		base := []string{"--chip", "esp32", "--port", b.Path(), "--baud", "115200",
			"--before", "no_reset", "--after", "no_reset", "--no-stub"}
		out, err := exec.Command(tool, append(base, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("esptool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if v, _ := exec.Command(tool, "version").CombinedOutput(); len(v) > 0 {
		t.Logf("esptool: %s", strings.TrimSpace(string(v)))
	}

	out := run("read_mac")
	if !strings.Contains(out, "MAC: "+b.MAC()) || !strings.Contains(out, "Chip is ESP32") {
		t.Fatalf("read_mac does not show MAC %s:\n%s", b.MAC(), out)
	}

	img := image(t)
	file := filepath.Join(dir, "nvs.bin")
	if err := os.WriteFile(file, img, 0o600); err != nil {
		t.Fatal(err)
	}
	out = run("write_flash", "0x9000", file)
	if !strings.Contains(out, "Hash of data verified") {
		t.Fatalf("write_flash:\n%s", out)
	}
	if got, err := b.ReadFlash(nvsOffset, len(img)); err != nil || !bytes.Equal(got, img) {
		t.Fatalf("esptool's write is not in the flash file (%v)", err)
	}
	if out = run("verify_flash", "0x9000", file); !strings.Contains(out, "verify OK") {
		t.Fatalf("verify_flash:\n%s", out)
	}
	back := filepath.Join(dir, "back.bin")
	run("read_flash", "0x9000", "0x6000", back)
	if got, err := os.ReadFile(back); err != nil || !bytes.Equal(got, img) {
		t.Fatalf("read_flash gave something else (%v)", err)
	}

	// iotburn writes (deflated), esptool verifies and reads back.
	other, err := nvs.Format{}.Render(registry.Credential{Platform: "tencent", ProductID: "ABCDEFGHIJ", DeviceName: "dev002", DeviceSecret: "c2Vjb25kIHNlY3JldCEhIQ=="})
	if err != nil {
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
	if err := os.WriteFile(file, other, 0o600); err != nil {
		t.Fatal(err)
	}
	if out = run("verify_flash", "0x9000", file); !strings.Contains(out, "verify OK") {
		t.Fatalf("verify_flash of iotburn's write:\n%s", out)
	}
	run("read_flash", "0x9000", "0x6000", back)
	if got, err := os.ReadFile(back); err != nil || !bytes.Equal(got, other) {
		t.Fatalf("read_flash of iotburn's write gave something else (%v)", err)
	}
}
