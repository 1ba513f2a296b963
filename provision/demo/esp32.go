package demo

import (
	"errors"
	"fmt"
	"strings"

	"github.com/iotburn/iotburn/burner/flashmap"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/templates/nvs"
)

// espKit is what an ESP32 board of the demo gets in the same pass as its
// own fctry partition: the kit's partition table, a bootloader and the
// kit's app (the simulator's small images: burner/sim esp32_appimage.go).
type espKit struct {
	name, project string
	table         *flashmap.Table
	regions       []flashmap.Region
}

// The kits' own partition tables, as their repositories ship them:
// espressif/esp-aliyun examples/solo/example_solo/partitions_esp32.csv (the
// table at ESP-IDF's default 0x8000) and espressif/esp-qcloud
// config/partition_table/partitions_4MB.csv (the table at 0xc000, the
// kit's sdkconfig CONFIG_PARTITION_TABLE_OFFSET). testdata/partitions holds
// both, with ESP-IDF's own binaries of them.
const (
	esp32AliyunTable = `# Name,   Type, SubType, Offset,   Size, Flags
nvs,      data, nvs,     ,        0x4000,
otadata,  data, ota,     ,        0x2000,
phy_init, data, phy,     ,        0x1000,
ota_0,    app,  ota_0,   ,        1M,
ota_1,    app,  ota_1,   ,        1M,
fctry,    data, nvs,     ,        0x4000
`
	esp32QCloudTable = `# Name,     Type, SubType,  Offset,     Size,   Flags
nvs,        data, nvs,      0xd000,     32K,
fctry,      data, nvs,      0x15000,    16K,
log_status, data, nvs,      0x19000,    16K,
otadata,    data, ota,      0x1d000,    8K,
phy_init,   data, phy,      0x1f000,    4K,
ota_0,      app,  ota_0,    0x20000,    1856K,
ota_1,      app,  ota_1,    0x1f0000,   1856K,
coredump,   data, coredump, 0x3c0000,   64K,
log_info,   data, 0xfe,     0x3d0000,   64K,
reserved,   data, 0xff,     0x3e0000,   128K,
`
)

// demoKit picks the kit for the platform and mode: esp-qcloud's led_light
// (device keys only: the kit has no dynamic registration), esp-aliyun's
// example_solo (device keys, and pre-registration over HTTPS: its only
// dynamic registration), and for registration-free an app on Alibaba's
// LinkSDK registering over MQTT without a pre-created name (the simulator's
// dynregmq_nwl_demo), since neither Espressif kit can.
func demoKit(platform string, mode provision.Mode) (*espKit, error) {
	k := &espKit{}
	csv, offset := esp32AliyunTable, uint32(0x8000)
	switch {
	case platform == "tencent":
		k.name, k.project, csv, offset = "espressif/esp-qcloud", "led_light", esp32QCloudTable, 0xc000
	case mode == provision.ModeRegistrationFree:
		k.name, k.project = "Alibaba's LinkSDK (MQTT dynamic registration, no whitelist)", "dynregmq_nwl_demo"
	default:
		k.name, k.project = "espressif/esp-aliyun", "example_solo"
	}
	return newESPKit(k.name, k.project, csv, offset)
}

// newESPKit is the kit of the app project in the layout of the partition
// table csv at offset: its table, a bootloader and the app.
func newESPKit(name, project, csv string, offset uint32) (*espKit, error) {
	k := &espKit{name: name, project: project}
	t, err := flashmap.ReadTableCSV(strings.NewReader(csv), k.name+" partition table", offset)
	if err != nil {
		return nil, err
	}
	bin, err := t.Binary()
	if err != nil {
		return nil, err
	}
	app, err := t.Find("ota_0")
	if err != nil {
		return nil, err
	}
	k.table = t
	k.regions = []flashmap.Region{
		flashmap.FromFile("bootloader.bin", 0x1000, sim.ESP32BootloaderImage()),
		flashmap.FromFile("partition-table.bin", offset, bin),
		flashmap.FromFile(k.project+".bin", app.Offset, sim.ESP32AppImage(k.project, "1.0.0")),
	}
	return k, nil
}

// crossCheckESP32 reads every board's fctry partition straight from its
// flash file, independently of the ledger and of the line: the product's
// key, a name of its own, and the secret the platform holds for it where the
// mode gives one (a board that registered itself with esp-aliyun keeps the
// DeviceSecret it was issued there too; a registration-free one holds none).
func crossCheckESP32(boardsDir string, k *espKit, n int, platform, product, productSecret string, mode provision.Mode, issued func(string) (string, bool)) error {
	part, err := k.table.Find(provision.DefaultPartitionName)
	if err != nil {
		return err
	}
	keys, err := nvs.DefaultKeys(platform)
	if err != nil {
		return err
	}
	names := map[string]int{}
	var errs []error
	for i := range n {
		img, err := sim.LoadFlashImage(boardsDir, i)
		if err != nil {
			return err
		}
		if uint64(len(img)) < part.End() {
			errs = append(errs, fmt.Errorf("board %d: its flash is smaller than the table says", i))
			continue
		}
		items, err := nvs.Read(img[part.Offset:part.End()])
		if err != nil {
			errs = append(errs, fmt.Errorf("board %d: fctry does not parse: %w", i, err))
			continue
		}
		got := map[string]string{}
		for _, it := range items {
			if s, ok := it.Value.(string); ok && it.Namespace == keys.Namespace {
				got[it.Key] = s
			}
		}
		name := got[keys.DeviceName]
		switch {
		case got[keys.ProductID] != product:
			errs = append(errs, fmt.Errorf("board %d holds product %q, want %s", i, got[keys.ProductID], product))
		case name == "":
			errs = append(errs, fmt.Errorf("board %d holds no device name", i))
		case mode.ProductLevel() && got[keys.ProductSecret] != productSecret:
			errs = append(errs, fmt.Errorf("board %d (%s) does not hold the product's secret", i, name))
		}
		if other, dup := names[name]; dup && name != "" {
			errs = append(errs, fmt.Errorf("boards %d and %d both hold %s", other, i, name))
		}
		names[name] = i
		ds, has := got[keys.DeviceSecret]
		switch {
		case mode == provision.ModeRegistrationFree && has:
			errs = append(errs, fmt.Errorf("board %d (%s) holds a device secret in registration-free mode", i, name))
		case issued == nil, mode.ProductLevel() && !has:
		default:
			want, ok := issued(name)
			if !ok || want != ds {
				errs = append(errs, fmt.Errorf("board %d holds a secret for %s that is not the one the platform issued", i, name))
			}
		}
	}
	if len(names) != n && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%d boards hold a credential, want %d", len(names), n))
	}
	return errors.Join(errs...)
}
