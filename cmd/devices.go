package cmd

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/registry"
)

func newDevicesCmd(g *globals) *cobra.Command {
	var (
		pf         platformFlags
		subDevices string
	)
	c := &cobra.Command{
		Use:   "devices --product P",
		Short: "List the product's devices as the platform sees them",
		Long: `devices asks the platform (or the emulator, with --endpoint) for every device of the product:
name, whether it is enabled and online, and when it was created. It never shows secrets.
With --sub-devices it lists each gateway's sub-devices of that product too, as the platform's
topology has them (Aliyun GetThingTopo, where "*" means every product; Tencent
DescribeGatewayBindDevices, which needs the product).`,
		Example: `  iotburn devices --product ABCDEFGHIJ --endpoint http://127.0.0.1:8443
  iotburn devices --product ABCDEFGHIJ --json | wc -l
  iotburn devices --product DEMOGATEWY --sub-devices DEMOSUBDEV --endpoint http://127.0.0.1:8443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			platform, err := pf.client()
			if err != nil {
				return err
			}
			list, err := platform.Devices(cmd.Context(), pf.product)
			if err != nil {
				return err
			}
			topo, _ := platform.(registry.Topology)
			if subDevices != "" && topo == nil {
				return withKind(errUsage, fmt.Errorf("--sub-devices: the %s client cannot read a gateway's topology", platform.Name()))
			}
			subProduct := subDevices
			if subProduct == "*" {
				subProduct = ""
			}
			for _, d := range list {
				var subs []string
				if subDevices != "" {
					got, err := topo.SubDevices(cmd.Context(), pf.product, d.DeviceName, subProduct)
					if err != nil {
						return err
					}
					for _, s := range got {
						subs = append(subs, s.Product+"/"+s.DeviceName)
					}
				}
				created := ""
				if d.CreatedAt > 0 {
					created = time.Unix(d.CreatedAt, 0).UTC().Format(time.RFC3339)
				}
				if g.json {
					if err := g.emit(deviceEvent{Type: typeEvent, Event: "device", DeviceName: d.DeviceName, Enabled: d.Enabled, Online: d.Online, CreatedAt: created, SubDevices: subs}); err != nil {
						return err
					}
					continue
				}
				state := "enabled"
				if !d.Enabled {
					state = "disabled"
				}
				if d.Online {
					state += ",online"
				}
				fmt.Fprintf(g.out, "%-48s %-16s %s\n", d.DeviceName, state, created)
				for _, s := range subs {
					fmt.Fprintf(g.out, "  sub-device %s\n", s)
				}
			}
			if !g.json {
				fmt.Fprintf(g.out, "%d devices in %s product %s\n", len(list), platform.Name(), pf.product)
			}
			return nil
		},
	}
	pf.register(c, true)
	c.Flags().StringVar(&subDevices, "sub-devices", "", "also list each gateway's sub-devices of this product (\"*\" = every product, Aliyun)")
	return c
}
