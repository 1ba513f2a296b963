package demo

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/provision/audit"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/emulator"
	"github.com/iotburn/iotburn/templates/nvs"
)

// The Aliyun gateway demo's products: a gateway product (NodeType 1) and a
// sub-device product (NodeType 0 with a ProtocolType) whose dynamic
// registration is on, as "the sub-device manufacturer must enable" for its
// gateway to register it.
const (
	AliyunGatewayProduct   = "a1DemoGatew"
	AliyunSubDeviceProduct = "a1DemoSubDv"
)

// runAliyunGateway is demo --mode gateway --platform aliyun: ESP32 gateways
// running iotkit-embedded's gateway example (burner/sim esp32_gateway.go),
// burned by the line with their own device key and their kit (batch --kit:
// the sub-devices' ProductKey and the names the ledger pairs with each),
// then verified (verify --gateway): each boots, logs in, registers each
// sub-device of its kit through itself (thing/sub/register: the platform
// issues each its DeviceSecret), adds it to its topology and logs it in;
// the platform's topology (GetThingTopo) must hold exactly the kit.
func runAliyunGateway(ctx context.Context, o Options, start time.Time) (GatewayResult, error) {
	if o.Kind != "" && o.Kind != "esp32" {
		return GatewayResult{}, fmt.Errorf("demo --mode gateway --platform aliyun --kind %s: %w: Alibaba publishes no AT firmware with gateway commands (the IDMAU firmware has none): the gateways are esp32 boards", o.Kind, ErrNoGatewayBoard)
	}
	v := demoVendors["aliyun"]
	res, say, err := startGatewayDemo(&o)
	if err != nil {
		return res, err
	}

	// 1. The platform.
	cfg := emulator.Config{StateDir: res.CloudState,
		AliyunGatewayProducts: []string{AliyunGatewayProduct}, AliyunSubDeviceProducts: []string{AliyunSubDeviceProduct},
		DynRegProducts: map[string]emulator.ProductSettings{"aliyun:" + AliyunSubDeviceProduct: {DynamicRegistration: true}}}
	emu, stopCloud, endpoint, mqttAddr, err := startCloud(&cfg)
	if err != nil {
		return res, err
	}
	defer stopCloud()
	res.Endpoint = endpoint
	say("1. platform emulator (%s API) at %s: gateway product %s, sub-device product %s (dynamic registration on)", v.title, res.Endpoint, AliyunGatewayProduct, AliyunSubDeviceProduct)

	// 2. The gateways' boards.
	farm, err := sim.Start(sim.Options{Dir: res.Boards, Kind: "esp32", Count: o.Boards, Baud: o.Baud, Cloud: res.Endpoint, MQTT: mqttAddr})
	if err != nil {
		return res, err
	}
	defer farm.Close()
	kit, err := newESPKit("aliyun/iotkit-embedded's linkkit_example_gateway in espressif/esp-aliyun's layout", "linkkit_example_gateway", esp32AliyunTable, 0x8000)
	if err != nil {
		return res, err
	}
	say("2. %d simulated ESP32 boards in download mode (ROM at %d baud) in %s, each a gateway: %s (%s) in the same pass as its own fctry partition", len(farm.Boards()), o.Baud, res.Boards, kit.name, kit.project)

	// 3. Gateways and sub-devices on the platform, the kits paired.
	client, err := v.client(cfg, res.Endpoint)
	if err != nil {
		return res, err
	}
	l, err := ledger.Open(res.Ledger)
	if err != nil {
		return res, err
	}
	defer l.Close()
	gws, subs, err := createKits(ctx, client, l, o.Boards, AliyunGatewayProduct, AliyunSubDeviceProduct)
	if err != nil {
		return res, err
	}
	res.Created = len(gws) + len(subs)
	say("3. created %d gateways and %d sub-devices through the aliyun SDK, keys in the ledger %s; each gateway's kit paired with %d of them (iotburn pair)",
		len(gws), len(subs), res.Ledger, SubDevicesPerGateway)

	// 4. The line burns each gateway with its own key and its kit.
	open, err := provision.OpenESPBoard(provision.ESPOptions{Baud: 921600, Format: nvs.Format{}, Common: kit.regions, Compress: true})
	if err != nil {
		return res, err
	}
	pattern := filepath.Join(res.Boards, "tty*")
	ports := func() ([]string, error) { return burner.Expand(pattern) }
	say("4. burning the gateways with their kits: iotburn batch --platform aliyun --product %s --format nvs --kit --ports '%s' --once", AliyunGatewayProduct, pattern)
	res.Line, err = provision.RunLine(ctx, provision.LineOptions{
		Ledger: l, Platform: "aliyun", Product: AliyunGatewayProduct, Format: nvs.Format{}, Station: "demo",
		Ports: ports, Open: open, Once: true, Events: o.Events, Mode: provision.ModeDevice, Region: client.Region(), Kits: true,
	})
	if err != nil {
		return res, err
	}
	if res.Line.Failed > 0 {
		return res, fmt.Errorf("%d gateway(s) failed", res.Line.Failed)
	}

	// 5. The sub-devices' boards: their product and name only.
	subBoards := filepath.Join(o.Dir, "subdevices")
	subFarm, err := sim.Start(sim.Options{Dir: subBoards, Kind: "esp32", Count: len(subs), Baud: o.Baud, Cloud: res.Endpoint, MQTT: mqttAddr})
	if err != nil {
		return res, err
	}
	defer subFarm.Close()
	subOpen, err := provision.OpenESPBoard(provision.ESPOptions{Baud: 921600, Format: nvs.Format{}, Common: kit.regions[:2], Compress: true})
	if err != nil {
		return res, err
	}
	subPattern := filepath.Join(subBoards, "tty*")
	subPorts := func() ([]string, error) { return burner.Expand(subPattern) }
	say("5. burning %d sub-device boards (ESP32s standing in for the Zigbee/BLE nodes) with their product and name only: iotburn batch --platform aliyun --product %s --format nvs --sub-device --ports '%s' --once", len(subs), AliyunSubDeviceProduct, subPattern)
	subLine, err := provision.RunLine(ctx, provision.LineOptions{
		Ledger: l, Platform: "aliyun", Product: AliyunSubDeviceProduct, Format: nvs.Format{}, Station: "demo",
		Ports: subPorts, Open: subOpen, Once: true, Events: o.Events, Mode: provision.ModeDevice, Region: client.Region(), SubDevices: true,
	})
	if err != nil {
		return res, err
	}
	if subLine.Failed > 0 || subLine.Burned != len(subs) {
		return res, fmt.Errorf("sub-device boards: %d burned, %d failed", subLine.Burned, subLine.Failed)
	}
	if err := crossCheckSubDevices(subBoards, kit, subs); err != nil {
		return res, err
	}

	// 6. QA: each gateway boots and brings its kit in; the platform's
	// topology must hold exactly the kit.
	res.Gateways, res.SubDevices = len(gws), len(subs)
	vr, err := verifyGateways(ctx, &res, o.Events, provision.VerifyOptions{
		Ledger: l, Platform: "aliyun", Product: AliyunGatewayProduct, Cloud: client, Login: provision.MQTTLogin(mqttAddr),
		Mode: provision.ModeDevice, Ports: ports, Open: open,
	})
	if err != nil {
		return res, err
	}
	// Independently of the ledger and the line: each board's fctry holds its
	// gateway's own key, and the platform's topology exactly its kit, each
	// sub-device online with a DeviceSecret of its own.
	if err := crossCheckESP32(res.Boards, kit, o.Boards, "aliyun", AliyunGatewayProduct, "", provision.ModeDevice,
		func(name string) (string, bool) { return emu.AliyunDevice(AliyunGatewayProduct, name) }); err != nil {
		return res, err
	}
	if res.Online, err = crossCheckTopology(ctx, emu, client, gws, subs); err != nil {
		return res, err
	}
	say("6. verified %d gateways (iotburn verify --gateway): each booted, logged in with its own key, registered its kit's %d sub-devices through itself (thing/sub/register: a DeviceSecret each), added them to its topology (thing/topo/add, signed with those secrets) and logged them in (combine/login); the platform's topology (GetThingTopo) holds exactly each kit: %d sub-devices, %d online",
		vr.Verified, SubDevicesPerGateway, res.Bound, res.Online)

	svr, err := provision.Verify(ctx, provision.VerifyOptions{
		Ledger: l, Platform: "aliyun", Product: AliyunSubDeviceProduct, Cloud: client,
		Mode: provision.ModeDevice, Ports: subPorts, Open: subOpen, Events: o.Events, SubDevices: true,
	})
	if err != nil {
		return res, err
	}
	if svr.Failed > 0 || svr.NotChecked > 0 || svr.Verified != len(subs) {
		return res, fmt.Errorf("verify --sub-device: %d verified, %d failed, %d not checked: %v %v", svr.Verified, svr.Failed, svr.NotChecked, svr.Failures, svr.Unchecked)
	}
	say("   verified the %d sub-device boards (iotburn verify --sub-device): each holds its product and name, no secret, and the device exists", svr.Verified)

	sum, err := audit.Write(l, res.Audit, audit.Options{Station: "demo"})
	if err != nil {
		return res, err
	}
	say("7. audit workbook %s: %d units (gateways and sub-device boards), yield %.0f%%; its Gateways sheet has each gateway with its %d sub-devices", res.Audit, sum.Units, 100*sum.Yield, sum.SubDevices)
	res.Elapsed = time.Since(start)
	return res, nil
}

