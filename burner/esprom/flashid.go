package esprom

import (
	"context"
	"fmt"
)

// SPI registers of the ESP32's SPI1 (flash) controller, as esptool's
// targets/esp32.py names them (SPI_REG_BASE 0x3FF42000 and its offsets).
const (
	spiRegBase   = 0x3FF42000
	spiCmdReg    = spiRegBase + 0x00
	spiUsrReg    = spiRegBase + 0x1C
	spiUsr2Reg   = spiRegBase + 0x24
	spiMisoDlen  = spiRegBase + 0x2C
	spiW0Reg     = spiRegBase + 0x80
	spiCmdUsr    = 1 << 18
	spiUsrCmd    = 1 << 31
	spiUsrMiso   = 1 << 28
	spiFlashRDID = 0x9F // JEDEC "read identification"
)

// FlashID reads the SPI flash's JEDEC id (manufacturer, memory type,
// capacity), as esptool's flash_id does through the controller's "user
// command" registers (loader.py run_spiflash_command): set the MISO length
// and the USR flags, put RDID in USR2 with an 8-bit command length, clear W0,
// start the command, wait for the USR bit to clear, read W0, restore the two
// registers. The result is laid out as esptool prints it: 0x1640EF is a
// Winbond (0xEF) 0x4016 part.
func (l *Loader) FlashID(ctx context.Context) (uint32, error) {
	oldUsr, err := l.ReadReg(ctx, spiUsrReg)
	if err != nil {
		return 0, err
	}
	oldUsr2, err := l.ReadReg(ctx, spiUsr2Reg)
	if err != nil {
		return 0, err
	}
	for _, w := range [][2]uint32{
		{spiMisoDlen, 24 - 1},
		{spiUsrReg, spiUsrCmd | spiUsrMiso},
		{spiUsr2Reg, 7<<28 | spiFlashRDID},
		{spiW0Reg, 0},
		{spiCmdReg, spiCmdUsr},
	} {
		if err := l.WriteReg(ctx, w[0], w[1]); err != nil {
			return 0, err
		}
	}
	done := false
	for range 10 { // esptool polls 10 times, then gives up
		v, err := l.ReadReg(ctx, spiCmdReg)
		if err != nil {
			return 0, err
		}
		if v&spiCmdUsr == 0 {
			done = true
			break
		}
	}
	if !done {
		return 0, fmt.Errorf("the SPI flash of the board on %s did not finish the JEDEC id command: %w", l.port.Name(), ErrNoAnswer)
	}
	id, err := l.ReadReg(ctx, spiW0Reg)
	if err != nil {
		return 0, err
	}
	if err := l.WriteReg(ctx, spiUsrReg, oldUsr); err != nil {
		return 0, err
	}
	if err := l.WriteReg(ctx, spiUsr2Reg, oldUsr2); err != nil {
		return 0, err
	}
	return id & 0xFFFFFF, nil
}

// FlashSizeFromID is esptool's DETECTED_FLASH_SIZES (cmds.py): the capacity
// byte of the JEDEC id, 0x12 (256 KB) to 0x1C (256 MB) as a power of two, and
// the 0x20–0x22 and 0x32–0x3A codes some parts use. 0 for an unknown code.
func FlashSizeFromID(id uint32) uint32 {
	c := id >> 16 & 0xFF
	switch {
	case c >= 0x12 && c <= 0x1C:
		return 1 << c
	case c >= 0x20 && c <= 0x22:
		return 64 << 20 << (c - 0x20)
	case c >= 0x32 && c <= 0x3A:
		return 256 << 10 << (c - 0x32)
	}
	return 0
}

// WriteReg writes a 32-bit register (WRITE_REG: address, value, mask all
// ones, no delay).
func (l *Loader) WriteReg(ctx context.Context, addr, value uint32) error {
	_, _, err := l.check(ctx, opWriteReg, le32(addr, value, 0xFFFFFFFF, 0), 0, l.timeout())
	return err
}
