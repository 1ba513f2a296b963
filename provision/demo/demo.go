// Package demo runs the whole line on the built-in platform emulator and
// simulated boards: the machinery of `iotburn demo`, kept out of provision so
// that the line itself knows no vendor.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/provision/audit"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/aliyun"
	"github.com/iotburn/iotburn/registry/emulator"
	"github.com/iotburn/iotburn/registry/tencent"
	"github.com/iotburn/iotburn/templates"
	"github.com/iotburn/iotburn/templates/nvs"
)

// Options configures `iotburn demo`.
type Options struct {
	Dir      string         // everything the demo makes goes here
	Platform string         // "tencent" (default) or "aliyun"
	Mode     provision.Mode // default device
	Boards   int            // simulated boards (default 4)
	Baud     int            // default 115200
	Product  string         // default ABCDEFGHIJ (Tencent), a1Xyz (Aliyun)
	// Kind is the boards: "tencent-at" or "aliyun-at" (the platform's AT
	// module, the default) or "esp32" (ESP32 boards with the platform's
	// Espressif kit, burned with the kit's layout and firmware in one pass;
	// the default for registration-free, which no AT firmware can run).
	// With Cert, "tencent-at" is a cellular module with Tencent's AT
	// firmware (the sim's tencent-at-cellular), the one that takes a
	// certificate.
	Kind string
	// Cert makes the product a certificate product (`--mode device-cert`):
	// each device gets an X.509 certificate and key, burned onto ESP32
	// boards (the only boards iotburn burns certificates onto) and logged
	// in over mutual TLS. Mode must be device.
	Cert   bool
	Out    io.Writer
	Events func(provision.Event) // the line's events (progress display)
}

// Result says where everything is and what was checked.
type Result struct {
	Dir, Ledger, Audit, Boards, CloudState, Endpoint string
	Line                                             provision.LineResult
	Created, Verified                                int
	Elapsed                                          time.Duration
}

