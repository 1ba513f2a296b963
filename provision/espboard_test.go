package provision

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/esprom"
	"github.com/iotburn/iotburn/burner/flashmap"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/templates/nvs"
)

// ESP32 boards on the line: each gets its own NVS partition at 0x9000 and the
// shared bootloader at 0x1000 in one connection, both MD5-verified by the ROM;
// the flash files hold exactly those bytes.
func TestLineESP32(t *testing.T) {
	l := openLedger(t)
	secrets := seedLedger(t, l, 3)
	farm, err := sim.Start(sim.Options{Dir: t.TempDir(), Kind: "esp32", Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	format := nvs.Format{Size: 0x6000, Version: 2, Keys: nvs.TencentKeys}
	boot := bytes.Repeat([]byte("bootloader"), 700) // 7000 bytes, not block-aligned
	o := lineOpts(l, farm, 921600)
	o.Format = format
	o.Open = openESP(t, ESPOptions{Baud: 921600, Partition: CredentialPartition{Offset: 0x9000}, Format: format, Compress: true,
		Common: []flashmap.Region{flashmap.FromFile("bootloader.bin", 0x1000, boot)}})
	res, err := RunLine(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Burned != 2 || res.Failed != 0 {
		t.Fatalf("got %+v, want 2 burned", res)
	}
	for _, b := range farm.Boards() {
		u, ok, err := l.UnitByHW(strings.ToLower(b.MAC()))
		if err != nil || !ok || u.State != ledger.Burned {
			t.Fatalf("%s: unit %+v %v", b.Path(), u, err)
		}
		part, err := b.ReadFlash(0x9000, 0x6000)
		if err != nil {
			t.Fatal(err)
		}
		// Read the partition back with the NVS reader: the keys hold the
		// ledger's credential for this board's MAC.
		items, err := nvs.Read(part)
		if err != nil {
			t.Fatalf("%s: partition does not parse: %v", b.Path(), err)
		}
		got := map[string]any{}
		for _, it := range items {
			got[it.Namespace+"/"+it.Key] = it.Value
		}
		if got["qcloud-key/device_name"] != u.Cred.DeviceName || got["qcloud-key/device_secret"] != secrets[u.Cred.DeviceName] || got["qcloud-key/product_id"] != testProduct {
			t.Errorf("%s: NVS holds %v, want %s", b.Path(), got, u.Cred.DeviceName)
		}
		bl, err := b.ReadFlash(0x1000, len(boot))
		if err != nil || !bytes.Equal(bl, boot) {
			t.Errorf("%s: bootloader region differs (%v)", b.Path(), err)
		}
	}
	// Again: recognised by eFuse MAC and flash MD5, not burned twice.
	res, err = RunLine(context.Background(), o)
	if err != nil || res.Skipped != 2 || res.Burned != 0 {
		t.Fatalf("second pass %+v %v, want 2 skipped", res, err)
	}
}

// QA on ESP32 boards reads the partition back and names the wrong key.
func TestVerifyESP32ReadBack(t *testing.T) {
	l := openLedger(t)
	seedLedger(t, l, 2)
	farm, err := sim.Start(sim.Options{Dir: t.TempDir(), Kind: "esp32", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	format := nvs.Format{Size: 0x3000, Version: 2, Keys: nvs.TencentKeys}
	at := CredentialPartition{Offset: 0x9000}
	o := lineOpts(l, farm, 921600)
	o.Format = format
	o.Open = openESP(t, ESPOptions{Baud: 921600, Partition: at, Format: format, Compress: true})
	if res, err := RunLine(context.Background(), o); err != nil || res.Burned != 1 {
		t.Fatalf("burn: %+v %v", res, err)
	}
	v := VerifyOptions{Ledger: l, Platform: "tencent", Product: testProduct, Ports: o.Ports,
		Open: openESP(t, ESPOptions{Baud: 921600, Partition: at, Format: format, ReadBack: true})}
	if res, err := Verify(context.Background(), v); err != nil || res.Verified != 1 {
		t.Fatalf("verify: %+v %v", res, err)
	}

	// Burn another device's partition over it behind the ledger's back.
	b := farm.Boards()[0]
	u, _, _ := l.UnitByHW(strings.ToLower(b.MAC()))
	other := u.Cred
	other.DeviceName = "intruder"
	img, err := format.Render(other)
	if err != nil {
		t.Fatal(err)
	}
	w := openESP(t, ESPOptions{Baud: 921600, Partition: at, Format: format})
	bd, err := w(b.Path())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bd.Identify(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := bd.Write(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	bd.Close()
	res, err := Verify(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 1 || !strings.Contains(strings.Join(res.Failures, ""), "qcloud-key/device_name") {
		t.Fatalf("got %+v, want a failure naming qcloud-key/device_name", res)
	}
}

func openESP(t *testing.T, o ESPOptions) OpenBoard {
	t.Helper()
	open, err := OpenESPBoard(o)
	if err != nil {
		t.Fatal(err)
	}
	return open
}

// machineCode is n bytes of real machine code (this test binary's own text,
// past its headers): it deflates to about half, as a real firmware does.
func machineCode(t *testing.T, n int) []byte {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 0x10000+n {
		t.Fatalf("test binary has %d bytes, want %d", len(b), 0x10000+n)
	}
	return b[0x10000 : 0x10000+n]
}

// A full-size firmware: a 1 MB app, a bootloader, the partition table and
// the credential partition in one pass, at the ROM's 115200 and at 921600.
// At 115200 this is about 40 s of wire time: no deadline of the line's may
// cut it short (each ROM command has its own, scaled by its bytes).
func TestLineESP32FullFirmware(t *testing.T) {
	table, err := os.ReadFile(filepath.Join("..", "testdata", "partitions", "odd_fctry.bin"))
	if err != nil {
		t.Fatal(err)
	}
	app := machineCode(t, 1<<20)
	boot := machineCode(t, 0x6000)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(app)
	zw.Close()
	t.Logf("app: %d bytes, %d deflated (%.0f %%)", len(app), z.Len(), 100*float64(z.Len())/float64(len(app)))
	for _, baud := range []int{115200, 921600} {
		t.Run(fmt.Sprint(baud), func(t *testing.T) {
			t.Parallel()
			l := openLedger(t)
			seedLedger(t, l, 1)
			farm, err := sim.Start(sim.Options{Dir: t.TempDir(), Kind: "esp32", Count: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer farm.Close()
			format := nvs.Format{Version: 2, Keys: nvs.TencentKeys}
			o := lineOpts(l, farm, baud)
			o.OpTimeout = 5 * time.Second // what AT boards get; ESP32 writes must not be bound by it
			o.Format = format
			o.Open = openESP(t, ESPOptions{Baud: baud, Format: format, Compress: true, Common: []flashmap.Region{
				flashmap.FromFile("bootloader.bin", 0x1000, boot),
				flashmap.FromFile("partition-table.bin", 0x8000, table),
				flashmap.FromFile("app.bin", 0x10000, app),
			}})
			res, err := RunLine(context.Background(), o)
			if err != nil || res.Burned != 1 {
				t.Fatalf("got %+v, %v; want 1 burned", res, err)
			}
			b := farm.Boards()[0]
			for _, r := range []struct {
				off  int
				want []byte
			}{{0x1000, boot}, {0x8000, table}, {0x10000, app}} {
				got, err := b.ReadFlash(r.off, len(r.want))
				if err != nil || !bytes.Equal(got, r.want) {
					t.Errorf("region at 0x%x differs (%v)", r.off, err)
				}
			}
			part, err := b.ReadFlash(0x3f0000, 0x6000)
			if err != nil {
				t.Fatal(err)
			}
			if items, err := nvs.Read(part); err != nil || len(items) < 3 {
				t.Errorf("no credential partition in fctry at 0x3f0000: %v", err)
			}
		})
	}
}

// With Espressif's flasher stub (read from an esptool source tree named by
// IOTBURN_ESPTOOL_SRC, as the esprom esptool test finds it; iotburn ships no
// stub), the line speaks the stub's dialect: the same full board lands byte
// for byte, and a second pass finds the stub still running and the board
// already done.
func TestLineESP32Stub(t *testing.T) {
	src := os.Getenv("IOTBURN_ESPTOOL_SRC")
	if src == "" {
		t.Skip("IOTBURN_ESPTOOL_SRC (an esptool v4.8.1 source tree) not set: the flasher stub is Espressif's, not shipped")
	}
	stub, err := esprom.LoadStub(filepath.Join(src, "esptool", "targets", "stub_flasher", "1", "esp32.json"))
	if err != nil {
		t.Fatal(err)
	}
	table, err := os.ReadFile(filepath.Join("..", "testdata", "partitions", "odd_fctry.bin"))
	if err != nil {
		t.Fatal(err)
	}
	app := machineCode(t, 256<<10)
	l := openLedger(t)
	seedLedger(t, l, 1)
	farm, err := sim.Start(sim.Options{Dir: t.TempDir(), Kind: "esp32", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	format := nvs.Format{Version: 2, Keys: nvs.TencentKeys}
	o := lineOpts(l, farm, 921600)
	o.Format = format
	o.Open = openESP(t, ESPOptions{Baud: 921600, Format: format, Compress: true, Stub: stub, ReadBack: true, Common: []flashmap.Region{
		flashmap.FromFile("partition-table.bin", 0x8000, table),
		flashmap.FromFile("app.bin", 0x10000, app),
	}})
	res, err := RunLine(context.Background(), o)
	if err != nil || res.Burned != 1 {
		t.Fatalf("got %+v, %v; want 1 burned", res, err)
	}
	b := farm.Boards()[0]
	if got, err := b.ReadFlash(0x10000, len(app)); err != nil || !bytes.Equal(got, app) {
		t.Errorf("app region differs (%v)", err)
	}
	part, err := b.ReadFlash(0x3f0000, 0x6000)
	if err != nil {
		t.Fatal(err)
	}
	if items, err := nvs.Read(part); err != nil || len(items) < 3 {
		t.Errorf("no credential partition in fctry: %v", err)
	}
	res, err = RunLine(context.Background(), o)
	if err != nil || res.Skipped != 1 {
		t.Fatalf("second pass %+v %v, want 1 skipped (read back through the running stub)", res, err)
	}
}
