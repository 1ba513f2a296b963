package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every flag of the line is checked before anything is opened: each bad
// value is a usage error naming the flag and the fix, and no ledger file
// appears (nothing was touched).
func TestLineFlagsValidated(t *testing.T) {
	dir := t.TempDir()
	ledgerPath := filepath.Join(dir, "never.db")
	app := writeFile(t, dir, "app.bin", "app")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"baud 0", []string{"batch", "--baud", "0"}, "--baud 0"},
		{"baud negative", []string{"batch", "--baud", "-5"}, "--baud -5"},
		{"target negative", []string{"batch", "--target", "-3"}, "--target -3"},
		{"flash without nvs", []string{"batch", "--flash", "0x1000=" + app}, "--flash is for ESP32 boards"},
		{"partition size without nvs", []string{"batch", "--partition-size", "0x6000"}, "--partition-size is for ESP32 boards"},
		{"stray argument", []string{"batch", "extra"}, "unexpected argument"},
		{"bad mode", []string{"batch", "--mode", "nope"}, "nope"},
		{"registration-free on IDMAU", []string{"batch", "--platform", "aliyun", "--mode", "registration-free", "--hw-id-from", "scan", "--scanner", "sim"}, "IDMAU"},
		{"aliyun AT without a scanner", []string{"batch", "--platform", "aliyun"}, "--hw-id-from scan"},
		{"scanner without scan", []string{"batch", "--scanner", "sim"}, "--scanner goes with --hw-id-from scan"},
		{"bad hw-id-from", []string{"batch", "--hw-id-from", "magic"}, "board or scan"},
		{"usb filter without auto", []string{"batch", "--ports", "/dev/ttyUSB0", "--vid", "10c4"}, "--ports auto"},
		{"unaligned flash offset", []string{"batch", "--format", "nvs", "--flash-offset", "0x9800"}, "0x9800"},
		{"flash offset 0", []string{"batch", "--format", "nvs", "--flash-offset", "0"}, "--flash-offset 0"},
		{"bad partition table offset", []string{"batch", "--format", "nvs", "--partition-table-offset", "12q"}, "--partition-table-offset"},
		{"missing image", []string{"batch", "--format", "nvs", "--flash", "0x10000=" + filepath.Join(dir, "none.bin")}, "none.bin"},
		{"scanner for ESP32", []string{"batch", "--format", "nvs", "--hw-id-from", "scan"}, "an ESP32's id is its eFuse MAC"},
		{"verify port and ports", []string{"verify", "--port", "a", "--ports", "b"}, "not both"},
		{"product-level on esp-qcloud", []string{"batch", "--format", "nvs", "--mode", "product-autocreate"}, "esp-qcloud"},
		{"unknown platform", []string{"batch", "--platform", "azure"}, "azure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--ledger", ledgerPath}, tc.args...)
			args = append(args, "--product", "ABCDEFGHIJ")
			_, _, err := run(t, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one saying %q", err, tc.want)
			}
			if got := exitCode(err); got != exitUsage {
				t.Errorf("exit %d, want %d (usage)", got, exitUsage)
			}
			if _, err := os.Stat(ledgerPath); err == nil {
				t.Fatalf("a ledger was created: the flags were checked too late")
			}
		})
	}
}
