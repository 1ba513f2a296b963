// Package sim is the device simulator behind `iotburn sim device`: a farm of
// boards, each a pty pair whose slave end appears as DIR/ttySIM00, DIR/ttySIM01,
// … (stable symlinks to /dev/pts/N), paced at the configured baud rate, with
// its identity (MAC, IMEI) and flash kept in DIR/board-NN.json (and, for an
// ESP32, its raw flash in DIR/board-NN.flash) so that a restarted simulator
// brings back the same boards with what was burned into them.
//
// The files split along one line: farm.go, board.go, pty_linux.go, pace.go,
// flash.go, identity.go and fault.go are the machinery every board kind shares
// (pty, pacing, flash, faults); a kind is a firmware (firmware.go):
// tencent*.go the Tencent QCloud_AT firmware (tencent_gateway.go its MQTT
// connection and gateway commands: a gateway's uplink that binds its
// sub-devices and brings them online), aliyun*.go Alibaba's IDMAU AT
// firmware, esp32*.go the ESP32's ROM bootloader and, once uploaded, esptool's
// flasher stub (esp32_stub.go), on a model of the chip's time (esp32_time.go,
// spiflash.go: the W25Q32JV's datasheet times and the loaders' erase plans;
// esp32_inflate.go: the ROM's block-by-block inflate). After a reset the
// ESP32 boots (esp32_boot.go: the ROM's and ESP-IDF's bootloader's checks
// and log, esp32_image.go and esp32_appimage.go the app image, esp32_log.go
// the console's formats, esp32_nvs.go the kits' fctry) and runs a model of
// the kit its app image names: esp32_qcloud.go (espressif/esp-qcloud),
// esp32_aliyun.go (espressif/esp-aliyun's example_solo), esp32_linksdk.go
// (Alibaba's LinkSDK, for registration-free).
//
// Every answer comes from a named source cited beside the code; where there
// is none the code says so and takes the harsher behaviour.
package sim
