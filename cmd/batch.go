package cmd

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates"
	"github.com/iotburn/iotburn/templates/nvs"
)

// lineFlags are the flags of the commands that burn or read boards: the
// image format and, for ESP32 boards (--format nvs), where it goes.
type lineFlags struct {
	format    string
	baud      int
	fastBaud  int
	station   string
	nvs       nvsFlags
	offset    string
	partTable string
	partName  string
	flash     []string
	compress  bool
	readBack  bool // verify: read ESP partitions back and check every key
	mode      string
	nameFrom  string
	prefix    string
}

func (lf *lineFlags) register(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&lf.format, "format", "", "image burned into each board: tencent-at, aliyun-at (AT modules; default: the platform's) or nvs (ESP32 boards)")
	f.IntVar(&lf.baud, "baud", 115200, "serial line rate")
	host, _ := os.Hostname()
	f.StringVar(&lf.station, "station", host, "this station's name in the ledger and the audit")
	f.IntVar(&lf.fastBaud, "fast-baud", 0, "nvs: switch the ROM bootloader to this rate once connected (e.g. 921600)")
	f.StringVar(&lf.offset, "flash-offset", "0x9000", "nvs: flash offset of the credential partition")
	f.StringVar(&lf.partTable, "partition-table", "", "nvs: read the partition's offset and size from this ESP-IDF partition table CSV")
	f.StringVar(&lf.partName, "partition-name", "nvs", "nvs: the partition's name in --partition-table")
	f.StringArrayVar(&lf.flash, "flash", nil, "nvs: OFFSET=FILE written to every board in the same pass, e.g. 0x1000=bootloader.bin (repeatable)")
	f.BoolVar(&lf.compress, "compress", true, "nvs: deflate images on the wire")
	f.StringVar(&lf.mode, "mode", "device", "credential mode: device, product-preregistered, product-autocreate (Tencent), registration-free (Aliyun)")
	f.StringVar(&lf.nameFrom, "name-from", "mac", "product-level modes: the board's name is its mac or imei")
	f.StringVar(&lf.prefix, "name-prefix", "", "product-level modes: put this in front of the board's name")
	lf.nvs.registerKeys(c, "partition-size")
}

// board returns the format to render and how to open the boards.
func (lf *lineFlags) board(platform string) (templates.Format, provision.OpenBoard, error) {
	if lf.format != "nvs" {
		f, err := lineFormat(platform, lf.format)
		if err != nil {
			return nil, nil, err
		}
		return f, provision.OpenATBoard(platform, lf.baud), nil
	}
	offset, err := nvs.ParseSize(lf.offset)
	if err != nil && !strings.Contains(err.Error(), "multiple") {
		return nil, nil, fmt.Errorf("--flash-offset: %w", err)
	}
	if lf.partTable != "" {
		file, err := os.Open(lf.partTable)
		if err != nil {
			return nil, nil, err
		}
		parts, err := nvs.ReadPartitionTable(file)
		file.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", lf.partTable, err)
		}
		p, err := nvs.FindPartition(parts, lf.partName)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", lf.partTable, err)
		}
		offset = int(p.Offset)
		lf.nvs.size = fmt.Sprintf("0x%x", p.Size)
	}
	if offset%0x1000 != 0 {
		return nil, nil, fmt.Errorf("--flash-offset 0x%x is not a multiple of 0x1000: the ROM erases whole sectors", offset)
	}
	f, err := lf.nvs.format(platform)
	if err != nil {
		return nil, nil, err
	}
	var common []provision.FlashRegion
	for _, spec := range lf.flash {
		off, path, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, nil, fmt.Errorf("--flash %q: write it as OFFSET=FILE, e.g. 0x1000=bootloader.bin", spec)
		}
		o, err := strconv.ParseUint(off, 0, 32)
		if err != nil || o%0x1000 != 0 {
			return nil, nil, fmt.Errorf("--flash %q: the offset must be a multiple of 0x1000", spec)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("--flash %q: %w", spec, err)
		}
		common = append(common, provision.FlashRegion{Name: path, Offset: uint32(o), Data: data})
	}
	return f, provision.OpenESPBoard(provision.ESPOptions{Baud: lf.baud, FastBaud: lf.fastBaud, Offset: uint32(offset), Format: f, Common: common, Compress: lf.compress, ReadBack: lf.readBack}), nil
}

