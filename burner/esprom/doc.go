// Package esprom drives the ESP32's ROM serial bootloader (download mode)
// over a burner.Port: SLIP framing, command packets and the ROM's 4 status
// bytes, SYNC, chip detection, the factory MAC from eFuse, the flash's JEDEC
// id and size, SPI_ATTACH and SPI_SET_PARAMS, CHANGE_BAUDRATE,
// FLASH_BEGIN/DATA and FLASH_DEFL_BEGIN/DATA (zlib), SPI_FLASH_MD5 and
// READ_FLASH_SLOW; and, where it is given Espressif's flasher stub (read from
// an esptool installation: this repository holds no binary), the stub's
// dialect: 2 status bytes, 16 KB blocks erased as they are written,
// READ_FLASH with its acknowledgements and MD5.
//
// The ROM's quirks are the ones that apply (reference/espressif.md §2):
// FLASH_BEGIN takes 4 words on the ESP32 ROM (and, in esptool v4.8.1, on the
// stub too), ROM flash blocks are 0x400 bytes with the last one padded with
// 0xFF, SPI_ATTACH carries 4 extra zero bytes, and SPI_FLASH_MD5 answers 32
// ASCII hex characters (16 raw bytes from the stub). Timeouts, retries and
// the order of operations follow esptool v4.8.1, so a board that works with
// esptool works here; every command's deadline adds its bytes' time on the
// wire at the current rate, so a full firmware at 115200 is never cut short.
// Images are prepared once (NewImage: padded, MD5, deflated) and shared by
// every board of a line.
//
// Reset: where the port has modem lines, Connect pulses DTR/RTS the way
// esptool's classic reset does (DTR drives IO0, RTS drives EN). A pty, or an
// adapter without the lines, answers ENOTTY; the reset is then skipped and
// the board must already be in download mode: hold BOOT and press EN. A
// board a killed run left at a fast rate is found again at the rates in
// Loader.Rates.
package esprom
