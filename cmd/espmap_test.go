package cmd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/esprom"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/templates/nvs"
)

// goldenTable is one of gen_esp32part.py's tables in testdata/partitions.
func goldenTable(name string) string {
	return filepath.Join("..", "testdata", "partitions", name)
}

// espLine is a ledger with n devices and n simulated ESP32 boards, fresh
// from the factory (flash all erased, ROM at 115200).
type espLine struct {
	dir, ledger, ports string
	farm               *sim.Farm
}

func newESPLine(t *testing.T, n int) *espLine {
	t.Helper()
	_, endpoint := startCloud(t, 10*time.Millisecond)
	e := &espLine{dir: t.TempDir()}
	e.ledger = filepath.Join(e.dir, "l.db")
	var names strings.Builder
	for i := range n {
		names.WriteString("esp" + string(rune('a'+i)) + "\n")
	}
	if _, _, err := run(t, "--ledger", e.ledger, "create", "--product", "ABCDEFGHIJ", "--names", writeFile(t, e.dir, "n.txt", names.String()), "--endpoint", endpoint); err != nil {
		t.Fatal(err)
	}
	farm, err := sim.Start(sim.Options{Dir: filepath.Join(e.dir, "boards"), Kind: "esp32", Count: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	e.farm, e.ports = farm, filepath.Join(e.dir, "boards", "tty*")
	return e
}

func (e *espLine) batch(t *testing.T, args ...string) (string, error) {
	t.Helper()
	base := []string{"--ledger", e.ledger, "--json", "batch", "--product", "ABCDEFGHIJ", "--ports", e.ports, "--once", "--format", "nvs", "--baud", "921600"}
	out, _, err := run(t, append(base, args...)...)
	return out, err
}

// flashSums are the SHA-256 of every board's whole flash.
func (e *espLine) flashSums(t *testing.T) [][32]byte {
	t.Helper()
	var out [][32]byte
	for _, b := range e.farm.Boards() {
		fl, err := b.ReadFlash(0, sim.ESP32FlashSize)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sha256.Sum256(fl))
	}
	return out
}

// Every unsafe flash map is refused with the reason, the command fails, and
// no board's flash changes by a single byte.
func TestBatchESP32UnsafeMaps(t *testing.T) {
	e := newESPLine(t, 1)
	app := writeFile(t, e.dir, "app.bin", strings.Repeat("app!", 0x4000))  // 64 KB
	big := writeFile(t, e.dir, "big.bin", strings.Repeat("big!", 0x50000)) // 1.25 MB
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"misaligned credential offset", []string{"--flash-offset", "0x9800"},
			[]string{"0x9800", "not on a 4 KB sector", "0x9000"}},
		{"misaligned image", []string{"--flash-offset", "0x9000", "--flash", "0x10001=" + app},
			[]string{"0x10001", "not on a 4 KB sector"}},
		{"image over the credential partition", []string{"--flash-offset", "0x9000", "--flash", "0x8000=" + app},
			[]string{"app.bin", "credential partition", "overlap"}},
		{"two images overlap", []string{"--flash-offset", "0x9000", "--flash", "0x10000=" + big, "--flash", "0x100000=" + app},
			[]string{"big.bin", "app.bin", "overlap"}},
		{"past the end of the flash", []string{"--flash-offset", "0x9000", "--flash", "0x3F0000=" + big},
			[]string{"big.bin", "past the end", "4 MB"}},
		{"credential larger than its partition", []string{"--partition-table-offset", "0xc000", "--flash", "0xc000=" + goldenTable("qcloud_4MB.bin"), "--partition-size", "0x6000"},
			[]string{"larger than partition fctry"}},
		{"no credential partition in the table", []string{"--partition-table", goldenTable("no_fctry.csv")},
			[]string{"no partition named \"fctry\"", "nvs, phy_init, factory"}},
		{"credential partition is not NVS", []string{"--flash", "0x8000=" + goldenTable("not_nvs.bin")},
			[]string{"not an NVS partition", "data/fat"}},
		{"table with a wrong MD5", []string{"--flash", "0x8000=" + goldenTable("bad_md5.bin")},
			[]string{"MD5"}},
		{"app larger than its partition", []string{"--flash", "0x8000=" + goldenTable("aliyun.bin"), "--flash", "0x10000=" + big},
			[]string{"big.bin", "does not fit in partition ota_0", "ota_1"}},
		{"no table anywhere", nil,
			[]string{"no partition table at 0x8000", "--flash 0x8000=partition-table.bin"}},
		{"table CSV and table in the pass disagree", []string{"--flash", "0x8000=" + goldenTable("odd_fctry.bin"), "--partition-table", goldenTable("aliyun.csv")},
			[]string{"disagree on partition fctry"}},
		{"--flash without nvs", nil, nil}, // below
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.flashSums(t)
			var out string
			var err error
			if tc.want == nil {
				out, _, err = run(t, "--ledger", e.ledger, "batch", "--product", "ABCDEFGHIJ", "--ports", e.ports, "--once", "--flash", "0x1000="+app)
				tc.want = []string{"--flash is for ESP32 boards", "--format nvs"}
			} else {
				out, err = e.batch(t, tc.args...)
			}
			if err == nil {
				t.Fatalf("accepted:\n%s", out)
			}
			msg := err.Error() + out
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("the refusal does not say %q:\n%v\n%s", w, err, out)
				}
			}
			if strings.Contains(out, `"event":"burned"`) {
				t.Errorf("a board was burned:\n%s", out)
			}
			after := e.flashSums(t)
			for i := range before {
				if before[i] != after[i] {
					t.Errorf("board %d's flash changed", i)
				}
			}
		})
	}
}

