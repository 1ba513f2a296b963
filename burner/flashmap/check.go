package flashmap

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// SectorSize is the SPI flash's erase unit and the ROM's: every region starts
// on a sector and claims the sectors it touches.
const SectorSize = 0x1000

// Region is one thing written to every board in a pass.
type Region struct {
	Name   string // for messages: the file, or "credential partition fctry"
	Offset uint32
	Size   uint32 // bytes written (the credential partition: the whole partition)
	Data   []byte // the bytes (nil for the credential partition, rendered per board)
	// Credential marks the board's own partition: it must land in an NVS
	// partition of the table, whole.
	Credential bool
}

// FromFile is a region holding a file's bytes.
func FromFile(name string, offset uint32, data []byte) Region {
	return Region{Name: name, Offset: offset, Size: uint32(len(data)), Data: data}
}

// End is the first byte after the region.
func (r Region) End() uint64 { return uint64(r.Offset) + uint64(r.Size) }

// erased is the end of the sectors the ROM erases to write the region.
func (r Region) erased() uint64 { return (r.End() + SectorSize - 1) / SectorSize * SectorSize }

func (r Region) String() string {
	return fmt.Sprintf("%s (%s at %s–%s)", r.Name, Bytes(uint64(r.Size)), Hex(uint64(r.Offset)), Hex(r.End()-1))
}

// ErrUnsafe classifies every refusal of Check.
var ErrUnsafe = errors.New("unsafe flash map")

// UnsafeError says what is wrong with a map, which regions, and the fix.
type UnsafeError struct {
	Problem string
	Fix     string
}

func (e *UnsafeError) Error() string        { return e.Problem + ": " + e.Fix }
func (e *UnsafeError) Is(target error) bool { return target == ErrUnsafe }

func unsafe(fix, format string, a ...any) error {
	return &UnsafeError{Problem: fmt.Sprintf(format, a...), Fix: fix}
}

// Check refuses a map that could damage a board or write something other
// than what its MD5s will confirm. flashSize 0 skips the bound (before the
// board has told its size); table nil skips the partition checks.
func Check(regions []Region, flashSize uint32, table *Table) error {
	for _, r := range regions {
		if r.Size == 0 {
			return unsafe("give a file that holds the image", "%s is empty: nothing to write", r.Name)
		}
		if r.Offset%SectorSize != 0 {
			lo := r.Offset &^ (SectorSize - 1)
			return unsafe(fmt.Sprintf("use %s or %s", Hex(uint64(lo)), Hex(uint64(lo)+SectorSize)),
				"%s starts at %s, which is not on a 4 KB sector boundary: the ROM erases whole sectors, so writing it would also erase %s–%s",
				r.Name, Hex(uint64(r.Offset)), Hex(uint64(lo)), Hex(uint64(r.Offset)-1))
		}
		if flashSize > 0 && r.End() > uint64(flashSize) {
			return unsafe("check the offset, or burn a board with a larger flash",
				"%s ends past the end of the board's %s flash (at %s)", r, Bytes(uint64(flashSize)), Hex(uint64(flashSize)))
		}
	}
	sorted := append([]Region(nil), regions...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Offset < sorted[j].Offset })
	for i := 1; i < len(sorted); i++ {
		a, b := sorted[i-1], sorted[i]
		if uint64(b.Offset) < a.erased() {
			return unsafe("give each its own place (as the partition table lays them out)",
				"%s and %s overlap: the later write would silently replace the earlier one, and each MD5 would still pass",
				a, b)
		}
	}
	if table == nil {
		return nil
	}
	for _, r := range regions {
		if err := checkInTable(r, table); err != nil {
			return err
		}
	}
	return nil
}

// checkInTable: a region that reaches into a partition must stay inside it
// (an app larger than its partition overwrites the next one); the credential
// must fill part of one NVS partition; nothing but the partition table itself
// is written over the table's sector.
func checkInTable(r Region, t *Table) error {
	tableStart := uint64(t.Offset)
	tableEnd := tableStart + TableSector
	if r.Credential {
		p, ok := t.At(r.Offset)
		switch {
		case !ok:
			return unsafe("give the offset of an NVS partition, or fix the table",
				"%s is not inside any partition of %s", r, t.Source)
		case !p.IsNVS():
			return unsafe("write the credential partition into a data/nvs partition (ESP-IDF's kits read one named fctry)",
				"%s would land in partition %s, which is not an NVS partition", r, p)
		case r.End() > p.End():
			return unsafe("give the partition's own size (--partition-size) or a larger partition",
				"%s is larger than partition %s", r, p)
		}
		return nil
	}
	if uint64(r.Offset) < tableEnd && r.End() > tableStart && !(uint64(r.Offset) == tableStart && r.End() <= tableEnd) {
		return unsafe(fmt.Sprintf("write the bootloader at 0x1000, the partition table alone at %s", Hex(tableStart)),
			"%s reaches into the partition table's sector %s–%s without being the table", r, Hex(tableStart), Hex(tableEnd-1))
	}
	for _, p := range t.Partitions {
		if uint64(r.Offset) < p.End() && r.End() > uint64(p.Offset) {
			if r.Offset < p.Offset || r.End() > p.End() {
				return unsafe("make the image fit its partition, or give it a larger one in the table",
					"%s does not fit in partition %s: it would overwrite %s", r, p, strings.Join(otherParts(t, r, p), ", "))
			}
		}
	}
	return nil
}

// otherParts names what a region spills over into, beyond partition p.
func otherParts(t *Table, r Region, p Partition) []string {
	var out []string
	for _, q := range t.Partitions {
		if q.Name != p.Name && uint64(r.Offset) < q.End() && r.End() > uint64(q.Offset) {
			out = append(out, q.Name)
		}
	}
	if len(out) == 0 {
		out = append(out, "flash outside the table")
	}
	return out
}
