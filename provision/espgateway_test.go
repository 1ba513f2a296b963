package provision

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry/aliyun"
	"github.com/iotburn/iotburn/registry/emulator"
	"github.com/iotburn/iotburn/templates"
	"github.com/iotburn/iotburn/templates/nvs"
)

const (
	aliGwProduct  = "a1GwProduct"
	aliSubProduct = "a1SubProdct"
)

// espGatewayWorld: Aliyun's emulator with a gateway product and a
// sub-device product (dynamic registration on), gateways and sub-devices
// created into the ledger through the SDK, ESP32 boards running the
// gateway example in download mode.
type espGatewayWorld struct {
	emu    *emulator.Emulator
	cloud  *aliyun.Client
	broker string
	ledger *ledger.Ledger
	farm   *sim.Farm
	dir    string // the boards' flash files
	ports  func() ([]string, error)
	open   OpenBoard
}

func newESPGatewayWorld(t *testing.T, boards int, gateways, subs []string) *espGatewayWorld {
	t.Helper()
	cfg := emulator.Config{AliyunGatewayProducts: []string{aliGwProduct}, AliyunSubDeviceProducts: []string{aliSubProduct}, TaskDelay: -1, RateLimit: -1,
		DynRegProducts: map[string]emulator.ProductSettings{"aliyun:" + aliSubProduct: {DynamicRegistration: true}}}
	emu, url, broker := startEmulator(t, &cfg)
	cloud, err := aliyun.New(aliyun.Config{AccessKeyID: cfg.AliyunAccessKeyID, AccessKeySecret: cfg.AliyunAccessKeySecret, Region: aliyun.DefaultRegion, Endpoint: url})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	farm, err := sim.Start(sim.Options{Dir: dir, Kind: "esp32", Count: boards, Cloud: url, MQTT: broker})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	w := &espGatewayWorld{emu: emu, cloud: cloud, broker: broker, ledger: openLedger(t), farm: farm, dir: dir}
	for product, names := range map[string][]string{aliGwProduct: gateways, aliSubProduct: subs} {
		if _, err := Create(context.Background(), CreateOptions{Platform: cloud, Ledger: w.ledger, Product: product, Names: names}); err != nil {
			t.Fatal(err)
		}
	}
	var paths []string
	for _, b := range farm.Boards() {
		paths = append(paths, b.Path())
	}
	w.ports = func() ([]string, error) { return paths, nil }
	w.open = openESP(t, ESPOptions{Baud: 921600, Format: nvs.Format{}, Common: espKitMap(t, "linkkit_example_gateway"), Compress: true})
	return w
}

