package burner

import (
	"fmt"

	"go.bug.st/serial/enumerator"
)

// PortInfo is one serial port the OS enumerates. VID and PID are lowercase hex
// as sysfs reports them ("10c4", "ea60").
type PortInfo struct {
	Name, VID, PID, SerialNumber, Product string
	USB                                   bool
}

// List returns the serial ports the OS knows about. Ptys (simulated boards) are
// never among them: find those by path or glob (see Expand).
func List() ([]PortInfo, error) {
	ds, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, fmt.Errorf("list serial ports: %w", err)
	}
	out := make([]PortInfo, 0, len(ds))
	for _, d := range ds {
		out = append(out, PortInfo{
			Name: d.Name, VID: d.VID, PID: d.PID,
			SerialNumber: d.SerialNumber, Product: d.Product, USB: d.IsUSB,
		})
	}
	return out, nil
}
