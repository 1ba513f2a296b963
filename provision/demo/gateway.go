package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/provision/audit"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/emulator"
	"github.com/iotburn/iotburn/templates"
)

// ErrNoGatewayBoard: the platform's gateway has no simulated board.
var ErrNoGatewayBoard = errors.New("no simulated gateway board for this platform")

// The gateway demo's products: a gateway product and the product of its
// sub-devices (ProductType 5 and an ordinary product bound to it).
const (
	GatewayProduct   = "DEMOGATEWY"
	SubDeviceProduct = "DEMOSUBDEV"
)

// SubDevicesPerGateway is how many sub-devices each demo gateway gets.
const SubDevicesPerGateway = 3

// GatewayResult adds the gateways' part to Result.
type GatewayResult struct {
	Result
	Gateways, SubDevices, Bound, Online int
}

// RunGateway is `iotburn demo --mode gateway`. On Tencent: the emulator with
// a gateway product and a sub-device product, the gateways and their
// sub-devices created through the official SDK into the ledger, the
// gateways burned by the line with their own device keys and verified, then
// each gateway module (a QCloud_AT board, the gateway's uplink) told by its
// host, as a gateway does on first connect, to store its sub-devices' keys,
// log in, bind them and bring them online over the platform's broker.
//
// Which sub-devices go with which gateway is recorded in the ledger as the
// factory pairs its kits (ledger.Pair, `iotburn pair`): demo-gw-0002's kit
// holds demo-sub-0004…0006. Each gateway brings in what the ledger pairs
// with it, nothing else. On Aliyun: ESP32 gateways burned with their kits
// (runAliyunGateway).
func RunGateway(ctx context.Context, o Options) (GatewayResult, error) {
	start := time.Now()
	if o.Platform == "" {
		o.Platform = "tencent"
	}
	if o.Platform == "aliyun" {
		return runAliyunGateway(ctx, o, start)
	}
	if o.Platform != "tencent" {
		return GatewayResult{}, fmt.Errorf("demo --mode gateway --platform %s: %w: use tencent or aliyun", o.Platform, ErrNoGatewayBoard)
	}
	if o.Kind != "" && o.Kind != "tencent-at" {
		return GatewayResult{}, fmt.Errorf("demo --mode gateway --kind %s: %w: the gateway's uplink is a tencent-at module", o.Kind, ErrNoGatewayBoard)
	}
	v := demoVendors["tencent"]
	res, say, err := startGatewayDemo(&o)
	if err != nil {
		return res, err
	}

	// 1. The platform, with a gateway product and a sub-device product.
	cfg := emulator.Config{StateDir: res.CloudState, GatewayProducts: []string{GatewayProduct}, SubDeviceProducts: []string{SubDeviceProduct}}
	emu, stopCloud, endpoint, mqttAddr, err := startCloud(&cfg)
	if err != nil {
		return res, err
	}
	defer stopCloud()
	res.Endpoint = endpoint
	say("1. platform emulator (%s API) at %s: gateway product %s, sub-device product %s", v.title, res.Endpoint, GatewayProduct, SubDeviceProduct)

	// 2. The gateways' modules.
	farm, err := sim.Start(sim.Options{Dir: res.Boards, Kind: "tencent-at", Count: o.Boards, Baud: o.Baud, Cloud: res.Endpoint, MQTT: mqttAddr})
	if err != nil {
		return res, err
	}
	defer farm.Close()
	say("2. %d simulated tencent-at modules, each a gateway's uplink, at %d baud in %s", len(farm.Boards()), o.Baud, res.Boards)

	// 3. Gateways and sub-devices on the platform, keys in the ledger.
	client, err := v.client(cfg, res.Endpoint)
	if err != nil {
		return res, err
	}
	l, err := ledger.Open(res.Ledger)
	if err != nil {
		return res, err
	}
	defer l.Close()
	gws, subs, err := createKits(ctx, client, l, o.Boards, GatewayProduct, SubDeviceProduct)
	if err != nil {
		return res, err
	}
	res.Created = len(gws) + len(subs)
	say("3. created %d gateways and %d sub-devices through the tencent SDK, keys in the ledger %s; each gateway's kit paired with %d of them (iotburn pair)",
		len(gws), len(subs), res.Ledger, SubDevicesPerGateway)

	// 4. The line burns the gateways with their own device keys.
	format, err := templates.Lookup("tencent-at")
	if err != nil {
		return res, err
	}
	open := provision.OpenATBoardWith("tencent", o.Baud, provision.ATBoardOptions{Labels: demoLabels(farm), RegisterURL: res.Endpoint})
	pattern := filepath.Join(res.Boards, "tty*")
	ports := func() ([]string, error) { return burner.Expand(pattern) }
	say("4. burning the gateways: iotburn batch --product %s --ports '%s' --once", GatewayProduct, pattern)
	res.Line, err = provision.RunLine(ctx, provision.LineOptions{
		Ledger: l, Platform: "tencent", Product: GatewayProduct, Format: format, Station: "demo",
		Ports: ports, Open: open, Once: true, Events: o.Events, Mode: provision.ModeDevice, NameFrom: "mac", Region: client.Region(),
	})
	if err != nil {
		return res, err
	}
	if res.Line.Failed > 0 {
		return res, fmt.Errorf("%d gateway(s) failed", res.Line.Failed)
	}
	// 5. QA: each gateway brings in its kit, as on its first connect, and the
	// platform's topology must hold exactly the kit (verify --gateway).
	res.Gateways, res.SubDevices = len(gws), len(subs)
	vr, err := verifyGateways(ctx, &res, o.Events, provision.VerifyOptions{
		Ledger: l, Platform: "tencent", Product: GatewayProduct, Cloud: client, Login: provision.MQTTLogin(mqttAddr),
		Mode: provision.ModeDevice, Ports: ports, Open: open,
	})
	if err != nil {
		return res, err
	}
	res.Online = res.Bound // verify has each one brought online (AT+TCGWONLINE) before it reads the topology
	if err := crossCheck(res.Boards, func(name string) (string, bool) { return emu.TencentDevice(GatewayProduct, name) }, o.Boards); err != nil {
		return res, err
	}
	say("5. verified %d gateways (iotburn verify --gateway): each holds the key the platform issued for its name and logged in, stored its kit's %d sub-devices' keys (AT+TCSUBDEVINFOSET), bound them (AT+TCGWBIND, signed with their keys) and brought them online (AT+TCGWONLINE); the platform's topology (DescribeGatewayBindDevices) holds exactly each kit: %d sub-devices",
		vr.Verified, SubDevicesPerGateway, res.Bound)

	sum, err := audit.Write(l, res.Audit, audit.Options{Station: "demo"})
	if err != nil {
		return res, err
	}
	say("6. audit workbook %s: %d gateways, yield %.0f%%; its Gateways sheet has each gateway with its %d sub-devices", res.Audit, sum.Units, 100*sum.Yield, sum.SubDevices)
	res.Elapsed = time.Since(start)
	return res, nil
}

