package flashmap

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseNumber(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
		bad  bool
	}{
		{in: "0x9000", want: 0x9000},
		{in: "0X15000", want: 0x15000},
		{in: "36864", want: 36864},
		{in: "24K", want: 24 * 1024},
		{in: "16k", want: 16 * 1024},
		{in: "1M", want: 1 << 20},
		{in: "0x10K", want: 0x10 * 1024},
		{in: " 0x8000 ", want: 0x8000},
		{in: "0", want: 0},
		{in: "010", bad: true}, // octal in Go, an error in Python
		{in: "", bad: true},
		{in: "-5", bad: true},
		{in: "0x", bad: true},
		{in: "9000h", bad: true},
		{in: "4096M", bad: true}, // 4 GB
		{in: "1_000", bad: true},
	} {
		got, err := ParseNumber(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseNumber(%q) = %#x, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseNumber(%q) = %#x, %v; want %#x", tc.in, got, err, tc.want)
		}
	}
}

// kit is espressif/esp-qcloud's partitions_4MB.csv layout as the tests need
// it: the credential partition fctry at 0x15000, 16K.
func kit(t *testing.T) *Table {
	t.Helper()
	csv := `# Name,   Type, SubType, Offset,   Size, Flags
nvs,      data, nvs,     0x9000,   0x4000
otadata,  data, ota,     0xd000,   0x2000
phy_init, data, phy,     0xf000,   0x1000
fctry,    data, nvs,     0x15000,  16K
ota_0,    app,  ota_0,   0x20000,  1600K
ota_1,    app,  ota_1,   ,         1600K
`
	tb, err := ReadTableCSV(strings.NewReader(csv), "kit.csv", 0)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestCheck(t *testing.T) {
	data := func(n int) []byte { return make([]byte, n) }
	boot := FromFile("bootloader.bin", 0x1000, data(0x6000))
	table := FromFile("partition-table.bin", 0x8000, data(0xC00))
	app := FromFile("app.bin", 0x20000, data(1<<20))
	cred := Region{Name: "credential partition fctry", Offset: 0x15000, Size: 0x4000, Credential: true}
	for _, tc := range []struct {
		name    string
		regions []Region
		flash   uint32
		table   bool
		want    []string // fragments of the message; nil = safe
	}{
		{name: "the kit's layout", regions: []Region{boot, table, app, cred}, flash: 4 << 20, table: true},
		{name: "no table known", regions: []Region{boot, table, app, cred}, flash: 4 << 20},
		{name: "misaligned credential", regions: []Region{{Name: "credential partition", Offset: 0x9800, Size: 0x6000, Credential: true}},
			want: []string{"0x9800", "not on a 4 KB sector", "0x9000–0x97ff", "use 0x9000 or 0xa000"}},
		{name: "misaligned image", regions: []Region{FromFile("app.bin", 0x10100, data(10))},
			want: []string{"app.bin", "0x10100"}},
		{name: "image over the credential", regions: []Region{FromFile("app.bin", 0x15000, data(0x100)), cred},
			want: []string{"app.bin", "credential partition fctry", "overlap"}},
		{name: "two images overlap", regions: []Region{FromFile("a.bin", 0x10000, data(0x20000)), FromFile("b.bin", 0x20000, data(16))},
			want: []string{"a.bin", "b.bin", "overlap", "0x10000–0x2ffff"}},
		{name: "sharing a sector is overlapping", regions: []Region{FromFile("a.bin", 0x10000, data(0x1001)), FromFile("b.bin", 0x11000, data(16))},
			want: []string{"a.bin", "b.bin", "overlap"}},
		{name: "adjacent sectors are fine", regions: []Region{FromFile("a.bin", 0x10000, data(0x1000)), FromFile("b.bin", 0x11000, data(16))}},
		{name: "past the end", regions: []Region{FromFile("app.bin", 0x3F0000, data(0x20000))}, flash: 4 << 20,
			want: []string{"app.bin", "past the end", "4 MB"}},
		{name: "empty file", regions: []Region{FromFile("empty.bin", 0x10000, nil)}, want: []string{"empty.bin", "empty"}},
		{name: "credential larger than its partition", regions: []Region{{Name: "credential partition fctry", Offset: 0x15000, Size: 0x6000, Credential: true}},
			table: true, want: []string{"larger than partition fctry"}},
		{name: "credential over otadata", regions: []Region{{Name: "credential partition", Offset: 0xd000, Size: 0x2000, Credential: true}},
			table: true, want: []string{"otadata", "not an NVS partition"}},
		{name: "credential outside every partition", regions: []Region{{Name: "credential partition", Offset: 0x10000, Size: 0x1000, Credential: true}},
			table: true, want: []string{"not inside any partition"}},
		{name: "app larger than its partition", regions: []Region{FromFile("app.bin", 0x20000, data(1700<<10))},
			table: true, want: []string{"app.bin", "does not fit in partition ota_0", "ota_1"}},
		{name: "image over the table sector", regions: []Region{FromFile("bootloader.bin", 0x1000, data(0x7800))},
			table: true, want: []string{"bootloader.bin", "partition table's sector"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tb *Table
			if tc.table {
				tb = kit(t)
			}
			err := Check(tc.regions, tc.flash, tb)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused a safe map: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted an unsafe map")
			}
			if !errors.Is(err, ErrUnsafe) {
				t.Errorf("error is not ErrUnsafe: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// The offsets the blank fields get are what gen_esp32part.py prints for the
// same CSV (ESP-IDF's partitions_singleapp.csv plus fctry): nvs 0x9000,
// phy_init 0xf000, factory 0x10000.
func TestReadTableCSV(t *testing.T) {
	csv := "\ufeff# ESP-IDF Partition Table\n" + `# Name,   Type, SubType, Offset,  Size, Flags
nvs,      data, nvs,     ,        0x6000,
phy_init, data, phy,     ,        0x1000,
factory,  app,  factory, ,        1M,
fctry,    data, nvs,     0x310000, 24K,
`
	tb, err := ReadTableCSV(strings.NewReader(csv), "t.csv", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Partition{
		{Name: "nvs", Type: 1, SubType: 2, Offset: 0x9000, Size: 0x6000},
		{Name: "phy_init", Type: 1, SubType: 1, Offset: 0xf000, Size: 0x1000},
		{Name: "factory", Type: 0, SubType: 0, Offset: 0x10000, Size: 0x100000},
		{Name: "fctry", Type: 1, SubType: 2, Offset: 0x310000, Size: 0x6000},
	}
	if len(tb.Partitions) != len(want) {
		t.Fatalf("got %d partitions, want %d", len(tb.Partitions), len(want))
	}
	for i := range want {
		if tb.Partitions[i] != want[i] {
			t.Errorf("row %d: got %+v, want %+v", i, tb.Partitions[i], want[i])
		}
	}
	if p, err := tb.Find("fctry"); err != nil || p.Offset != 0x310000 || !p.IsNVS() {
		t.Errorf("Find fctry = %+v, %v", p, err)
	}
	if _, err := tb.Find("creds"); !errors.Is(err, ErrNoPartition) || !strings.Contains(err.Error(), "nvs, phy_init, factory, fctry") {
		t.Errorf("missing partition error = %v", err)
	}
	for _, bad := range []string{
		"nvs, data, nvs, 0x9000\n",                                       // no size
		"nvs, data, nvs, 0x9000, 0x6000\nx, data, nvs, 0xA000, 0x1000\n", // overlap
		"nvs, data, nvs, 0x8000, 0x1000\n",                               // over the table
		"a, data, nvs, 0x9000, 0x1000\na, data, nvs, 0xA000, 0x1000\n",   // same name
		"app, app, , 0x10000, 1M\n",                                      // app without subtype
		"f, data, bogus, 0x9000, 0x1000\n",                               // unknown subtype
		"f, app, factory, 0x18000, 0x1000\n",                             // app not 64K-aligned
	} {
		if _, err := ReadTableCSV(strings.NewReader(bad), "bad.csv", 0); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestParseSpecs(t *testing.T) {
	dir := t.TempDir()
	args := filepath.Join(dir, "flash_args")
	if err := os.WriteFile(args, []byte("--flash_mode dio --flash_freq 40m --flash_size 4MB\n0x1000 bootloader/bootloader.bin\n0x10000 app.bin\n0x8000 partition_table/partition-table.bin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ParseSpecs([]string{"0x1000=boot.bin", "0x8000", "@" + args, "64K"}, []string{"pt.bin", "app.bin"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Spec{
		{Offset: 0x1000, Path: "boot.bin"},
		{Offset: 0x8000, Path: "pt.bin"},
		{Offset: 0x1000, Path: filepath.Join(dir, "bootloader/bootloader.bin")},
		{Offset: 0x10000, Path: filepath.Join(dir, "app.bin")},
		{Offset: 0x8000, Path: filepath.Join(dir, "partition_table/partition-table.bin")},
		{Offset: 0x10000, Path: "app.bin"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d specs, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Offset != want[i].Offset || got[i].Path != want[i].Path {
			t.Errorf("spec %d = %#x %s, want %#x %s", i, got[i].Offset, got[i].Path, want[i].Offset, want[i].Path)
		}
	}
	for _, tc := range []struct {
		values, args []string
		want         string
	}{
		{[]string{"0x1000"}, nil, "which file"},
		{[]string{"0x1000=a.bin"}, []string{"stray.bin"}, "unexpected argument"},
		{[]string{"0x10q0=a.bin"}, nil, "not an offset"},
		{[]string{"0x1000="}, nil, "no file"},
		{[]string{"@" + filepath.Join(dir, "missing")}, nil, "no such file"},
	} {
		if _, err := ParseSpecs(tc.values, tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSpecs(%q, %q) = %v, want an error saying %q", tc.values, tc.args, err, tc.want)
		}
	}
	bad := filepath.Join(dir, "bad_args")
	os.WriteFile(bad, []byte("--encrypt 0x1000 a.bin\n"), 0o600)
	if _, err := ParseSpecs([]string{"@" + bad}, nil); err == nil || !strings.Contains(err.Error(), "--encrypt") {
		t.Errorf("an unknown esptool option in flash_args: %v", err)
	}
}

// The .bin files are ESP-IDF's gen_esp32part.py v5.5.5 output for the .csv
// beside them (testdata/partitions/README.md has the commands): both readers
// must see the same table, and the offsets must be those the generator
// printed back (written out here by hand from that README).
func TestGoldenTables(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "partitions")
	for _, tc := range []struct {
		name        string
		tableOffset uint32
		fctry       Partition // zero: none
		count       int
	}{
		{"qcloud_4MB", 0xc000, Partition{Name: "fctry", Type: 1, SubType: 2, Offset: 0x15000, Size: 16 << 10}, 10},
		{"aliyun", 0x8000, Partition{Name: "fctry", Type: 1, SubType: 2, Offset: 0x210000, Size: 16 << 10}, 6},
		{"odd_fctry", 0x8000, Partition{Name: "fctry", Type: 1, SubType: 2, Offset: 0x3f0000, Size: 24 << 10}, 4},
		{"no_fctry", 0x8000, Partition{}, 3},
		{"not_nvs", 0x8000, Partition{Name: "fctry", Type: 1, SubType: 0x81, Offset: 0x110000, Size: 24 << 10}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			csv, err := os.Open(filepath.Join(dir, tc.name+".csv"))
			if err != nil {
				t.Fatal(err)
			}
			defer csv.Close()
			fromCSV, err := ReadTableCSV(csv, tc.name+".csv", tc.tableOffset)
			if err != nil {
				t.Fatal(err)
			}
			bin, err := os.ReadFile(filepath.Join(dir, tc.name+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			fromBin, err := ReadTableBinary(bin, tc.tableOffset, tc.name+".bin")
			if err != nil {
				t.Fatal(err)
			}
			if len(fromBin.Partitions) != tc.count || len(fromCSV.Partitions) != tc.count {
				t.Fatalf("%d partitions from the binary, %d from the CSV, want %d", len(fromBin.Partitions), len(fromCSV.Partitions), tc.count)
			}
			for i := range fromBin.Partitions {
				if fromBin.Partitions[i] != fromCSV.Partitions[i] {
					t.Errorf("partition %d: binary %+v, CSV %+v", i, fromBin.Partitions[i], fromCSV.Partitions[i])
				}
			}
			// And written back, byte for byte what the generator made.
			if again, err := fromCSV.Binary(); err != nil || !bytes.Equal(again, bin) {
				t.Errorf("Binary() of the CSV's table differs from gen_esp32part.py's (%v)", err)
			}
			p, err := fromBin.Find("fctry")
			if tc.fctry.Name == "" {
				if !errors.Is(err, ErrNoPartition) {
					t.Errorf("found fctry in a table without one: %+v, %v", p, err)
				}
				return
			}
			if err != nil || p != tc.fctry {
				t.Errorf("fctry = %+v, %v; want %+v", p, err, tc.fctry)
			}
		})
	}
	bad, err := os.ReadFile(filepath.Join(dir, "bad_md5.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTableBinary(bad, 0x8000, "bad_md5.bin"); err == nil || !strings.Contains(err.Error(), "MD5") {
		t.Errorf("a table with a wrong MD5 entry: %v", err)
	}
	erased := make([]byte, 0xC00)
	for i := range erased {
		erased[i] = 0xFF
	}
	if _, err := ReadTableBinary(erased, 0x8000, "board"); !errors.Is(err, ErrNoTable) || !strings.Contains(err.Error(), "erased") {
		t.Errorf("erased flash: %v", err)
	}
}

func FuzzReadTableBinary(f *testing.F) {
	for _, name := range []string{"qcloud_4MB", "aliyun", "odd_fctry"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "partitions", name+".bin"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, err := ReadTableBinary(b, TableOffset, "fuzz")
		if err != nil {
			return
		}
		if len(tb.Partitions) == 0 || tb.check() != nil {
			t.Fatalf("accepted a table that fails its own check: %+v", tb)
		}
	})
}

func FuzzReadTableCSV(f *testing.F) {
	f.Add("nvs, data, nvs, , 0x6000\nfactory, app, factory, , 1M\nfctry, data, nvs, 0x310000, 24K\n")
	f.Fuzz(func(t *testing.T, s string) {
		tb, err := ReadTableCSV(strings.NewReader(s), "fuzz", 0)
		if err == nil && (len(tb.Partitions) == 0 || tb.check() != nil) {
			t.Fatalf("accepted a table that fails its own check: %+v", tb)
		}
	})
}

func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"0x9000", "24K", "1M", "36864", "010"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseNumber(s)
		if err == nil && strings.TrimSpace(s) == "0" && v != 0 {
			t.Fatalf("%q = %d", s, v)
		}
	})
}