// Run runs the whole line on the built-in emulator and simulated boards:
// the emulator serves the Tencent API on a loopback port, the real SDK client
// creates the devices through it, the line burns the simulated boards through
// real serial I/O, and then every board's flash is checked against what the
// emulator issued for its name.
func Run(ctx context.Context, o Options) (Result, error) {
	start := time.Now()
	if o.Boards <= 0 {
		o.Boards = 4
	}
	if o.Baud <= 0 {
		o.Baud = 115200
	}
	if o.Platform == "" {
		o.Platform = "tencent"
	}
	v, ok := demoVendors[o.Platform]
	if !ok {
		return Result{}, fmt.Errorf("demo: unknown platform %q: use tencent or aliyun", o.Platform)
	}
	if o.Product == "" {
		o.Product = v.product
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	res := Result{
		Dir:        o.Dir,
		Ledger:     filepath.Join(o.Dir, "iotburn.db"),
		Audit:      filepath.Join(o.Dir, "audit.xlsx"),
		Boards:     filepath.Join(o.Dir, "boards"),
		CloudState: filepath.Join(o.Dir, "cloud"),
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return res, err
	}
	say := func(format string, a ...any) { fmt.Fprintf(o.Out, format+"\n", a...) }

	// 1. The platform.
	if o.Mode == "" {
		o.Mode = provision.ModeDevice
	}
	if err := provision.CheckMode(o.Mode, o.Platform, nil); err != nil {
		return res, err
	}
	kind := o.Kind
	switch {
	case o.Cert && o.Mode != provision.ModeDevice:
		return res, fmt.Errorf("demo: certificate devices are device-level: --mode device-cert alone")
	case o.Cert && o.Platform == "tencent" && (kind == "tencent-at" || kind == cellularKind):
		kind = cellularKind // the Tencent AT firmware with certificate commands is a cellular module's
	case o.Cert && kind != "" && kind != "esp32":
		return res, fmt.Errorf("demo --mode device-cert --kind %s: %w: %s has no AT firmware that takes a certificate (Alibaba's IDMAU has no certificate command): use --kind esp32", kind, provision.ErrModeBoard, o.Platform)
	case kind == "" && (o.Mode == provision.ModeRegistrationFree || o.Cert):
		kind = "esp32"
	case kind == "":
		kind = v.format
	case kind != v.format && kind != "esp32":
		return res, fmt.Errorf("demo --kind %s: on %s use %s or esp32", kind, o.Platform, v.format)
	}
	board := kind
	if kind == cellularKind {
		board = "tencent-at"
	}
	if kind == "esp32" {
		board = "nvs"
		if o.Platform == "tencent" && o.Mode.ProductLevel() {
			return res, fmt.Errorf("--mode %s on esp32 boards: %w: Espressif's Tencent kit (espressif/esp-qcloud) reads only a device key from fctry (esp_qcloud_device.c: product_id, device_name, device_secret) and has no dynamic registration; use tencent-at boards, or --mode device", o.Mode, provision.ErrModeBoard)
		}
	}
	if err := provision.CheckBoardMode(o.Mode, board); err != nil {
		return res, err
	}
	cfg := emulator.Config{StateDir: res.CloudState, Products: []string{o.Product}, AliyunProducts: []string{o.Product}}
	if o.Cert {
		cfg = emulator.Config{StateDir: res.CloudState, CertProducts: []string{o.Product}, AliyunCertProducts: []string{o.Product}}
	}
	if o.Mode.ProductLevel() {
		// The product set up for the mode, as its owner would in the console.
		st := emulator.ProductSettings{DynamicRegistration: true,
			AutoCreate: o.Mode == provision.ModeAutocreate, RegistrationFree: o.Mode == provision.ModeRegistrationFree}
		cfg.DynReg = st
	}
	emu, stopCloud, endpoint, mqttAddr, err := startCloud(&cfg)
	if err != nil {
		return res, err
	}
	defer stopCloud()
	res.Endpoint = endpoint
	var mqttsAddr string
	var brokerCA []byte
	if o.Cert {
		if mqttsAddr, err = emu.StartMQTTS(""); err != nil {
			return res, err
		}
		if brokerCA, err = emu.CACertPEM(); err != nil {
			return res, err
		}
		say("1. platform emulator (%s API) at %s, certificate product %s, mutual-TLS broker %s (its CA in %s)", v.title, res.Endpoint, o.Product, mqttsAddr, filepath.Join(res.CloudState, "ca.pem"))
	} else {
		say("1. platform emulator (%s API) at %s, product %s", v.title, res.Endpoint, o.Product)
	}

	// 2. The boards.
	farm, err := sim.Start(sim.Options{Dir: res.Boards, Kind: kind, Count: o.Boards, Baud: o.Baud, Cloud: res.Endpoint, MQTT: mqttAddr})
	if err != nil {
		return res, err
	}
	defer farm.Close()
	var kit *espKit
	switch {
	case kind == cellularKind:
		say("2. %d simulated cellular modules with Tencent's AT firmware (the M6315 of Tencent's test report: AT+TCCERTADD, AT+TCCERTCHECK) at %d baud in %s", len(farm.Boards()), o.Baud, res.Boards)
	case o.Cert:
		say("2. %d simulated ESP32 boards in download mode (ROM at %d baud) in %s; each gets its credential partition at %#x (no Espressif kit reads a certificate from fctry)", len(farm.Boards()), o.Baud, res.Boards, certPartOffset)
	case kind == "esp32":
		if kit, err = demoKit(o.Platform, o.Mode); err != nil {
			return res, err
		}
		say("2. %d simulated ESP32 boards in download mode (ROM at %d baud) in %s; each gets %s's layout and firmware (%s) in the same pass as its own fctry partition", len(farm.Boards()), o.Baud, res.Boards, kit.name, kit.project)
	default:
		say("2. %d simulated %s boards at %d baud in %s", len(farm.Boards()), kind, o.Baud, res.Boards)
	}

	// 3. Devices on the platform, secrets in the ledger.
	client, err := v.client(cfg, res.Endpoint)
	if err != nil {
		return res, err
	}
	l, err := ledger.Open(res.Ledger)
	if err != nil {
		return res, err
	}
	defer l.Close()
	var names []string
	switch o.Mode {
	case provision.ModeDevice:
		for i := 0; i < o.Boards; i++ {
			names = append(names, fmt.Sprintf("demo-%04d", i+1))
		}
	case provision.ModePreregistered:
		// Pre-registered names are the boards' own: their MACs.
		for _, b := range farm.Boards() {
			n, err := provision.BoardName("mac", "", b.MAC(), "")
			if err != nil {
				return res, err
			}
			names = append(names, n)
		}
	}
	if len(names) > 0 {
		cr, err := provision.Create(ctx, provision.CreateOptions{Platform: client, Ledger: l, Product: o.Product, Names: names})
		if err != nil {
			return res, fmt.Errorf("create: %w", err)
		}
		res.Created = cr.Created + cr.Skipped
		if o.Cert {
			say("3. created %d certificate devices through the %s SDK (the emulator signed each), certificates and private keys in the ledger %s", res.Created, o.Platform, res.Ledger)
		} else {
			say("3. created %d devices through the %s SDK, secrets in the ledger %s", res.Created, o.Platform, res.Ledger)
		}
	} else {
		say("3. nothing to create: in mode %s the platform creates each device when its board registers", o.Mode)
	}
	var productSecret string
	if o.Mode.ProductLevel() {
		p, err := client.(registry.ProductInfo).Product(ctx, o.Product)
		if err != nil {
			return res, err
		}
		if err := provision.CheckMode(o.Mode, o.Platform, &p); err != nil {
			return res, err
		}
		productSecret = p.Secret
	}

	// 4. The line.
	var format templates.Format
	var open provision.OpenBoard
	switch {
	case kind == cellularKind:
		format = templates.TencentAT{}
		// No labels: the module's IMEI (AT+TCMODULE) is its id.
		open = provision.OpenATBoard(o.Platform, o.Baud)
	case o.Cert:
		format = nvs.Format{Size: certPartSize}
		if open, err = provision.OpenESPBoard(provision.ESPOptions{Baud: 921600, Format: nvs.Format{Size: certPartSize},
			Partition: provision.CredentialPartition{Offset: certPartOffset}, Compress: true}); err != nil {
			return res, err
		}
	case kit != nil:
		format = nvs.Format{}
		if open, err = provision.OpenESPBoard(provision.ESPOptions{Baud: 921600, Format: nvs.Format{}, Common: kit.regions, Compress: true}); err != nil {
			return res, err
		}
	default:
		if format, err = templates.Lookup(v.format); err != nil {
			return res, err
		}
		open = provision.OpenATBoardWith(o.Platform, o.Baud, provision.ATBoardOptions{
			Labels: demoLabels(farm), RegisterURL: res.Endpoint})
	}
	pattern := filepath.Join(res.Boards, "tty*")
	say("4. burning: iotburn batch --ports '%s' --once", pattern)
	res.Line, err = provision.RunLine(ctx, provision.LineOptions{
		Ledger: l, Platform: o.Platform, Product: o.Product, Format: format, Station: "demo",
		Ports: func() ([]string, error) { return burner.Expand(pattern) },
		Open:  open, Once: true, Events: o.Events,
		Mode: o.Mode, ProductSecret: productSecret, NameFrom: "mac", Region: client.Region(),
	})
	if err != nil {
		return res, err
	}
	if res.Line.Failed > 0 {
		return res, fmt.Errorf("%d board(s) failed", res.Line.Failed)
	}

	// 5. QA: read every board back, check the device on the platform.
	vr, err := provision.Verify(ctx, provision.VerifyOptions{
		Ledger: l, Platform: o.Platform, Product: o.Product, Cloud: client,
		Login:      provision.EitherLogin(provision.MQTTLogin(mqttAddr), provision.MQTTCertLogin(mqttsAddr, provision.WithBrokerCA(brokerCA))),
		TokenLogin: provision.MQTTTokenLogin(mqttAddr),
		Mode:       o.Mode, ProductSecret: productSecret, Register: o.Mode.ProductLevel(),
		Ports: func() ([]string, error) { return burner.Expand(pattern) },
		Open:  open, Events: o.Events,
	})
	if err != nil {
		return res, err
	}
	if vr.Failed > 0 {
		return res, fmt.Errorf("verify: %d board(s) failed: %v", vr.Failed, vr.Failures)
	}
	res.Verified = vr.Verified
	// And independently of the ledger: every board's flash holds exactly what
	// the platform issued for its name.
	issued := func(name string) (string, bool) { return v.issued(emu, o.Product, name) }
	if o.Mode == provision.ModeRegistrationFree {
		issued = nil // the board holds a token, no device secret
	}
	switch {
	case kind == cellularKind:
		err = crossCheckCertAT(res.Boards, emu, o.Product, o.Boards)
	case o.Cert:
		err = crossCheckCert(res.Boards, emu, o.Platform, o.Product, o.Boards)
	case kit != nil:
		err = crossCheckESP32(res.Boards, kit, o.Boards, o.Platform, o.Product, productSecret, o.Mode, issued)
	default:
		err = crossCheck(res.Boards, issued, o.Boards)
	}
	if err != nil {
		return res, err
	}
	switch {
	case o.Cert:
		say("5. verified %d boards: each holds the certificate the platform issued for its name and its own private key, no two share one, every device exists on the platform and logged in over mutual TLS with its certificate (%s)", vr.Verified, mqttsAddr)
	case kit != nil && o.Mode == provision.ModeRegistrationFree:
		say("5. verified %d boards: reset into their application (%s), each registered itself without a pre-created name (MQTT, ClientID + DeviceToken) and logged in; the platform shows every device online (%s)", vr.Verified, kit.project, mqttAddr)
	case kit != nil && o.Mode.ProductLevel():
		say("5. verified %d boards: reset into their application (%s), each registered its own name over HTTPS with the product's key, kept the DeviceSecret it was issued and logged in; the platform shows every device online (%s)", vr.Verified, kit.project, mqttAddr)
	case o.Mode.ProductLevel() && o.Platform == "aliyun":
		say("5. verified %d boards: the IDMAU firmware cannot register itself, so the station pre-registered each board's name with the product's key (%s), wrote the DeviceSecret the platform issued, and each board logged in (AT+IDMCON, AT+IDMSTA? 2, online on the platform) and to its MQTT broker (%s)", vr.Verified, o.Mode, mqttAddr)
	case o.Mode.ProductLevel():
		say("5. verified %d boards: each registered itself with the product's key (%s), got its own identity from the platform and logged in to its MQTT broker (%s)", vr.Verified, o.Mode, mqttAddr)
	default:
		say("5. verified %d boards: each holds the secret the platform issued for its name, no two share one, every device exists on the platform and logged in to its MQTT broker (%s)", vr.Verified, mqttAddr)
	}

	// 6. The record.
	sum, err := audit.Write(l, res.Audit, audit.Options{Station: "demo"})
	if err != nil {
		return res, err
	}
	say("6. audit workbook %s: %d boards, yield %.0f%%", res.Audit, sum.Units, 100*sum.Yield)
	res.Elapsed = time.Since(start)
	return res, nil
}

// demoLabels is a label scanner at every simulated board's port, typing the
// MAC printed on the board's label each time one is wanted: the Alibaba
// IDMAU firmware tells no id of its own, so an Aliyun AT line reads it
// from the label (on a real line, a USB barcode scanner per port).
func demoLabels(farm *sim.Farm) func(port string) *provision.LabelScanner {
	scanners := map[string]*provision.LabelScanner{}
	for _, b := range farm.Boards() {
		scanners[b.Path()] = provision.NewLabelScanner(&repeatLine{line: b.MAC() + "\r\n"})
	}
	return func(port string) *provision.LabelScanner { return scanners[port] }
}

// repeatLine reads as the same line over and over.
type repeatLine struct {
	line string
	off  int
}

func (r *repeatLine) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.line[r.off:])
		n += c
		r.off = (r.off + c) % len(r.line)
	}
	return n, nil
}

