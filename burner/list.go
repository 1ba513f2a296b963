package burner

import (
	"fmt"
	"os"
	"path/filepath"

	"go.bug.st/serial/enumerator"
)

// PortInfo is one serial port the OS enumerates. VID and PID are hex as
// the enumerator reports them (compare them with strings.EqualFold).
// ByPath is its name by USB physical position, where udev made one
// (/dev/serial/by-path/…-usb-0:1.4:1.0-port0): the name of the hub slot, kept
// when the device behind it re-enumerates under another ttyACM/ttyUSB number
// (an ESP32's USB-Serial/JTAG does at every reset).
type PortInfo struct {
	Name, VID, PID, SerialNumber, Product string
	ByPath                                string
	USB                                   bool
}

// byPathDir is where udev's persistent-storage rules (60-serial.rules) put
// the by-position links; a variable for tests.
var byPathDir = "/dev/serial/by-path"

// byPath maps each device node to its by-position link.
func byPath() map[string]string {
	out := map[string]string{}
	entries, err := os.ReadDir(byPathDir)
	if err != nil {
		return out // no udev, no links: names stay as the kernel gives them
	}
	for _, e := range entries {
		link := filepath.Join(byPathDir, e.Name())
		if dev, err := filepath.EvalSymlinks(link); err == nil {
			out[dev] = link
		}
	}
	return out
}

// List returns the serial ports the OS knows about. Ptys (simulated boards) are
// never among them: find those by path or glob (see Expand).
func List() ([]PortInfo, error) {
	ds, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, fmt.Errorf("list serial ports: %w", err)
	}
	links := byPath()
	out := make([]PortInfo, 0, len(ds))
	for _, d := range ds {
		out = append(out, PortInfo{
			Name: d.Name, VID: d.VID, PID: d.PID, ByPath: links[d.Name],
			SerialNumber: d.SerialNumber, Product: d.Product, USB: d.IsUSB,
		})
	}
	return out, nil
}
