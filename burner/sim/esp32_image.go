package sim

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
)

// What the booting ESP32 reads of its flash: ESP-IDF's app image format, its
// partition table and its OTA data, written here from ESP-IDF's sources
// (espressif/esp-idf, release v4.4 as the public code index holds it),
// independently of burner/flashmap, so the line and the board can disagree
// in a test:
//
//   - [IMG] components/bootloader_support/include/esp_image_format.h
//     (esp_image_header_t, esp_image_segment_header_t, ESP_IMAGE_MAX_SEGMENTS)
//     and esp_app_format.h (esp_app_desc_t, ESP_APP_DESC_MAGIC_WORD);
//   - [FMT] components/bootloader_support/src/esp_image_format.c:
//     verify_image_header, process_segment, verify_segment_header,
//     process_checksum, process_appended_hash, verify_simple_hash;
//   - [CHIP] bootloader_common_loader.c bootloader_common_check_chip_validity;
//   - [PART] components/bootloader_support/src/flash_partitions.c
//     esp_partition_table_verify and esp_flash_partitions.h
//     (esp_partition_info_t, ESP_PARTITION_MAGIC, ESP_PARTITION_MAGIC_MD5);
//   - [UTIL] bootloader_utility.c bootloader_utility_load_partition_table,
//     bootloader_utility_get_selected_boot_partition.

// espImageMagic is ESP_IMAGE_HEADER_MAGIC; espAppDescMagic is
// ESP_APP_DESC_MAGIC_WORD; espMaxSegments is ESP_IMAGE_MAX_SEGMENTS [IMG].
const (
	espImageMagic    = 0xE9
	espAppDescMagic  = 0xABCD5432
	espMaxSegments   = 16
	espImageHdrLen   = 24 // sizeof(esp_image_header_t)
	espSegmentHdrLen = 8
	espHashLen       = 32
	espChipIDESP32   = 0 // ESP_CHIP_ID_ESP32
	espAppDescLen    = 256
)

// espSegment is one segment of an image: where it loads, and where its data
// lies in flash.
type espSegment struct {
	loadAddr, dataLen, dataAt uint32
}

// espAppDesc is the esp_app_desc_t at the start of an app's first segment
// (the .flash.appdesc section): the fields the app prints at start.
type espAppDesc struct {
	version, project, time, date, idfVer string
	elfSHA256                            [32]byte
}

// espImage is an image header read from flash, its segments and, for an
// app, its description.
type espImage struct {
	at           uint32
	spiMode      byte
	spiSpeed     byte // low nibble of byte 3
	spiSize      byte // high nibble
	entry        uint32
	chipID       uint16
	hashAppended bool
	segments     []espSegment
	length       uint32 // the whole image, checksum and hash included
	desc         *espAppDesc
}

// imageError is a refusal the bootloader logs: its message, as ESP-IDF's
// code prints it, and the tag it prints it under.
type imageError struct{ tag, msg string }

func (e *imageError) Error() string { return e.tag + ": " + e.msg }

func imageErr(tag, format string, a ...any) *imageError {
	return &imageError{tag: tag, msg: fmt.Sprintf(format, a...)}
}

// flashReader reads n bytes of flash at off.
type flashReader func(off, n uint32) ([]byte, error)

