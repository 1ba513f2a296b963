package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/esprom"
	"github.com/iotburn/iotburn/burner/flashmap"
	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates"
)

// lineFlags are the flags of the commands that burn or read boards (batch,
// burn, verify): the image format and, for ESP32 boards (--format nvs),
// the flash map: the shared images and where the credential partition goes.
type lineFlags struct {
	format      string
	baud        int
	fastBaud    int // the old name of --baud on ESP32 boards, hidden
	station     string
	nvs         nvsFlags
	offset      string
	partTable   string
	tableOffset string
	partName    string
	flash       []string
	compress    bool
	stub        string
	mode        string
	nameFrom    string
	prefix      string
	hwIDFrom    string
	scanners    []string
}

func (lf *lineFlags) register(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&lf.format, "format", "", "image burned into each board: tencent-at, aliyun-at (AT modules; default: the platform's) or nvs (ESP32 boards)")
	f.IntVar(&lf.baud, "baud", burner.DefaultBaud, "AT modules: their line rate; ESP32 boards: as esptool's -b, connect at 115200 then flash at this rate (e.g. 921600)")
	host, _ := os.Hostname()
	f.StringVar(&lf.station, "station", host, "this station's name in the ledger and the audit")
	f.IntVar(&lf.fastBaud, "fast-baud", 0, "nvs: the old name of --baud")
	_ = f.MarkHidden("fast-baud")
	f.StringVar(&lf.offset, "flash-offset", "", "nvs: put the credential partition here instead of where the partition table says")
	f.StringVar(&lf.partName, "partition-name", provision.DefaultPartitionName, "nvs: the credential partition's name in the partition table (Espressif's Tencent and Aliyun kits read fctry)")
	f.StringVar(&lf.partTable, "partition-table", "", "nvs: the partition table (ESP-IDF CSV, or the binary gen_esp32part.py writes), when it is not written in the same pass")
	f.StringVar(&lf.tableOffset, "partition-table-offset", "0x8000", "nvs: where the partition table sits in flash (CONFIG_PARTITION_TABLE_OFFSET; esp-qcloud uses 0xc000)")
	f.StringArrayVar(&lf.flash, "flash", nil, "nvs: an image written to every board in the same pass: OFFSET=FILE, OFFSET FILE (as esptool) or @build/flash_args (repeatable)")
	f.BoolVar(&lf.compress, "compress", true, "nvs: deflate images on the wire")
	f.StringVar(&lf.stub, "stub", "", "nvs: run Espressif's flasher stub from an esptool installation (esptool/targets/stub_flasher/1/esp32.json): esptool's fast default mode")
	f.StringVar(&lf.mode, "mode", "device", "credential mode: device, product-preregistered, product-autocreate (Tencent), registration-free (Aliyun)")
	f.StringVar(&lf.nameFrom, "name-from", "mac", "product-level modes: the board's name is its mac or imei")
	f.StringVar(&lf.prefix, "name-prefix", "", "product-level modes: put this in front of the board's name")
	f.StringVar(&lf.hwIDFrom, "hw-id-from", "board", "AT boards: a board's id is what it says (board) or its label, typed by a barcode scanner per port (scan: Alibaba's IDMAU firmware tells none)")
	f.StringArrayVar(&lf.scanners, "scanner", nil, "with --hw-id-from scan: PORT=PATH, the scanner of a port (a serial scanner's device, a FIFO, - for stdin with one port); PORT=PATH.label files beside simulated boards: --scanner sim (repeatable)")
	lf.nvs.registerKeys(c, "partition-size", "", "nvs: credential partition size (default: the partition's, from the table; 0x6000 with --flash-offset and no table)")
}

// nvsOnly are the flags that mean something only with --format nvs.
var nvsOnly = []string{"flash", "flash-offset", "partition-table", "partition-table-offset", "partition-size", "fast-baud",
	"compress", "stub", "nvs-version", "nvs-namespace", "nvs-key-product", "nvs-key-name", "nvs-key-secret",
	"nvs-key-cert", "nvs-key-private-key"}

