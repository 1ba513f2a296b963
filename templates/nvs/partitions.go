package nvs

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Partition is one row of an ESP-IDF partition table CSV.
type Partition struct {
	Name, Type, SubType string
	Offset, Size        uint32
}

// partitionTableEnd is where ESP-IDF puts the first partition by default: the
// table itself sits at 0x8000 and takes one 4 KB sector.
const partitionTableEnd = 0x9000

// ReadPartitionTable parses ESP-IDF's partition table CSV
// (Name, Type, SubType, Offset, Size, Flags), filling in blank offsets the way
// gen_esp32part.py does: right after the previous partition, aligned to 64 KB
// for app partitions and 4 KB for the rest. Sizes and offsets take 0x…,
// decimal, and K/M suffixes.
func ReadPartitionTable(r io.Reader) ([]Partition, error) {
	var parts []Partition
	next := uint32(partitionTableEnd)
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text, ",")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		if len(f) < 5 {
			return nil, fmt.Errorf("partition table line %d: want Name, Type, SubType, Offset, Size[, Flags], got %d fields", line, len(f))
		}
		p := Partition{Name: f[0], Type: f[1], SubType: f[2]}
		align := uint32(0x1000)
		if p.Type == "app" || p.Type == "0" || p.Type == "0x00" {
			align = 0x10000
		}
		if f[3] == "" {
			p.Offset = (next + align - 1) / align * align
		} else {
			v, err := parseSizeSuffix(f[3])
			if err != nil {
				return nil, fmt.Errorf("partition table line %d: offset %q: %v", line, f[3], err)
			}
			p.Offset = v
		}
		size, err := parseSizeSuffix(f[4])
		if err != nil || size == 0 {
			return nil, fmt.Errorf("partition table line %d: size %q: give a size such as 0x6000 or 24K", line, f[4])
		}
		p.Size = size
		next = p.Offset + p.Size
		parts = append(parts, p)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return parts, nil
}

// FindPartition returns the named partition of a table.
func FindPartition(parts []Partition, name string) (Partition, error) {
	var names []string
	for _, p := range parts {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return Partition{}, fmt.Errorf("no partition %q in the table (it has %s)", name, strings.Join(names, ", "))
}

func parseSizeSuffix(s string) (uint32, error) {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		mult, s = 1024, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1024*1024, s[:len(s)-1]
	}
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0, err
	}
	if v*mult > 1<<32-1 {
		return 0, fmt.Errorf("too large")
	}
	return uint32(v * mult), nil
}
