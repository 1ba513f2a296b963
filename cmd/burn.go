package cmd

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/provision"
)

func newBurnCmd(g *globals) *cobra.Command {
	var (
		pf     platformFlags
		lf     lineFlags
		port   string
		device string
	)
	c := &cobra.Command{
		Use:   "burn --port PATH --product P [--device NAME]",
		Short: "Burn one board by hand",
		Long: `burn runs one board through the line: identify, claim a credential (the next free one, or
--device NAME), write, read back and compare. A board that already holds its credential is left
alone; a board that had one before gets the same one again.`,
		Example: `  iotburn burn --port /dev/ttyUSB0 --product ABCDEFGHIJ
  iotburn burn --port /dev/ttyUSB0 --product ABCDEFGHIJ --device dev0042`,
		Args: cobra.ArbitraryArgs, // esptool's --flash OFFSET FILE pairs
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := pf.check(); err != nil {
				return err
			}
			f, open, err := lf.board(cmd, g, &pf, args, false)
			if err != nil {
				return err
			}
			if _, err := os.Stat(port); err != nil {
				return errors.New("port " + port + " does not exist: run `iotburn ports` to see what is plugged in")
			}
			l, err := lf.openLedger(g)
			if err != nil {
				return err
			}
			defer l.Close()
			o := provision.LineOptions{
				Ledger: l, Platform: pf.platform, Product: pf.product, Format: f, Station: lf.station,
				Ports: func() ([]string, error) { return []string{port}, nil },
				Open:  open,
				Once:  true, Device: device,
			}
			if err := lf.modeOptions(cmd.Context(), &pf, &o); err != nil {
				return err
			}
			return runLine(cmd, g, 1, o)
		},
	}
	pf.register(c, true)
	lf.register(c)
	c.Flags().StringVar(&port, "port", "", "the serial port of the board (required)")
	c.Flags().StringVar(&device, "device", "", "burn this device's credential (default: the next free one)")
	_ = c.MarkFlagRequired("port")
	return c
}