// With fctry at an offset no kit uses, in a table written in the same pass
// or already on the board, the credential lands there and nowhere else, with
// no --flash-offset.
func TestBatchESP32FindsFctry(t *testing.T) {
	const fctry, fctrySize = 0x3f0000, 0x6000 // odd_fctry.csv
	tableBin, err := os.ReadFile(goldenTable("odd_fctry.bin"))
	if err != nil {
		t.Fatal(err)
	}
	appData := []byte(strings.Repeat("app!", 0x4000))
	check := func(t *testing.T, e *espLine, regions map[int][]byte) {
		t.Helper()
		for _, b := range e.farm.Boards() {
			fl, err := b.ReadFlash(0, sim.ESP32FlashSize)
			if err != nil {
				t.Fatal(err)
			}
			items, err := nvs.Read(fl[fctry : fctry+fctrySize])
			if err != nil {
				t.Fatalf("%s: no NVS partition at 0x3f0000: %v", b.Path(), err)
			}
			if len(items) < 3 || items[0].Namespace != "qcloud-key" {
				t.Errorf("%s: fctry holds %+v", b.Path(), items)
			}
			// Everything else: the regions given, else erased flash.
			want := bytes.Repeat([]byte{0xFF}, sim.ESP32FlashSize)
			for off, data := range regions {
				copy(want[off:], data)
			}
			copy(want[fctry:], fl[fctry:fctry+fctrySize])
			if !bytes.Equal(fl, want) {
				for i := range fl {
					if fl[i] != want[i] {
						t.Fatalf("%s: flash differs at 0x%x: something was written outside its region", b.Path(), i)
					}
				}
			}
		}
	}
	t.Run("table in the same pass", func(t *testing.T) {
		e := newESPLine(t, 2)
		app := writeFile(t, e.dir, "app.bin", string(appData))
		out, err := e.batch(t, "--flash", "0x8000", goldenTable("odd_fctry.bin"), "--flash", "0x10000="+app)
		if err != nil || strings.Count(out, `"event":"burned"`) != 2 {
			t.Fatalf("batch: %v\n%s", err, out)
		}
		check(t, e, map[int][]byte{0x8000: tableBin, 0x10000: appData})
	})
	t.Run("table already on the board", func(t *testing.T) {
		e := newESPLine(t, 2)
		// The boards as a firmware house ships them: table and app, no
		// credential (written here with the loader, as esptool would).
		for _, b := range e.farm.Boards() {
			p, err := burner.Open(b.Path(), burner.DefaultBaud)
			if err != nil {
				t.Fatal(err)
			}
			l := esprom.New(p)
			ctx := context.Background()
			err = l.Connect(ctx)
			if err == nil {
				err = l.WriteFlash(ctx, 0x8000, tableBin, true, nil)
			}
			if err == nil {
				err = l.WriteFlash(ctx, 0x10000, appData, true, nil)
			}
			p.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		out, err := e.batch(t)
		if err != nil || strings.Count(out, `"event":"burned"`) != 2 {
			t.Fatalf("batch: %v\n%s", err, out)
		}
		check(t, e, map[int][]byte{0x8000: tableBin, 0x10000: appData})
	})
}

// `image --format nvs --partition-table` sizes each image for its partition
// and refuses a --size that would not fit, as the line does.
func TestImageSizedForPartition(t *testing.T) {
	e := newESPLine(t, 1)
	out := filepath.Join(e.dir, "img")
	if _, _, err := run(t, "--ledger", e.ledger, "image", "--format", "nvs", "--product", "ABCDEFGHIJ", "--partition-table", goldenTable("qcloud_4MB.csv"), "--partition-table-offset", "0xc000", "--out", out); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(filepath.Join(out, "espa.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(img) != 16<<10 { // fctry, 16K, in esp-qcloud's partitions_4MB.csv
		t.Errorf("image is %d bytes, want fctry's 16384", len(img))
	}
	_, _, err = run(t, "--ledger", e.ledger, "image", "--format", "nvs", "--product", "ABCDEFGHIJ", "--partition-table", goldenTable("qcloud_4MB.csv"), "--partition-table-offset", "0xc000", "--size", "0x6000", "--out", filepath.Join(e.dir, "img2"))
	if err == nil || !strings.Contains(err.Error(), "larger than partition fctry") {
		t.Errorf("--size larger than the partition: %v", err)
	}
}
