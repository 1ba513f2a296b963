// Package esprom drives the ESP32's ROM serial bootloader (download mode)
// over a burner.Port: SLIP framing, command packets and the ROM's 4 status
// bytes, SYNC, chip detection, the factory MAC from eFuse, SPI_ATTACH and
// SPI_SET_PARAMS, CHANGE_BAUDRATE, FLASH_BEGIN/DATA and FLASH_DEFL_BEGIN/DATA
// (zlib), SPI_FLASH_MD5 and READ_FLASH_SLOW.
//
// It speaks to the ROM only, never to esptool's flasher stub: no stub is
// uploaded, so there is no binary blob in this repository, and the ROM's
// quirks are the ones that apply (reference/espressif.md §2, DESIGN.md §8):
// FLASH_BEGIN takes 4 words on the ESP32 ROM, flash blocks are 0x400 bytes
// with the last one padded with 0xFF, SPI_ATTACH carries 4 extra zero bytes,
// and SPI_FLASH_MD5 answers 32 ASCII hex characters. Timeouts, retries and the
// order of operations follow esptool 4.7 (`--no-stub`), so a board that works
// with esptool works here.
//
// Reset: where the port has modem lines, Connect pulses DTR/RTS the way
// esptool's classic reset does (DTR drives IO0, RTS drives EN). A pty, or an
// adapter without the lines, answers ENOTTY; the reset is then skipped and
// the board must already be in download mode: hold BOOT and press EN.
package esprom
