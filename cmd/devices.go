package cmd

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newDevicesCmd(g *globals) *cobra.Command {
	var pf platformFlags
	c := &cobra.Command{
		Use:   "devices --product P",
		Short: "List the product's devices as the platform sees them",
		Long: `devices asks the platform (or the emulator, with --endpoint) for every device of the product:
name, whether it is enabled and online, and when it was created. It never shows secrets.`,
		Example: `  iotburn devices --product ABCDEFGHIJ --endpoint http://127.0.0.1:8443
  iotburn devices --product ABCDEFGHIJ --json | wc -l`,
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
			for _, d := range list {
				created := ""
				if d.CreatedAt > 0 {
					created = time.Unix(d.CreatedAt, 0).UTC().Format(time.RFC3339)
				}
				if g.json {
					if err := g.emit(deviceEvent{Type: typeEvent, Event: "device", DeviceName: d.DeviceName, Enabled: d.Enabled, Online: d.Online, CreatedAt: created}); err != nil {
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
			}
			if !g.json {
				fmt.Fprintf(g.out, "%d devices in %s product %s\n", len(list), platform.Name(), pf.product)
			}
			return nil
		},
	}
	pf.register(c, true)
	return c
}
