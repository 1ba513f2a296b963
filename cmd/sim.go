package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/registry/emulator"
)

func newSimCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "sim",
		Short: "Run the built-in platform emulator and simulated boards (demo, training, CI)",
	}
	c.AddCommand(newSimCloudCmd(g), newSimDeviceCmd(g))
	return c
}

func newSimCloudCmd(g *globals) *cobra.Command {
	var (
		listen, state string
		mqttListen    string
		mqttsListen   string
		products      []string
		dynreg        []string
		fault         string
		maxPending    int
	)
	c := &cobra.Command{
		Use:   "cloud",
		Short: "Serve the Tencent IoT Hub and Alibaba Cloud IoT Platform APIs on this machine",
		Long: `sim cloud is a local Tencent Cloud IoT Hub (iotcloud 2018-06-14, TC3-HMAC-SHA256) and Alibaba
Cloud IoT Platform (Iot 2018-01-20, RPC signature 1.0) on one port: the same APIs, signatures
checked, batch creation as asynchronous tasks, real random device secrets, request-rate limits
and quotas with the clouds' own error codes. Its state lives in --state: a restart loses nothing.

A product written aliyun:PK:gateway is a gateway product (NodeType 1), aliyun:PK:subdevice a
sub-device product: over the MQTT broker a logged-in gateway registers its sub-devices
(thing/sub/register; the names created first, the sub-device product's dynamic registration on),
adds them to its topology (thing/topo/add, at most 1,500) and logs them in (combine/login);
GetThingTopo lists them. tencent:PID:gateway (ProductType 5) and tencent:PID:subdevice are
Tencent's: a gateway binds its sub-devices ($gateway/operation bind, signed with each one's
PSK; at most 1,500) and brings them online; BindDevices, UnbindDevices and
DescribeGatewayBindDevices do it through the API.

A product written tencent:PID:cert or aliyun:PK:cert authenticates its devices with X.509
certificates (Tencent "certificate" products, Aliyun X.509): the emulator issues each device a
certificate and private key from its own CA (--state/ca.pem, created on first start), and its
devices log in over mutual TLS on --mqtts-listen, whose server certificate chains to the same CA.

It accepts the key pairs in TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY and
ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET, or makes them up, keeps them in
--state and prints them: paste the export lines into the shell that runs iotburn.`,
		Example: `  iotburn sim cloud --listen 127.0.0.1:8443 --state cloud/ --product tencent:ABCDEFGHIJ --product aliyun:a1Xyz
  iotburn sim cloud --product tencent:CERTPRODUC:cert --product aliyun:a1X509:cert --mqtts-listen 127.0.0.1:8883
  iotburn sim cloud --dynamic-registration tencent:ABCDEFGHIJ:autocreate=100 --dynamic-registration aliyun:a1Xyz:registration-free
  iotburn sim cloud --product aliyun:a1Gw:gateway --product aliyun:a1Sub:subdevice --dynamic-registration aliyun:a1Sub
  iotburn sim cloud --product tencent:GATEWAYPID:gateway --product tencent:SUBDEVPID1:subdevice
  iotburn sim cloud --fault 5xx=0.05,latency=200ms,throttle=0.02,drop-conn=0.01     # a bad day to rehearse
  # in another shell: the printed export line, then
  iotburn create --product ABCDEFGHIJ --names names.txt --endpoint http://127.0.0.1:8443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ps, err := parseSimProducts(products)
			if err != nil {
				return withKind(errUsage, err)
			}
			tencentProducts := append(append([]string(nil), ps.tencent...), ps.tencentCert...)
			if err := os.MkdirAll(state, 0o700); err != nil {
				return err
			}
			settings, err := parseDynReg(dynreg)
			if err != nil {
				return err
			}
			chaos, err := emulator.ParseChaos(fault)
			if err != nil {
				return withKind(errUsage, err)
			}
			keys, err := emulatorKeys(state)
			if err != nil {
				return err
			}
			emu, err := emulator.New(emulator.Config{StateDir: state, SecretID: keys.SecretID, SecretKey: keys.SecretKey,
				Products: ps.tencent, CertProducts: ps.tencentCert,
				GatewayProducts: ps.tencentGateway, SubDeviceProducts: ps.tencentSubDevice,
				AliyunAccessKeyID: keys.AliyunAccessKeyID, AliyunAccessKeySecret: keys.AliyunAccessKeySecret,
				AliyunProducts: ps.aliyun, AliyunCertProducts: ps.aliyunCert, DynRegProducts: settings, Log: g.logger(),
				AliyunGatewayProducts: ps.aliyunGateway, AliyunSubDeviceProducts: ps.aliyunSubDevice,
				MaxPendingTasks: maxPending})
			if err != nil {
				return err
			}
			defer emu.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("cannot listen on %s: %w (another sim cloud running? pick another --listen)", listen, err)
			}
			endpoint := "http://" + ln.Addr().String()
			mqttAddr, err := emu.StartMQTT(mqttListen)
			if err != nil {
				return fmt.Errorf("cannot start the MQTT broker on %s: %w (pick another --mqtt-listen)", mqttListen, err)
			}
			fmt.Fprintf(g.out, "iotburn sim cloud at %s, MQTT broker at %s, state in %s\n", endpoint, mqttAddr, state)
			if mqttsListen != "" {
				mqttsAddr, err := emu.StartMQTTS(mqttsListen)
				if err != nil {
					return fmt.Errorf("cannot start the MQTT TLS listener on %s: %w (pick another --mqtts-listen, or \"\" for none)", mqttsListen, err)
				}
				fmt.Fprintf(g.out, "  MQTT over mutual TLS (device certificates) at %s, CA %s\n", mqttsAddr, filepath.Join(state, emulator.CAFile))
			}
			fmt.Fprintf(g.out, "  Tencent IoT Hub (iotcloud 2018-06-14, region ap-guangzhou): products %s\n", strings.TrimPrefix(productList(ps.tencent, ps.tencentCert)+kindList(ps.tencentGateway, "gateway")+kindList(ps.tencentSubDevice, "sub-device"), ", "))
			fmt.Fprintf(g.out, "  Alibaba Cloud IoT Platform (Iot 2018-01-20, region cn-shanghai): products %s\n", strings.TrimPrefix(productList(ps.aliyun, ps.aliyunCert)+kindList(ps.aliyunGateway, "gateway")+kindList(ps.aliyunSubDevice, "sub-device"), ", "))
			if keys.madeTencent || keys.madeAliyun {
				fmt.Fprintf(g.out, "keys made up for this emulator (kept in %s); paste into the shell that runs iotburn:\n", filepath.Join(state, "keys.json"))
			}
			if keys.madeTencent {
				fmt.Fprintf(g.out, "  export TENCENTCLOUD_SECRET_ID=%s TENCENTCLOUD_SECRET_KEY=%s TENCENTCLOUD_REGION=ap-guangzhou\n", keys.SecretID, keys.SecretKey)
			} else {
				fmt.Fprintln(g.out, "  Tencent: accepting the keys in TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY")
			}
			if keys.madeAliyun {
				fmt.Fprintf(g.out, "  export ALIBABA_CLOUD_ACCESS_KEY_ID=%s ALIBABA_CLOUD_ACCESS_KEY_SECRET=%s ALIBABA_CLOUD_REGION_ID=cn-shanghai\n", keys.AliyunAccessKeyID, keys.AliyunAccessKeySecret)
			} else {
				fmt.Fprintln(g.out, "  Aliyun: accepting the keys in ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET")
			}
			fmt.Fprintf(g.out, "then: iotburn create --product %s --names FILE --endpoint %s\n", firstOr(tencentProducts, "P"), endpoint)
			var h http.Handler = emu
			if chaos != (emulator.Chaos{}) {
				h = emu.WithChaos(chaos)
				fmt.Fprintf(g.out, "rehearsing a bad day: %s\n", fault)
			}
			return serveUntilDone(cmd.Context(), ln, h)
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8443", "address to serve on")
	c.Flags().IntVar(&maxPending, "max-pending-tasks", 0, "Tencent: how many CreateMultiDevice tasks may be unfinished at once before LimitExceeded.PengingOrProcessingTasksExceedLimit (0: the emulator's default, 10)")
	c.Flags().StringVar(&fault, "fault", "", "rehearse a bad day: 5xx=P,latency=D,throttle=P,drop-conn=P (e.g. 5xx=0.05,latency=200ms)")
	c.Flags().StringArrayVar(&dynreg, "dynamic-registration", nil, "switch a product's dynamic registration on at first start: tencent:PID, tencent:PID:autocreate[=QUOTA], aliyun:PK, aliyun:PK:registration-free (repeatable)")
	c.Flags().StringVar(&mqttListen, "mqtt-listen", "127.0.0.1:1883", "address of the MQTT broker devices log in to (verify --mqtt --mqtt-broker)")
	c.Flags().StringVar(&mqttsListen, "mqtts-listen", "127.0.0.1:8883", "address of the broker's mutual-TLS listener, where devices of certificate products log in (\"\" = none)")
	c.Flags().StringVar(&state, "state", "iotburn-cloud", "directory holding the emulator's state (devices, secrets, tasks)")
	c.Flags().StringArrayVar(&products, "product", []string{"tencent:ABCDEFGHIJ", "aliyun:a1Xyz"}, "a product to have, as tencent:PRODUCTID or aliyun:PRODUCTKEY, :cert for a certificate product (repeatable)")
	return c
}

// simProducts are the --product values by platform and kind.
type simProducts struct {
	tencent, tencentCert, aliyun, aliyunCert []string
	tencentGateway, tencentSubDevice         []string
	aliyunGateway, aliyunSubDevice           []string
}

// parseSimProducts reads --product values: tencent:PRODUCTID or
// aliyun:PRODUCTKEY, with :cert for a certificate product, :gateway or
// :subdevice for a gateway or sub-device product.
func parseSimProducts(specs []string) (simProducts, error) {
	var ps simProducts
	seen := map[string]bool{}
	for _, spec := range specs {
		parts := strings.Split(spec, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[1] == "" {
			return ps, fmt.Errorf("--product %q: write it as tencent:PRODUCTID or aliyun:PRODUCTKEY, with :cert, :gateway or :subdevice for those kinds", spec)
		}
		kind := ""
		if len(parts) == 3 {
			switch parts[2] {
			case "cert", "gateway", "subdevice":
				kind = parts[2]
			default:
				return ps, fmt.Errorf("--product %q: %q is not a product kind: they are cert, gateway and subdevice", spec, parts[2])
			}
		}
		key := parts[0] + ":" + parts[1]
		if seen[key] {
			return ps, fmt.Errorf("--product %q: %s is given twice", spec, key)
		}
		seen[key] = true
		var list *[]string
		switch parts[0] + ":" + kind {
		case "tencent:":
			list = &ps.tencent
		case "tencent:cert":
			list = &ps.tencentCert
		case "aliyun:":
			list = &ps.aliyun
		case "aliyun:cert":
			list = &ps.aliyunCert
		case "aliyun:gateway":
			list = &ps.aliyunGateway
		case "aliyun:subdevice":
			list = &ps.aliyunSubDevice
		case "tencent:gateway":
			list = &ps.tencentGateway
		case "tencent:subdevice":
			list = &ps.tencentSubDevice
		default:
			return ps, fmt.Errorf("--product %q: the platform is tencent or aliyun", spec)
		}
		*list = append(*list, parts[1])
	}
	return ps, nil
}

// kindList names more products of one kind, each marked, after a comma.
func kindList(keys []string, kind string) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(", " + k + " (" + kind + ")")
	}
	return b.String()
}

// productList names the products, certificate ones marked.
func productList(key, cert []string) string {
	out := append([]string(nil), key...)
	for _, p := range cert {
		out = append(out, p+" (certificates)")
	}
	return strings.Join(out, ", ")
}

// parseDynReg reads --dynamic-registration values into the emulator's
// per-product settings.
func parseDynReg(specs []string) (map[string]emulator.ProductSettings, error) {
	out := map[string]emulator.ProductSettings{}
	for _, spec := range specs {
		parts := strings.Split(spec, ":")
		if len(parts) < 2 || (parts[0] != "tencent" && parts[0] != "aliyun") || parts[1] == "" {
			return nil, fmt.Errorf("--dynamic-registration %q: write it as tencent:PID[:autocreate[=N]] or aliyun:PK[:registration-free]", spec)
		}
		st := emulator.ProductSettings{DynamicRegistration: true}
		if len(parts) == 3 {
			opt, n, hasN := strings.Cut(parts[2], "=")
			switch {
			case parts[0] == "tencent" && opt == "autocreate":
				st.AutoCreate = true
				if hasN {
					q, err := strconv.Atoi(n)
					if err != nil || q < 0 {
						return nil, fmt.Errorf("--dynamic-registration %q: the quota is a number", spec)
					}
					st.AutoCreateQuota = q
				}
			case parts[0] == "aliyun" && opt == "registration-free" && !hasN:
				st.RegistrationFree = true
			default:
				return nil, fmt.Errorf("--dynamic-registration %q: %s takes %s", spec, parts[0], map[string]string{"tencent": "autocreate[=N]", "aliyun": "registration-free"}[parts[0]])
			}
		} else if len(parts) > 3 {
			return nil, fmt.Errorf("--dynamic-registration %q: too many parts", spec)
		}
		out[parts[0]+":"+parts[1]] = st
	}
	return out, nil
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// serveUntilDone serves h on ln until ctx is cancelled.
func serveUntilDone(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shut)
	}
}

// cloudKeys are the key pairs the emulator accepts, one per vendor.
type cloudKeys struct {
	SecretID, SecretKey                      string // Tencent
	AliyunAccessKeyID, AliyunAccessKeySecret string
	madeTencent, madeAliyun                  bool // made up (or kept from an earlier start), not from the environment
}

// emulatorKeys returns the key pairs the emulator accepts: for each vendor the
// environment's (the variables its client reads), or the pair kept in the
// state directory, or a new one.
func emulatorKeys(state string) (cloudKeys, error) {
	var k cloudKeys
	path := filepath.Join(state, "keys.json")
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &k); err != nil {
			return k, fmt.Errorf("%s: %w (delete it to make new keys)", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	kept := k
	if k.SecretID == "" || k.SecretKey == "" {
		kept.SecretID, kept.SecretKey = emulator.NewKeyPair()
	}
	if k.AliyunAccessKeyID == "" || k.AliyunAccessKeySecret == "" {
		kept.AliyunAccessKeyID, kept.AliyunAccessKeySecret = emulator.NewAliyunKeyPair()
	}
	if kept != k {
		b, _ := json.Marshal(kept)
		if err := provision.WriteSecretFile(path, b); err != nil {
			return k, err
		}
	}
	k = kept
	k.madeTencent, k.madeAliyun = true, true
	if id, key := os.Getenv("TENCENTCLOUD_SECRET_ID"), os.Getenv("TENCENTCLOUD_SECRET_KEY"); id != "" && key != "" {
		k.SecretID, k.SecretKey, k.madeTencent = id, key, false
	}
	if id, key := os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"), os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET"); id != "" && key != "" {
		k.AliyunAccessKeyID, k.AliyunAccessKeySecret, k.madeAliyun = id, key, false
	}
	return k, nil
}

func newSimDeviceCmd(g *globals) *cobra.Command {
	var (
		opts  sim.Options
		fault string
	)
	c := &cobra.Command{
		Use:   "device",
		Short: "Simulate boards on pseudo-terminals: each appears as DIR/ttySIMnn",
		Long: `sim device starts --count simulated boards, each a pseudo-terminal speaking a module's firmware
(tencent-at: the Tencent IoT AT firmware; aliyun-at: Alibaba's IoT AT firmware; esp32: the ESP32
ROM serial bootloader) at --baud, with its own MAC and IMEI. Given --cloud (and --mqtt), boards
with a product's key register themselves with the platform when told to, as real modules do. Each board's
flash is a file in --dir: restart on the same --dir and the same boards come back with what was
burned into them. Point the line at them with --ports 'DIR/tty*'.`,
		Example: `  iotburn sim device --kind tencent-at --count 8 --dir boards/
  iotburn sim device --kind aliyun-at --count 4 --dir ali/ --cloud http://127.0.0.1:8443 --mqtt 127.0.0.1:1883
  iotburn sim device --kind esp32 --count 4 --dir esp/
  iotburn sim device --kind tencent-at-cellular --count 4 --dir cell/   # takes certificates (AT+TCCERTADD)
  iotburn sim device --count 16 --dir boards/ --fault drop=0.01,garble=0.01,stall=2s,glitch=tcmodule   # a bad day
  # in another shell
  iotburn batch --product ABCDEFGHIJ --ports 'boards/tty*'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Log = g.logger()
			var err error
			if opts.Chaos, err = sim.ParseChaos(fault); err != nil {
				return withKind(errUsage, err)
			}
			farm, err := sim.Start(opts)
			if err != nil {
				return err
			}
			defer farm.Close()
			for _, b := range farm.Boards() {
				if g.json {
					_ = g.emit(simBoardEvent{Type: typeEvent, Event: "board", Port: b.Path(), Kind: opts.Kind, MAC: b.MAC(), IMEI: b.IMEI()})
				} else {
					fmt.Fprintf(g.out, "%-30s mac %s  imei %s\n", b.Path(), b.MAC(), b.IMEI())
				}
			}
			if !g.json {
				fmt.Fprintf(g.out, "%d %s boards at %d baud; Ctrl-C to unplug them all. Burn them with --ports '%s'\n",
					len(farm.Boards()), opts.Kind, opts.Baud, filepath.Join(opts.Dir, "tty*"))
			}
			<-cmd.Context().Done()
			return nil
		},
	}
	c.Flags().StringVar(&opts.Kind, "kind", "tencent-at", "board firmware: tencent-at (an ESP8266 module), tencent-at-cellular (a cellular module: certificate commands, IMEI), aliyun-at or esp32")
	c.Flags().IntVar(&opts.Count, "count", 8, "how many boards")
	c.Flags().StringVar(&opts.Dir, "dir", "iotburn-boards", "directory for the boards' ports and flash files")
	c.Flags().IntVar(&opts.Baud, "baud", 115200, "line rate the boards are paced at")
	c.Flags().StringVar(&fault, "fault", "", "rehearse a bad day on every board: drop=P,garble=P,stall=D[@P],unplug-after=D,reboot-after=D,glitch=CMD,seed=N")
	c.Flags().StringVar(&opts.Cloud, "cloud", "", "the platform the boards register themselves with (product-level modes), e.g. http://127.0.0.1:8443")
	c.Flags().StringVar(&opts.MQTT, "mqtt", "", "the platform's MQTT broker, for Aliyun registration-free boards, e.g. 127.0.0.1:1883")
	return c
}
