// Package nvs writes and reads ESP-IDF NVS partition images.
//
// The writer is a drop-in for Espressif's esp-idf-nvs-partition-gen 0.2.0
// (`nvs_partition_gen.py generate`, commit 67113ed): for every input that
// generator accepts and that this package does not refuse (see below),
// Generate returns exactly the bytes the generator writes. The golden images
// under testdata/nvs/ were made by that generator and are compared byte for
// byte; the format itself is described in shared/reference/espressif.md §1.
//
// # Quirks of the generator, and what this package does with them
//
// Replicated, because byte-identical output needs them and the images they
// produce are valid for ESP-IDF:
//
//   - A namespace row naming a namespace already seen writes no new namespace
//     entry, and the rows after it are written under the most recently
//     *created* namespace, not the reopened one (CSV "ns1,a,ns2,b,ns1,c"
//     stores c in ns2). ReopenedRows lists the rows this happens to, so a
//     caller can warn.
//   - A string (or a v1 blob) that would exactly fill the rest of a page is
//     moved to the next page (the generator's ">= 126 entries" test).
//     Consequently the longest string is 3968 bytes including its NUL, not
//     the 4000 the generator advertises; 3969..4000 crash the generator and
//     are refused here with an error.
//   - A v2 blob that starts on the last entry of a page (entry 125) begins
//     with a zero-length BLOB_DATA chunk there.
//   - The size rules: 0x1000 and 0x2000 are "read-only" partitions and the
//     image is only the used pages (shorter than the partition); from 0x3000
//     the image is exactly the partition size, one page being reserved.
//   - Decimal integers follow Python's int(): surrounding whitespace, a sign
//     and '_' between digits are accepted; primitive encodings are
//     case-insensitive ("U8").
//
// Refused with an error, because the generator's output for them is wrong or
// it crashes:
//
//   - The 0.2.0 Wi-Fi keys ap.ssid, ap.passwd, ap.authmode, sta.ssid and
//     sta.pswd, for which the generator silently adds entries the CSV does not
//     name (ap.pmk_info, sta.apinfo, sta.pmk, sta.apsw). Use Espressif's tool
//     for Wi-Fi configuration partitions.
//   - Data rows before the first namespace row (the generator writes them with
//     namespace index 0, which no nvs_open reaches; a u8 there even reads as
//     a namespace definition).
//   - Non-ASCII keys, and non-ASCII text with the "binary" encoding (the
//     generator counts characters, not bytes, and corrupts the page).
//   - Upper-case variable-length encodings ("STRING", "HEX2BIN"): the
//     generator skips their conversion (a STRING loses its NUL).
//   - Anything the generator rejects or crashes on: keys over 15 characters,
//     values out of range, bad hex or base64, too-long strings, a partition too
//     small; and more than 254 namespaces (the generator writes a 255th with
//     index 255, ESP-IDF's "any namespace").
//
// Accepted although the generator fails on them: a UTF-8 byte-order mark at
// the start of the CSV, and fields longer than Python's csv limit of 131072
// characters.
//
// Not supported: encrypted partitions (`encrypt`), several input CSVs in one
// call (concatenate the entries instead), an unknown row type (the generator
// treats any type other than namespace/file as data; this package wants
// "data").
package nvs

import (
	"fmt"
	"hash/crc32"
)

// Version is the NVS format version the image is written for.
type Version int

const (
	// V1 has no multi-page blobs: every string or blob fits one page
	// (≤ 1984 bytes). ESP-IDF before v4.0 reads only this.
	V1 Version = 1
	// V2 (the default) splits blobs across pages (BLOB_DATA + BLOB_IDX).
	V2 Version = 2
)

// Kind is an entry's NVS type, or Namespace for a namespace row.
type Kind int

const (
	Invalid Kind = iota
	U8
	I8
	U16
	I16
	U32
	I32
	U64
	I64
	String
	Blob
	// Namespace is a namespace row: Key is the namespace's name.
	Namespace
)