// readESPImage reads the image at `at` in a partition of partSize bytes. With
// verify it checks what image_load checks in ESP_IMAGE_VERIFY/LOAD mode: the
// magic, the chip, the segment count and lengths, the checksum, the
// appended SHA-256 and the length against the partition [FMT]. Flash-mapped
// segments' alignment to the 64 KB MMU page (verify_segment_header) is not
// checked: the simulator maps nothing. [NOT MODELLED]
func readESPImage(read flashReader, at, partSize uint32, verify bool) (*espImage, error) {
	h, err := read(at, espImageHdrLen)
	if err != nil {
		return nil, err
	}
	img := &espImage{at: at, spiMode: h[2], spiSpeed: h[3] & 0x0F, spiSize: h[3] >> 4,
		entry: binary.LittleEndian.Uint32(h[4:]), chipID: binary.LittleEndian.Uint16(h[12:]), hashAppended: h[23] == 1}
	if h[0] != espImageMagic {
		return nil, imageErr("esp_image", "image at 0x%x has invalid magic byte (nothing flashed here?)", at)
	}
	if verify && img.chipID != espChipIDESP32 {
		return nil, imageErr("boot_comm", "mismatch chip ID, expected %d, found %d", espChipIDESP32, img.chipID)
	}
	count := int(h[1])
	if count > espMaxSegments {
		return nil, imageErr("esp_image", "image at 0x%x segment count %d exceeds max %d", at, count, espMaxSegments)
	}
	sum := byte(0xEF) // ESP_ROM_CHECKSUM_INITIAL, folded: process_checksum XORs words, then their bytes
	sha := sha256.New()
	sha.Write(h)
	next := uint64(at) + espImageHdrLen
	for i := range count {
		sh, err := read(uint32(next), espSegmentHdrLen)
		if err != nil {
			return nil, err
		}
		sha.Write(sh)
		seg := espSegment{loadAddr: binary.LittleEndian.Uint32(sh), dataLen: binary.LittleEndian.Uint32(sh[4:]), dataAt: uint32(next) + espSegmentHdrLen}
		if seg.dataLen&3 != 0 || seg.dataLen >= 16<<20 {
			return nil, imageErr("esp_image", "invalid segment length 0x%x", seg.dataLen)
		}
		if uint64(seg.dataAt)+uint64(seg.dataLen) > uint64(at)+uint64(partSize) || uint64(seg.dataAt)+uint64(seg.dataLen) > ESP32FlashSize {
			// The real loader reads on through the flash (or wraps); whatever
			// it finds there fails the checksum at the latest.
			return nil, imageErr("esp_image", "Image length %d doesn't fit in partition length %d", uint64(seg.dataAt)+uint64(seg.dataLen)-uint64(at), partSize)
		}
		data, err := read(seg.dataAt, seg.dataLen)
		if err != nil {
			return nil, err
		}
		for _, b := range data {
			sum ^= b
		}
		sha.Write(data)
		if i == 0 && len(data) >= espAppDescLen && binary.LittleEndian.Uint32(data) == espAppDescMagic {
			img.desc = parseAppDesc(data)
		}
		img.segments = append(img.segments, seg)
		next = uint64(seg.dataAt) + uint64(seg.dataLen)
	}
	// The checksum byte ends a 16-byte block after the segments (process_checksum).
	unpadded := uint32(next - uint64(at))
	pad := ((unpadded+1+15)&^15 - unpadded)
	tail, err := read(uint32(next), pad)
	if err != nil {
		return nil, err
	}
	sha.Write(tail)
	if verify && tail[pad-1] != sum {
		return nil, imageErr("esp_image", "Checksum failed. Calculated 0x%x read 0x%x", sum, tail[pad-1])
	}
	img.length = unpadded + pad
	if img.hashAppended {
		digest, err := read(at+img.length, espHashLen)
		if err != nil {
			return nil, err
		}
		img.length += espHashLen
		if img.length > partSize {
			return nil, imageErr("esp_image", "Image length %d doesn't fit in partition length %d", img.length, partSize)
		}
		// For non-secure boot the bootloader's own hash is not checked
		// (image_load: verify_sha is false at ESP_BOOTLOADER_OFFSET).
		if verify && at != espBootloaderOffset && !bytes.Equal(sha.Sum(nil), digest) {
			return nil, imageErr("esp_image", "Image hash failed - image is corrupt")
		}
	} else if img.length > partSize {
		return nil, imageErr("esp_image", "Image length %d doesn't fit in partition length %d", img.length, partSize)
	}
	return img, nil
}

// parseAppDesc reads esp_app_desc_t: magic, secure_version, reserv1[2],
// version[32], project_name[32], time[16], date[16], idf_ver[32],
// app_elf_sha256[32] [IMG].
func parseAppDesc(d []byte) *espAppDesc {
	str := func(b []byte) string {
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		return string(b)
	}
	a := &espAppDesc{version: str(d[16:48]), project: str(d[48:80]), time: str(d[80:96]), date: str(d[96:112]), idfVer: str(d[112:144])}
	copy(a.elfSHA256[:], d[144:176])
	return a
}

