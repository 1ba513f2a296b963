package cmd

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/provision/ledger"
	devnames "github.com/iotburn/iotburn/provision/names"
)

// pairOptions are `iotburn pair`'s flags.
type pairOptions struct {
	pf         platformFlags // the gateway's platform and product
	gateway    string
	subProduct string
	subs       []string
	names      string // a file of sub-device names, as create reads them
	list       bool
}

func newPairCmd(g *globals) *cobra.Command {
	var o pairOptions
	c := &cobra.Command{
		Use:   "pair --product GW --gateway NAME --sub-product SUB (--sub NAME… | --names FILE)",
		Short: "Record which sub-devices a gateway's kit holds, before the gateway registers them",
		Long: `pair records in the ledger that a gateway (a device of a gateway product: Aliyun NodeType 1,
Tencent ProductType 5) ships with these sub-devices, as the factory pairs a kit. The gateway
registers and binds exactly these on its first connect (verify --gateway has it do so now).
Every device must have been created (iotburn create) first. All or nothing: a sub-device already
paired with another gateway, more than 1,500 sub-devices on one gateway (the platforms' limit,
counted before anything is written), a sub-device used as a gateway or a gateway as a
sub-device, or a device not in the ledger is refused, and nothing is paired. Pairing the same
kit again adds nothing. With --list it prints the gateways of --product and their sub-devices.`,
		Example: `  iotburn pair --platform aliyun --product a1GwPK --gateway gw-0001 --sub-product a1SubPK --sub sensor-0001 --sub sensor-0002
  iotburn pair --product DEMOGATEWY --gateway demo-gw-0001 --sub-product DEMOSUBDEV --names kit-0001.csv
  iotburn pair --product DEMOGATEWY --list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			l, err := g.openExistingLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			if o.list {
				return o.printList(g, l)
			}
			return o.run(g, l)
		},
	}
	o.pf.register(c, true)
	f := c.Flags()
	f.StringVar(&o.gateway, "gateway", "", "the gateway's device name")
	f.StringVar(&o.subProduct, "sub-product", "", "the sub-devices' product (Tencent ProductId, Aliyun ProductKey)")
	f.StringArrayVar(&o.subs, "sub", nil, "a sub-device's name (repeat for each)")
	f.StringVar(&o.names, "names", "", "a file of the sub-devices' names: a plain list, CSV or .xlsx, as create reads it")
	f.BoolVar(&o.list, "list", false, "print the product's gateways and their sub-devices instead")
	return c
}

// validate checks the flags and reads the names, touching nothing.
func (o *pairOptions) validate() error {
	if err := o.pf.check(); err != nil {
		return withKind(errUsage, err)
	}
	if o.list {
		if o.gateway != "" || len(o.subs) > 0 || o.names != "" {
			return usagef("--list prints the pairings: give it no --gateway, --sub or --names")
		}
		return nil
	}
	switch {
	case o.gateway == "":
		return usagef("--gateway: name the gateway the sub-devices go with")
	case o.subProduct == "":
		return usagef("--sub-product: name the sub-devices' product")
	case o.subProduct == o.pf.product:
		return usagef("--sub-product %s is the gateway's --product too: a gateway product and a sub-device product are two", o.subProduct)
	case len(o.subs) == 0 && o.names == "":
		return usagef("no sub-devices: give --sub NAME (repeated) or --names FILE")
	case len(o.subs) > 0 && o.names != "":
		return usagef("--sub and --names both given: use one")
	}
	rule, err := devnames.PlatformRule(o.pf.platform)
	if err != nil {
		return withKind(errUsage, err)
	}
	if o.names != "" {
		file, err := devnames.ReadFile(o.names, devnames.Options{Rule: rule})
		if err != nil {
			return withKind(errUsage, fmt.Errorf("%w\nnothing was paired", err))
		}
		o.subs = file.Values()
	}
	if len(o.subs) > ledger.MaxSubDevices {
		return usagef("%d sub-devices for gateway %s: a gateway has at most %d (%v): nothing was paired",
			len(o.subs), o.gateway, ledger.MaxSubDevices, ledger.ErrGatewayFull)
	}
	return nil
}

func (o *pairOptions) run(g *globals, l *ledger.Ledger) error {
	added, err := l.Pair(o.pf.platform, o.pf.product, o.gateway, o.subProduct, o.subs)
	switch {
	case errors.Is(err, ledger.ErrPaired), errors.Is(err, ledger.ErrGatewayFull), errors.Is(err, ledger.ErrNotGateway),
		errors.Is(err, ledger.ErrNotFound), errors.Is(err, ledger.ErrVoid):
		return withKind(errUsage, err)
	case err != nil:
		return withKind(errLedger, err)
	}
	p, err := l.SubDevicesOf(o.pf.platform, o.pf.product, o.gateway)
	if err != nil {
		return withKind(errLedger, err)
	}
	if g.json {
		return g.emit(pairSummary{Type: typeSummary, Command: "pair", Platform: o.pf.platform, GatewayProduct: o.pf.product,
			Gateway: o.gateway, SubProduct: o.subProduct, Added: added, SubDevices: len(p.SubDevices)})
	}
	fmt.Fprintf(g.out, "paired %d sub-devices of %s with gateway %s/%s (%d new); it has %d of at most %d\n",
		len(o.subs), o.subProduct, o.pf.product, o.gateway, added, len(p.SubDevices), ledger.MaxSubDevices)
	return nil
}

func (o *pairOptions) printList(g *globals, l *ledger.Ledger) error {
	all, err := l.Pairings(o.pf.platform, o.pf.product)
	if err != nil {
		return withKind(errLedger, err)
	}
	subs := 0
	for _, p := range all {
		subs += len(p.SubDevices)
		if g.json {
			if err := g.emit(pairingEvent{Type: typeEvent, Event: "pairing", Platform: p.Platform, GatewayProduct: p.GatewayProduct,
				Gateway: p.Gateway, SubProduct: p.SubProduct, SubDevices: p.SubDevices}); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(g.out, "%s/%s: %d sub-devices of %s\n", p.GatewayProduct, p.Gateway, len(p.SubDevices), p.SubProduct)
		for _, s := range p.SubDevices {
			fmt.Fprintf(g.out, "  %s\n", s)
		}
	}
	if g.json {
		return g.emit(pairSummary{Type: typeSummary, Command: "pair --list", Platform: o.pf.platform, GatewayProduct: o.pf.product,
			Gateways: len(all), SubDevices: subs})
	}
	fmt.Fprintf(g.out, "%d gateways of %s with %d sub-devices\n", len(all), o.pf.product, subs)
	return nil
}

// pairSummary is `pair` (and `pair --list`).
type pairSummary struct {
	Type           string `json:"type"`
	Command        string `json:"command"` // "pair", "pair --list"
	Platform       string `json:"platform"`
	GatewayProduct string `json:"gateway_product"`
	Gateway        string `json:"gateway,omitempty"`
	SubProduct     string `json:"sub_product,omitempty"`
	Added          int    `json:"added"`
	Gateways       int    `json:"gateways,omitempty"`
	SubDevices     int    `json:"sub_devices"` // the gateway's (or, listed, all gateways') sub-devices now
}

func (pairSummary) lineType() string { return typeSummary }

// pairingEvent is one gateway and its sub-devices (`pair --list`).
type pairingEvent struct {
	Type           string   `json:"type"`
	Event          string   `json:"event"` // "pairing"
	Platform       string   `json:"platform"`
	GatewayProduct string   `json:"gateway_product"`
	Gateway        string   `json:"gateway"`
	SubProduct     string   `json:"sub_product"`
	SubDevices     []string `json:"sub_devices"`
}

func (pairingEvent) lineType() string { return typeEvent }
