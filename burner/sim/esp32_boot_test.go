package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/aliyun"
	"github.com/iotburn/iotburn/registry/emulator"
	"github.com/iotburn/iotburn/registry/tencent"
	"github.com/iotburn/iotburn/templates/nvs"
)

// The booted ESP32 against the emulator over real HTTP and MQTT: its UART
// log as the kits print it (the expected lines are the kits' own words,
// copied by hand from their sources named in esp32_qcloud.go,
// esp32_aliyun.go, esp32_linksdk.go, esp32_boot.go), and the platform's view
// of what the board did.

// handImage builds an ESP image by hand from ESP-IDF's format
// (esp_image_format.h; the checksum as process_checksum computes it, over
// 32-bit words then folded): independent of esp32_appimage.go.
func handImage(entry uint32, hashed bool, segs ...[2]any) []byte {
	var b bytes.Buffer
	hdr := [24]byte{0xE9, byte(len(segs)), 2, 0x20}
	binary.LittleEndian.PutUint32(hdr[4:], entry)
	hdr[8] = 0xEE
	if hashed {
		hdr[23] = 1
	}
	b.Write(hdr[:])
	word := uint32(0xEF)
	for _, s := range segs {
		addr, data := s[0].(uint32), s[1].([]byte)
		binary.Write(&b, binary.LittleEndian, [2]uint32{addr, uint32(len(data))})
		b.Write(data)
		for i := 0; i < len(data); i += 4 {
			word ^= binary.LittleEndian.Uint32(data[i:])
		}
	}
	for (b.Len()+1)%16 != 0 {
		b.WriteByte(0)
	}
	b.WriteByte(byte(word>>24) ^ byte(word>>16) ^ byte(word>>8) ^ byte(word))
	if hashed {
		d := sha256.Sum256(b.Bytes())
		b.Write(d[:])
	}
	return b.Bytes()
}

// handApp is an app whose esp_app_desc_t (esp_app_format.h: magic, secure
// version, 2 reserved words, version[32], project_name[32], time[16],
// date[16], idf_ver[32], app_elf_sha256[32], reserved) names project.
func handApp(project string) []byte {
	desc := make([]byte, 256)
	binary.LittleEndian.PutUint32(desc, 0xABCD5432)
	copy(desc[16:], "1.0.0")
	copy(desc[48:], project)
	copy(desc[80:], "12:00:00")
	copy(desc[96:], "Jul  1 2026")
	copy(desc[112:], "v4.4.4")
	return handImage(0x40082000, true, [2]any{uint32(0x3F400020), desc}, [2]any{uint32(0x400D0020), bytes.Repeat([]byte{1, 2, 3, 4}, 64)})
}

var handBootloader = handImage(0x40080694, false, [2]any{uint32(0x3FFF0030), make([]byte, 32)})

// espRig is one simulated ESP32 on a pty, the emulator beside it.
type espRig struct {
	t    *testing.T
	emu  *emulator.Emulator
	cfg  emulator.Config
	base string
	b    *Board
	port burner.Port
	log  bytes.Buffer
	seen int // log bytes already matched
}

func newESPRig(t *testing.T, dynreg emulator.ProductSettings) *espRig {
	t.Helper()
	cfg := emulator.Config{Products: []string{"ABCDEFGHIJ"}, AliyunProducts: []string{"a1Xyz"}, TaskDelay: -1, RateLimit: -1, DynReg: dynreg}
	cfg.SecretID, cfg.SecretKey = emulator.NewKeyPair()
	cfg.AliyunAccessKeyID, cfg.AliyunAccessKeySecret = emulator.NewAliyunKeyPair()
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	mqtt, err := emu.StartMQTT("")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Start(Options{Dir: t.TempDir(), Kind: "esp32", Count: 1, Baud: Unpaced, Cloud: srv.URL, MQTT: mqtt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(); srv.Close(); emu.Close() })
	r := &espRig{t: t, emu: emu, cfg: cfg, base: srv.URL, b: f.Boards()[0]}
	r.port, err = burner.Open(r.b.Path(), burner.DefaultBaud)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.port.Close() })
	r.port.SetReadTimeout(50 * time.Millisecond)
	return r
}

// flash writes data at off, as a line would have.
func (r *espRig) flash(off int, data []byte) {
	r.t.Helper()
	if err := updateFlashFile(flashFileName(r.b.filePath), off, len(data), func(b []byte) { copy(b, data) }); err != nil {
		r.t.Fatal(err)
	}
}

