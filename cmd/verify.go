package cmd

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/registry"
)

// verifyOptions are verify's flags; validate checks them all and builds
// QA's options before the ledger, a board or the cloud is touched; run
// opens the ledger and checks the boards.
type verifyOptions struct {
	pf          platformFlags
	lf          lineFlags
	usb         usbFilter
	port, ports string
	cloud       bool
	mqttLogin   bool
	certBroker  string // --mqtts-broker
	brokerCA    string // --broker-ca
	broker      string
	register    bool
	gateway     bool
	subDevice   bool
}

func (o *verifyOptions) validate(cmd *cobra.Command, g *globals, args []string) (provision.VerifyOptions, error) {
	var vo provision.VerifyOptions
	if err := o.pf.check(); err != nil {
		return vo, err
	}
	if o.port != "" && o.ports != "" {
		return vo, usagef("give --port or --ports, not both")
	}
	ports := o.ports
	if o.port != "" {
		ports = o.port
	}
	var err error
	if ports, err = o.usb.apply(ports); err != nil {
		return vo, err
	}
	// QA reads the NVS back and checks every key.
	if _, vo.Open, err = o.lf.board(cmd, g, &o.pf, args, true); err != nil {
		return vo, err
	}
	vo.Platform, vo.Product = o.pf.platform, o.pf.product
	if ports != "" {
		if _, err := burner.Expand(ports); err != nil {
			return vo, err
		}
		vo.Ports = func() ([]string, error) { return burner.Expand(ports) }
	}
	if _, err := provision.ParseMode(o.lf.mode); err != nil {
		return vo, withKind(errUsage, err)
	}
	if o.gateway && vo.Ports == nil {
		return vo, usagef("--gateway tells each gateway board to bring its sub-devices in: give the boards' --port or --ports")
	}
	if o.subDevice && (o.gateway || o.register || o.mqttLogin) {
		return vo, usagef("--sub-device: a sub-device board holds its product and name, and logs in through its gateway: verify the gateway with --gateway; leave out --register and --mqtt here")
	}
	vo.Gateway, vo.SubDevices = o.gateway, o.subDevice
	if o.mqttLogin {
		var certOpts []provision.CertLoginOption
		if o.brokerCA != "" {
			ca, err := os.ReadFile(o.brokerCA)
			if err != nil {
				return vo, usagef("--broker-ca: %v", err)
			}
			certOpts = append(certOpts, provision.WithBrokerCA(ca))
		}
		// A certificate device logs in over mutual TLS, as its board would.
		vo.Login = provision.EitherLogin(provision.MQTTLogin(o.broker), provision.MQTTCertLogin(o.certBroker, certOpts...))
		vo.TokenLogin = provision.MQTTTokenLogin(o.broker)
	}
	vo.Events = func(e provision.Event) {
		if g.json {
			_ = g.emit(newBoardEvent(e))
		} else {
			g.printLine(g.errOut, boardLine(e))
		}
	}
	return vo, nil
}

func (o *verifyOptions) run(cmd *cobra.Command, g *globals, vo provision.VerifyOptions) error {
	l, err := g.openExistingLedger()
	if err != nil {
		return err
	}
	defer l.Close()
	vo.Ledger = l
	if o.cloud || o.gateway || vo.Ports == nil {
		if vo.Cloud, err = o.pf.client(); err != nil {
			return err
		}
	}
	ms, err := o.lf.modeSettings(cmd.Context(), &o.pf)
	if err != nil {
		return err
	}
	vo.Mode, vo.ProductSecret = ms.mode, ms.productSecret
	vo.Register = o.register || (o.mqttLogin && ms.mode.ProductLevel())
	if vo.Register && vo.Cloud == nil {
		// A registered board is checked on the platform (and a Tencent
		// board's new secret can only be read there).
		if vo.Cloud, err = o.pf.client(); err != nil {
			return err
		}
	}
	res, err := provision.Verify(cmd.Context(), vo)
	if errors.Is(err, provision.ErrNoPairing) {
		return withKind(errUsage, err)
	}
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
}