func newBatchCmd(g *globals) *cobra.Command {
	var (
		pf     platformFlags
		lf     lineFlags
		ports  string
		once   bool
		target int
	)
	c := &cobra.Command{
		Use:   "batch --product P --ports auto",
		Short: "Run the line: burn every board plugged into the ports, all shift",
		Long: `batch burns boards on many ports at once, one worker per port. For each board: identify it
(MAC/IMEI), claim its credential in the ledger (a board keeps the same credential forever, so a
retried board gets the same one), render the image, write it, read it back and compare.

Boards come and go: when a board is done, swap it for the next one on the same port. A failed
board is retried by unplugging and replugging it. A board that already holds its credential is
recognised and left alone. Ctrl-C finishes the boards in flight, then stops.

--ports takes "auto" (every USB serial port), paths and globs: /dev/ttyUSB*,'boards/tty*'.`,
		Example: `  iotburn batch --product ABCDEFGHIJ --ports auto
  iotburn batch --product ABCDEFGHIJ --ports 'boards/tty*' --once        # the boards plugged in now
  iotburn batch --product ABCDEFGHIJ --ports /dev/ttyUSB0,/dev/ttyUSB1 --target 200 --json
  # ESP32 boards: an NVS partition each, plus the firmware every board shares, one pass
  iotburn batch --product ABCDEFGHIJ --ports auto --format nvs --flash-offset 0x9000 --partition-size 0x6000 \
      --flash 0x1000=bootloader.bin --flash 0x8000=partition-table.bin --flash 0x10000=app.bin --fast-baud 921600`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.check(); err != nil {
				return err
			}
			f, open, err := lf.board(pf.platform)
			if err != nil {
				return err
			}
			now, err := burner.Expand(ports)
			if err != nil {
				return err
			}
			if len(now) == 0 && !once && !g.json {
				fmt.Fprintf(g.errOut, "no board on %s yet: waiting for boards to be plugged in (`iotburn ports` lists what the system sees)\n", ports)
			}
			l, err := lf.openLedger(g)
			if err != nil {
				return err
			}
			defer l.Close()
			o := provision.LineOptions{
				Ledger: l, Platform: pf.platform, Product: pf.product, Format: f, Station: lf.station,
				Ports: func() ([]string, error) { return burner.Expand(ports) },
				Open:  open,
				Once:  once, Target: target,
			}
			if err := lf.modeOptions(cmd.Context(), &pf, &o); err != nil {
				return err
			}
			counts, err := l.Counts(pf.platform, pf.product)
			if err != nil {
				return err
			}
			if counts.Total == 0 && !o.Mode.NamesOnTheFly() {
				return fmt.Errorf("the ledger has no devices of %s product %s: run `iotburn create --product %s --names FILE` first", pf.platform, pf.product, pf.product)
			}
			total := counts.Free
			if target > 0 {
				total = target
			}
			return runLine(cmd, g, total, o)
		},
	}
	pf.register(c, true)
	lf.register(c)
	c.Flags().StringVar(&ports, "ports", "auto", "ports to burn on: auto, paths or globs, comma-separated")
	c.Flags().BoolVar(&once, "once", false, "burn the boards plugged in now, one each, then exit")
	c.Flags().IntVar(&target, "target", 0, "stop after this many boards are burned")
	return c
}

// lineFormat returns a format the line can burn on the platform's boards
// (AT modules take their vendor's AT command).
func lineFormat(platform, name string) (templates.Format, error) {
	want := platform + "-at"
	if name == "" {
		name = want
	}
	if name != want {
		return nil, fmt.Errorf("--format %s cannot be burned on %s boards: use %s (or `iotburn image` to write files)", name, platform, want)
	}
	return templates.Lookup(name)
}

