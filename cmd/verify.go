package cmd

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/registry"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var (
		pf          platformFlags
		lf          lineFlags
		usb         usbFilter
		port, ports string
		cloud       bool
		mqttLogin   bool
		broker      string
		register    bool
	)
	c := &cobra.Command{
		Use:   "verify --product P [--port PATH | --ports SPEC] [--cloud]",
		Short: "QA: check boards against the ledger and the platform",
		Long: `verify reads each board back (AT query) and compares it with the credential the ledger gave
that board (by its MAC/IMEI); with --cloud it also checks that the device exists on the platform
and is enabled, and with --mqtt that the board's credential logs in to the platform's MQTT broker
(the broker's reason is reported when it refuses). In the product-level modes (--mode) each
board is first told to register itself with the platform, as it will in the field, and then
logs in with what it obtained. Without --port/--ports it checks every burned unit of the product in the ledger
against the platform (the whole batch, no boards needed; implies --cloud).

Each result goes into the ledger (verified, or failed with the reason) and so into the audit.`,
		Example: `  iotburn verify --product ABCDEFGHIJ --port /dev/ttyUSB0 --cloud
  iotburn verify --product ABCDEFGHIJ --ports 'boards/tty*' --cloud --json
  iotburn verify --product ABCDEFGHIJ --ports 'boards/tty*' --mqtt --mqtt-broker 127.0.0.1:1883
  iotburn verify --platform aliyun --product a1Xyz --mode registration-free --ports 'boards/tty*' --mqtt
  iotburn verify --product ABCDEFGHIJ                 # the whole batch, against the platform`,
		Args: cobra.ArbitraryArgs, // esptool's --flash OFFSET FILE pairs
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := pf.check(); err != nil {
				return err
			}
			if port != "" && ports != "" {
				return fmt.Errorf("give --port or --ports, not both")
			}
			if port != "" {
				ports = port
			}
			var err error
			if ports, err = usb.apply(ports); err != nil {
				return err
			}
			l, err := g.openExistingLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			// QA reads the NVS back and checks every key.
			_, open, err := lf.board(cmd, g, &pf, args, true)
			if err != nil {
				return err
			}
			o := provision.VerifyOptions{Ledger: l, Platform: pf.platform, Product: pf.product, Open: open}
			if ports != "" {
				spec := ports
				if _, err := burner.Expand(spec); err != nil {
					return err
				}
				o.Ports = func() ([]string, error) { return burner.Expand(spec) }
			}
			if cloud || ports == "" {
				if o.Cloud, err = pf.client(); err != nil {
					return err
				}
			}
			ms, err := lf.modeSettings(cmd.Context(), &pf)
			if err != nil {
				return err
			}
			o.Mode, o.ProductSecret = ms.mode, ms.productSecret
			o.Register = register || (mqttLogin && ms.mode.ProductLevel())
			if o.Register && o.Cloud == nil {
				// A registered board is checked on the platform (and a
				// Tencent board's new secret can only be read there).
				if o.Cloud, err = pf.client(); err != nil {
					return err
				}
			}
			if mqttLogin {
				o.Login = provision.MQTTLogin(broker)
				o.TokenLogin = provision.MQTTTokenLogin(broker)
			}
			o.Events = func(e provision.Event) {
				if g.json {
					_ = g.emit(newBoardEvent(e))
				} else {
					g.printLine(g.errOut, boardLine(e))
				}
			}
			res, err := provision.Verify(cmd.Context(), o)
			if err != nil {
				return err
			}
			if g.json {
				if err := g.emit(lineSummary{Type: typeSummary, Command: "verify", Verified: res.Verified, Failed: res.Failed, NotChecked: res.NotChecked}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(g.out, "%d verified, %d failed, %d not checked\n", res.Verified, res.Failed, res.NotChecked)
			}
			if res.Failed > 0 {
				return &exitError{kind: errBoardsFailed, err: fmt.Errorf("%d board(s) failed QA:\n  %s", res.Failed, strings.Join(res.Failures, "\n  "))}
			}
			if res.NotChecked > 0 {
				// Nothing was concluded about these boards: their state in the
				// ledger is as it was. Not their fault, so not "failed".
				return &exitError{kind: registry.ErrUnreachable, err: fmt.Errorf("%d board(s) could not be checked (their ledger state is unchanged); verify them again when the platform, the broker and the boards answer:\n  %s", res.NotChecked, strings.Join(res.Unchecked, "\n  "))}
			}
			return nil
		},
	}
	pf.register(c, true)
	lf.register(c)
	c.Flags().StringVar(&port, "port", "", "the board's serial port")
	c.Flags().StringVar(&ports, "ports", "", "several boards: paths or globs, comma-separated, or auto")
	usb.register(c)
	c.Flags().BoolVar(&cloud, "cloud", false, "also check each device on the platform (exists, enabled)")
	c.Flags().BoolVar(&mqttLogin, "mqtt", false, "also log in to the platform's MQTT broker with each board's own credential")
	c.Flags().BoolVar(&register, "register", false, "product-level modes: have each board register itself with the platform first (implied by --mqtt)")
	c.Flags().StringVar(&broker, "mqtt-broker", "", "broker `host:port` instead of the vendor's public one (the emulator's is printed by iotburn sim cloud)")
	return c
}
