package sim

import (
	"crypto/sha256"
	"encoding/binary"
)

// Small images for the simulated ESP32 to boot, for the demo and for anyone
// driving the simulator by hand: a second-stage bootloader for 0x1000 and an
// app for its app partition, in ESP-IDF's image format (esp32_image.go's
// [IMG]: header, segments, checksum; the app with its esp_app_desc_t and an
// appended SHA-256, as `idf.py build` writes them). The code inside is no
// code (zeros): the simulator cannot run it and does not try; what it reads
// is the format and, for the app, the project name that tells which kit's
// model runs (espKits: "led_light" esp-qcloud, "example_solo" esp-aliyun, "linkkit_example_gateway" iotkit-embedded,
// "dynregmq_basic_demo" and "dynregmq_nwl_demo" LinkSDK).

// ESP32BootloaderImage is a bootloader image: one segment loaded into the
// ESP32's DRAM, the entry in IRAM (where ESP-IDF's bootloader loads), DIO at
// 40 MHz, 4 MB flash, no appended hash (the bootloader's is not checked).
func ESP32BootloaderImage() []byte {
	return espImageBytes(0x40080694, false, []espImageSeg{
		{0x3FFF0030, make([]byte, 64)},
		{0x40078000, make([]byte, 256)},
	})
}

// ESP32AppImage is an app image whose esp_app_desc_t names project and
// version, with ESP-IDF v4.4.4 as the IDF it was built with and a hash
// appended: a DROM segment holding the description, an IROM segment.
func ESP32AppImage(project, version string) []byte {
	desc := make([]byte, espAppDescLen)
	binary.LittleEndian.PutUint32(desc, espAppDescMagic)
	copy(desc[16:48], version)
	copy(desc[48:80], project)
	copy(desc[80:96], "00:00:00")
	copy(desc[96:112], "Jan  1 2026")
	copy(desc[112:144], "v4.4.4")
	sum := sha256.Sum256([]byte(project + "\x00" + version))
	copy(desc[144:176], sum[:])
	return espImageBytes(0x40081000, true, []espImageSeg{
		{0x3F400020, desc},
		{0x400D0020, make([]byte, 1024)},
	})
}

type espImageSeg struct {
	addr uint32
	data []byte
}

// espImageBytes lays an image out: the 24-byte header (magic 0xE9, segment
// count, DIO, 40 MHz / 4 MB, entry, WP pin 0xEE, chip id 0 = ESP32,
// hash_appended), each segment's address and length then its data (a
// multiple of 4), 0x00 padding to the end of a 16-byte block whose last
// byte is the checksum (0xEF XOR every data byte), then the SHA-256 of all
// that when hashed.
func espImageBytes(entry uint32, hashed bool, segs []espImageSeg) []byte {
	h := make([]byte, espImageHdrLen)
	h[0], h[1], h[2], h[3] = espImageMagic, byte(len(segs)), 2, 0x20
	binary.LittleEndian.PutUint32(h[4:], entry)
	h[8] = 0xEE
	if hashed {
		h[23] = 1
	}
	out := h
	sum := byte(0xEF)
	for _, s := range segs {
		data := append([]byte(nil), s.data...)
		for len(data)%4 != 0 {
			data = append(data, 0)
		}
		out = binary.LittleEndian.AppendUint32(out, s.addr)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(data)))
		out = append(out, data...)
		for _, b := range data {
			sum ^= b
		}
	}
	pad := (len(out)+1+15)&^15 - len(out)
	out = append(out, make([]byte, pad)...)
	out[len(out)-1] = sum
	if hashed {
		d := sha256.Sum256(out)
		out = append(out, d[:]...)
	}
	return out
}