var kindNames = [...]string{"invalid", "u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64", "string", "blob", "namespace"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// signed reports whether the kind's value lives in Entry.Int.
func (k Kind) signed() bool { return k == I8 || k == I16 || k == I32 || k == I64 }

// primitive reports whether the kind is one of the eight integer types.
func (k Kind) primitive() bool { return k >= U8 && k <= I64 }

// Entry is one row of the generator's CSV, already decoded.
//
// Rows are written in order. A Namespace row opens (or reopens) a namespace;
// a data row whose Namespace differs from the open one opens it first, so a
// caller building entries by hand may leave out the Namespace rows.
type Entry struct {
	Namespace string // the namespace the row belongs to (for Namespace rows: the name)
	Key       string // ≤ 15 ASCII characters
	Kind      Kind
	Int       int64  // I8..I64
	Uint      uint64 // U8..U64
	Str       string // String (without the NUL the image adds)
	Data      []byte // Blob
	Line      int    // CSV line, for errors; 0 when the entry did not come from a CSV
}

// Item is one value read back from an image.
type Item struct {
	Namespace string
	Key       string
	Kind      Kind // U8..I64, String or Blob (v1 and v2 blobs alike)
	Value     any  // uint64 (U*), int64 (I*), string (String), []byte (Blob)
}

// Image geometry and codes ([GEN] class Page; ESP-IDF nvs_page.hpp, nvs_types.hpp).
const (
	pageSize     = 4096
	entrySize    = 32
	firstEntry   = 64 // header 32 bytes + entry-state bitmap 32 bytes
	maxEntries   = 126
	chunkAny     = 0xFF
	stateActive  = 0xFFFFFFFE
	stateFull    = 0xFFFFFFFC
	stateEmpty   = 0xFFFFFFFF
	versionByte1 = 0xFF
	versionByte2 = 0xFE

	maxKeyLen     = 15
	maxNamespaces = 254 // index 255 is NS_ANY in ESP-IDF
	maxV1Varlen   = 1984
	maxV2String   = 4000 // the generator's limit; 3968 is what actually fits
	maxFitString  = (maxEntries - 2) * entrySize

	typeU8       = 0x01
	typeI8       = 0x11
	typeU16      = 0x02
	typeI16      = 0x12
	typeU32      = 0x04
	typeI32      = 0x14
	typeU64      = 0x08
	typeI64      = 0x18
	typeSZ       = 0x21
	typeBlob     = 0x41
	typeBlobData = 0x42
	typeBlobIdx  = 0x48
)

// typeCode maps a primitive kind to its item type; width is the byte size.
func typeCode(k Kind) (code byte, width int) {
	switch k {
	case U8:
		return typeU8, 1
	case I8:
		return typeI8, 1
	case U16:
		return typeU16, 2
	case I16:
		return typeI16, 2
	case U32:
		return typeU32, 4
	case I32:
		return typeI32, 4
	case U64:
		return typeU64, 8
	case I64:
		return typeI64, 8
	}
	return 0, 0
}

// crc is the CRC every NVS structure carries: zlib.crc32(b, 0xFFFFFFFF) in the
// generator, esp_rom_crc32_le(0xffffffff, …) on the chip. crc32.ChecksumIEEE
// would start from 0 and give different values.
func crc(b []byte) uint32 { return crc32.Update(0xFFFFFFFF, crc32.IEEETable, b) }

// entryCRC is the item header CRC: bytes 0..3 and 8..31, skipping the CRC field.
func entryCRC(e []byte) uint32 {
	c := crc32.Update(0xFFFFFFFF, crc32.IEEETable, e[0:4])
	return crc32.Update(c, crc32.IEEETable, e[8:32])
}

// wifiKeys are the keys the 0.2.0 generator expands into extra entries.
var wifiKeys = map[string]bool{"ap.ssid": true, "ap.passwd": true, "ap.authmode": true, "sta.ssid": true, "sta.pswd": true}

// lineErr prefixes an error with the CSV line when there is one.
func lineErr(line int, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		return fmt.Errorf("nvs: line %d: %s", line, msg)
	}
	return fmt.Errorf("nvs: %s", msg)
}