// crossCheckTopology reads the emulator's own state: each gateway's
// topology is its kit, and each sub-device, as the API shows it
// (QueryDeviceDetail), has the DeviceSecret the platform holds, one no other
// sub-device has, and is online. It returns how many are online.
func crossCheckTopology(ctx context.Context, emu *emulator.Emulator, client registry.Platform, gws, subs []string) (int, error) {
	secrets := map[string]string{}
	online := 0
	for i, gw := range gws {
		var want []string
		for _, s := range subs[i*SubDevicesPerGateway : (i+1)*SubDevicesPerGateway] {
			want = append(want, AliyunSubDeviceProduct+"/"+s)
		}
		got := emu.AliyunTopology(AliyunGatewayProduct, gw)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return online, fmt.Errorf("gateway %s: the platform's topology is %v, its kit %v", gw, got, want)
		}
		for _, s := range subs[i*SubDevicesPerGateway : (i+1)*SubDevicesPerGateway] {
			d, err := client.Device(ctx, AliyunSubDeviceProduct, s)
			if err != nil {
				return online, fmt.Errorf("sub-device %s: %w", s, err)
			}
			if ds, ok := emu.AliyunDevice(AliyunSubDeviceProduct, s); !ok || ds == "" || ds != d.DeviceSecret {
				return online, fmt.Errorf("sub-device %s: the API shows no DeviceSecret, or another than the platform holds", s)
			}
			if other, dup := secrets[d.DeviceSecret]; dup {
				return online, fmt.Errorf("sub-devices %s and %s hold the same DeviceSecret", other, s)
			}
			secrets[d.DeviceSecret] = s
			if d.Online {
				online++
			}
		}
	}
	return online, nil
}