// aliyunBoard is esp-aliyun's layout (testdata/partitions/aliyun.bin, made
// by ESP-IDF's gen_esp32part.py: nvs 0x9000, otadata 0xd000, ota_0 0x10000,
// fctry 0x210000 16 KB) with the app of project and the credential c.
func (r *espRig) aliyunBoard(project string, c registry.Credential) {
	r.t.Helper()
	table, err := os.ReadFile(filepath.Join("..", "..", "testdata", "partitions", "aliyun.bin"))
	if err != nil {
		r.t.Fatal(err)
	}
	part, err := nvs.Format{Size: 0x4000}.Render(c)
	if err != nil {
		r.t.Fatal(err)
	}
	r.flash(0x1000, handBootloader)
	r.flash(0x8000, table)
	r.flash(0x10000, handApp(project))
	r.flash(0x210000, part)
}

// qcloudBoard is esp-qcloud's layout (qcloud_4MB.bin at 0xc000: fctry
// 0x15000 16 KB, ota_0 0x20000).
func (r *espRig) qcloudBoard(c registry.Credential) {
	r.t.Helper()
	table, err := os.ReadFile(filepath.Join("..", "..", "testdata", "partitions", "qcloud_4MB.bin"))
	if err != nil {
		r.t.Fatal(err)
	}
	part, err := nvs.Format{Size: 0x4000}.Render(c)
	if err != nil {
		r.t.Fatal(err)
	}
	r.flash(0x1000, handBootloader)
	r.flash(0xc000, table)
	r.flash(0x20000, handApp("led_light"))
	r.flash(0x15000, part)
}

// expect reads the UART until want appears after what was matched before
// (the deadline only bounds a failing test).
func (r *espRig) expect(want string) string {
	r.t.Helper()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if i := strings.Index(r.log.String()[r.seen:], want); i >= 0 {
			r.seen += i + len(want)
			return r.log.String()
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no %q on the UART; it printed:\n%s", want, r.log.String())
		}
		n, err := r.port.Read(buf)
		if err != nil {
			r.t.Fatalf("reading the UART: %v\n%s", err, r.log.String())
		}
		r.log.Write(buf[:n])
	}
}

func (r *espRig) status(platform, product, name string, online bool) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, ok := r.emu.DeviceStatus(platform, product, name)
		if ok && st.Online == online {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s/%s: exists %v, status %+v; want online %v", product, name, ok, st, online)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *espRig) create(platform, product string, names ...string) map[string]string {
	r.t.Helper()
	var p registry.Platform
	var err error
	if platform == "aliyun" {
		p, err = aliyun.New(aliyun.Config{AccessKeyID: r.cfg.AliyunAccessKeyID, AccessKeySecret: r.cfg.AliyunAccessKeySecret, Endpoint: r.base})
	} else {
		p, err = tencent.New(tencent.Config{SecretID: r.cfg.SecretID, SecretKey: r.cfg.SecretKey, Region: tencent.DefaultRegion, Endpoint: r.base})
	}
	if err != nil {
		r.t.Fatal(err)
	}
	ctx := context.Background()
	task, err := p.StartBatch(ctx, product, names)
	if err != nil {
		r.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		done, err := p.BatchDone(ctx, product, task)
		if err != nil {
			r.t.Fatal(err)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			r.t.Fatal("batch never finished")
		}
	}
	res, err := p.BatchResults(ctx, product, task)
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range res {
		out[d.DeviceName] = d.DeviceSecret
	}
	return out
}

// fctry reads the board's fctry partition back as NVS items.
func (r *espRig) fctry(off, size int) map[string]any {
	r.t.Helper()
	img, err := r.b.ReadFlash(off, size)
	if err != nil {
		r.t.Fatal(err)
	}
	items, err := nvs.Read(img)
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]any{}
	for _, it := range items {
		out[it.Namespace+"/"+it.Key] = it.Value
	}
	return out
}

// Registration-free on LinkSDK's MQTT dynamic registration: the board
// registers (regnwl), logs in with the token and stays online; a reset into
// download mode ends its session and the ROM answers SYNC again.
func TestESP32BootRegistrationFree(t *testing.T) {
	r := newESPRig(t, emulator.ProductSettings{DynamicRegistration: true, RegistrationFree: true})
	ps, _ := r.emu.ProductSecret("aliyun", "a1Xyz")
	r.aliyunBoard("dynregmq_nwl_demo", registry.Credential{Platform: "aliyun", ProductID: "a1Xyz", DeviceName: "ESP32A1", ProductSecret: ps})
	if err := r.b.Reset(false); err != nil {
		t.Fatal(err)
	}
	r.expect("rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)")
	r.expect("load:0x3fff0030,len:32")
	r.expect("I (") // ESP-IDF's log format, esp_log.h LOG_FORMAT
	r.expect(" boot: Partition Table:")
	r.expect(" 3 ota_0            OTA app          00 10 00010000 00100000")
	r.expect("boot: No factory image, trying OTA 0")
	r.expect("boot: Loaded app from partition at offset 0x10000")
	r.expect("cpu_start: Project name:     dynregmq_nwl_demo")
	r.expect("username: ESP32A1&a1Xyz")
	log := r.expect("AIOT_MQTTEVT_CONNECT\r\n")
	r.status("aliyun", "a1Xyz", "ESP32A1", true)
	if strings.Contains(log, ps) {
		t.Fatal("the product secret is on the UART")
	}
	var reg *emulator.Registration
	for _, g := range r.emu.Registrations() {
		if g.DeviceName == "ESP32A1" {
			reg = &g
		}
	}
	if reg == nil || reg.Mode != emulator.ModeRegistrationFree || reg.Result != "OK" || reg.Transport != "mqtt regnwl" {
		t.Fatalf("the platform saw %+v, want one registration-free registration over MQTT", reg)
	}
	if err := r.b.Reset(true); err != nil {
		t.Fatal(err)
	}
	r.expect("boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\nwaiting for download\r\n")
	r.status("aliyun", "a1Xyz", "ESP32A1", false)
	r.port.Write(req(0x08, 0, append([]byte{7, 7, 0x12, 0x20}, bytes.Repeat([]byte{0x55}, 32)...)...))
	r.expect("\xC0\x01\x08\x04\x00\x07\x07\x12\x20\x00\x00\x00\x00\xC0")
}