// board checks every line flag and returns the format to render and how to
// open the boards. For ESP32 boards the whole flash map is checked here, as
// far as it can be before a board is seen; args are the command's
// positional arguments (esptool's `--flash OFFSET FILE` pairs).
func (lf *lineFlags) board(c *cobra.Command, g *globals, pf *platformFlags, args []string, readBack bool) (templates.Format, provision.OpenBoard, error) {
	platform := pf.platform
	if _, err := provision.ParseMode(lf.mode); err != nil {
		return nil, nil, withKind(errUsage, err)
	}
	if lf.baud <= 0 {
		return nil, nil, usagef("--baud %d: give a line rate such as 115200 or 921600", lf.baud)
	}
	if lf.format != "nvs" {
		for _, name := range nvsOnly {
			if c.Flags().Changed(name) {
				return nil, nil, usagef("--%s is for ESP32 boards: add --format nvs, or leave it out", name)
			}
		}
		if len(args) > 0 {
			return nil, nil, usagef("unexpected argument %q", args[0])
		}
		f, err := lineFormat(platform, lf.format)
		if err != nil {
			return nil, nil, err
		}
		if m, err := provision.ParseMode(lf.mode); err == nil {
			if err := provision.CheckBoardMode(m, f.Name()); err != nil {
				return nil, nil, withKind(errUsage, err)
			}
		}
		o := provision.ATBoardOptions{RegisterURL: pf.registerURL(), Log: g.wireLog()}
		if o.Labels, err = lf.labelScanners(); err != nil {
			return nil, nil, err
		}
		if platform == registry.Aliyun && o.Labels == nil {
			return nil, nil, usagef("Alibaba's IDMAU AT firmware tells no MAC or IMEI: give each board's id from its label with --hw-id-from scan --scanner PORT=PATH (or --scanner sim for simulated boards)")
		}
		return f, provision.OpenATBoardWith(platform, lf.baud, o), nil
	}
	if lf.hwIDFrom != "board" || len(lf.scanners) > 0 {
		return nil, nil, usagef("--hw-id-from and --scanner are for AT boards: an ESP32's id is its eFuse MAC")
	}
	if m, err := provision.ParseMode(lf.mode); err == nil {
		if err := provision.CheckNVSMode(m, platform); err != nil {
			return nil, nil, withKind(errUsage, err)
		}
	}
	o, err := lf.espOptions(platform, args)
	if err != nil {
		return nil, nil, err
	}
	o.ReadBack, o.Log = readBack, g.wireLog()
	open, err := provision.OpenESPBoard(o)
	if err != nil {
		return nil, nil, withKind(errUsage, err) // it refuses only what it was given
	}
	return o.Format, open, nil
}

// espOptions reads the ESP32 flags: the images (files read now, so a
// missing one stops the line before it starts), the credential partition's
// place, and the flash rate.
func (lf *lineFlags) espOptions(platform string, args []string) (provision.ESPOptions, error) {
	o := provision.ESPOptions{Baud: lf.baud, Compress: lf.compress}
	if lf.fastBaud != 0 {
		if lf.fastBaud < 0 {
			return o, usagef("--fast-baud %d: give a line rate such as 921600", lf.fastBaud)
		}
		o.Baud = lf.fastBaud
	}
	f, err := lf.nvs.format(platform)
	if err != nil {
		return o, err
	}
	o.Format = f
	specs, err := flashmap.ParseSpecs(lf.flash, args)
	if err != nil {
		return o, withKind(errUsage, err)
	}
	if o.Common, err = flashmap.Load(specs); err != nil {
		return o, withKind(errUsage, err)
	}
	if lf.stub != "" {
		if o.Stub, err = esprom.LoadStub(lf.stub); err != nil {
			return o, err
		}
	}
	o.Partition.Name = lf.partName
	if o.Partition.TableOffset, err = flashmap.ParseNumber(lf.tableOffset); err != nil {
		return o, usagef("--partition-table-offset: %w", err)
	}
	if lf.offset != "" {
		if o.Partition.Offset, err = flashmap.ParseNumber(lf.offset); err != nil {
			return o, usagef("--flash-offset: %w", err)
		}
		if o.Partition.Offset == 0 {
			return o, usagef("--flash-offset 0 is the start of flash, never an NVS partition: give the partition's offset, or leave it out to find it by name")
		}
	}
	if lf.partTable != "" {
		if o.Partition.Table, err = readTableFile(lf.partTable, o.Partition.TableOffset); err != nil {
			return o, withKind(errUsage, err)
		}
	}
	return o, nil
}

