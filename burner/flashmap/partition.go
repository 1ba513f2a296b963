package flashmap

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// The partition table's place and shape (ESP-IDF components/partition_table:
// gen_esp32part.py and the partition-tables API guide). The table sits at
// CONFIG_PARTITION_TABLE_OFFSET, 0x8000 unless a project moves it, takes one
// sector, and holds at most 0xC00 bytes of 32-byte entries.
const (
	TableOffset    = 0x8000
	TableSector    = 0x1000
	TableMaxLength = 0xC00
	entrySize      = 32
	// BootloaderOffset is where the ESP32's second-stage bootloader goes.
	BootloaderOffset = 0x1000
)

// Partition types and the subtypes iotburn cares about
// (gen_esp32part.py TYPES and SUBTYPES, esp_partition.h).
const (
	TypeApp    = 0x00
	TypeData   = 0x01
	SubtypeNVS = 0x02
)

var typeNames = map[string]uint8{"app": TypeApp, "data": TypeData}

var subtypeNames = map[uint8]map[string]uint8{
	TypeApp: {"factory": 0x00, "test": 0x20},
	TypeData: {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03, "nvs_keys": 0x04,
		"efuse": 0x05, "undefined": 0x06, "esphttpd": 0x80, "fat": 0x81, "spiffs": 0x82, "littlefs": 0x83},
}

func init() {
	for i := range 16 { // ota_0 … ota_15
		subtypeNames[TypeApp][fmt.Sprintf("ota_%d", i)] = uint8(0x10 + i)
	}
}

// Partition is one entry of a partition table.
type Partition struct {
	Name          string
	Type, SubType uint8
	Offset, Size  uint32
	Flags         uint32
}

// End is the first byte after the partition.
func (p Partition) End() uint64 { return uint64(p.Offset) + uint64(p.Size) }

// IsNVS reports a data partition of subtype nvs: the only kind an NVS image
// (the credential partition) may be written into.
func (p Partition) IsNVS() bool { return p.Type == TypeData && p.SubType == SubtypeNVS }

// Kind is "data/nvs", "app/factory", or the numbers where there is no name.
func (p Partition) Kind() string {
	t := fmt.Sprintf("0x%02x", p.Type)
	for n, v := range typeNames {
		if v == p.Type {
			t = n
		}
	}
	s := fmt.Sprintf("0x%02x", p.SubType)
	for n, v := range subtypeNames[p.Type] {
		if v == p.SubType {
			s = n
		}
	}
	return t + "/" + s
}

func (p Partition) String() string {
	return fmt.Sprintf("%s (%s, %s at %s)", p.Name, p.Kind(), Bytes(uint64(p.Size)), Hex(uint64(p.Offset)))
}

// Table is a partition table, in the order its source lists it.
type Table struct {
	Partitions []Partition
	Source     string // where it came from, for messages
	// Offset is where the table itself sits in flash: TableOffset unless
	// the project moved it (CONFIG_PARTITION_TABLE_OFFSET; espressif/esp-qcloud's
	// sdkconfig defaults put it at 0xc000, for a larger bootloader).
	Offset uint32
}

// ErrNoPartition is a partition name the table does not have.
var ErrNoPartition = errors.New("no such partition")

// Find returns the named partition.
func (t *Table) Find(name string) (Partition, error) {
	var names []string
	for _, p := range t.Partitions {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return Partition{}, fmt.Errorf("%s has no partition named %q (it has %s): %w", t.Source, name, strings.Join(names, ", "), ErrNoPartition)
}

// At returns the partition that holds offset, if any.
func (t *Table) At(offset uint32) (Partition, bool) {
	for _, p := range t.Partitions {
		if offset >= p.Offset && uint64(offset) < p.End() {
			return p, true
		}
	}
	return Partition{}, false
}

// check is gen_esp32part.py's verify(): names unique, partitions after the
// table's own sector and not overlapping each other.
func (t *Table) check() error {
	seen := map[string]bool{}
	for _, p := range t.Partitions {
		if seen[p.Name] {
			return fmt.Errorf("%s: two partitions are named %q", t.Source, p.Name)
		}
		seen[p.Name] = true
		if p.Size == 0 {
			return fmt.Errorf("%s: partition %s has size 0", t.Source, p.Name)
		}
	}
	sorted := append([]Partition(nil), t.Partitions...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Offset < sorted[j].Offset })
	for i, p := range sorted {
		if uint64(p.Offset) < uint64(t.Offset)+TableSector {
			return fmt.Errorf("%s: partition %s starts at %s, inside the bootloader or the partition table (below %s)", t.Source, p.Name, Hex(uint64(p.Offset)), Hex(uint64(t.Offset)+TableSector))
		}
		if i > 0 && uint64(p.Offset) < sorted[i-1].End() {
			return fmt.Errorf("%s: partitions %s and %s overlap", t.Source, sorted[i-1], p)
		}
	}
	return nil
}