// A wrong ProductSecret: the broker refuses the registration's CONNECT
// (bad username or password, CONNACK 4), which LinkSDK reports as
// STATE_MQTT_CONNACK_RCODE_BAD_USERNAME_PASSWORD, -0x0304.
func TestESP32BootRegistrationFreeWrongKey(t *testing.T) {
	r := newESPRig(t, emulator.ProductSettings{DynamicRegistration: true, RegistrationFree: true})
	r.aliyunBoard("dynregmq_nwl_demo", registry.Credential{Platform: "aliyun", ProductID: "a1Xyz", DeviceName: "ESP32A2", ProductSecret: "notTheProductSecret0123"})
	r.b.Reset(false)
	r.expect("aiot_dynregmq_send_request failed: -0x0304\r\n")
	rej := r.emu.MQTTRejections()
	if len(rej) != 1 || rej[0].ReturnCode != 4 || rej[0].DeviceName != "ESP32A2" {
		t.Fatalf("rejections %+v, want one bad-username-or-password for ESP32A2", rej)
	}
	if _, ok := r.emu.DeviceStatus("aliyun", "a1Xyz", "ESP32A2"); ok {
		t.Fatal("a refused registration created the device")
	}
}

// esp-aliyun's example_solo: HTTPS pre-registration of a created name, the
// DeviceSecret saved in the KV store and in fctry (as the kit does), the
// login; the next boot logs in with it, and with fctry burned again it comes
// from the KV store. On a name the
// platform does not know (registration-free product) it never connects.
func TestESP32BootAliyunSolo(t *testing.T) {
	r := newESPRig(t, emulator.ProductSettings{DynamicRegistration: true})
	r.create("aliyun", "a1Xyz", "ESP32S1")
	ps, _ := r.emu.ProductSecret("aliyun", "a1Xyz")
	r.aliyunBoard("example_solo", registry.Credential{Platform: "aliyun", ProductID: "a1Xyz", DeviceName: "ESP32S1", ProductSecret: ps})
	r.b.Reset(false)
	r.expect("Not found device secret, start to dynamic register")
	r.expect("DeviceSecret KV not exist, Now We Need Dynamic Register...")
	r.expect("Random Key: 8Ygb7ULYh53B6OA")
	r.expect("Dynamic Register Code: 200")
	r.expect("mqtt connect success!")
	log := r.expect("Cloud Connected")
	r.status("aliyun", "a1Xyz", "ESP32S1", true)
	secret, _ := r.emu.AliyunDevice("a1Xyz", "ESP32S1")
	if secret == "" || strings.Contains(log, secret) {
		t.Fatalf("secret %q empty or on the UART", secret)
	}
	got := r.fctry(0x210000, 0x4000)
	if got["aliyun-key/DeviceSecret"] != secret || got["aliyun-key/ProductKey"] != "a1Xyz" {
		t.Fatalf("fctry holds %v, want the DeviceSecret the platform issued beside the product key", keysOf(got))
	}
	if kv := r.fctry(0x9000, 0x4000)["iotkit-kv/DYNAMIC_REG_ESP"]; string(kv.([]byte)) != secret {
		t.Fatal("the KV store does not hold the DeviceSecret under DYNAMIC_REG_ESP")
	}
	// The next boot logs in with the secret fctry now holds, registering
	// nothing.
	r.b.Reset(false)
	log = r.expect("Cloud Connected")
	if strings.Count(log, "Not found device secret") != 1 {
		t.Fatal("the second boot registered again")
	}
	// With the product's partition burned again, the secret comes from the
	// KV store: the platform would refuse a second registration of an
	// active device.
	r.aliyunBoard("example_solo", registry.Credential{Platform: "aliyun", ProductID: "a1Xyz", DeviceName: "ESP32S1", ProductSecret: ps})
	r.b.Reset(false)
	r.expect("Get DeviceSecret from KV succeed")
	r.expect("Cloud Connected")
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestESP32BootAliyunSoloNameUnknown(t *testing.T) {
	r := newESPRig(t, emulator.ProductSettings{DynamicRegistration: true, RegistrationFree: true})
	ps, _ := r.emu.ProductSecret("aliyun", "a1Xyz")
	r.aliyunBoard("example_solo", registry.Credential{Platform: "aliyun", ProductID: "a1Xyz", DeviceName: "ESP32S2", ProductSecret: ps})
	r.b.Reset(false)
	r.expect("Get Device Secret Failed")
	r.expect("Dynamic Register Failed")
	r.expect("IOT_Linkkit_Connect Failed")
	r.expect("DeviceSecret KV not exist") // and it tries again
}

// esp-qcloud's led_light: the device key logs in; a wrong one is refused
// with esp-mqtt's words; a product-level partition (no device_secret) aborts
// and boot-loops, as the kit's ESP_ERROR_CHECK does.
func TestESP32BootQCloud(t *testing.T) {
	r := newESPRig(t, emulator.ProductSettings{})
	psk := r.create("tencent", "ABCDEFGHIJ", "esp01", "esp02")
	r.qcloudBoard(registry.Credential{Platform: "tencent", ProductID: "ABCDEFGHIJ", DeviceName: "esp01", DeviceSecret: psk["esp01"]})
	r.b.Reset(false)
	r.expect("esp_qcloud_mqtt: Connecting to mqtt://ABCDEFGHIJ.iotcloud.tencentdevices.com:1883")
	r.expect("esp_qcloud_mqtt: MQTT Connected")
	r.status("tencent", "ABCDEFGHIJ", "esp01", true)

	r.qcloudBoard(registry.Credential{Platform: "tencent", ProductID: "ABCDEFGHIJ", DeviceName: "esp02", DeviceSecret: psk["esp01"]})
	r.b.Reset(false)
	r.expect("MQTT_CLIENT: Connection refused, bad username or password")
	r.expect("esp_qcloud_mqtt: MQTT_EVENT_ERROR")
	r.status("tencent", "ABCDEFGHIJ", "esp01", false)

	r.qcloudBoard(registry.Credential{Platform: "tencent", ProductID: "ABCDEFGHIJ", DeviceName: "esp03", ProductSecret: "productSecretOfTencent"})
	r.b.Reset(false)
	r.expect("ESP_ERROR_CHECK failed: esp_err_t 0x1102 (ESP_ERR_NVS_NOT_FOUND)")
	r.expect(`expression: nvs_get_str(handle, "device_secret", g_device_profile->device_secret, &required_size)`)
	r.expect("Rebooting...")
	r.expect("rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)")
}

// What the ROM and the bootloader print when there is nothing to boot.
func TestESP32BootFailures(t *testing.T) {
	r := newESPRig(t, emulator.ProductSettings{})
	r.b.Reset(false)
	r.expect("invalid header: 0xffffffff\r\n")

	r.flash(0x1000, handBootloader)
	r.b.Reset(false)
	r.expect("boot: Failed to verify partition table")
	r.expect("boot: load partition table error!")

	table, _ := os.ReadFile(filepath.Join("..", "..", "testdata", "partitions", "aliyun.bin"))
	r.flash(0x8000, table)
	app := handApp("example_solo")
	app[40] ^= 0xFF // a data byte of the first segment (esp_app_desc_t reserv1)
	r.flash(0x10000, app)
	r.b.Reset(false)
	r.expect("esp_image: Checksum failed.")
	r.expect("boot: OTA app partition slot 0 is not bootable")
	r.expect("boot: No bootable app partitions in the partition table")
}

// The ROM's FLASH_END with reboot leaves download mode and boots the flash
// (the exported images boot: the demo's).
func TestESP32FlashEndBoots(t *testing.T) {
	r := newESPRig(t, emulator.ProductSettings{})
	table, _ := os.ReadFile(filepath.Join("..", "..", "testdata", "partitions", "aliyun.bin"))
	r.flash(0x1000, ESP32BootloaderImage())
	r.flash(0x8000, table)
	r.flash(0x10000, ESP32AppImage("some_app", "2.0"))
	r.port.Write(req(0x0D, 0, make([]byte, 8)...)) // SPI_ATTACH
	r.port.Write(req(0x04, 0, le(0)...))           // FLASH_END, reboot
	r.expect("\xC0\x01\x04\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\xC0")
	r.expect("rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)")
	r.expect("cpu_start: Project name:     some_app")
	r.expect("cpu_start: App version:      2.0")
}
