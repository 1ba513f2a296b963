package demo

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/aliyun"
	"github.com/iotburn/iotburn/registry/emulator"
)

// Registration-free on ESP32 boards: every board burned and verified by its
// own registration and login (Run's cross-check reads each board's fctry
// from its flash: the product's key, its own name, no device secret).
func TestRunRegistrationFreeOnESP32(t *testing.T) {
	res, err := Run(context.Background(), Options{Dir: t.TempDir(), Platform: "aliyun", Mode: provision.ModeRegistrationFree, Boards: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Line.Burned != 2 || res.Verified != 2 {
		t.Fatalf("burned %d, verified %d, want 2 and 2", res.Line.Burned, res.Verified)
	}
}

// The kits' limits, refused before anything is burned: esp-qcloud has no
// dynamic registration, the IDMAU AT firmware no registration-free.
func TestRunRefusesWhatTheFirmwareCannot(t *testing.T) {
	for _, o := range []Options{
		{Platform: "tencent", Mode: provision.ModeAutocreate, Kind: "esp32"},
		{Platform: "tencent", Mode: provision.ModePreregistered, Kind: "esp32"},
		{Platform: "aliyun", Mode: provision.ModeRegistrationFree, Kind: "aliyun-at"},
	} {
		o.Dir = t.TempDir()
		if _, err := Run(context.Background(), o); !errors.Is(err, provision.ErrModeBoard) {
			t.Errorf("%s %s on %s: %v, want refused (ErrModeBoard)", o.Platform, o.Mode, o.Kind, err)
		}
	}
}

// The Tencent gateway demo: gateways burned and verified, each bringing its
// sub-devices in over the broker; after it, the cloud state it leaves serves
// the same topology again (what `sim cloud --state D/cloud` loads).
func TestRunGateway(t *testing.T) {
	dir := t.TempDir()
	res, err := RunGateway(context.Background(), Options{Dir: dir, Boards: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Line.Burned != 2 || res.Verified != 2 || res.Bound != 2*SubDevicesPerGateway || res.Online != 2*SubDevicesPerGateway {
		t.Fatalf("burned %d, verified %d, bound %d, online %d", res.Line.Burned, res.Verified, res.Bound, res.Online)
	}
	cfg := emulator.Config{StateDir: res.CloudState, GatewayProducts: []string{GatewayProduct}, SubDeviceProducts: []string{SubDeviceProduct}}
	cfg.SecretID, cfg.SecretKey = emulator.NewKeyPair()
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	if got := emu.TencentTopology(GatewayProduct, "demo-gw-0002"); len(got) != SubDevicesPerGateway || got[0] != SubDeviceProduct+"/demo-sub-0004" {
		t.Fatalf("after a restart on the demo's state: %v", got)
	}
	if _, err := RunGateway(context.Background(), Options{Dir: t.TempDir(), Platform: "aliyun", Kind: "aliyun-at"}); !errors.Is(err, ErrNoGatewayBoard) {
		t.Fatalf("aliyun on aliyun-at modules: %v, want ErrNoGatewayBoard", err)
	}
}

// The Aliyun gateway demo: ESP32 gateways burned with their kits register,
// add and log in their sub-devices themselves; restarted on the state the
// demo leaves, the platform's API (through the official SDK) shows every
// gateway with exactly its kit, each sub-device with a DeviceSecret of its
// own, the one the emulator holds for it.
func TestRunGatewayAliyun(t *testing.T) {
	res, err := RunGateway(context.Background(), Options{Dir: t.TempDir(), Platform: "aliyun", Boards: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Line.Burned != 2 || res.Verified != 2 || res.Bound != 2*SubDevicesPerGateway || res.Online != 2*SubDevicesPerGateway {
		t.Fatalf("burned %d, verified %d, bound %d, online %d", res.Line.Burned, res.Verified, res.Bound, res.Online)
	}
	cfg := emulator.Config{StateDir: res.CloudState, AliyunGatewayProducts: []string{AliyunGatewayProduct}, AliyunSubDeviceProducts: []string{AliyunSubDeviceProduct}}
	cfg.SecretID, cfg.SecretKey = emulator.NewKeyPair()
	cfg.AliyunAccessKeyID, cfg.AliyunAccessKeySecret = emulator.NewAliyunKeyPair()
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	srv := httptest.NewServer(emu)
	defer srv.Close()
	client, err := aliyun.New(aliyun.Config{AccessKeyID: cfg.AliyunAccessKeyID, AccessKeySecret: cfg.AliyunAccessKeySecret, Region: aliyun.DefaultRegion, Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{}
	for g, gw := range []string{"demo-gw-0001", "demo-gw-0002"} {
		subs, err := client.SubDevices(context.Background(), AliyunGatewayProduct, gw, AliyunSubDeviceProduct)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range subs {
			got = append(got, s.DeviceName)
		}
		slices.Sort(got)
		want := []string{fmt.Sprintf("demo-sub-%04d", 3*g+1), fmt.Sprintf("demo-sub-%04d", 3*g+2), fmt.Sprintf("demo-sub-%04d", 3*g+3)}
		if !slices.Equal(got, want) {
			t.Fatalf("GetThingTopo of %s after a restart: %v, want %v", gw, got, want)
		}
		for _, name := range got {
			d, err := client.Device(context.Background(), AliyunSubDeviceProduct, name)
			if err != nil {
				t.Fatal(err)
			}
			held, _ := emu.AliyunDevice(AliyunSubDeviceProduct, name)
			if d.DeviceSecret == "" || d.DeviceSecret != held {
				t.Fatalf("sub-device %s: the API shows secret %q, the emulator holds another", name, registry.Fingerprint(d.DeviceSecret))
			}
			if other, dup := secrets[d.DeviceSecret]; dup {
				t.Fatalf("sub-devices %s and %s share a DeviceSecret", other, name)
			}
			secrets[d.DeviceSecret] = name
		}
	}
}

// Certificate devices on both platforms: created through the SDK (the
// emulator signs each), burned onto ESP32 boards, verified by a mutual-TLS
// login, and cross-checked against the emulator's own record (Run fails
// otherwise).
func TestRunDeviceCert(t *testing.T) {
	for _, p := range []string{"tencent", "aliyun"} {
		t.Run(p, func(t *testing.T) {
			res, err := Run(context.Background(), Options{Dir: t.TempDir(), Platform: p, Mode: provision.ModeDevice, Cert: true, Boards: 2})
			if err != nil {
				t.Fatal(err)
			}
			if res.Line.Burned != 2 || res.Verified != 2 || res.Created != 2 {
				t.Fatalf("created %d, burned %d, verified %d, want 2, 2 and 2", res.Created, res.Line.Burned, res.Verified)
			}
		})
	}
	// Tencent's AT firmware on a cellular module takes them too
	// (AT+TCCERTADD); Alibaba's IDMAU has no certificate command.
	t.Run("tencent-at", func(t *testing.T) {
		res, err := Run(context.Background(), Options{Dir: t.TempDir(), Platform: "tencent", Mode: provision.ModeDevice, Cert: true, Kind: "tencent-at", Boards: 2})
		if err != nil {
			t.Fatal(err)
		}
		if res.Line.Burned != 2 || res.Verified != 2 || res.Created != 2 {
			t.Fatalf("created %d, burned %d, verified %d, want 2, 2 and 2", res.Created, res.Line.Burned, res.Verified)
		}
	})
	if _, err := Run(context.Background(), Options{Dir: t.TempDir(), Platform: "aliyun", Mode: provision.ModeDevice, Cert: true, Kind: "aliyun-at"}); !errors.Is(err, provision.ErrModeBoard) {
		t.Errorf("device-cert on aliyun-at: %v, want refused (ErrModeBoard)", err)
	}
}