// startGatewayDemo sets o's defaults and makes the demo's directory; say
// prints one step.
func startGatewayDemo(o *Options) (GatewayResult, func(format string, a ...any), error) {
	if o.Boards <= 0 {
		o.Boards = 2
	}
	if o.Baud <= 0 {
		o.Baud = 115200
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	out := o.Out
	res := GatewayResult{Result: Result{
		Dir: o.Dir, Ledger: filepath.Join(o.Dir, "iotburn.db"), Audit: filepath.Join(o.Dir, "audit.xlsx"),
		Boards: filepath.Join(o.Dir, "boards"), CloudState: filepath.Join(o.Dir, "cloud"),
	}}
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	return res, say, os.MkdirAll(o.Dir, 0o700)
}

// createKits creates n gateways of gwProduct and SubDevicesPerGateway
// sub-devices of subProduct for each through the platform's SDK into the
// ledger, and pairs each gateway's kit (demo-gw-0002 with
// demo-sub-0004…0006).
func createKits(ctx context.Context, client registry.Platform, l *ledger.Ledger, n int, gwProduct, subProduct string) (gws, subs []string, err error) {
	for i := range n {
		gws = append(gws, fmt.Sprintf("demo-gw-%04d", i+1))
		for j := range SubDevicesPerGateway {
			subs = append(subs, fmt.Sprintf("demo-sub-%04d", i*SubDevicesPerGateway+j+1))
		}
	}
	for _, c := range []struct {
		product string
		names   []string
	}{{gwProduct, gws}, {subProduct, subs}} {
		if _, err := provision.Create(ctx, provision.CreateOptions{Platform: client, Ledger: l, Product: c.product, Names: c.names}); err != nil {
			return nil, nil, fmt.Errorf("create in %s: %w", c.product, err)
		}
	}
	for i, gw := range gws {
		if _, err := l.Pair(client.Name(), gwProduct, gw, subProduct, subs[i*SubDevicesPerGateway:(i+1)*SubDevicesPerGateway]); err != nil {
			return nil, nil, err
		}
	}
	return gws, subs, nil
}

// verifyGateways is verify --gateway of the demo's gateways: every one must
// pass; res counts what they brought in, events (if set) gets each step.
func verifyGateways(ctx context.Context, res *GatewayResult, events func(provision.Event), vo provision.VerifyOptions) (provision.VerifyResult, error) {
	var mu sync.Mutex // verify reports each gateway from its own goroutine
	vo.Gateway = true
	vo.Events = func(e provision.Event) {
		if e.Stage == provision.StageVerified {
			mu.Lock()
			res.Bound += e.SubDevices
			mu.Unlock()
		}
		if events != nil {
			events(e)
		}
	}
	vr, err := provision.Verify(ctx, vo)
	if err != nil {
		return vr, err
	}
	if vr.Failed > 0 || vr.NotChecked > 0 {
		return vr, fmt.Errorf("verify --gateway: %d gateway(s) failed, %d not checked: %v %v", vr.Failed, vr.NotChecked, vr.Failures, vr.Unchecked)
	}
	res.Verified = vr.Verified
	return vr, nil
}
