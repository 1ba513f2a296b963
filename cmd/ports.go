package cmd

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/burner"
)

func newPortsCmd(g *globals) *cobra.Command {
	var watch bool
	c := &cobra.Command{
		Use:   "ports",
		Short: "List the serial ports plugged in (name, VID:PID, serial number, product)",
		Long: `ports lists the serial ports the system sees, with the USB adapter's VID:PID, serial number
and product name, so you can tell the boards on a hub apart. Simulated boards (iotburn sim device)
are pseudo-terminals and do not appear here: give their directory to --ports instead.`,
		Example: `  iotburn ports
  iotburn ports --watch     # print boards as they are plugged in and out
  iotburn ports --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := burner.List()
			if err != nil {
				return err
			}
			// event is present (listed now), plugged or removed (--watch).
			print := func(event string, p burner.PortInfo) error {
				if g.json {
					return g.emit(portEvent{Type: typeEvent, Event: event, Name: p.Name, ByPath: p.ByPath, USB: p.USB, VID: p.VID, PID: p.PID, SerialNumber: p.SerialNumber, Product: p.Product})
				}
				prefix := ""
				if watch {
					prefix = fmt.Sprintf("%-8s ", event)
				}
				id := "-"
				if p.USB {
					id = p.VID + ":" + p.PID
				}
				fmt.Fprintf(g.out, "%s%-20s %-10s %-20s %-24s %s\n", prefix, p.Name, id, p.SerialNumber, p.Product, p.ByPath)
				return nil
			}
			if !g.json && !watch {
				if len(list) == 0 {
					fmt.Fprintln(g.out, "no serial ports found: plug a board in (or see `iotburn sim device` for simulated ones)")
				}
			}
			seen := map[string]burner.PortInfo{}
			for _, p := range list {
				seen[p.Name] = p
				if err := print("present", p); err != nil {
					return err
				}
			}
			if !watch {
				return nil
			}
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-cmd.Context().Done():
					return nil
				case <-t.C:
				}
				now, err := burner.List()
				if err != nil {
					return err
				}
				cur := map[string]burner.PortInfo{}
				for _, p := range now {
					cur[p.Name] = p
					if _, ok := seen[p.Name]; !ok {
						_ = print("plugged", p)
					}
				}
				for name, p := range seen {
					if _, ok := cur[name]; !ok {
						_ = print("removed", p)
					}
				}
				seen = cur
			}
		},
	}
	c.Flags().BoolVar(&watch, "watch", false, "keep watching and print boards as they come and go")
	return c
}