// crossCheckSubDevices reads every sub-device board's fctry from its flash:
// the sub-device product, a name of the product's own, each name on one
// board, and no secret.
func crossCheckSubDevices(dir string, k *espKit, names []string) error {
	part, err := k.table.Find(provision.DefaultPartitionName)
	if err != nil {
		return err
	}
	keys := nvs.AliyunKeys
	left := map[string]bool{}
	for _, n := range names {
		left[n] = true
	}
	for i := range names {
		img, err := sim.LoadFlashImage(dir, i)
		if err != nil {
			return err
		}
		if uint64(len(img)) < part.End() {
			return fmt.Errorf("sub-device board %d: its flash is smaller than the table says", i)
		}
		items, err := nvs.Read(img[part.Offset:part.End()])
		if err != nil {
			return fmt.Errorf("sub-device board %d: fctry does not parse: %w", i, err)
		}
		got := map[string]string{}
		for _, it := range items {
			if v, ok := it.Value.(string); ok && it.Namespace == keys.Namespace {
				got[it.Key] = v
			}
		}
		switch name := got[keys.DeviceName]; {
		case got[keys.ProductID] != AliyunSubDeviceProduct:
			return fmt.Errorf("sub-device board %d holds product %q, want %s", i, got[keys.ProductID], AliyunSubDeviceProduct)
		case !left[name]:
			return fmt.Errorf("sub-device board %d holds name %q: not a sub-device's, or on another board too", i, name)
		case got[keys.DeviceSecret] != "" || got[keys.ProductSecret] != "":
			return fmt.Errorf("sub-device board %d (%s) holds a secret", i, name)
		default:
			delete(left, name)
		}
	}
	return nil
}