// crossCheck reads the boards' flash files and compares each with the
// emulator's own record of the device, independently of the ledger.
func crossCheck(boardsDir string, issued func(name string) (string, bool), want int) error {
	flashes, err := sim.LoadFlash(boardsDir)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(flashes))
	for k := range flashes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	names, secrets := map[string]string{}, map[string]string{}
	var errs []error
	for _, k := range keys {
		f := flashes[k]
		if f.DeviceName == "" {
			errs = append(errs, fmt.Errorf("board %s holds no credential", k))
			continue
		}
		if issued != nil {
			psk, ok := issued(f.DeviceName)
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("board %s holds %s, which the platform does not know", k, f.DeviceName))
			case psk != f.DeviceSecret:
				errs = append(errs, fmt.Errorf("board %s holds a secret for %s that is not the one the platform issued", k, f.DeviceName))
			}
		}
		if other, dup := names[f.DeviceName]; dup {
			errs = append(errs, fmt.Errorf("boards %s and %s both hold %s", other, k, f.DeviceName))
		}
		if other, dup := secrets[f.DeviceSecret]; dup && f.DeviceSecret != "" {
			errs = append(errs, fmt.Errorf("boards %s and %s share a secret", other, k))
		}
		names[f.DeviceName], secrets[f.DeviceSecret] = k, k
	}
	if len(names) != want && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%d boards hold a credential, want %d", len(names), want))
	}
	return errors.Join(errs...)
}

