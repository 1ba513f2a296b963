package sim

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// The simulated ESP32 boots from its flash once the line resets it out of
// download mode: the ROM loads the second-stage bootloader at 0x1000, the
// bootloader reads the partition table, picks an app partition, checks the
// app image and starts it, and the app runs a model of the kit it is
// (esp32_qcloud.go, esp32_aliyun.go, esp32_linksdk.go). Everything is
// printed on the UART as the real chip prints it (esp32_log.go).
//
// What resets the board into its flash (the boot mode the chip samples):
//   - the ROM's FLASH_END / FLASH_DEFL_END with reboot (word 0): the ROM
//     answers, then the chip resets and boots from flash, "rst:0xc
//     (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)". What the ESP32 ROM
//     does after its reboot is not published; the simulator printed this
//     banner before it booted anything, and keeps it. [NOT FROM A SOURCE]
//   - FLASH_END with "run user code" (word 1): esptool's soft_reset in ROM
//     mode ("'run user code' is hardcoded to a jump in the ROM", esptool
//     loader.py soft_reset; write_flash skips it because "it causes the
//     loader to exit and run user code"): the same boot without the reset
//     banner. [NOT FROM A SOURCE: what the ROM prints then]
//   - Board.Reset(false): EN pressed with BOOT released, "rst:0x1
//     (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)".
//
// The flasher stub's FLASH_END with reboot is a software reset, which keeps
// the boot mode sampled at the last chip reset: it comes back in download
// mode (esp32_stub.go, softReset). Likewise a reset the booted code makes
// itself (an abort, the bootloader's bootloader_reset) keeps booting from
// flash: a boot loop stays a boot loop until the board is reset into
// download mode (Board.Reset(true), or DTR/RTS on a real adapter).
//
// Once booted the chip no longer listens for the ROM's protocol: bytes the
// host sends are dropped (the kits' own UART consoles are not modelled).

// Resets the booted code makes itself (esp_restart after an abort: SW_CPU_RESET;
// bootloader_reset: esp_rom_software_reset_system, SW_RESET).
const (
	rstFlashEnd = "rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"
	rstPowerOn  = "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"
	rstSWCPU    = "rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"
	rstSW       = "rst:0x3 (SW_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"
	romDate     = "ets Jun  8 2016 00:22:57" // reference/espressif.md §2.7 [BOOT]
)

// espBootloaderIDF is the ESP-IDF version the simulated second-stage
// bootloader says it is: a bootloader image carries no description the
// simulator could read it from (esp_bootloader_desc_t came with v5.2).
// [NOT FROM A SOURCE]
const espBootloaderIDF = "v4.4.4"

// espRebootPause is how long a boot loop waits between two boots beyond
// the UART's own time. [NOT FROM A SOURCE: the real loop is as fast as the
// boot]
const espRebootPause = 500 * time.Millisecond

// espInvalidHeaderEvery is how often the ROM repeats "invalid header" when
// there is no bootloader. [NOT FROM A SOURCE]
const espInvalidHeaderEvery = 200 * time.Millisecond

// bootFromFlash leaves the loaders and starts the boot on its own
// goroutine, at the boot rate; rst is the ROM's reset line ("" for a jump
// without a reset). Called on the reader's goroutine.
func (c *esp32Chip) bootFromFlash(rst string) {
	c.rom, c.stub, c.running = nil, nil, true
	if c.bootBaud > 0 {
		c.h.setBaud(c.bootBaud)
	}
	go c.runFlash(c.h.ctx(), rst)
}

// runFlash boots, and boots again after every reset the booted code makes,
// until the board loses power or is reset from outside (the host's ctx).
func (c *esp32Chip) runFlash(ctx context.Context, rst string) {
	for ctx.Err() == nil {
		l := &espLog{c: c, ctx: ctx, start: time.Now()}
		next := c.bootOnce(ctx, l, rst)
		if next == "" || !pause(ctx, espRebootPause) {
			return
		}
		rst = next
	}
}

