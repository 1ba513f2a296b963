package burner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExpandAuto(t *testing.T) {
	defer func(old func() ([]PortInfo, error)) { listPorts = old }(listPorts)
	listPorts = func() ([]PortInfo, error) {
		return []PortInfo{
			{Name: "/dev/ttyUSB1", VID: "10c4", PID: "ea60", USB: true},
			{Name: "/dev/ttyUSB0", VID: "1a86", PID: "7523", USB: true},
			{Name: "/dev/ttyS0"}, // a motherboard UART: never "auto"
		}, nil
	}
	for spec, want := range map[string]string{
		"auto":           "/dev/ttyUSB0,/dev/ttyUSB1",
		"auto:10C4:EA60": "/dev/ttyUSB1",
		"auto:1a86:*":    "/dev/ttyUSB0",
		"auto:0403:6001": "",
		"auto,auto":      "/dev/ttyUSB0,/dev/ttyUSB1",
	} {
		got, err := Expand(spec)
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("Expand(%q) = %q, %v; want %q", spec, got, err, want)
		}
	}
}

// A port named by its USB position keeps its name when the board behind it
// comes back under another device number; the serial filter picks one
// adapter.
func TestExpandByPathAndSerial(t *testing.T) {
	dir := t.TempDir()
	defer func(old string) { byPathDir = old }(byPathDir)
	byPathDir = filepath.Join(dir, "by-path")
	if err := os.Mkdir(byPathDir, 0o700); err != nil {
		t.Fatal(err)
	}
	dev := filepath.Join(dir, "ttyACM0")
	os.WriteFile(dev, nil, 0o600)
	slot := filepath.Join(byPathDir, "pci-0000:00:14.0-usb-0:1.4:1.0")
	if err := os.Symlink(dev, slot); err != nil {
		t.Fatal(err)
	}
	if got := byPath()[dev]; got != slot {
		t.Fatalf("byPath()[%s] = %q, want %q", dev, got, slot)
	}
	defer func(old func() ([]PortInfo, error)) { listPorts = old }(listPorts)
	listPorts = func() ([]PortInfo, error) {
		return []PortInfo{
			{Name: dev, VID: "303a", PID: "1001", SerialNumber: "24:0A:C4:00:00:01", ByPath: slot, USB: true},
			{Name: "/dev/ttyUSB0", VID: "10c4", PID: "ea60", SerialNumber: "0001", USB: true},
		}, nil
	}
	for spec, want := range map[string]string{
		"auto":                "/dev/ttyUSB0," + slot,
		"auto:303a:1001":      slot,
		"auto:*:*:0001":       "/dev/ttyUSB0",
		"auto:10c4:ea60:0002": "",
	} {
		got, err := Expand(spec)
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("Expand(%q) = %q, %v; want %q", spec, got, err, want)
		}
	}
	if _, err := Expand("auto:303a:1001:"); err == nil {
		t.Error("an empty serial filter accepted")
	}
}
