package cmd

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/templates"
)

// batchOptions are batch's flags; validate turns them into the line's
// options, checking every one before a board or the cloud is touched, and
// run runs the line.
type batchOptions struct {
	pf     platformFlags
	lf     lineFlags
	usb    usbFilter
	ports  string
	once   bool
	target int
	kit    bool
	subDev bool
}

// validate checks the flags and builds what the line needs from them: the
// format, how to open the boards, the ports. Nothing is opened yet.
func (o *batchOptions) validate(cmd *cobra.Command, g *globals, args []string) (templates.Format, provision.OpenBoard, error) {
	if err := o.pf.check(); err != nil {
		return nil, nil, err
	}
	if o.target < 0 {
		return nil, nil, usagef("--target %d: give the number of boards to burn, or leave it out for no limit", o.target)
	}
	f, open, err := o.lf.board(cmd, g, &o.pf, args, false)
	if err != nil {
		return nil, nil, err
	}
	if o.ports, err = o.usb.apply(o.ports); err != nil {
		return nil, nil, err
	}
	if _, err := burner.Expand(o.ports); err != nil {
		return nil, nil, err
	}
	return f, open, nil
}

// run opens the ledger, settles the mode with the platform, and runs the line.
func (o *batchOptions) run(cmd *cobra.Command, g *globals, f templates.Format, open provision.OpenBoard) error {
	now, _ := burner.Expand(o.ports)
	if len(now) == 0 && !o.once && !g.json {
		fmt.Fprintf(g.errOut, "no board on %s yet: waiting for boards to be plugged in (`iotburn ports` lists what the system sees)\n", o.ports)
	}
	l, err := o.lf.openLedger(g)
	if err != nil {
		return err
	}
	defer l.Close()
	ports := o.ports
	lo := provision.LineOptions{
		Ledger: l, Platform: o.pf.platform, Product: o.pf.product, Format: f, Station: o.lf.station,
		Ports: func() ([]string, error) { return burner.Expand(ports) },
		Open:  open,
		Once:  o.once, Target: o.target,
	}
	if err := o.lf.modeOptions(cmd.Context(), &o.pf, &lo); err != nil {
		return err
	}
	if o.kit {
		lo.Kits = true
		if err := provision.CheckKits(l, lo.Platform, lo.Product, lo.Mode, lo.Format); err != nil {
			if errors.Is(err, provision.ErrNoKit) || errors.Is(err, provision.ErrNoKitForm) || errors.Is(err, provision.ErrModeBoard) {
				return withKind(errUsage, err)
			}
			return err
		}
	}
	if o.subDev {
		lo.SubDevices = true
		if !cmd.Flags().Changed("name-from") {
			lo.NameFrom = "" // the next created name, unless the board's own is asked for
		}
		if err := provision.CheckSubDevices(lo.Mode, lo.Kits, lo.Format); err != nil {
			return withKind(errUsage, err)
		}
	}
	counts, err := l.Counts(o.pf.platform, o.pf.product)
	if err != nil {
		return err
	}
	if counts.Total == 0 && !lo.Mode.NamesOnTheFly() {
		return fmt.Errorf("the ledger has no devices of %s product %s: run `iotburn create --product %s --names FILE` first: %w", o.pf.platform, o.pf.product, o.pf.product, ledger.ErrNoCredentials)
	}
	total := counts.Free
	if o.target > 0 {
		total = o.target
	}
	return runLine(cmd, g, total, lo)
}

