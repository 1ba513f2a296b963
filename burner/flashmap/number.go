package flashmap

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseNumber reads an offset or a size the way ESP-IDF's partition CSVs and
// esptool write them: 0x… hexadecimal, decimal, and a K or M suffix
// (×1024, ×1024²; gen_esp32part.py parse_int, either case), e.g. 0x9000,
// 36864, 24K, 0x10K, 1M. A decimal with a leading zero ("010") is refused:
// Python's int(s, 0) refuses it too, and Go would read it as octal.
func ParseNumber(s string) (uint32, error) {
	t := strings.TrimSpace(s)
	mult := uint64(1)
	switch {
	case strings.HasSuffix(t, "K"), strings.HasSuffix(t, "k"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "M"), strings.HasSuffix(t, "m"):
		mult, t = 1<<20, t[:len(t)-1]
	}
	lower := strings.ToLower(t)
	bad := t == "" || strings.ContainsAny(t, "_+-") ||
		(len(t) > 1 && t[0] == '0' && !strings.HasPrefix(lower, "0x"))
	var v uint64
	var err error
	if !bad {
		v, err = strconv.ParseUint(t, 0, 32)
	}
	if bad || err != nil {
		return 0, fmt.Errorf("%q is not an offset or size: write it as 0x9000, 36864, 24K or 1M", s)
	}
	if v*mult > 1<<32-1 {
		return 0, fmt.Errorf("%q is larger than 4 GB: no ESP32 flash is that big", s)
	}
	return uint32(v * mult), nil
}

// Hex formats an offset the way the messages and esptool write them.
func Hex(v uint64) string { return fmt.Sprintf("0x%x", v) }

// Bytes formats a size for people: 4 MB, 24 KB, 1000 bytes.
func Bytes(n uint64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