func (w *espGatewayWorld) burn(t *testing.T) (LineResult, []Event, error) {
	t.Helper()
	var mu sync.Mutex
	var events []Event
	res, err := RunLine(context.Background(), LineOptions{Ledger: w.ledger, Platform: "aliyun", Product: aliGwProduct, Format: nvs.Format{}, Station: "t",
		Ports: w.ports, Open: w.open, Once: true, OpTimeout: 30 * time.Second, Mode: ModeDevice, Kits: true,
		Events: func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	return res, events, err
}

func (w *espGatewayWorld) verify(t *testing.T) (VerifyResult, map[string]Event) {
	t.Helper()
	var mu sync.Mutex
	events := map[string]Event{}
	vr, err := Verify(context.Background(), VerifyOptions{Ledger: w.ledger, Platform: "aliyun", Product: aliGwProduct,
		Ports: w.ports, Open: w.open, Cloud: w.cloud, Login: MQTTLogin(w.broker), Mode: ModeDevice, Gateway: true, OpTimeout: 20 * time.Second,
		Events: func(e Event) {
			if e.Stage.Done() {
				mu.Lock()
				events[e.DeviceName] = e
				mu.Unlock()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	return vr, events
}

// ESP32 gateways burned with their kits (the line reads each gateway's
// pairing and renders it into fctry beside the gateway's own key), then
// verify --gateway: each boots, registers its kit's sub-devices through
// itself, adds them to its topology and logs them in; the platform's
// topology, read through the SDK (GetThingTopo), must be exactly the kit.
// Booted again (a second verify), each gateway logs its sub-devices in with
// the secrets it kept, and passes again.
func TestESP32GatewayKits(t *testing.T) {
	w := newESPGatewayWorld(t, 2, []string{"gw-0001", "gw-0002"}, []string{"sub-0001", "sub-0002", "sub-0003", "sub-0004"})
	for gw, subs := range map[string][]string{"gw-0001": {"sub-0001", "sub-0002"}, "gw-0002": {"sub-0003", "sub-0004"}} {
		if _, err := w.ledger.Pair("aliyun", aliGwProduct, gw, aliSubProduct, subs); err != nil {
			t.Fatal(err)
		}
	}
	res, _, err := w.burn(t)
	if err != nil || res.Burned != 2 {
		t.Fatalf("burning the gateways: %+v, %v", res, err)
	}
	// Plugged into a line without --kit, and checked by a verify without
	// --gateway, each still holds what the ledger says: its key and its kit.
	again, err := RunLine(context.Background(), LineOptions{Ledger: w.ledger, Platform: "aliyun", Product: aliGwProduct, Format: nvs.Format{}, Station: "t",
		Ports: w.ports, Open: w.open, Once: true, OpTimeout: 30 * time.Second, Mode: ModeDevice})
	if err != nil || again.Skipped != 2 || again.Burned != 0 {
		t.Fatalf("the burned gateways on a line without --kit: %+v, %v; want both left alone", again, err)
	}
	plain, err := Verify(context.Background(), VerifyOptions{Ledger: w.ledger, Platform: "aliyun", Product: aliGwProduct,
		Ports: w.ports, Open: w.open, Cloud: w.cloud, Mode: ModeDevice, OpTimeout: 20 * time.Second})
	if err != nil || plain.Verified != 2 {
		t.Fatalf("verify without --gateway: %+v, %v", plain, err)
	}
	for pass := 1; pass <= 2; pass++ {
		if pass == 2 {
			for _, b := range w.farm.Boards() {
				if err := b.Reset(true); err != nil {
					t.Fatal(err)
				}
			}
		}
		vr, events := w.verify(t)
		if vr.Verified != 2 || vr.Failed != 0 || vr.NotChecked != 0 {
			t.Fatalf("verify --gateway pass %d: %+v", pass, vr)
		}
		for _, gw := range []string{"gw-0001", "gw-0002"} {
			if events[gw].SubDevices != 2 {
				t.Errorf("pass %d: %s brought in %d sub-devices, want 2", pass, gw, events[gw].SubDevices)
			}
		}
	}
	for gw, want := range map[string][]string{"gw-0001": {"sub-0001", "sub-0002"}, "gw-0002": {"sub-0003", "sub-0004"}} {
		if got := topologyOf(t, w.cloud, aliGwProduct, gw, aliSubProduct); !slices.Equal(got, want) {
			t.Errorf("%s's topology: %v, want %v", gw, got, want)
		}
		for _, s := range want {
			d, err := w.cloud.Device(context.Background(), aliSubProduct, s)
			if err != nil || !d.Online || d.DeviceSecret == "" {
				t.Errorf("sub-device %s: online %v, secret %v, %v", s, d.Online, d.DeviceSecret != "", err)
			}
		}
	}
}

// Refusals before anything is written: --kit for a product none of whose
// gateways has a kit, a format with no place for one, a product-level mode;
// a gateway with no kit paired (its sibling has one) is given its
// credential back untouched.
func TestESP32GatewayKitRefusals(t *testing.T) {
	w := newESPGatewayWorld(t, 1, []string{"gw-0001", "gw-0002"}, []string{"sub-0001"})
	at, err := templates.Lookup("aliyun-at")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mode Mode
		f    templates.Format
		want error
	}{
		{"no kit paired", ModeDevice, nvs.Format{}, ErrNoKit},
		{"an AT script", ModeDevice, at, ErrNoKitForm},
		{"product-level", ModePreregistered, nvs.Format{}, ErrModeBoard},
	} {
		if err := CheckKits(w.ledger, "aliyun", aliGwProduct, tc.mode, tc.f); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, _, err := w.burn(t); !errors.Is(err, ErrNoKit) {
		t.Fatalf("the line with no kit paired: %v, want ErrNoKit", err)
	}
	// gw-0002 has a kit, gw-0001 (claimed first) none: gw-0001 is refused, its
	// credential given back, and the board is left as it was.
	if _, err := w.ledger.Pair("aliyun", aliGwProduct, "gw-0002", aliSubProduct, []string{"sub-0001"}); err != nil {
		t.Fatal(err)
	}
	res, events, err := w.burn(t)
	if err != nil {
		t.Fatal(err)
	}
	if res.Burned != 0 || res.Failed != 1 {
		t.Fatalf("burned %d, failed %d; want the board refused", res.Burned, res.Failed)
	}
	var refused Event
	for _, e := range events {
		if e.Stage == StageFailed {
			refused = e
		}
	}
	if !errors.Is(refused.Cause, ErrNoKit) || !strings.Contains(refused.Err, "given back") {
		t.Fatalf("the refusal: %q", refused.Err)
	}
	u, ok, err := w.ledger.UnitByHW(strings.ToLower(w.farm.Boards()[0].MAC()))
	if err != nil || ok {
		t.Fatalf("the refused board still holds a claim: %+v, %v", u, err)
	}
	c, err := w.ledger.Credential("aliyun", aliGwProduct, "gw-0001")
	if err != nil || c.DeviceSecret == "" {
		t.Fatalf("gw-0001: %v", err)
	}
}

// Sub-device boards: the line burns each with its product and name only
// (no secret reaches the board, the ledger keeps the unit), verify
// --sub-device reads them back; an AT script or a product-level mode is
// refused before the first board.
func TestESP32SubDeviceBoards(t *testing.T) {
	w := newESPGatewayWorld(t, 2, []string{"gw-0001"}, []string{"sub-0001", "sub-0002"})
	open := openESP(t, ESPOptions{Baud: 921600, Format: nvs.Format{}, Common: espKitMap(t, "linkkit_example_gateway")[:2], Compress: true})
	res, err := RunLine(context.Background(), LineOptions{Ledger: w.ledger, Platform: "aliyun", Product: aliSubProduct, Format: nvs.Format{}, Station: "t",
		Ports: w.ports, Open: open, Once: true, OpTimeout: 30 * time.Second, Mode: ModeDevice, SubDevices: true})
	if err != nil || res.Burned != 2 {
		t.Fatalf("burning the sub-devices: %+v, %v", res, err)
	}
	// fctry of esp-aliyun's partitions_esp32.csv: after nvs 0x9000+16K,
	// otadata 8K, phy_init 4K, ota_0 and ota_1 1M each.
	const fctry, fctrySize = 0x210000, 0x4000
	for i, b := range w.farm.Boards() {
		img, err := sim.LoadFlashImage(w.dir, i)
		if err != nil {
			t.Fatal(err)
		}
		items, err := nvs.Read(img[fctry : fctry+fctrySize])
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, it := range items {
			keys = append(keys, it.Key)
		}
		if !slices.Equal(keys, []string{"ProductKey", "DeviceName"}) {
			t.Errorf("board %s's fctry holds %v, want its ProductKey and DeviceName only", b.Path(), keys)
		}
	}
	vr, err := Verify(context.Background(), VerifyOptions{Ledger: w.ledger, Platform: "aliyun", Product: aliSubProduct,
		Ports: w.ports, Open: open, Cloud: w.cloud, Mode: ModeDevice, SubDevices: true})
	if err != nil || vr.Verified != 2 {
		t.Fatalf("verify --sub-device: %+v, %v", vr, err)
	}
	at, err := templates.Lookup("aliyun-at")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode Mode
		kits bool
		f    templates.Format
	}{{ModeDevice, false, at}, {ModePreregistered, false, nvs.Format{}}, {ModeDevice, true, nvs.Format{}}} {
		if err := CheckSubDevices(tc.mode, tc.kits, tc.f); !errors.Is(err, ErrModeBoard) {
			t.Errorf("CheckSubDevices(%s, kit %v, %s): %v, want ErrModeBoard", tc.mode, tc.kits, tc.f.Name(), err)
		}
	}
}
