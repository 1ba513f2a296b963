package burner

import (
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