// bootOnce is one boot: the ROM, the bootloader, the app. It returns the
// reset it ends in, "" if it runs until power-off.
func (c *esp32Chip) bootOnce(ctx context.Context, l *espLog, rst string) string {
	read := func(off, n uint32) ([]byte, error) { return c.readFile(off, n) }
	if rst != "" {
		l.raw(romDate + "\r\n\r\n" + rst + "\r\n")
	}
	// The ROM's SPI boot: the bootloader's header, its segments loaded,
	// its entry (esp32.com "ESP32-WROOM first stage bootloader failure",
	// 2021, shows these lines; "invalid header: 0xffffffff" is what an
	// erased flash prints).
	head, err := read(espBootloaderOffset, espImageHdrLen)
	if err != nil {
		c.h.logger().Error("sim: esp32 boot: flash file", "err", err)
		return ""
	}
	if head[0] != espImageMagic {
		for {
			l.raw(fmt.Sprintf("invalid header: 0x%08x\r\n", binary.LittleEndian.Uint32(head)))
			if !pause(ctx, espInvalidHeaderEvery) {
				return ""
			}
		}
	}
	mode, div := spiModeName(head[2]), spiClockDiv(head[3]&0x0F)
	l.raw("configsip: 0, SPIWP:0xee\r\nclk_drv:0x00,q_drv:0x00,d_drv:0x00,cs0_drv:0x00,hd_drv:0x00,wp_drv:0x00\r\n")
	l.raw(fmt.Sprintf("mode:%s, clock div:%d\r\n", mode, div))
	boot, err := readESPImage(read, espBootloaderOffset, espTableOffsets[0]-espBootloaderOffset, false)
	if err != nil {
		// The ROM jumps into whatever it loaded: a broken bootloader crashes.
		c.h.logger().Info("sim: esp32 bootloader image unreadable: the chip hangs", "err", err)
		<-ctx.Done()
		return ""
	}
	for _, s := range boot.segments {
		l.raw(fmt.Sprintf("load:0x%08x,len:%d\r\n", s.loadAddr, s.dataLen))
	}
	l.raw(fmt.Sprintf("entry 0x%08x\r\n", boot.entry))

	// The second-stage bootloader (bootloader_init.c bootloader_print_banner,
	// bootloader_esp32.c print_flash_info, bootloader_utility.c).
	l.I("boot", "ESP-IDF %s 2nd stage bootloader", espBootloaderIDF)
	l.I("boot", "chip revision: %d", 3) // the eFuses of esp32.go: revision v3.0
	l.I("boot.esp32", "SPI Speed      : %s", spiSpeedName(head[3]&0x0F))
	l.I("boot.esp32", "SPI Mode       : %s", mode)
	l.I("boot.esp32", "SPI Flash Size : %s", spiSizeName(head[3]>>4))
	l.I("boot", "Enabling RNG early entropy source...")
	var parts []espPartition
	why := ""
	for i, off := range espTableOffsets {
		p, reason := readPartitionTable(read, off)
		if reason == "" {
			parts = p
			break
		}
		if i == 0 {
			why = reason
		}
	}
	if parts == nil {
		l.E("flash_parts", "%s", why)
		l.E("boot", "Failed to verify partition table")
		l.E("boot", "load partition table error!")
		return rstSW
	}
	l.I("boot", "Partition Table:")
	l.I("boot", "## Label            Usage          Type ST Offset   Length")
	for i, p := range parts {
		l.I("boot", "%2d %-16s %-16s %02x %02x %08x %08x", i, p.label, partitionUsage(p), p.typ, p.subtype, p.offset, p.size)
	}
	l.I("boot", "End of partition table")

	app, at := c.selectApp(l, read, parts)
	if app == nil {
		l.E("boot", "No bootable app partitions in the partition table")
		return rstSW
	}
	l.I("boot", "Loaded app from partition at offset 0x%x", at)
	l.I("boot", "Disabling RNG early entropy source...")

	// The app's start (esp_system startup, v4.4 cpu_start.c start_cpu0_default).
	l.I("cpu_start", "Pro cpu up.")
	l.I("cpu_start", "App cpu up.")
	l.I("cpu_start", "Pro cpu start user code")
	l.I("cpu_start", "cpu freq: 160000000")
	d := app.desc
	if d == nil {
		// An image built without ESP-IDF's app description: not an app the
		// simulator can take for a kit.
		c.h.logger().Info("sim: esp32 app has no esp_app_desc_t: it runs code the simulator cannot run")
		<-ctx.Done()
		return ""
	}
	l.I("cpu_start", "Application information:")
	l.I("cpu_start", "Project name:     %s", d.project)
	l.I("cpu_start", "App version:      %s", d.version)
	l.I("cpu_start", "Compile time:     %s %s", d.date, d.time)
	l.I("cpu_start", "ELF file SHA256:  %s...", hex.EncodeToString(d.elfSHA256[:8]))
	l.I("cpu_start", "ESP-IDF:          %s", d.idfVer)
	l.I("cpu_start", "Starting scheduler on PRO CPU.")
	kit, ok := espKits[d.project]
	if !ok {
		c.h.logger().Info("sim: esp32 app is no kit the simulator knows: it runs code the simulator cannot run", "project", d.project)
		<-ctx.Done()
		return ""
	}
	return kit(&espBooted{c: c, l: l, ctx: ctx, parts: parts})
}

