package cmd

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/provision/bench"
)

func newBenchCmd(g *globals) *cobra.Command {
	var o bench.Options
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure the performance targets on this machine, each beside its reference",
		Long: `bench measures, on the built-in emulator and simulated boards, in one run:
the line (boards/min on 1, 8, 16 and 24 paced AT ports, each beside one port), an AT board
burned with a certificate (beside one burned with a key), the ESP32 write
(and with --only esp32-full a whole board: firmware, table, bootloader and credentials, beside
the flash chip's own floor and, with --esptool, Espressif's esptool on the same simulated
boards), batch creation of --devices devices on each platform through the official SDKs (time,
API calls, peak memory), NVS partition generation (beside Espressif's generator in one process
when --nvs-gen points at it) and the time and peak memory of a --rows-board audit workbook.
The machine is shared and noisy: compare the figures of one run, never across runs.`,
		Example: `  iotburn bench
  iotburn bench --nvs-gen /path/to/nvs_partition_gen.py --json
  iotburn bench --only esp32-full --esptool /path/to/esptool-4.8.1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "iotburn-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			o.Dir = dir
			if g.json {
				o.Report = func(f bench.Figure) {
					_ = g.emit(figureEvent{Type: typeEvent, Event: "figure", Name: f.Name, Value: f.Value, Reference: f.Reference, Target: f.Target, Met: f.Met})
				}
			} else {
				o.Report = func(f bench.Figure) { fmt.Fprintf(g.errOut, "measured: %s\n", f.Name) }
			}
			figs, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if !g.json {
				bench.Print(g.out, figs)
			}
			return nil
		},
	}
	c.Flags().IntVar(&o.Devices, "devices", 10000, "devices to create on each platform")
	c.Flags().IntVar(&o.Rows, "rows", 100000, "boards in the audit workbook")
	c.Flags().StringVar(&o.NVSGen, "nvs-gen", "", "Espressif's nvs_partition_gen.py, run with python3 for the NVS reference")
	c.Flags().StringVar(&o.Esptool, "esptool", "", "Espressif's esptool (a v4.8.1 source tree, esptool.py or the executable), run on the same simulated ESP32s for the full-board reference")
	c.Flags().StringSliceVar(&o.Only, "only", nil, "run just these measurements: audit, line, at-cert, esp32, esp32-full, create, nvs")
	return c
}
