package sim

import "time"

// ESP32FlashFloor is the least time the simulated board's flash chip (the
// W25Q32JV, its datasheet's typical times) needs to take n bytes at offset:
// the cheapest erase of the sectors they cover (64 KB block erases where a
// whole aligned block is covered, 4 KB sector erases elsewhere) and one page
// program per 256-byte page. No loader does better on this part; the ROM's
// own erase sequence does worse (romEraseArea), which is why it is a floor.
func ESP32FlashFloor(offset, n uint32) time.Duration {
	if n == 0 {
		return 0
	}
	start := offset &^ (flashSector - 1)
	end := (offset + n + flashSector - 1) &^ (flashSector - 1)
	var d time.Duration
	for a := start; a < end; {
		if a%flashBlock == 0 && end-a >= flashBlock {
			d += w25Block64Erase
			a += flashBlock
			continue
		}
		d += w25SectorErase
		a += flashSector
	}
	return d + time.Duration(pagePrograms(offset, n))*w25PageProgram
}