// ReadTableCSV parses an ESP-IDF partition table CSV (Name, Type, SubType,
// Offset, Size, Flags), filling in blank offsets as gen_esp32part.py does:
// right after the previous partition (the first after the table's sector),
// aligned to 64 KB for app partitions and 4 KB for the rest (ESP-IDF 5's
// data alignment; older releases aligned data to 4 bytes and warned).
// tableOffset is where the table goes in flash (gen_esp32part.py --offset;
// 0 means TableOffset).
func ReadTableCSV(r io.Reader, source string, tableOffset uint32) (*Table, error) {
	if tableOffset == 0 {
		tableOffset = TableOffset
	}
	t := &Table{Source: source, Offset: tableOffset}
	next := uint64(tableOffset) + TableSector
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if line == 1 {
			text = strings.TrimPrefix(text, "\ufeff")
		}
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text+",,,,", ",")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		where := fmt.Sprintf("%s line %d", source, line)
		if f[0] == "" || f[1] == "" || f[4] == "" {
			return nil, fmt.Errorf("%s: want Name, Type, SubType, Offset, Size[, Flags]: name, type and size are required", where)
		}
		p := Partition{Name: f[0]}
		if len(p.Name) > 16 {
			return nil, fmt.Errorf("%s: partition name %q is longer than 16 characters", where, p.Name)
		}
		var err error
		if p.Type, err = parseKind(f[1], typeNames); err != nil {
			return nil, fmt.Errorf("%s: type %q: %v", where, f[1], err)
		}
		switch {
		case f[2] == "" && p.Type == TypeApp:
			return nil, fmt.Errorf("%s: an app partition needs a subtype", where)
		case f[2] == "":
			p.SubType = subtypeNames[TypeData]["undefined"]
		default:
			if p.SubType, err = parseKind(f[2], subtypeNames[p.Type]); err != nil {
				return nil, fmt.Errorf("%s: subtype %q: %v", where, f[2], err)
			}
		}
		align := uint64(0x1000)
		if p.Type == TypeApp {
			align = 0x10000
		}
		if f[3] == "" {
			p.Offset = uint32((next + align - 1) / align * align)
		} else if p.Offset, err = ParseNumber(f[3]); err != nil {
			return nil, fmt.Errorf("%s: offset: %v", where, err)
		}
		if uint64(p.Offset)%align != 0 {
			return nil, fmt.Errorf("%s: partition %s at %s is not aligned to %s", where, p.Name, Hex(uint64(p.Offset)), Hex(align))
		}
		if p.Size, err = ParseNumber(f[4]); err != nil {
			return nil, fmt.Errorf("%s: size: %v", where, err)
		}
		for _, flag := range strings.Split(f[5], ":") {
			switch flag {
			case "":
			case "encrypted":
				p.Flags |= 1
			case "readonly":
				p.Flags |= 2
			default:
				return nil, fmt.Errorf("%s: unknown flag %q", where, flag)
			}
		}
		next = p.End()
		t.Partitions = append(t.Partitions, p)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(t.Partitions) == 0 {
		return nil, fmt.Errorf("%s has no partitions", source)
	}
	return t, t.check()
}

func parseKind(s string, names map[string]uint8) (uint8, error) {
	if v, ok := names[s]; ok {
		return v, nil
	}
	v, err := ParseNumber(s)
	if err != nil || v > 0xFF {
		return 0, errors.New("not a known name or a number 0x00–0xff")
	}
	return uint8(v), nil
}