// readTableFile reads a partition table, CSV or binary.
func readTableFile(path string, offset uint32) (*flashmap.Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--partition-table: %w", err)
	}
	if flashmap.LooksLikeTable(data) {
		return flashmap.ReadTableBinary(data, offset, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return flashmap.ReadTableCSV(f, path, offset)
}

// modeOptions fills the line's mode settings from the flags.
func (lf *lineFlags) modeOptions(ctx context.Context, pf *platformFlags, o *provision.LineOptions) error {
	ms, err := lf.modeSettings(ctx, pf)
	if err != nil {
		return err
	}
	o.Mode, o.NameFrom, o.NamePrefix = ms.mode, lf.nameFrom, lf.prefix
	o.ProductSecret, o.Region = ms.productSecret, ms.region
	if err := provision.CheckCertFormat(o.Ledger, o.Platform, o.Product, o.Format); err != nil {
		if errors.Is(err, provision.ErrModeBoard) {
			return withKind(errUsage, err)
		}
		return err
	}
	return nil
}

type modeSettings struct {
	mode                  provision.Mode
	productSecret, region string
}

// modeSettings checks --mode against the platform; the product-level modes
// fetch the ProductSecret from the platform (keys from the environment: no
// secret on the command line) and check that the product is set up for it.
func (lf *lineFlags) modeSettings(ctx context.Context, pf *platformFlags) (modeSettings, error) {
	mode, err := provision.ParseMode(lf.mode)
	if err != nil {
		return modeSettings{}, err
	}
	if err := provision.CheckMode(mode, pf.platform, nil); err != nil {
		return modeSettings{}, err
	}
	ms := modeSettings{mode: mode}
	if !mode.ProductLevel() {
		return ms, nil
	}
	if _, err := provision.BoardName(lf.nameFrom, "", "00:00:00:00:00:00", "0"); err != nil {
		return ms, err
	}
	client, err := pf.client()
	if err != nil {
		return ms, fmt.Errorf("--mode %s needs the platform, for the product's secret: %w", mode, err)
	}
	pi, ok := client.(registry.ProductInfo)
	if !ok {
		return ms, fmt.Errorf("--mode %s: %s cannot tell product secrets", mode, pf.platform)
	}
	p, err := pi.Product(ctx, pf.product)
	if err != nil {
		return ms, err
	}
	if err := provision.CheckMode(mode, pf.platform, &p); err != nil {
		return ms, err
	}
	ms.productSecret, ms.region = p.Secret, client.Region()
	return ms, nil
}

// openLedger opens the ledger: one that exists, except in the modes where
// the line names the devices itself and needs nothing created beforehand.
func (lf *lineFlags) openLedger(g *globals) (*ledger.Ledger, error) {
	if m, err := provision.ParseMode(lf.mode); err == nil && m.NamesOnTheFly() {
		return g.openLedger()
	}
	return g.openExistingLedger()
}

// usbFilter is --vid, --pid and --serial: which USB serial adapters
// "--ports auto" takes (go.bug.st/serial's enumerator reports them).
type usbFilter struct{ vid, pid, serial string }

func (u *usbFilter) register(c *cobra.Command) {
	c.Flags().StringVar(&u.vid, "vid", "", "with --ports auto: only USB adapters of this vendor id (hex, e.g. 10c4)")
	c.Flags().StringVar(&u.pid, "pid", "", "with --ports auto: only this product id (hex, e.g. ea60)")
	c.Flags().StringVar(&u.serial, "serial", "", "with --ports auto: only the adapter with this USB serial number")
}

// apply narrows "auto" in a --ports value to the filter; a filter with
// anything but auto is a usage error.
func (u *usbFilter) apply(ports string) (string, error) {
	if u.vid == "" && u.pid == "" && u.serial == "" {
		return ports, nil
	}
	if strings.TrimSpace(ports) != "auto" {
		return "", usagef("--vid, --pid and --serial filter --ports auto, not %q", ports)
	}
	spec := "auto:" + or(u.vid, "*") + ":" + or(u.pid, "*")
	if u.serial != "" {
		spec += ":" + u.serial
	}
	return spec, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// labelScanners reads --hw-id-from and --scanner: nil when boards tell
// their own ids.
func (lf *lineFlags) labelScanners() (func(port string) *provision.LabelScanner, error) {
	switch lf.hwIDFrom {
	case "board":
		if len(lf.scanners) > 0 {
			return nil, usagef("--scanner goes with --hw-id-from scan")
		}
		return nil, nil
	case "scan":
	default:
		return nil, usagef("--hw-id-from %q: board or scan", lf.hwIDFrom)
	}
	if len(lf.scanners) == 0 {
		return nil, usagef("--hw-id-from scan needs a scanner per port: --scanner PORT=PATH (or --scanner sim)")
	}
	byPort := map[string]*provision.LabelScanner{}
	sim := false
	stdin := 0
	for _, s := range lf.scanners {
		if s == "sim" {
			sim = true
			continue
		}
		port, path, ok := strings.Cut(s, "=")
		if !ok || port == "" || path == "" {
			return nil, usagef("--scanner %q: write PORT=PATH, e.g. /dev/ttyUSB0=/dev/ttyACM3", s)
		}
		var r io.Reader
		if path == "-" {
			if stdin++; stdin > 1 {
				return nil, usagef("--scanner: only one port can read labels from stdin")
			}
			r = os.Stdin
		} else {
			f, err := os.Open(path)
			if err != nil {
				return nil, usagef("--scanner %s: %w", s, err)
			}
			r = f // open for the line's life
		}
		byPort[port] = provision.NewLabelScanner(r)
	}
	var mu sync.Mutex
	return func(port string) *provision.LabelScanner {
		mu.Lock()
		defer mu.Unlock()
		if sc, ok := byPort[port]; ok {
			return sc
		}
		if !sim {
			return nil
		}
		// A simulated board's label sits beside its port (sim device
		// writes DIR/ttySIMnn.label): read afresh for each board it sees.
		f, err := os.Open(port + ".label")
		if err != nil {
			return nil
		}
		sc := provision.NewLabelScanner(f)
		byPort[port] = sc
		return sc
	}, nil
}
