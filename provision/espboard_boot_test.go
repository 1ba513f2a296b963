package provision

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/esprom"
	"github.com/iotburn/iotburn/burner/flashmap"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/emulator"
	"github.com/iotburn/iotburn/templates/nvs"
)

// ESP32 boards in the product-level modes: the line burns the product's key
// with the kit's layout and firmware in one pass, and verify resets each
// board into its application, which registers itself and logs in; the
// verdict is the board's console and the platform's view.

// espKitMap is esp-aliyun's layout: the bootloader, the table ESP-IDF's
// gen_esp32part.py made from the kit's partitions_esp32.csv
// (testdata/partitions/aliyun.bin), and an app of project at ota_0.
func espKitMap(t *testing.T, project string) []flashmap.Region {
	t.Helper()
	table, err := os.ReadFile(filepath.Join("..", "testdata", "partitions", "aliyun.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return []flashmap.Region{
		flashmap.FromFile("bootloader.bin", 0x1000, sim.ESP32BootloaderImage()),
		flashmap.FromFile("partition-table.bin", 0x8000, table),
		flashmap.FromFile(project+".bin", 0x10000, sim.ESP32AppImage(project, "1.0.0")),
	}
}

// newESPWorld is a productWorld whose boards are ESP32s in download mode at
// the ROM's 115200, their MQTT broker mqtt ("" = the emulator's).
func newESPWorld(t *testing.T, platform string, settings emulator.ProductSettings, n int, mqtt string) *productWorld {
	t.Helper()
	w := newProductWorld(t, platform, "esp32", settings, 0)
	w.farm.Close()
	if mqtt == "" {
		mqtt = w.broker
	}
	farm, err := sim.Start(sim.Options{Dir: t.TempDir(), Kind: "esp32", Count: n, Cloud: w.url, MQTT: mqtt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	w.farm = farm
	return w
}

type espRun struct {
	line   LineResult
	verify VerifyResult
	events []Event
}

// runESP32 burns the world's ESP32 boards in mode with the app of project,
// then verifies them with their own registration.
func (w *productWorld) runESP32(t *testing.T, mode Mode, project, productSecret string) espRun {
	t.Helper()
	ctx := context.Background()
	var paths []string
	for _, b := range w.farm.Boards() {
		paths = append(paths, b.Path())
	}
	ports := func() ([]string, error) { return paths, nil }
	open, err := OpenESPBoard(ESPOptions{Baud: 921600, Format: nvs.Format{}, Common: espKitMap(t, project), Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	var r espRun
	r.line, err = RunLine(ctx, LineOptions{Ledger: w.ledger, Platform: "aliyun", Product: "a1Prod", Format: nvs.Format{}, Station: "t",
		Ports: ports, Open: open, Once: true, OpTimeout: 30 * time.Second,
		Mode: mode, ProductSecret: productSecret, NameFrom: "mac", Region: w.cloud.Region()})
	if err != nil {
		t.Fatal(err)
	}
	r.verify, r.events = w.verifyESP32(t, open, mode, productSecret)
	return r
}

func (w *productWorld) verifyESP32(t *testing.T, open OpenBoard, mode Mode, productSecret string) (VerifyResult, []Event) {
	t.Helper()
	var paths []string
	for _, b := range w.farm.Boards() {
		paths = append(paths, b.Path())
	}
	var mu sync.Mutex
	var events []Event
	vr, err := Verify(context.Background(), VerifyOptions{Ledger: w.ledger, Platform: "aliyun", Product: "a1Prod",
		Ports: func() ([]string, error) { return paths, nil }, Open: open,
		Cloud: w.cloud, Login: MQTTLogin(w.broker), TokenLogin: MQTTTokenLogin(w.broker),
		Mode: mode, ProductSecret: productSecret, Register: true, OpTimeout: 20 * time.Second,
		Events: func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	return vr, events
}

func (w *productWorld) unitOf(t *testing.T, b *sim.Board) ledger.Unit {
	t.Helper()
	u, ok, err := w.ledger.UnitByHW(strings.ToLower(b.MAC()))
	if err != nil || !ok {
		t.Fatalf("%s: no unit (%v)", b.Path(), err)
	}
	return u
}

func TestVerifyESP32RegistrationFree(t *testing.T) {
	w := newESPWorld(t, "aliyun", emulator.ProductSettings{DynamicRegistration: true, RegistrationFree: true}, 2, "")
	ps, _ := w.emu.ProductSecret("aliyun", "a1Prod")
	r := w.runESP32(t, ModeRegistrationFree, "dynregmq_nwl_demo", ps)
	if r.line.Burned != 2 || r.verify.Verified != 2 || r.verify.Failed+r.verify.NotChecked != 0 {
		t.Fatalf("line %+v, verify %+v, want 2 burned and 2 verified", r.line, r.verify)
	}
	for _, e := range r.events {
		if e.MQTT != "connected" || e.Fingerprint != registry.Fingerprint(ps) {
			t.Errorf("%s: mqtt %q fingerprint %q, want connected and the product secret's (its token is the board's alone)", e.Port, e.MQTT, e.Fingerprint)
		}
	}
	for _, b := range w.farm.Boards() {
		u := w.unitOf(t, b)
		st, ok := w.emu.DeviceStatus("aliyun", "a1Prod", u.Cred.DeviceName)
		if !ok || !st.Online || u.State != ledger.Verified {
			t.Fatalf("%s: ledger %s, platform %+v %v: want verified and online", u.Cred.DeviceName, u.State, st, ok)
		}
	}

	// Now running their application, the boards do not answer the ROM's
	// protocol: not checked, the ledger untouched.
	open, _ := OpenESPBoard(ESPOptions{Format: nvs.Format{}, Common: espKitMap(t, "dynregmq_nwl_demo")})
	vr, _ := w.verifyESP32(t, open, ModeRegistrationFree, ps)
	if vr.NotChecked != 2 || vr.Verified+vr.Failed != 0 {
		t.Fatalf("verify of boards running their app: %+v, want 2 not checked", vr)
	}
	// Back in download mode (BOOT held, EN pressed), they are checked again.
	for _, b := range w.farm.Boards() {
		if err := b.Reset(true); err != nil {
			t.Fatal(err)
		}
	}
	vr, _ = w.verifyESP32(t, open, ModeRegistrationFree, ps)
	if vr.Verified != 2 {
		t.Fatalf("verify after the reset: %+v, want 2 verified", vr)
	}
}

// A wrong ProductSecret burned: the platform refuses the board's
// registration, which is evidence against the board.
func TestVerifyESP32RegistrationRefused(t *testing.T) {
	w := newESPWorld(t, "aliyun", emulator.ProductSettings{DynamicRegistration: true, RegistrationFree: true}, 1, "")
	r := w.runESP32(t, ModeRegistrationFree, "dynregmq_nwl_demo", "notTheProductsSecret123")
	if r.verify.Failed != 1 || len(r.events) != 1 || !errors.Is(r.events[0].Cause, registry.ErrRefused) {
		t.Fatalf("verify %+v events %+v, want one failure refused by the platform", r.verify, r.events)
	}
	if !strings.Contains(r.events[0].Err, "aiot_dynregmq_send_request failed: -0x0304") {
		t.Errorf("the reason %q does not quote the board's console", r.events[0].Err)
	}
	if u := w.unitOf(t, w.farm.Boards()[0]); u.State != ledger.Failed {
		t.Fatalf("ledger %s, want failed", u.State)
	}
	if rej := w.emu.MQTTRejections(); len(rej) != 1 || rej[0].ReturnCode != 4 {
		t.Fatalf("broker rejections %+v, want one bad username or password", rej)
	}
}

// Pre-registered names on esp-aliyun's example_solo: the board registers
// over HTTPS, keeps its DeviceSecret in fctry (as the kit does) and logs in;
// a second pass of the line finds it still holding the product's key.
func TestVerifyESP32Preregistered(t *testing.T) {
	w := newESPWorld(t, "aliyun", emulator.ProductSettings{DynamicRegistration: true}, 2, "")
	var names []string
	for _, b := range w.farm.Boards() {
		n, _ := BoardName("mac", "", b.MAC(), "")
		names = append(names, n)
	}
	if _, err := Create(context.Background(), CreateOptions{Platform: w.cloud, Ledger: w.ledger, Product: "a1Prod", Names: names}); err != nil {
		t.Fatal(err)
	}
	ps, _ := w.emu.ProductSecret("aliyun", "a1Prod")
	r := w.runESP32(t, ModePreregistered, "example_solo", ps)
	if r.verify.Verified != 2 {
		t.Fatalf("verify %+v (%v %v), want 2 verified", r.verify, r.verify.Failures, r.verify.Unchecked)
	}
	for _, e := range r.events {
		secret, _ := w.emu.AliyunDevice("a1Prod", e.DeviceName)
		if e.Fingerprint != registry.Fingerprint(secret) {
			t.Errorf("%s: fingerprint %s, want the platform's secret's", e.DeviceName, e.Fingerprint)
		}
	}
	for _, b := range w.farm.Boards() {
		if err := b.Reset(true); err != nil {
			t.Fatal(err)
		}
	}
	open, _ := OpenESPBoard(ESPOptions{Format: nvs.Format{}, Common: espKitMap(t, "example_solo")})
	lr, err := RunLine(context.Background(), LineOptions{Ledger: w.ledger, Platform: "aliyun", Product: "a1Prod", Format: nvs.Format{}, Station: "t",
		Ports: func() ([]string, error) { return []string{w.farm.Boards()[0].Path(), w.farm.Boards()[1].Path()}, nil },
		Open:  open, Once: true, OpTimeout: 30 * time.Second, Mode: ModePreregistered, ProductSecret: ps, NameFrom: "mac"})
	if err != nil || lr.Skipped != 2 {
		t.Fatalf("second pass %+v %v, want both skipped: their fctry holds the product's key and the DeviceSecret they registered for", lr, err)
	}
}

// esp-qcloud has no dynamic registration: a board with the product's key
// aborts at boot, and fails QA.
func TestVerifyESP32QCloudProductLevel(t *testing.T) {
	w := newESPWorld(t, "tencent", emulator.ProductSettings{DynamicRegistration: true, AutoCreate: true, AutoCreateQuota: 10}, 1, "")
	ps, _ := w.emu.ProductSecret("tencent", testProduct)
	table, err := os.ReadFile(filepath.Join("..", "testdata", "partitions", "qcloud_4MB.bin"))
	if err != nil {
		t.Fatal(err)
	}
	common := []flashmap.Region{
		flashmap.FromFile("bootloader.bin", 0x1000, sim.ESP32BootloaderImage()),
		flashmap.FromFile("partition-table.bin", 0xc000, table),
		flashmap.FromFile("led_light.bin", 0x20000, sim.ESP32AppImage("led_light", "0.0.1")),
	}
	open, err := OpenESPBoard(ESPOptions{Format: nvs.Format{}, Common: common, Partition: CredentialPartition{TableOffset: 0xc000}})
	if err != nil {
		t.Fatal(err)
	}
	path := w.farm.Boards()[0].Path()
	ports := func() ([]string, error) { return []string{path}, nil }
	lr, err := RunLine(context.Background(), LineOptions{Ledger: w.ledger, Platform: "tencent", Product: testProduct, Format: nvs.Format{}, Station: "t",
		Ports: ports, Open: open, Once: true, OpTimeout: 30 * time.Second, Mode: ModeAutocreate, ProductSecret: ps, NameFrom: "mac"})
	if err != nil || lr.Burned != 1 {
		t.Fatalf("line %+v %v", lr, err)
	}
	var cause error
	vr, err := Verify(context.Background(), VerifyOptions{Ledger: w.ledger, Platform: "tencent", Product: testProduct, Ports: ports, Open: open,
		Cloud: w.cloud, Mode: ModeAutocreate, ProductSecret: ps, Register: true, OpTimeout: 20 * time.Second,
		Events: func(e Event) { cause = e.Cause }})
	if err != nil || vr.Failed != 1 || !errors.Is(cause, errAppFailed) || !strings.Contains(cause.Error(), "ESP_ERROR_CHECK failed: esp_err_t 0x1102 (ESP_ERR_NVS_NOT_FOUND)") {
		t.Fatalf("verify %+v %v, cause %v: want the board's own abort", vr, err, cause)
	}
}

// A broker the board cannot reach: not checked, the ledger untouched.
func TestVerifyESP32BrokerUnreachable(t *testing.T) {
	w := newESPWorld(t, "aliyun", emulator.ProductSettings{DynamicRegistration: true, RegistrationFree: true}, 1, "127.0.0.1:1")
	ps, _ := w.emu.ProductSecret("aliyun", "a1Prod")
	r := w.runESP32(t, ModeRegistrationFree, "dynregmq_nwl_demo", ps)
	if r.verify.NotChecked != 1 || !errors.Is(r.events[0].Cause, registry.ErrUnreachable) {
		t.Fatalf("verify %+v %+v, want not checked (unreachable)", r.verify, r.events)
	}
	if u := w.unitOf(t, w.farm.Boards()[0]); u.State != ledger.Burned {
		t.Fatalf("ledger %s, want burned (unchanged)", u.State)
	}
}

// The console lines that settle a boot, as the kits print them (copied by
// hand from their sources: esp-qcloud esp_qcloud_mqtt.c, esp-mqtt
// mqtt_client.c, esp-aliyun linkkit_solo.c and iotkit's mqtt_api.c,
// iotx_mqtt_client.c, dynreg.c, LinkSDK's demos and aiot_state_api.h,
// ESP-IDF's bootloader and esp_err.c), with their colour codes.
func TestESP32AppVerdicts(t *testing.T) {
	for _, tc := range []struct {
		line  string
		want  espAppVerdict
		shown string
	}{
		{"\x1b[0;32mI (1520) esp_qcloud_mqtt: MQTT Connected\x1b[0m", appConnected, "I (1520) esp_qcloud_mqtt: MQTT Connected"},
		{"\x1b[1;32;40muser_connected_event_handler.70: Cloud Connected\x1b[0m", appConnected, ""},
		{"AIOT_MQTTEVT_CONNECT", appConnected, ""},
		{"AIOT_MQTTEVT_RECONNECT", 0, ""},
		{"\x1b[0;33mW (2001) MQTT_CLIENT: Connection refused, bad username or password\x1b[0m", appLoginRefused, "Connection refused, bad username or password"},
		{"\x1b[0;33mW (2001) MQTT_CLIENT: Connection refused, server unavailable\x1b[0m", appUnreachable, ""},
		{"\x1b[1;31m[err] _mqtt_connect(793): received reject ACK from MQTT server! rc = -35", appLoginRefused, ""},
		{"\x1b[1;31m[err] _mqtt_connect(793): received reject ACK from MQTT server! rc = -36", appUnreachable, ""},
		{"\x1b[1;33m[inf] _fetch_dynreg_http_resp(203): Dynamic Register Code: 200", 0, ""},
		{"\x1b[1;33m[inf] _fetch_dynreg_http_resp(203): Dynamic Register Code: 6289", appRegRefused, "Dynamic Register Code: 6289"},
		{`[inf] _fetch_dynreg_http_resp(200): Http Response Payload: {"code":200,"data":{"deviceSecret":"abc"}}`, 0, ""},
		{"aiot_dynregmq_send_request failed: -0x0304", appRegRefused, ""},
		{"aiot_dynregmq_send_request failed: -0x0203", appUnreachable, ""},
		{"aiot_dynregmq_recv failed: -0x0503", appUnreachable, ""},
		{"aiot_mqtt_connect failed: -0x0305", appLoginRefused, ""},
		{"\x1b[1;31m[err] _fetch_dynreg_http_resp(195): Http Download Failed", appUnreachable, ""},
		{"invalid header: 0xffffffff", appBoardFault, ""},
		{"\x1b[0;31mE (52) boot: No bootable app partitions in the partition table\x1b[0m", appBoardFault, ""},
		{"ESP_ERROR_CHECK failed: esp_err_t 0x1102 (ESP_ERR_NVS_NOT_FOUND) at 0x400d2f8c", appBoardFault, ""},
		{"\x1b[0;31mE (312) app_entry: Please first input four config\x1b[0m", appBoardFault, ""},
		{"I (27) boot: ESP-IDF v4.4.4 2nd stage bootloader", 0, ""},
	} {
		clean := strings.TrimSpace(ansiEscape.ReplaceAllString(tc.line, ""))
		v, shown := espAppVerdictOf(clean)
		if tc.shown == "" && v != 0 {
			tc.shown = clean
		}
		if v != tc.want || shown != tc.shown {
			t.Errorf("%q: verdict %d shown %q, want %d %q", tc.line, v, shown, tc.want, tc.shown)
		}
	}
}

// Through esptool's flasher stub (here an upload into IRAM, which the
// simulator takes for the stub): the stub's reboot comes back in the ROM
// loader, which is told FLASH_END in turn.
func TestVerifyESP32ThroughStub(t *testing.T) {
	w := newESPWorld(t, "aliyun", emulator.ProductSettings{DynamicRegistration: true, RegistrationFree: true}, 1, "")
	ps, _ := w.emu.ProductSecret("aliyun", "a1Prod")
	stub := &esprom.Stub{Text: make([]byte, 256), TextStart: 0x40090000, Data: make([]byte, 64), DataStart: 0x3FFE8000, Entry: 0x40090000, Source: "test"}
	open, err := OpenESPBoard(ESPOptions{Baud: 921600, Format: nvs.Format{}, Common: espKitMap(t, "dynregmq_nwl_demo"), Compress: true, Stub: stub})
	if err != nil {
		t.Fatal(err)
	}
	ports := func() ([]string, error) { return []string{w.farm.Boards()[0].Path()}, nil }
	lr, err := RunLine(context.Background(), LineOptions{Ledger: w.ledger, Platform: "aliyun", Product: "a1Prod", Format: nvs.Format{}, Station: "t",
		Ports: ports, Open: open, Once: true, OpTimeout: 30 * time.Second, Mode: ModeRegistrationFree, ProductSecret: ps, NameFrom: "mac"})
	if err != nil || lr.Burned != 1 {
		t.Fatalf("line %+v %v", lr, err)
	}
	vr, err := Verify(context.Background(), VerifyOptions{Ledger: w.ledger, Platform: "aliyun", Product: "a1Prod", Ports: ports, Open: open,
		Cloud: w.cloud, Mode: ModeRegistrationFree, ProductSecret: ps, Register: true, OpTimeout: 20 * time.Second})
	if err != nil || vr.Verified != 1 {
		t.Fatalf("verify %+v %v, want 1 verified", vr, err)
	}
}