// selectApp is bootloader_utility_get_selected_boot_partition and
// bootloader_utility_load_boot_image: with no OTA data or an erased one, the
// factory app, else OTA 0 ("No factory image, trying OTA 0"); with OTA data,
// the slot of its highest sequence number [the otadata CRC is not checked:
// NOT MODELLED]; then downwards to the factory app and upwards through the
// OTA slots, each image checked (esp_image_format.c), each failure logged.
// When it boots OTA 0 from an erased otadata the real bootloader writes
// otadata ("Set actual ota_seq=1 in otadata[0]"); the simulator does not.
// [NOT MODELLED]
func (c *esp32Chip) selectApp(l *espLog, read flashReader, parts []espPartition) (*espImage, uint32) {
	const factoryIndex = -1
	var factory, otaData *espPartition
	var ota []espPartition
	for i := range parts {
		p := &parts[i]
		switch {
		case p.typ == partTypeApp && p.subtype == partSubFactory:
			factory = p
		case p.typ == partTypeApp && p.subtype&^partSubOTAMask == partSubOTAFlag:
			ota = append(ota, *p)
		case p.typ == partTypeData && p.subtype == partSubDataOTA:
			otaData = p
		}
	}
	start := factoryIndex
	if otaData != nil {
		seq := [2]uint32{0xFFFFFFFF, 0xFFFFFFFF}
		for i := range 2 {
			if b, err := read(otaData.offset+uint32(i)*flashSector, 4); err == nil {
				seq[i] = binary.LittleEndian.Uint32(b)
			}
		}
		switch best := max(valid(seq[0]), valid(seq[1])); {
		case best == 0 || len(ota) == 0:
			if factory != nil {
				l.I("boot", "Defaulting to factory image")
			} else {
				l.I("boot", "No factory image, trying OTA 0")
				start = 0
			}
		default:
			start = int((best - 1) % uint32(len(ota)))
		}
	}
	partAt := func(i int) *espPartition {
		if i == factoryIndex {
			return factory
		}
		if i >= 0 && i < len(ota) {
			return &ota[i]
		}
		return nil
	}
	try := func(i int) (*espImage, uint32) {
		p := partAt(i)
		if p == nil || p.size == 0 {
			return nil, 0
		}
		img, err := readESPImage(read, p.offset, p.size, true)
		if err == nil {
			for n, s := range img.segments {
				l.I("esp_image", "segment %d: paddr=%08x vaddr=%08x size=%05xh (%6d) %s", n, s.dataAt, s.loadAddr, s.dataLen, s.dataLen, segmentUse(s.loadAddr))
			}
			return img, p.offset
		}
		if ie, ok := err.(*imageError); ok {
			l.E(ie.tag, "%s", ie.msg)
		}
		switch {
		case i == factoryIndex:
			l.E("boot", "Factory app partition is not bootable")
		default:
			l.E("boot", "OTA app partition slot %d is not bootable", i)
		}
		return nil, 0
	}
	for i := start; i >= factoryIndex; i-- {
		if img, at := try(i); img != nil {
			return img, at
		}
	}
	for i := start + 1; i < len(ota); i++ {
		if img, at := try(i); img != nil {
			return img, at
		}
	}
	return nil, 0
}

// valid is an otadata sequence number, 0 when erased.
func valid(seq uint32) uint32 {
	if seq == 0xFFFFFFFF {
		return 0
	}
	return seq
}

