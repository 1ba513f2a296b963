package nvs

import (
	"strings"
	"testing"
)

// The table is ESP-IDF's own partitions_singleapp.csv plus a factory-data
// row; the offsets written in want are what ESP-IDF's gen_esp32part.py
// prints for it (nvs 0x9000, phy_init 0xf000, factory 0x10000).
func TestReadPartitionTable(t *testing.T) {
	csv := `# ESP-IDF Partition Table
# Name,   Type, SubType, Offset,  Size, Flags
nvs,      data, nvs,     ,        0x6000,
phy_init, data, phy,     ,        0x1000,
factory,  app,  factory, ,        1M,
fctry,    data, nvs,     0x310000, 24K,
`
	parts, err := ReadPartitionTable(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	want := []Partition{
		{"nvs", "data", "nvs", 0x9000, 0x6000},
		{"phy_init", "data", "phy", 0xf000, 0x1000},
		{"factory", "app", "factory", 0x10000, 0x100000},
		{"fctry", "data", "nvs", 0x310000, 0x6000},
	}
	if len(parts) != len(want) {
		t.Fatalf("got %d partitions, want %d", len(parts), len(want))
	}
	for i := range want {
		if parts[i] != want[i] {
			t.Errorf("row %d: got %+v, want %+v", i, parts[i], want[i])
		}
	}
	if p, err := FindPartition(parts, "fctry"); err != nil || p.Offset != 0x310000 {
		t.Errorf("FindPartition fctry = %+v, %v", p, err)
	}
	if _, err := FindPartition(parts, "creds"); err == nil || !strings.Contains(err.Error(), "nvs, phy_init") {
		t.Errorf("missing partition error = %v", err)
	}
	if _, err := ReadPartitionTable(strings.NewReader("nvs, data, nvs, 0x9000\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("short row error = %v", err)
	}
}
