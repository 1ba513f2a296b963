package sim

import (
	"fmt"
	"time"
)

// The simulated ESP32's SPI NOR flash is a Winbond W25Q32JV: JEDEC id EF 40 16
// (the RDID answer 0x1640EF in SPI W0), 32 Mbit = 4 MB, 256-byte pages, 4 KB
// sectors, 64 KB blocks.
//
// Times are the typical column of the W25Q32JV datasheet, Rev F (2017-05-11),
// §9.6 "AC Electrical Characteristics" (maximum in the comment). The search
// tool found the datasheet (Digi-Key's copy of Rev F) but not the text of that
// table, so these numbers are not confirmed against it here: they are the
// ones the project was given from the datasheet, kept as they are.
const (
	w25PageProgram  = 400 * time.Microsecond // tPP, one page program of up to 256 bytes (max 3 ms)
	w25SectorErase  = 45 * time.Millisecond  // tSE, 4 KB sector erase (max 400 ms)
	w25Block32Erase = 120 * time.Millisecond // tBE1, 32 KB block erase (max 1600 ms)
	w25Block64Erase = 150 * time.Millisecond // tBE2, 64 KB block erase (max 2000 ms)
	w25ChipErase    = 10 * time.Second       // tCE, chip erase (max 50 s)
)

// Geometry (W25Q32JV; the same numbers esptool sends in SPI_SET_PARAMS and
// the stub's stub_flasher.h defines: FLASH_PAGE_SIZE, FLASH_SECTOR_SIZE,
// FLASH_BLOCK_SIZE).
const (
	flashPage   = 0x100
	flashSector = 0x1000
	flashBlock  = 0x10000
	// sectorsPerBlock is SECTORS_PER_BLOCK (stub_flasher.h), the ROM's
	// sector_num_per_block = block_size / sector_size.
	sectorsPerBlock = flashBlock / flashSector
)

// eraseOp is one erase command the flash executes: a 4 KB sector (20h), a
// 64 KB block (D8h) or the whole chip (C7h).
type eraseOp struct {
	addr, size uint32
}

func (op eraseOp) String() string { return fmt.Sprintf("erase 0x%x+0x%x", op.addr, op.size) }

// duration is the datasheet's typical time for the op.
func (op eraseOp) duration() time.Duration {
	switch op.size {
	case flashSector:
		return w25SectorErase
	case 0x8000:
		return w25Block32Erase // no loader on this board issues 52h, but the part has it
	case flashBlock:
		return w25Block64Erase
	}
	return w25ChipErase
}

// romEraseArea is the erase sequence of the ESP32 ROM's flash-area erase,
// which the ROM runs for FLASH_BEGIN/FLASH_DEFL_BEGIN before it answers, as
// ESP-IDF's ROM patch reimplements it: components/esp_rom/patches/
// esp_rom_spiflash.c, esp_rom_spiflash_erase_area (read there, not copied).
// Its quirks are kept: the head is sector_num_per_block - (sector %
// sector_num_per_block) sectors even when the start is already block-aligned
// (so an aligned area starts with 16 sector erases, not a block erase); the
// middle erases 64 KB blocks only while more than a block's worth is left
// (">", not ">="); the tail is sector erases. A length that is not a whole
// number of sectors counts one more sector. The caller checks that start is
// sector-aligned and the area fits (the function returns an error otherwise).
func romEraseArea(start, length uint32) []eraseOp {
	total := length / flashSector
	if length%flashSector != 0 {
		total++
	}
	sector := start / flashSector
	head := min(sectorsPerBlock-sector%sectorsPerBlock, total)
	total -= head
	var ops []eraseOp
	for ; head > 0; head-- {
		ops = append(ops, eraseOp{sector * flashSector, flashSector})
		sector++
	}
	for total > sectorsPerBlock {
		ops = append(ops, eraseOp{sector * flashSector, flashBlock})
		sector += sectorsPerBlock
		total -= sectorsPerBlock
	}
	for ; total > 0; total-- {
		ops = append(ops, eraseOp{sector * flashSector, flashSector})
		sector++
	}
	return ops
}

// stubRegionErase is the erase sequence of the flasher stub's ERASE_REGION
// (esptool-legacy-flasher-stub v1.3.0, flasher_stub/stub_commands.c,
// handle_flash_erase): sector erases until the address is 64 KB-aligned,
// block erases while more than a block is left (">", so an aligned 64 KB
// region is 16 sector erases), sector erases for the rest. The caller has
// checked the alignment (the stub answers 0x32/0x33 otherwise).
func stubRegionErase(addr, length uint32) []eraseOp {
	var ops []eraseOp
	for length > 0 && addr%flashBlock != 0 {
		ops = append(ops, eraseOp{addr, flashSector})
		addr += flashSector
		length -= flashSector
	}
	for length > flashBlock {
		ops = append(ops, eraseOp{addr, flashBlock})
		addr += flashBlock
		length -= flashBlock
	}
	for length > 0 {
		ops = append(ops, eraseOp{addr, flashSector})
		addr += flashSector
		length -= flashSector
	}
	return ops
}

// pagePrograms is how many page-program commands a write of n bytes at addr
// costs, the way the ROM's write routine splits it (ESP-IDF
// components/esp_rom/patches/esp_rom_spiflash.c, esp_rom_spiflash_write: the
// part up to the first page boundary, whole pages, the rest; an empty part
// programs nothing). The stub writes through the same ROM routine (SPIWrite).
//
// Each page is charged one tPP. The ROM actually sends a page in 32-byte PP
// commands (esp_rom_spiflash_program_page_internal,
// ESP_ROM_SPIFLASH_BUFF_BYTE_WRITE_NUM); the datasheet gives no time for a
// partial-page program, so the simulator charges the full-page time once per
// page touched, whatever its length.
func pagePrograms(addr, n uint32) int {
	if n == 0 {
		return 0
	}
	first := addr / flashPage
	last := (addr + n - 1) / flashPage
	return int(last - first + 1)
}