// segmentUse is process_segment's last column: "map" for flash-mapped
// segments (IROM 0x400D0000–0x40400000, DROM 0x3F400000–0x3F800000 on the
// ESP32), "load" for RAM.
func segmentUse(addr uint32) string {
	switch {
	case addr >= 0x400D0000 && addr < 0x40400000, addr >= 0x3F400000 && addr < 0x3F800000:
		return "map"
	case addr >= 0x10000000:
		return "load"
	}
	return ""
}

// The image header's flash settings, as the ROM and the bootloader name them
// (esp_image_format.h esp_image_spi_mode_t, esp_image_spi_freq_t,
// esp_image_flash_size_t).
func spiModeName(m byte) string {
	switch m {
	case 0:
		return "QIO"
	case 1:
		return "QOUT"
	case 2:
		return "DIO"
	case 3:
		return "DOUT"
	}
	return "DIO"
}

func spiSpeedName(s byte) string {
	switch s {
	case 0:
		return "40MHz"
	case 1:
		return "26.7MHz"
	case 2:
		return "20MHz"
	case 0xF:
		return "80MHz"
	}
	return "40MHz"
}

func spiClockDiv(s byte) int {
	switch s {
	case 1:
		return 3
	case 2:
		return 4
	case 0xF:
		return 1
	}
	return 2
}

func spiSizeName(s byte) string {
	switch s {
	case 0:
		return "1MB"
	case 1:
		return "2MB"
	case 2:
		return "4MB"
	case 3:
		return "8MB"
	case 4:
		return "16MB"
	}
	return "Unknown"
}

// espBooted is a started app: what a kit's model needs of its board.
type espBooted struct {
	c     *esp32Chip
	l     *espLog
	ctx   context.Context
	parts []espPartition
}

// espKits are the applications the simulator can play, by the project name
// in their image's esp_app_desc_t (what `project(NAME)` in the app's
// CMakeLists.txt sets, and cpu_start prints). The simulator cannot run
// Xtensa code: an app whose project it knows is taken to be that kit, as a
// jump into an uploaded stub is taken to start esptool's stub (esp32.go).
// Each returns the reset it ends in, "" if it runs until power-off.
var espKits = map[string]func(*espBooted) string{
	// espressif/esp-qcloud examples/led_light: CMakeLists project(${CURDIR}).
	"led_light": runQCloudLight,
	// espressif/esp-aliyun examples/solo/example_solo: project(example_solo).
	"example_solo": runAliyunSolo,
	// Alibaba's LinkSDK 4.x demos/dynregmq_basic_demo.c built as an ESP-IDF
	// app (LinkSDK's ESP32 port), as published (nowhitelist = 0) and with
	// nowhitelist = 1. The project names are the simulator's convention.
	// [NOT FROM A SOURCE: the names]
	"dynregmq_basic_demo": func(b *espBooted) string { return runLinkSDKDynreg(b, false) },
	"dynregmq_nwl_demo":   func(b *espBooted) string { return runLinkSDKDynreg(b, true) },
	// aliyun/iotkit-embedded's src/dev_model/examples/linkkit_example_gateway.c
	// in esp-aliyun's framework (esp32_gateway.go). The project name is the
	// simulator's convention. [NOT FROM A SOURCE: the name]
	"linkkit_example_gateway": runIotkitGateway,
}

// abort is what an ESP_ERROR_CHECK that fails prints, then the panic
// handler's reboot (components/esp_common/src/esp_err.c
// _esp_error_check_failed; esp_system panic.c). The program counters are the
// simulator's. [NOT FROM A SOURCE: the addresses]
func (b *espBooted) abort(code int, file string, line int, fn, expr string) string {
	b.l.raw(fmt.Sprintf("ESP_ERROR_CHECK failed: esp_err_t 0x%s (%s) at 0x400d2f8c\r\nfile: \"%s\" line %d\r\nfunc: %s\r\nexpression: %s\r\n\r\nabort() was called at PC 0x40087f2b on core 0\r\n\r\n",
		espErrHex(code), espErrName(code), file, line, fn, expr))
	b.l.raw("\r\nBacktrace:0x4008b4f6:0x3ffb5a20 0x4008bc59:0x3ffb5a40 0x40091c6e:0x3ffb5a60\r\n\r\n\r\nELF file SHA256: 0000000000000000\r\n\r\nRebooting...\r\n")
	return rstSWCPU
}

// idle is an app that has given up and waits for the power to go.
func (b *espBooted) idle() string {
	<-b.ctx.Done()
	return ""
}