// Where the ROM finds the second-stage bootloader (ESP_BOOTLOADER_OFFSET).
const espBootloaderOffset = 0x1000

// The partition table's offsets the simulated bootloader looks at, in turn:
// ESP-IDF's default CONFIG_PARTITION_TABLE_OFFSET, then the 0xc000 of
// esp-qcloud's sdkconfig. A real bootloader knows the one offset it was built
// with; the simulator cannot read it from the bootloader's code.
// [NOT FROM A SOURCE]
var espTableOffsets = []uint32{0x8000, 0xc000}

// espPartition is esp_partition_info_t: magic 0x50AA, type, subtype,
// offset, size, label[16], flags [PART].
type espPartition struct {
	typ, subtype byte
	offset, size uint32
	label        string
}

// Partition types and subtypes the bootloader and the kits use (esp_flash_partitions.h).
const (
	partTypeApp      = 0x00
	partTypeData     = 0x01
	partSubFactory   = 0x00
	partSubTest      = 0x20
	partSubOTAFlag   = 0x10
	partSubOTAMask   = 0x0F
	partSubDataOTA   = 0x00
	partSubDataPHY   = 0x01
	partSubDataNVS   = 0x02
	partSubDataNVSK  = 0x04
	partSubDataEfuse = 0x05
	espTableMaxLen   = 0xC00 // ESP_PARTITION_TABLE_MAX_LEN
)

// readPartitionTable reads and verifies the table at off as
// esp_partition_table_verify does: entries with magic 0x50AA, an MD5 entry
// (0xEBEB, 14 bytes 0xFF, the MD5 of the entries before it) checked where
// present, an end of 0xFF bytes. The bootloader is built with
// CONFIG_PARTITION_TABLE_MD5 (its default), so an entry with a bad MD5
// fails; a table without one is accepted. A refusal gives the reason the
// bootloader logs (tag flash_parts): "partition %d invalid magic number
// 0x%x" as flash_partitions.c words it; the MD5 refusal's wording is the
// simulator's. [NOT FROM A SOURCE: that wording]
func readPartitionTable(read flashReader, off uint32) ([]espPartition, string) {
	b, err := read(off, espTableMaxLen)
	if err != nil {
		return nil, "flash read error"
	}
	var parts []espPartition
	for i := 0; i+32 <= len(b); i += 32 {
		e := b[i : i+32]
		switch {
		case e[0] == 0xAA && e[1] == 0x50:
			parts = append(parts, espPartition{typ: e[2], subtype: e[3],
				offset: binary.LittleEndian.Uint32(e[4:]), size: binary.LittleEndian.Uint32(e[8:]),
				label: strings.TrimRight(string(e[12:28]), "\x00")})
		case e[0] == 0xEB && e[1] == 0xEB:
			sum := md5.Sum(b[:i])
			if !bytes.Equal(e[16:32], sum[:]) {
				return nil, "partition table MD5 mismatch"
			}
		case bytes.Equal(e, bytes.Repeat([]byte{0xFF}, 32)) && len(parts) > 0:
			return parts, ""
		default:
			return nil, fmt.Sprintf("partition %d invalid magic number 0x%x", i/32, binary.LittleEndian.Uint16(e))
		}
	}
	return parts, ""
}

// partitionUsage is the usage column of the bootloader's table listing [UTIL].
func partitionUsage(p espPartition) string {
	switch p.typ {
	case partTypeApp:
		switch {
		case p.subtype == partSubFactory:
			return "factory app"
		case p.subtype == partSubTest:
			return "test app"
		case p.subtype&^partSubOTAMask == partSubOTAFlag:
			return "OTA app"
		}
		return "Unknown app"
	case partTypeData:
		switch p.subtype {
		case partSubDataOTA:
			return "OTA data"
		case partSubDataPHY:
			return "RF data"
		case partSubDataNVS:
			return "WiFi data"
		case partSubDataNVSK:
			return "NVS keys"
		case partSubDataEfuse:
			return "efuse"
		}
		return "Unknown data"
	}
	return "unknown"
}

func findPartition(parts []espPartition, label string) (espPartition, bool) {
	for _, p := range parts {
		if p.label == label {
			return p, true
		}
	}
	return espPartition{}, false
}
