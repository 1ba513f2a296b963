package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/at"
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

// RunGateway is `iotburn demo --mode gateway` on Tencent: the emulator with
// a gateway product and a sub-device product, the gateways and their
// sub-devices created through the official SDK into the ledger, the
// gateways burned by the line with their own device keys and verified, then
// each gateway module (a QCloud_AT board, the gateway's uplink) told by its
// host, as a gateway does on first connect, to store its sub-devices' keys,
// log in, bind them and bring them online over the platform's broker.
//
// Which sub-devices go with which gateway is the demo's own choice (the
// gateway's name's number: demo-gw-0002 gets demo-sub-0004…0006); the
// ledger does not record the pairing yet.
func RunGateway(ctx context.Context, o Options) (GatewayResult, error) {
	start := time.Now()
	if o.Platform == "" {
		o.Platform = "tencent"
	}
	if o.Platform != "tencent" {
		return GatewayResult{}, fmt.Errorf("demo --mode gateway --platform %s: %w: Alibaba publishes no AT firmware with gateway commands (the IDMAU firmware has none); the emulator serves Aliyun gateways over MQTT (sim cloud --product aliyun:PK:gateway)", o.Platform, ErrNoGatewayBoard)
	}
	if o.Kind != "" && o.Kind != "tencent-at" {
		return GatewayResult{}, fmt.Errorf("demo --mode gateway --kind %s: %w: the gateway's uplink is a tencent-at module", o.Kind, ErrNoGatewayBoard)
	}
	if o.Boards <= 0 {
		o.Boards = 2
	}
	if o.Baud <= 0 {
		o.Baud = 115200
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	v := demoVendors["tencent"]
	res := GatewayResult{Result: Result{
		Dir: o.Dir, Ledger: filepath.Join(o.Dir, "iotburn.db"), Audit: filepath.Join(o.Dir, "audit.xlsx"),
		Boards: filepath.Join(o.Dir, "boards"), CloudState: filepath.Join(o.Dir, "cloud"),
	}}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return res, err
	}
	say := func(format string, a ...any) { fmt.Fprintf(o.Out, format+"\n", a...) }

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
	var gws, subs []string
	for i := range o.Boards {
		gws = append(gws, fmt.Sprintf("demo-gw-%04d", i+1))
		for j := range SubDevicesPerGateway {
			subs = append(subs, fmt.Sprintf("demo-sub-%04d", i*SubDevicesPerGateway+j+1))
		}
	}
	for _, c := range []struct {
		product string
		names   []string
	}{{GatewayProduct, gws}, {SubDeviceProduct, subs}} {
		if _, err := provision.Create(ctx, provision.CreateOptions{Platform: client, Ledger: l, Product: c.product, Names: c.names}); err != nil {
			return res, fmt.Errorf("create in %s: %w", c.product, err)
		}
	}
	res.Created = len(gws) + len(subs)
	say("3. created %d gateways and %d sub-devices through the tencent SDK, keys in the ledger %s", len(gws), len(subs), res.Ledger)

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
	vr, err := provision.Verify(ctx, provision.VerifyOptions{
		Ledger: l, Platform: "tencent", Product: GatewayProduct, Cloud: client, Login: provision.MQTTLogin(mqttAddr),
		Mode: provision.ModeDevice, Ports: ports, Open: open, Events: o.Events,
	})
	if err != nil {
		return res, err
	}
	if vr.Failed > 0 {
		return res, fmt.Errorf("verify: %d gateway(s) failed: %v", vr.Failed, vr.Failures)
	}
	res.Verified = vr.Verified
	if err := crossCheck(res.Boards, func(name string) (string, bool) { return emu.TencentDevice(GatewayProduct, name) }, o.Boards); err != nil {
		return res, err
	}
	say("5. verified %d gateways: each holds the key the platform issued for its name and logged in", vr.Verified)

	// 6. Each gateway brings its sub-devices in, as on its first connect.
	paths, err := ports()
	if err != nil {
		return res, err
	}
	sort.Strings(paths)
	for _, path := range paths {
		bound, online, err := bringIn(ctx, l, path, o.Baud)
		if err != nil {
			return res, err
		}
		res.Bound += bound
		res.Online += online
	}
	res.Gateways, res.SubDevices = len(gws), len(subs)
	topo, ok := client.(registry.Topology)
	if !ok {
		return res, fmt.Errorf("the %s client cannot read a gateway's topology", client.Name())
	}
	for _, g := range gws {
		got, err := topo.SubDevices(ctx, GatewayProduct, g, SubDeviceProduct)
		if err != nil {
			return res, err
		}
		if len(got) != SubDevicesPerGateway {
			return res, fmt.Errorf("the platform shows %d sub-devices under %s, want %d", len(got), g, SubDevicesPerGateway)
		}
	}
	say("6. each gateway stored its %d sub-devices' keys (AT+TCSUBDEVINFOSET), logged in (AT+TCMQTTCONN), bound them (AT+TCGWBIND, signed with their keys) and brought them online (AT+TCGWONLINE): %d bound, %d online; the platform's topology has every gateway with its sub-devices (%s, DescribeGatewayBindDevices)",
		SubDevicesPerGateway, res.Bound, res.Online, mqttAddr)

	sum, err := audit.Write(l, res.Audit, audit.Options{Station: "demo"})
	if err != nil {
		return res, err
	}
	say("7. audit workbook %s: %d gateways, yield %.0f%%", res.Audit, sum.Units, 100*sum.Yield)
	res.Elapsed = time.Since(start)
	return res, nil
}

// bringIn tells the gateway on path to bring in its sub-devices: the ones
// whose numbers follow from its own name's.
func bringIn(ctx context.Context, l *ledger.Ledger, path string, baud int) (bound, online int, err error) {
	p, err := burner.Open(path, baud)
	if err != nil {
		return 0, 0, err
	}
	defer p.Close()
	d := at.New(p)
	d.Timeout = at.GatewayTimeout
	if err := d.Hello(ctx); err != nil {
		return 0, 0, err
	}
	info, err := d.TencentDevInfo(ctx)
	if err != nil {
		return 0, 0, err
	}
	var n int
	if _, err := fmt.Sscanf(info.DeviceName, "demo-gw-%04d", &n); err != nil || n < 1 {
		return 0, 0, fmt.Errorf("the gateway on %s holds %q, not a demo gateway", path, info.DeviceName)
	}
	var names []string
	for j := range SubDevicesPerGateway {
		name := fmt.Sprintf("demo-sub-%04d", (n-1)*SubDevicesPerGateway+j+1)
		c, err := l.Credential("tencent", SubDeviceProduct, name)
		if err != nil {
			return 0, 0, fmt.Errorf("sub-device %s: %w", name, err)
		}
		if err := d.SetSubDevice(ctx, SubDeviceProduct, name, c.DeviceSecret); err != nil {
			return 0, 0, err
		}
		names = append(names, name)
	}
	if err := d.MQTTConnect(ctx); err != nil {
		return 0, 0, err
	}
	for _, name := range names {
		if err := d.GatewayBind(ctx, SubDeviceProduct, name); err != nil {
			return bound, online, err
		}
		bound++
	}
	for _, name := range names {
		if err := d.GatewayOnline(ctx, SubDeviceProduct, name); err != nil {
			return bound, online, err
		}
		online++
	}
	got, err := d.GatewayBound(ctx)
	if err != nil {
		return bound, online, err
	}
	if len(got) != len(names) {
		return bound, online, fmt.Errorf("the gateway on %s reads %d bound sub-devices back, want %d", path, len(got), len(names))
	}
	return bound, online, nil
}