func newVerifyCmd(g *globals) *cobra.Command {
	var o verifyOptions
	c := &cobra.Command{
		Use:   "verify --product P [--port PATH | --ports SPEC] [--cloud]",
		Short: "QA: check boards against the ledger and the platform",
		Long: `verify reads each board back (AT query) and compares it with the credential the ledger gave
that board (by its MAC/IMEI); with --cloud it also checks that the device exists on the platform
and is enabled, and with --mqtt that the board's credential logs in to the platform's MQTT broker
(the broker's reason is reported when it refuses). In the product-level modes (--mode) each
board is first told to register itself with the platform, as it will in the field, and then
logs in with what it obtained. With --gateway the boards are gateways: each is told, as on its
first connect, to bring in the sub-devices its kit holds (iotburn pair): a Tencent AT module
stores their keys, logs in, binds them and brings them online; an Aliyun ESP32 gateway, burned
with its kit (batch --kit), is booted and registers, adds and logs in each itself. The platform's
topology must then hold exactly the kit (implies --cloud). Without --port/--ports it checks every burned unit of the product in the ledger
against the platform (the whole batch, no boards needed; implies --cloud).

Each result goes into the ledger (verified, or failed with the reason) and so into the audit.`,
		Example: `  iotburn verify --product ABCDEFGHIJ --port /dev/ttyUSB0 --cloud
  iotburn verify --product ABCDEFGHIJ --ports 'boards/tty*' --cloud --json
  iotburn verify --product ABCDEFGHIJ --ports 'boards/tty*' --mqtt --mqtt-broker 127.0.0.1:1883
  iotburn verify --platform aliyun --product a1Xyz --mode registration-free --ports 'boards/tty*' --mqtt
  iotburn verify --product DEMOGATEWY --ports 'boards/tty*' --gateway --mqtt
  iotburn verify --platform aliyun --product a1GwPrd0001 --ports auto --format nvs --gateway --mqtt
  iotburn verify --platform aliyun --product a1SubPrd001 --ports auto --format nvs --sub-device
  iotburn verify --product ABCDEFGHIJ                 # the whole batch, against the platform`,
		Args: cobra.ArbitraryArgs, // esptool's --flash OFFSET FILE pairs
		RunE: func(cmd *cobra.Command, args []string) error {
			vo, err := o.validate(cmd, g, args)
			if err != nil {
				return err
			}
			return o.run(cmd, g, vo)
		},
	}
	o.pf.register(c, true)
	o.lf.register(c)
	c.Flags().StringVar(&o.port, "port", "", "the board's serial port")
	c.Flags().StringVar(&o.ports, "ports", "", "several boards: paths or globs, comma-separated, or auto")
	o.usb.register(c)
	c.Flags().BoolVar(&o.cloud, "cloud", false, "also check each device on the platform (exists, enabled)")
	c.Flags().BoolVar(&o.mqttLogin, "mqtt", false, "also log in to the platform's MQTT broker with each board's own credential")
	c.Flags().BoolVar(&o.subDevice, "sub-device", false, "the boards are sub-devices burned with batch --sub-device: check each holds its product and name (no secret) and the device exists")
	c.Flags().BoolVar(&o.gateway, "gateway", false, "the boards are gateways: have each bring in its paired sub-devices, then check the platform's topology (implies --cloud)")
	c.Flags().BoolVar(&o.register, "register", false, "product-level modes: have each board register itself with the platform first (implied by --mqtt)")
	c.Flags().StringVar(&o.broker, "mqtt-broker", "", "broker `host:port` instead of the vendor's public one (the emulator's is printed by iotburn sim cloud)")
	c.Flags().StringVar(&o.certBroker, "mqtts-broker", "", "certificate devices: the mutual-TLS broker `host:port` instead of the vendor's (the emulator's --mqtts-listen)")
	c.Flags().StringVar(&o.brokerCA, "broker-ca", "", "certificate devices: trust this CA `FILE` (PEM) for the broker instead of the system's (the emulator's <state>/ca.pem)")
	return c
}
