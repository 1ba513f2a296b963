// Package provision runs the factory line: it creates devices on a platform
// with every call journalled in the ledger (create.go), drives the station
// loop that identifies, prepares, claims, renders, burns and reads back one
// board per port, each step a ledger transition (line.go), and checks boards
// for QA against the ledger, the platform and its broker (verify.go). The
// boards are seen through small interfaces (Board, and what some boards can
// do beyond it); atboard*.go and espboard.go are the AT modules and ESP32s.
package provision

import (
	"io"

	devnames "github.com/iotburn/iotburn/provision/names"
)

// ReadNamesFile reads device names from a names file as factories export
// them (a plain list, CSV or .xlsx; see package names), checking each with
// validate. Every problem is reported with its line number; nothing is
// returned unless the whole file is good. `iotburn create` uses
// names.ReadFile itself, for --column, --header and the source it reports.
func ReadNamesFile(path string, validate func(string) error) ([]string, error) {
	l, err := devnames.ReadFile(path, devnames.Options{Rule: validate})
	if err != nil {
		return nil, err
	}
	return l.Values(), nil
}

// ReadNames is ReadNamesFile on a reader.
func ReadNames(r io.Reader, validate func(string) error) ([]string, error) {
	data, err := io.ReadAll(io.LimitReader(r, devnames.MaxFileSize))
	if err != nil {
		return nil, err
	}
	l, err := devnames.Read(data, devnames.Options{Rule: validate})
	if err != nil {
		return nil, err
	}
	return l.Values(), nil
}