func newBatchCmd(g *globals) *cobra.Command {
	var o batchOptions
	c := &cobra.Command{
		Use:   "batch --product P --ports auto",
		Short: "Run the line: burn every board plugged into the ports, all shift",
		Long: `batch burns boards on many ports at once, one worker per port. For each board: identify it
(MAC/IMEI), claim its credential in the ledger (a board keeps the same credential forever, so a
retried board gets the same one), render the image, write it, read it back and compare.

Boards come and go: when a board is done, swap it for the next one on the same port. A failed
board is retried by unplugging and replugging it. A board that already holds its credential is
recognised and left alone. Ctrl-C finishes the boards in flight, then stops.

--ports takes "auto" (every USB serial port), paths and globs: /dev/ttyUSB*,'boards/tty*'.

ESP32 boards (--format nvs) get their own NVS partition and the images every board shares, in
one connection, each region MD5-checked by the ROM. The credential partition is the one named
--partition-name (default fctry, where Espressif's Tencent and Aliyun kits read it), found in the
partition table written in the same pass (--flash 0x8000=partition-table.bin), in
--partition-table, or on the board; --flash-offset overrides. The whole flash map is checked
before the first byte is written: every region on a 4 KB sector, inside the board's flash (its
size read from the flash chip), no two regions sharing a sector, each inside its partition, the
credential inside an NVS partition. --baud is esptool's -b: connect at 115200, flash at --baud.

--kit burns each gateway with its kit: the sub-devices' ProductKey (SubProductKey) and the names
the ledger pairs with it (SubDevName1...N, iotburn pair), which its firmware registers through it
on its first connect. A gateway with no kit paired is given back untouched; a product none of
whose gateways has a kit, or a format with no place for one, is refused before the first board.
(Without --kit, a gateway that has a kit paired still gets it: a board holds what the ledger says.)
--sub-device burns sub-device boards (the Zigbee/BLE/Modbus nodes behind a gateway) with their
product and name only, no secret: the gateway registers each and obtains its DeviceSecret. The
name is the next created one of the product, or with --name-from mac|imei the board's own (it must
have been created: the platform registers only existing sub-device names).`,
		Example: `  iotburn batch --product ABCDEFGHIJ --ports auto
  iotburn batch --product ABCDEFGHIJ --ports 'boards/tty*' --once        # the boards plugged in now
  iotburn batch --product ABCDEFGHIJ --ports /dev/ttyUSB0,/dev/ttyUSB1 --target 200 --json
  # ESP32 boards: fctry found in the partition table written in the same pass
  iotburn batch --product ABCDEFGHIJ --ports auto --format nvs --baud 921600 \
      --flash 0x1000=bootloader.bin --flash 0x8000=partition-table.bin --flash 0x10000=app.bin
  # the same from an ESP-IDF build, as esptool takes it
  iotburn batch --product ABCDEFGHIJ --ports auto --format nvs --baud 921600 --flash @build/flash_args
  # Aliyun ESP32 gateways, each with the kit of sub-devices paired with it (iotburn pair)
  iotburn batch --platform aliyun --product a1GwPrd0001 --ports auto --format nvs --kit \
      --flash 0x1000=bootloader.bin --flash 0x8000=partition-table.bin --flash 0x10000=gateway.bin
  # and their sub-devices: product and name only
  iotburn batch --platform aliyun --product a1SubPrd001 --ports auto --format nvs --sub-device --flash @build/flash_args
  # espressif/esp-qcloud moves the table to 0xc000
  iotburn batch --product ABCDEFGHIJ --ports auto --format nvs --partition-table-offset 0xc000 \
      --flash 0xc000=build/partition_table/partition-table.bin --flash 0x20000=build/app.bin`,
		Args: cobra.ArbitraryArgs, // esptool's --flash OFFSET FILE pairs
		RunE: func(cmd *cobra.Command, args []string) error {
			f, open, err := o.validate(cmd, g, args)
			if err != nil {
				return err
			}
			return o.run(cmd, g, f, open)
		},
	}
	o.pf.register(c, true)
	o.lf.register(c)
	c.Flags().StringVar(&o.ports, "ports", "auto", "ports to burn on: auto (each USB port by its hub position), paths or globs, comma-separated")
	o.usb.register(c)
	c.Flags().BoolVar(&o.once, "once", false, "burn the boards plugged in now, one each, then exit")
	c.Flags().IntVar(&o.target, "target", 0, "stop after this many boards are burned")
	c.Flags().BoolVar(&o.subDev, "sub-device", false, "the boards are sub-devices: burn each with its product and name only, no secret (its gateway registers it); names from the ledger, or the board's own with --name-from (--format nvs)")
	c.Flags().BoolVar(&o.kit, "kit", false, "burn each gateway with its kit: its sub-devices' ProductKey and the names paired with it (iotburn pair); Aliyun ESP32 gateways (--format nvs)")
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
	var screen *lineScreen
	show := func(e provision.Event) {
		switch {
		case e.Stage.Done():
			_ = g.emit(newBoardEvent(e))
		case e.Stage == provision.StageWrite && e.BytesTotal > 0:
			_ = g.emit(progressLine{Type: typeProgress, Time: e.Time, Port: e.Port, HWID: e.HWID, DeviceName: e.DeviceName, BytesDone: e.BytesDone, BytesTotal: e.BytesTotal})
		}
	}
	if !g.json {
		screen = newLineScreen(g.errOut, terminalOf(g.errOut), o.Target, nil).live()
		show = screen.Event
		g.setNotice(screen.Notice)
		defer g.setNotice(nil)
	}
	note := g.notice
	low := lowCredentials(g, o, note)
	o.Events = func(e provision.Event) {
		show(e)
		if e.Stage == provision.StageBurned {
			low()
		}
	}
	res, err := provision.RunLine(cmd.Context(), o)
	if screen != nil {
		screen.Close()
	}
	if err != nil {
		return err
	}
	if err := reportLine(g, cmd.Name(), res); err != nil {
		return err
	}
	if cmd.Context().Err() != nil {
		return withKind(errInterrupted, errors.New("stopped by Ctrl-C after the boards in flight were finished"))
	}
	return nil
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
			_ = g.emit(warningLine{Type: typeWarning, Code: codeLowCredentials, Message: msg, Free: &c.Free})
		} else {
			note("warning: " + msg)
		}
	}
}

