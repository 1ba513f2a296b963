// Package flashmap is the one place an ESP32 flash map is parsed and checked
// before a byte reaches a board: the regions written in one pass (each
// --flash image and the credential partition), the partition table they are
// written against (ESP-IDF's CSV and the binary gen_esp32part.py writes), and
// esptool's ways of naming regions (OFFSET=FILE, OFFSET FILE pairs, an
// ESP-IDF build/flash_args file).
//
// A map is safe when every region starts on a 4 KB sector (the ROM erases
// whole sectors, so an unaligned write erases what precedes it), fits in the
// board's flash, shares no sector with another region (the later write would
// silently replace the earlier one and each MD5 would still pass), and, where
// the partition table is known, stays inside one partition. An unsafe map is
// an *UnsafeError naming both regions and the fix; errors.Is(err, ErrUnsafe).
package flashmap