// runLine runs the line with a technician's display (or, with --json, one
// line per finished board) and reports its totals.
func runLine(cmd *cobra.Command, g *globals, total int, o provision.LineOptions) error {
	var display *lineDisplay
	show := func(e provision.Event) {
		if e.Stage.Done() {
			_ = g.printJSON(e)
		}
	}
	if !g.json {
		display = newLineDisplay(g.errOut, total)
		show = display.Event
	}
	note := func(line string) { g.printLine(g.errOut, line) }
	if display != nil {
		note = display.Note
	}
	low := lowCredentials(g, o, note)
	o.Events = func(e provision.Event) {
		show(e)
		if e.Stage == provision.StageBurned {
			low()
		}
	}
	res, err := provision.RunLine(cmd.Context(), o)
	if display != nil {
		display.Close()
	}
	if err != nil {
		return err
	}
	return reportLine(g, res)
}

// lowCredentials warns, once, when the product is about to run out of
// credentials, so the line does not stop by surprise: fewer left than ten
// boards' worth or than two per port.
func lowCredentials(g *globals, o provision.LineOptions, note func(string)) func() {
	if o.Mode.NamesOnTheFly() {
		return func() {} // the platform names devices as boards register
	}
	// Off the burn loop's back: at most one count every few seconds (a
	// ledger of 100,000 credentials is not counted per board), none after
	// the warning.
	var (
		mu     sync.Mutex
		warned bool
		next   time.Time
	)
	return func() {
		mu.Lock()
		if warned || time.Now().Before(next) {
			mu.Unlock()
			return
		}
		next = time.Now().Add(5 * time.Second)
		mu.Unlock()
		c, err := o.Ledger.Counts(o.Platform, o.Product)
		if err != nil || c.Free > 10 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if warned {
			return
		}
		warned = true
		msg := fmt.Sprintf("%s product %s has %d names left: create more with `iotburn create --product %s --names FILE` before the line stops", o.Platform, o.Product, c.Free, o.Product)
		if g.json {
			_ = g.printJSON(map[string]any{"warning": msg, "free": c.Free})
		} else {
			note("warning: " + msg)
		}
	}
}

// reportLine prints the line's totals; failed boards make the exit code 1.
func reportLine(g *globals, res provision.LineResult) error {
	if g.json {
		if err := g.printJSON(map[string]any{"summary": true, "burned": res.Burned, "skipped": res.Skipped, "failed": res.Failed,
			"per_port": res.PerPort, "seconds": res.Elapsed.Seconds(), "stop": res.Stop}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(g.out, "%d burned, %d already done, %d failed in %.1fs", res.Burned, res.Skipped, res.Failed, res.Elapsed.Seconds())
		if res.Burned > 0 {
			fmt.Fprintf(g.out, " (%.1f boards/min)", float64(res.Burned)/res.Elapsed.Minutes())
		}
		fmt.Fprintln(g.out)
		ports := make([]string, 0, len(res.PerPort))
		for p := range res.PerPort {
			ports = append(ports, p)
		}
		sort.Strings(ports)
		for _, p := range ports {
			fmt.Fprintf(g.out, "  %-30s %d\n", p, res.PerPort[p])
		}
		if res.Stop != "" {
			fmt.Fprintln(g.out, "stopped:", res.Stop)
		}
	}
	if res.Failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d board(s) failed: see the lines above; `iotburn audit` has the details", res.Failed)}
	}
	return nil
}

// modeOptions fills the line's mode settings from the flags.
func (lf *lineFlags) modeOptions(ctx context.Context, pf *platformFlags, o *provision.LineOptions) error {
	ms, err := lf.modeSettings(ctx, pf)
	if err != nil {
		return err
	}
	o.Mode, o.NameFrom, o.NamePrefix = ms.mode, lf.nameFrom, lf.prefix
	o.ProductSecret, o.Region = ms.productSecret, ms.region
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
