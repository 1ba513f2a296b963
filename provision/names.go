// Package provision runs the factory line: it creates devices on a platform
// with every call journalled in the ledger, and drives the station loop that
// claims, renders, burns and verifies one board per port.
package provision

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// nameColumns are the CSV header names recognised as "the device name column",
// in order of preference; a CSV without one of them uses its first column.
var nameColumns = []string{"devicename", "device_name", "name", "sn", "serial", "imei", "mac"}

// ReadNamesFile reads device names from a plain list (one per line) or a CSV
// file (a header naming the column, or the first column), checking each with
// validate. Every problem is reported with its line number; nothing is
// returned unless the whole file is good.
func ReadNamesFile(path string, validate func(string) error) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("names file: %w", err)
	}
	defer f.Close()
	names, err := ReadNames(f, validate)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return names, nil
}

// ReadNames is ReadNamesFile on a reader.
func ReadNames(r io.Reader, validate func(string) error) ([]string, error) {
	type row struct {
		line   int
		fields []string
	}
	var rows []row
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimRight(sc.Text(), "\r")
		if line == 1 {
			text = strings.TrimPrefix(text, "\ufeff") // Excel's UTF-8 BOM
		}
		if strings.HasPrefix(strings.TrimSpace(text), "#") {
			continue
		}
		fields := []string{text}
		if strings.ContainsAny(text, ",\"") {
			rec, err := csv.NewReader(strings.NewReader(text)).Read()
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("line %d: not valid CSV: %v", line, err)
			}
			fields = rec
		}
		rows = append(rows, row{line, fields})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// Trailing blank lines are just how editors end files.
	for len(rows) > 0 && strings.TrimSpace(strings.Join(rows[len(rows)-1].fields, "")) == "" {
		rows = rows[:len(rows)-1]
	}
	if len(rows) == 0 {
		return nil, errors.New("no device names in the file: put one name per line, or a CSV with a DeviceName column")
	}

	col := 0
	if i := headerColumn(rows[0].fields); i >= 0 {
		col = i
		rows = rows[1:]
	}
	names := make([]string, 0, len(rows))
	seen := make(map[string]int, len(rows))
	var problems []string
	for _, r := range rows {
		name := ""
		if col < len(r.fields) {
			name = strings.TrimSpace(r.fields[col])
		}
		switch {
		case name == "":
			problems = append(problems, fmt.Sprintf("line %d: empty name: remove the line or fill it in", r.line))
			continue
		case seen[name] != 0:
			problems = append(problems, fmt.Sprintf("line %d: %q is a duplicate of line %d: every device needs its own name", r.line, name, seen[name]))
			continue
		}
		if validate != nil {
			if err := validate(name); err != nil {
				problems = append(problems, fmt.Sprintf("line %d: %v", r.line, err))
				continue
			}
		}
		seen[name] = r.line
		names = append(names, name)
	}
	if len(problems) > 0 {
		const show = 10
		more := ""
		if len(problems) > show {
			more = fmt.Sprintf("\n  … and %d more", len(problems)-show)
			problems = problems[:show]
		}
		return nil, fmt.Errorf("%d bad name(s), nothing was created:\n  %s%s", len(problems), strings.Join(problems, "\n  "), more)
	}
	return names, nil
}

// headerColumn returns the index of the name column if fields is a header row.
func headerColumn(fields []string) int {
	for _, want := range nameColumns {
		for i, f := range fields {
			if strings.EqualFold(strings.TrimSpace(f), want) {
				return i
			}
		}
	}
	return -1
}