// demoVendor is what the demo needs to know of a platform.
type demoVendor struct {
	title, product, format string
	client                 func(cfg emulator.Config, endpoint string) (registry.Platform, error)
	issued                 func(emu *emulator.Emulator, product, name string) (string, bool)
}

var demoVendors = map[string]demoVendor{
	"tencent": {
		title: "Tencent IoT Hub", product: "ABCDEFGHIJ", format: "tencent-at",
		client: func(cfg emulator.Config, endpoint string) (registry.Platform, error) {
			return tencent.New(tencent.Config{SecretID: cfg.SecretID, SecretKey: cfg.SecretKey, Region: tencent.DefaultRegion, Endpoint: endpoint})
		},
		issued: (*emulator.Emulator).TencentDevice,
	},
	"aliyun": {
		title: "Alibaba Cloud IoT Platform", product: "a1Xyz", format: "aliyun-at",
		client: func(cfg emulator.Config, endpoint string) (registry.Platform, error) {
			return aliyun.New(aliyun.Config{AccessKeyID: cfg.AliyunAccessKeyID, AccessKeySecret: cfg.AliyunAccessKeySecret, Region: aliyun.DefaultRegion, Endpoint: endpoint})
		},
		issued: (*emulator.Emulator).AliyunDevice,
	},
}

// startCloud starts the platform emulator of cfg on a loopback port, and its
// MQTT broker; stop ends both. It gives cfg fresh cloud keys, which the
// demo's clients then use.
func startCloud(cfg *emulator.Config) (emu *emulator.Emulator, stop func(), endpoint, mqttAddr string, err error) {
	cfg.SecretID, cfg.SecretKey = emulator.NewKeyPair()
	cfg.AliyunAccessKeyID, cfg.AliyunAccessKeySecret = emulator.NewAliyunKeyPair()
	emu, err = emulator.New(*cfg)
	if err != nil {
		return nil, nil, "", "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		emu.Close()
		return nil, nil, "", "", err
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	stop = func() { srv.Close(); emu.Close() }
	if mqttAddr, err = emu.StartMQTT(""); err != nil {
		stop()
		return nil, nil, "", "", err
	}
	return emu, stop, "http://" + ln.Addr().String(), mqttAddr, nil
}
