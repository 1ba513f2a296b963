package provision

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/emulator"
	"github.com/iotburn/iotburn/registry/tencent"
	"github.com/iotburn/iotburn/templates"
)

const (
	gwProduct  = "GWPRODUCT1"
	subProduct = "SUBPRODUC1"
)

// gatewayWorld: Tencent's emulator with a gateway product and a sub-device
// product, two gateways and four sub-devices created into the ledger, the
// gateways (QCloud_AT modules) burned by the line.
type gatewayWorld struct {
	emu    *emulator.Emulator
	cloud  *tencent.Client
	broker string
	ledger *ledger.Ledger
	ports  func() ([]string, error)
	open   OpenBoard
}

func newGatewayWorld(t *testing.T) *gatewayWorld {
	t.Helper()
	cfg := emulator.Config{GatewayProducts: []string{gwProduct}, SubDeviceProducts: []string{subProduct}, TaskDelay: -1, RateLimit: -1}
	emu, url, broker := startEmulator(t, &cfg)
	cloud, err := tencent.New(tencent.Config{SecretID: cfg.SecretID, SecretKey: cfg.SecretKey, Region: tencent.DefaultRegion, Endpoint: url})
	if err != nil {
		t.Fatal(err)
	}
	farm, err := sim.Start(sim.Options{Dir: t.TempDir(), Kind: "tencent-at", Count: 2, Baud: sim.Unpaced, Cloud: url, MQTT: broker})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	w := &gatewayWorld{emu: emu, cloud: cloud, broker: broker, ledger: openLedger(t)}
	ctx := context.Background()
	for product, names := range map[string][]string{gwProduct: {"gw1", "gw2"}, subProduct: {"s1", "s2", "s3", "s4"}} {
		if _, err := Create(ctx, CreateOptions{Platform: cloud, Ledger: w.ledger, Product: product, Names: names}); err != nil {
			t.Fatal(err)
		}
	}
	var paths []string
	for _, b := range farm.Boards() {
		paths = append(paths, b.Path())
	}
	w.ports = func() ([]string, error) { return paths, nil }
	w.open = OpenATBoard("tencent", sim.Unpaced)
	format, err := templates.Lookup("tencent-at")
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunLine(ctx, LineOptions{Ledger: w.ledger, Platform: "tencent", Product: gwProduct, Format: format, Station: "t",
		Ports: w.ports, Open: w.open, Once: true, Mode: ModeDevice})
	if err != nil || res.Burned != 2 {
		t.Fatalf("burning the gateways: %+v, %v", res, err)
	}
	return w
}

// verify runs verify --gateway on both gateways with ledger l; the events
// by device name.
func (w *gatewayWorld) verify(t *testing.T, l *ledger.Ledger) (VerifyResult, map[string]Event, error) {
	t.Helper()
	var mu sync.Mutex
	events := map[string]Event{}
	vr, err := Verify(context.Background(), VerifyOptions{Ledger: l, Platform: "tencent", Product: gwProduct,
		Ports: w.ports, Open: w.open, Cloud: w.cloud, Login: MQTTLogin(w.broker), Mode: ModeDevice, Gateway: true,
		OpTimeout: 20 * time.Second,
		Events:    func(e Event) { mu.Lock(); events[e.DeviceName] = e; mu.Unlock() }})
	return vr, events, err
}

func (w *gatewayWorld) topology(t *testing.T, gw string) []string {
	t.Helper()
	return topologyOf(t, w.cloud, gwProduct, gw, subProduct)
}

// topologyOf is the names of gw's sub-devices of subProduct in the
// platform's topology, as its API lists them, sorted.
func topologyOf(t *testing.T, cloud registry.Topology, gwProduct, gw, subProduct string) []string {
	t.Helper()
	got, err := cloud.SubDevices(context.Background(), gwProduct, gw, subProduct)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.DeviceName)
	}
	slices.Sort(names)
	return names
}

func TestVerifyGateway(t *testing.T) {
	w := newGatewayWorld(t)
	// Before any kit is paired nothing is touched: no board, no platform.
	if _, _, err := w.verify(t, w.ledger); err == nil || !strings.Contains(err.Error(), "iotburn pair") {
		t.Fatalf("verify --gateway with no kit paired: %v, want a refusal naming iotburn pair", err)
	}
	if got := w.topology(t, "gw1"); len(got) != 0 {
		t.Fatalf("topology after the refusal: %v", got)
	}
	// A second ledger, as it is before any pairing: it will pair other kits.
	other := filepath.Join(t.TempDir(), "other.db")
	if _, err := w.ledger.Backup(context.Background(), other); err != nil {
		t.Fatal(err)
	}

	for gw, kit := range map[string][]string{"gw1": {"s1", "s2"}, "gw2": {"s3"}} {
		if _, err := w.ledger.Pair("tencent", gwProduct, gw, subProduct, kit); err != nil {
			t.Fatal(err)
		}
	}
	for run := range 2 { // and again: a verify run twice passes twice (809 is "bound already")
		vr, ev, err := w.verify(t, w.ledger)
		if err != nil || vr.Verified != 2 {
			t.Fatalf("run %d: verify --gateway: %+v, %v", run, vr, err)
		}
		if ev["gw1"].SubDevices != 2 || ev["gw2"].SubDevices != 1 {
			t.Fatalf("run %d: sub-devices brought in: gw1 %d, gw2 %d; want 2 and 1", run, ev["gw1"].SubDevices, ev["gw2"].SubDevices)
		}
	}
	if got := w.topology(t, "gw1"); !slices.Equal(got, []string{"s1", "s2"}) {
		t.Fatalf("gw1's topology %v, want its kit s1 s2", got)
	}
	if got := w.topology(t, "gw2"); !slices.Equal(got, []string{"s3"}) {
		t.Fatalf("gw2's topology %v, want its kit s3", got)
	}

	// The other ledger pairs what the platform contradicts: gw1 with s1
	// alone (the platform has s2 under it too), gw2 with s2 (bound to gw1).
	l2, err := ledger.Open(other)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	for gw, kit := range map[string][]string{"gw1": {"s1"}, "gw2": {"s2", "s3"}} {
		if _, err := l2.Pair("tencent", gwProduct, gw, subProduct, kit); err != nil {
			t.Fatal(err)
		}
	}
	vr, ev, err := w.verify(t, l2)
	if err != nil || vr.Failed != 2 {
		t.Fatalf("verify --gateway against the platform's topology: %+v, %v; want both failed", vr, err)
	}
	if e := ev["gw1"]; !errors.Is(e.Cause, errGatewayMismatch) {
		t.Errorf("gw1 (platform has more than its kit): %v, want errGatewayMismatch", e.Err)
	}
	if e := ev["gw2"]; !strings.Contains(e.Err, "binding sub-device s2") || !strings.Contains(e.Err, "806") {
		t.Errorf("gw2 (s2 bound to gw1): %q, want the platform's 806 for s2", e.Err)
	}
	for _, gw := range []string{"gw1", "gw2"} {
		u, _, err := l2.UnitByDevice("tencent", gwProduct, gw)
		if err != nil || u.State != ledger.Failed {
			t.Errorf("%s in the second ledger: %v %v, want failed", gw, u.State, err)
		}
	}
}