// reportLine prints the line's totals; failed boards make the exit code 1.
func reportLine(g *globals, command string, res provision.LineResult) error {
	if g.json {
		if err := g.emit(lineSummary{Type: typeSummary, Command: command, Burned: res.Burned, Skipped: res.Skipped, Failed: res.Failed,
			PerPort: res.PerPort, FailedPerPort: res.FailedPerPort, Seconds: res.Elapsed.Seconds(), Stop: res.Stop}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(g.out, "%d burned, %d already done, %d failed in %.1fs", res.Burned, res.Skipped, res.Failed, res.Elapsed.Seconds())
		if res.Burned > 0 {
			fmt.Fprintf(g.out, " (%.1f boards/min)", float64(res.Burned)/res.Elapsed.Minutes())
		}
		fmt.Fprintln(g.out)
		// Every port that saw a board, failed ones too.
		ports := slices.Sorted(maps.Keys(res.PerPort))
		for p := range res.FailedPerPort {
			if _, ok := res.PerPort[p]; !ok {
				ports = append(ports, p)
			}
		}
		sort.Strings(ports)
		labels := uniqueLabels(ports)
		for _, p := range ports {
			fmt.Fprintf(g.out, "  %-30s %d burned", labels[p], res.PerPort[p])
			if n := res.FailedPerPort[p]; n > 0 {
				fmt.Fprintf(g.out, ", %d FAILED", n)
			}
			fmt.Fprintln(g.out)
		}
		if res.Stop != "" {
			fmt.Fprintln(g.out, "stopped:", res.Stop)
		}
	}
	if res.Failed > 0 {
		return &exitError{kind: errBoardsFailed, err: fmt.Errorf("%d board(s) failed: see the lines above; `iotburn audit` has the details", res.Failed)}
	}
	if res.StopErr != nil {
		return res.StopErr
	}
	return nil
}
