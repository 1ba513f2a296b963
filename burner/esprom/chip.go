package esprom

// Chip is an Espressif chip family as the ROM identifies it.
type Chip int

const (
	ChipUnknown Chip = iota
	ESP8266
	ESP32
	ESP32S2
	ESP32S3
	ESP32C2
	ESP32C3
	ESP32C6
	ESP32H2
)

var chipNames = [...]string{"unknown chip", "ESP8266", "ESP32", "ESP32-S2", "ESP32-S3", "ESP32-C2", "ESP32-C3", "ESP32-C6", "ESP32-H2"}

func (c Chip) String() string {
	if c >= 0 && int(c) < len(chipNames) {
		return chipNames[c]
	}
	return chipNames[0]
}

// chipFromMagic maps the value at CHIP_DETECT_MAGIC_REG_ADDR (0x40001000)
// to the chip, with the values esptool's targets list (ESP32 0x00F01D83;
// the newer chips' values from esptool 4.5, before they moved to chip ids).
func chipFromMagic(v uint32) Chip {
	switch v {
	case 0x00F01D83:
		return ESP32
	case 0xFFF0C101:
		return ESP8266
	case 0x000007C6:
		return ESP32S2
	case 0x00000009:
		return ESP32S3
	case 0x6F51306F, 0x7C41A06F:
		return ESP32C2
	case 0x6921506F, 0x1B31506F:
		return ESP32C3
	case 0x2CE0806F:
		return ESP32C6
	case 0xD7B73E80:
		return ESP32H2
	}
	return ChipUnknown
}
