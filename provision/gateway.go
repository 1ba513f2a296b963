package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/iotburn/iotburn/burner/at"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
)

// gatewayBoard boards are a gateway's uplink. Told to, as the gateway's
// host does on its first connect, they store their sub-devices' keys, log
// in, bind each sub-device to the gateway and bring it online, and return
// the sub-devices the platform has bound to them, "ProductId/DeviceName".
type gatewayBoard interface {
	BringIn(ctx context.Context, subs []registry.Credential) (bound []string, err error)
}

// kitBurned boards hold their gateway's kit in what the line burned
// (an ESP32's NVS partition, batch --kit): checking the board checks the kit.
type kitBurned interface {
	BurnedWithKit(platform string) bool
}

// errGatewayMismatch: the gateway's sub-devices, on the board or the
// platform, are not its kit's.
var errGatewayMismatch = errors.New("the gateway's sub-devices are not its kit's")

// ErrNoPairing: verify --gateway was asked of a product none of whose
// gateways has sub-devices paired with it (ledger.Pair): nothing was done.
var ErrNoPairing = errors.New("no sub-devices paired with the product's gateways")

// ErrNoGatewayCommands: the board's firmware has no gateway commands.
var ErrNoGatewayCommands = errors.New("the module's firmware has no gateway commands")

// BringIn runs the gateway flows of Tencent's QCloud_AT firmware
// (burner/at/gateway.go, each command's source there): AT+TCSUBDEVINFOSET
// for each sub-device, AT+TCMQTTCONN, AT+TCGWBIND and AT+TCGWONLINE for
// each, then AT+TCGWBIND? for what the platform bound. Alibaba's IDMAU AT
// firmware has no gateway command (its command list): refused.
func (b *atBoard) BringIn(ctx context.Context, subs []registry.Credential) ([]string, error) {
	if b.drv.Dialect != at.Tencent {
		return nil, fmt.Errorf("%w: Alibaba's IDMAU AT firmware (AT+IDM…) binds no sub-devices", ErrNoGatewayCommands)
	}
	old := b.drv.Timeout
	b.drv.Timeout = max(old, at.GatewayTimeout)
	defer func() { b.drv.Timeout = old }()
	for _, s := range subs {
		if err := b.drv.SetSubDevice(ctx, s.ProductID, s.DeviceName, s.DeviceSecret); err != nil {
			return nil, fmt.Errorf("storing sub-device %s: %w", s.DeviceName, err)
		}
	}
	if err := b.drv.MQTTConnect(ctx); err != nil {
		return nil, fmt.Errorf("the gateway's login: %w", err)
	}
	for _, s := range subs {
		// Bound to this gateway before (a verify run again), the firmware
		// answers OK: "对于绑定操作，重复绑定也返回成功" (its gateway commands'
		// doc; the cloud's 809). Bound to another, it fails with 806.
		if err := b.drv.GatewayBind(ctx, s.ProductID, s.DeviceName); err != nil {
			return nil, fmt.Errorf("binding sub-device %s: %w", s.DeviceName, err)
		}
	}
	for _, s := range subs {
		if err := b.drv.GatewayOnline(ctx, s.ProductID, s.DeviceName); err != nil {
			return nil, fmt.Errorf("bringing sub-device %s online: %w", s.DeviceName, err)
		}
	}
	return b.drv.GatewayBound(ctx)
}

// checkGateway is verify --gateway's part for one gateway: the board brings
// in the sub-devices its kit holds (the ledger's pairing), and reads back
// what the platform bound; the platform's topology (where the client reads
// it) must hold exactly the kit. It returns how many sub-devices the
// gateway has.
func checkGateway(ctx context.Context, o VerifyOptions, u ledger.Unit, b Board) (int, error) {
	kit, err := o.Ledger.SubDevicesOf(o.Platform, o.Product, u.Cred.DeviceName)
	if err != nil {
		return 0, err
	}
	if len(kit.SubDevices) == 0 {
		return 0, fmt.Errorf("gateway %s has no sub-devices paired with it: pair its kit first (iotburn pair --product %s --gateway %s --sub-product SUB --names FILE)",
			u.Cred.DeviceName, o.Product, u.Cred.DeviceName)
	}
	gb, ok := b.(gatewayBoard)
	if !ok {
		return 0, fmt.Errorf("%w: this board cannot be told to bring its sub-devices in", ErrNoGatewayCommands)
	}
	subs := make([]registry.Credential, 0, len(kit.SubDevices))
	want := make([]string, 0, len(kit.SubDevices))
	for _, name := range kit.SubDevices {
		c, err := o.Ledger.Credential(o.Platform, kit.SubProduct, name)
		if err != nil {
			return 0, fmt.Errorf("sub-device %s: %w", name, err)
		}
		subs = append(subs, c)
		want = append(want, kit.SubProduct+"/"+name)
	}
	c, cancel := context.WithTimeout(ctx, o.OpTimeout+at.GatewayTimeout*time.Duration(3*len(subs)+2))
	bound, err := gb.BringIn(c, subs)
	cancel()
	if err != nil {
		return 0, err
	}
	slices.Sort(bound)
	if !slices.Equal(bound, want) {
		return 0, fmt.Errorf("%w: the gateway reads back %v bound, its kit is %v", errGatewayMismatch, bound, want)
	}
	topo, ok := o.Cloud.(registry.Topology)
	if !ok {
		return len(bound), nil
	}
	var got []registry.SubDevice
	err = func() error {
		c, cancel := context.WithTimeout(ctx, o.OpTimeout)
		defer cancel()
		got, err = topo.SubDevices(c, o.Product, u.Cred.DeviceName, kit.SubProduct)
		return err
	}()
	if err != nil {
		return 0, fmt.Errorf("the platform's topology: %w", err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Product+"/"+s.DeviceName)
	}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		return 0, fmt.Errorf("%w: the platform's topology has %v under %s, its kit is %v", errGatewayMismatch, names, u.Cred.DeviceName, want)
	}
	return len(names), nil
}

// checkGatewayOptions refuses a verify --gateway that cannot work, before
// any board is touched: no boards to tell, a product-level gateway, or a
// product none of whose gateways has a kit paired.
func checkGatewayOptions(o VerifyOptions) error {
	switch {
	case o.Ports == nil:
		return errors.New("verify --gateway tells each gateway board to bring its sub-devices in: give it the boards' --ports")
	case o.Mode.ProductLevel():
		return fmt.Errorf("verify --gateway: a gateway logs in with its own device key (--mode device), not %s", o.Mode)
	}
	kits, err := o.Ledger.Pairings(o.Platform, o.Product)
	if err != nil {
		return err
	}
	if len(kits) == 0 {
		return fmt.Errorf("verify --gateway: %w: no gateway of %s product %s has any: pair each kit first (iotburn pair --product %s --gateway NAME --sub-product SUB --names FILE)",
			ErrNoPairing, o.Platform, o.Product, o.Product)
	}
	return nil
}
