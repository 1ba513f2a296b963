package cmd

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/provision/demo"
	"github.com/iotburn/iotburn/registry"
)

func newDemoCmd(g *globals) *cobra.Command {
	var (
		dir      string
		platform string
		mode     string
		kind     string
		boards   int
	)
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run a whole production batch on the built-in emulator and simulated boards",
		Long: `demo starts the platform emulator and simulated boards, creates the devices through the
platform's official SDK, burns every board through real serial I/O, checks that each board holds exactly
the secret the platform issued for its name, and writes the audit workbook.

Everything goes into a temporary directory, or --dir (kept afterwards, to look at).`,
		Example: `  iotburn demo
  iotburn demo --dir demo-out --boards 8
  iotburn demo --platform aliyun
  iotburn demo --mode product-preregistered          # the boards register themselves
  iotburn demo --platform aliyun --mode registration-free   # on ESP32 boards
  iotburn demo --kind esp32 --platform aliyun --mode product-preregistered
  iotburn demo --mode gateway --dir D                 # Tencent gateways bring their sub-devices in; then sim cloud --state D/cloud
  iotburn demo --mode gateway --platform aliyun --dir D   # ESP32 gateways burned with their kits register theirs
  iotburn demo --mode device-cert [--platform aliyun]   # X.509 devices on ESP32 boards, mutual-TLS login
  iotburn demo --mode device-cert --kind tencent-at     # X.509 devices on cellular modules (AT+TCCERTADD)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := registry.ParsePlatform(platform); err != nil {
				return withKind(errUsage, fmt.Errorf("demo --platform %w", err))
			}
			if mode == "gateway" {
				return runGatewayDemo(cmd, g, dir, platform, kind, boards)
			}
			// device-cert is the demo's name for a certificate product's
			// device-level mode: the line's --mode is device, the product
			// says certificate.
			cert := mode == "device-cert"
			if cert {
				mode = string(provision.ModeDevice)
			}
			m, err := provision.ParseMode(mode)
			if err != nil {
				return err
			}
			if dir == "" {
				tmp, err := os.MkdirTemp("", "iotburn-demo-")
				if err != nil {
					return err
				}
				dir = tmp
			}
			var screen *lineScreen
			events := func(provision.Event) {}
			if !g.json {
				screen = newLineScreen(g.errOut, terminalOf(g.errOut), boards, nil).live()
				events = screen.Event
			}
			res, err := demo.Run(cmd.Context(), demo.Options{Dir: dir, Platform: platform, Mode: m, Kind: kind, Cert: cert, Boards: boards, Out: g.out, Events: events})
			if screen != nil {
				screen.Close()
			}
			if err != nil {
				return fmt.Errorf("demo failed: %w (everything is in %s)", err, dir)
			}
			if g.json {
				return g.emit(demoSummary{Type: typeSummary, Command: "demo", Dir: res.Dir, Ledger: res.Ledger, Audit: res.Audit, Boards: res.Boards,
					Burned: res.Line.Burned, Skipped: res.Line.Skipped, Verified: res.Verified, Seconds: res.Elapsed.Seconds()})
			}
			fmt.Fprintf(g.out, "\ndemo done in %.1fs: %d boards burned, %d verified.\n", res.Elapsed.Seconds(), res.Line.Burned+res.Line.Skipped, res.Verified)
			fmt.Fprintf(g.out, "  ledger  %s   (iotburn --ledger %s ledger status)\n", res.Ledger, res.Ledger)
			fmt.Fprintf(g.out, "  audit   %s\n", res.Audit)
			fmt.Fprintf(g.out, "  boards  %s   (each board's flash is a board-NN.json there, an ESP32's raw flash board-NN.flash)\n", res.Boards)
			fmt.Fprintf(g.out, "  cloud   %s\n", res.CloudState)
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "keep everything in this directory (default: a new temporary one)")
	c.Flags().StringVar(&platform, "platform", registry.Tencent, "platform to emulate: "+strings.Join(registry.Platforms, " or "))
	c.Flags().StringVar(&mode, "mode", "device", "credential mode: device, device-cert (a certificate product), product-preregistered, product-autocreate (tencent), registration-free (aliyun), gateway (gateways and their sub-devices)")
	c.Flags().StringVar(&kind, "kind", "", "boards: tencent-at, aliyun-at or esp32 (default: the platform's AT module; esp32 for registration-free, which no AT firmware runs)")
	c.Flags().IntVar(&boards, "boards", 4, "how many simulated boards")
	return c
}

// runGatewayDemo is demo --mode gateway: gateways burned (Tencent AT
// modules; Aliyun ESP32 boards with their kits), then each bringing its
// sub-devices in over the emulator's broker.
func runGatewayDemo(cmd *cobra.Command, g *globals, dir, platform, kind string, boards int) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "iotburn-demo-")
		if err != nil {
			return err
		}
		dir = tmp
	}
	if boards == 4 {
		boards = 2 // the flag's default is the other modes'; two gateways show the pairing
	}
	var screen *lineScreen
	events := func(provision.Event) {}
	if !g.json {
		screen = newLineScreen(g.errOut, terminalOf(g.errOut), boards, nil).live()
		events = screen.Event
	}
	res, err := demo.RunGateway(cmd.Context(), demo.Options{Dir: dir, Platform: platform, Kind: kind, Boards: boards, Out: g.out, Events: events})
	if screen != nil {
		screen.Close()
	}
	if errors.Is(err, demo.ErrNoGatewayBoard) {
		return withKind(errUsage, err)
	}
	if err != nil {
		return fmt.Errorf("demo failed: %w (everything is in %s)", err, dir)
	}
	if g.json {
		return g.emit(demoSummary{Type: typeSummary, Command: "demo", Dir: res.Dir, Ledger: res.Ledger, Audit: res.Audit, Boards: res.Boards,
			Burned: res.Line.Burned, Skipped: res.Line.Skipped, Verified: res.Verified, Seconds: res.Elapsed.Seconds()})
	}
	fmt.Fprintf(g.out, "\ndemo done in %.1fs: %d gateways burned and verified, %d sub-devices bound and online.\n",
		res.Elapsed.Seconds(), res.Verified, res.Online)
	fmt.Fprintf(g.out, "  ledger  %s\n  audit   %s\n  boards  %s\n", res.Ledger, res.Audit, res.Boards)
	gw, sub := demo.GatewayProduct, demo.SubDeviceProduct
	if platform == "aliyun" {
		gw, sub = demo.AliyunGatewayProduct, demo.AliyunSubDeviceProduct
	}
	fmt.Fprintf(g.out, "  cloud   %s   (iotburn sim cloud --state %s --product %s:%s:gateway --product %s:%s:subdevice serves it again)\n",
		res.CloudState, res.CloudState, platform, gw, platform, sub)
	return nil
}