// Binary table layout (gen_esp32part.py PartitionDefinition.STRUCT_FORMAT
// "<2sBBLL16sL"): magic AA 50, type, subtype, offset, size, name (16 bytes,
// NUL-padded), flags. An MD5 entry (EB EB, 14 × FF, then the MD5 of every
// entry before it) may follow the last partition; 32 × FF ends the table.
var (
	entryMagic = []byte{0xAA, 0x50}
	md5Magic   = []byte{0xEB, 0xEB}
	endMarker  = bytes.Repeat([]byte{0xFF}, entrySize)
)

// ErrNoTable is flash that holds no partition table (erased, or something else).
var ErrNoTable = errors.New("no partition table")

// LooksLikeTable reports whether b starts like a binary partition table.
func LooksLikeTable(b []byte) bool { return bytes.HasPrefix(b, entryMagic) }

// ReadTableBinary parses a binary partition table as gen_esp32part.py writes
// it and the bootloader reads it: the MD5 entry, where present, must match.
// offset is where the table sits (or will) in flash.
func ReadTableBinary(b []byte, offset uint32, source string) (*Table, error) {
	if !LooksLikeTable(b) {
		what := "it does not start with the table magic AA 50"
		if len(b) > 0 && bytes.Count(b[:min(len(b), entrySize)], []byte{0xFF}) == min(len(b), entrySize) {
			what = "the flash there is erased"
		}
		return nil, fmt.Errorf("%s is not a partition table (%s): %w", source, what, ErrNoTable)
	}
	t := &Table{Source: source, Offset: offset}
	sum := md5.New()
	for off := 0; ; off += entrySize {
		if off+entrySize > len(b) || off >= TableMaxLength {
			return nil, fmt.Errorf("%s: the partition table has no end marker within %d bytes", source, min(len(b), TableMaxLength))
		}
		e := b[off : off+entrySize]
		switch {
		case bytes.Equal(e, endMarker):
			if len(t.Partitions) == 0 {
				return nil, fmt.Errorf("%s: the partition table is empty: %w", source, ErrNoTable)
			}
			return t, t.check()
		case bytes.HasPrefix(e, md5Magic):
			if !bytes.Equal(e[16:], sum.Sum(nil)) {
				return nil, fmt.Errorf("%s: the partition table's MD5 entry does not match its entries (a damaged or hand-edited table): rebuild it with gen_esp32part.py", source)
			}
			continue
		case !bytes.HasPrefix(e, entryMagic):
			return nil, fmt.Errorf("%s: entry %d of the partition table has no magic AA 50", source, off/entrySize)
		}
		sum.Write(e)
		name := e[12:28]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		t.Partitions = append(t.Partitions, Partition{
			Name: string(name), Type: e[2], SubType: e[3],
			Offset: binary.LittleEndian.Uint32(e[4:]), Size: binary.LittleEndian.Uint32(e[8:]),
			Flags: binary.LittleEndian.Uint32(e[28:]),
		})
	}
}

// Binary is the table as gen_esp32part.py writes it: the entries, the MD5
// entry, 0xFF to TableMaxLength. Boards and tools (the demo, the bench)
// use it to lay a board out the way an ESP-IDF build would.
func (t *Table) Binary() ([]byte, error) {
	if (len(t.Partitions)+1)*entrySize >= TableMaxLength {
		return nil, fmt.Errorf("%s: %d partitions do not fit in a partition table", t.Source, len(t.Partitions))
	}
	out := make([]byte, 0, TableMaxLength)
	for _, p := range t.Partitions {
		e := make([]byte, entrySize)
		copy(e, entryMagic)
		e[2], e[3] = p.Type, p.SubType
		binary.LittleEndian.PutUint32(e[4:], p.Offset)
		binary.LittleEndian.PutUint32(e[8:], p.Size)
		copy(e[12:28], p.Name)
		binary.LittleEndian.PutUint32(e[28:], p.Flags)
		out = append(out, e...)
	}
	sum := md5.Sum(out)
	out = append(out, md5Magic...)
	out = append(out, bytes.Repeat([]byte{0xFF}, 14)...)
	out = append(out, sum[:]...)
	return append(out, bytes.Repeat([]byte{0xFF}, TableMaxLength-len(out))...), nil
}
