package cmd

import (
	"fmt"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/provision/ledger"
	devnames "github.com/iotburn/iotburn/provision/names"
)

// createOptions are create's flags; validate settles every one of them and
// reads the names file before the platform or the ledger is touched.
type createOptions struct {
	pf     platformFlags
	names  string
	column string
	header string
	dryRun bool
}

func newCreateCmd(g *globals) *cobra.Command {
	o := &createOptions{}
	c := &cobra.Command{
		Use:   "create --product P --names FILE",
		Short: "Create devices on the platform in batches and store their secrets in the ledger",
		Long: `create makes one platform device per name and stores each device's secret in the ledger.

Names files as factories export them: a plain list (one name a line), CSV with or without a
header (',' ';' or tab, found by looking), UTF-8 with or without BOM, UTF-16 with BOM (Excel's
"Unicode Text"), GBK (Chinese Excel's CSV), or an .xlsx workbook (its first sheet). The names
column is the one headed DeviceName / Name / 设备名称, or else the one headed SN / Serial Number
/ IMEI / MAC / 序列号; --column picks another (by its header or its number, from 1). A header
that names none of these, two candidates, or several columns without a header are refused with
the columns listed. Every name is checked before anything is sent: the platform's rules (Tencent
[a-zA-Z0-9:_-]{1,48}, Aliyun [A-Za-z0-9_@.:-]{4,32}), duplicates, empty cells, and numbers Excel
wrote in scientific notation (8.68139E+14: format the column as text). --dry-run shows what
would be created and touches neither the platform nor the ledger.

Every batch call is journalled in the ledger before it is sent: if create is killed at any point,
running it again recovers what the platform already made and creates nothing twice.

Cloud keys come from the environment: TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY,
TENCENTCLOUD_REGION (default ap-guangzhou); for --platform aliyun ALIBABA_CLOUD_ACCESS_KEY_ID,
ALIBABA_CLOUD_ACCESS_KEY_SECRET, ALIBABA_CLOUD_REGION_ID (default cn-shanghai).`,
		Example: `  # against the built-in emulator (iotburn sim cloud prints its keys)
  iotburn create --product ABCDEFGHIJ --names sn.csv --endpoint http://127.0.0.1:8443
  # see first what a spreadsheet would create (no keys needed, nothing changes)
  iotburn create --product ABCDEFGHIJ --names serials.xlsx --dry-run
  # a file whose names column has a header iotburn does not know
  iotburn create --product ABCDEFGHIJ --names export.csv --column "Board ID"
  iotburn create --product ABCDEFGHIJ --names export.csv --column 3
  # against Tencent Cloud
  export TENCENTCLOUD_SECRET_ID=... TENCENTCLOUD_SECRET_KEY=...
  iotburn create --product ABCDEFGHIJ --names sn.txt
  # Alibaba Cloud IoT Platform
  iotburn create --platform aliyun --product a1Xyz --names imei.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, err := o.validate()
			if err != nil {
				return err
			}
			if o.dryRun {
				return createDryRun(g, &o.pf, o.names, file)
			}
			return o.run(cmd, g, file)
		},
	}
	o.pf.register(c, true)
	c.Flags().StringVar(&o.names, "names", "", "file of device names: a plain list, CSV (any of the usual encodings) or .xlsx (required)")
	c.Flags().StringVar(&o.column, "column", "", "the names column: its header (any case) or its number from 1 (default: the DeviceName/SN/IMEI/MAC column)")
	c.Flags().StringVar(&o.header, "header", "auto", "whether the first row is a header: auto, yes or no")
	c.Flags().BoolVar(&o.dryRun, "dry-run", false, "print what would be created and create nothing (no cloud keys needed; the ledger is only read)")
	_ = c.MarkFlagRequired("names")
	return c
}

// validate checks the flags and reads the names file: every name checked
// against the platform's rules, nothing sent anywhere.
func (o *createOptions) validate() (devnames.List, error) {
	if err := o.pf.check(); err != nil {
		return devnames.List{}, withKind(errUsage, err)
	}
	hm, err := devnames.ParseHeaderMode(o.header)
	if err != nil {
		return devnames.List{}, withKind(errUsage, err)
	}
	rule, err := devnames.PlatformRule(o.pf.platform)
	if err != nil {
		return devnames.List{}, withKind(errUsage, err)
	}
	file, err := devnames.ReadFile(o.names, devnames.Options{Column: o.column, Header: hm, Rule: rule})
	if err != nil {
		return devnames.List{}, withKind(errUsage, fmt.Errorf("%w\nnothing was created", err))
	}
	return file, nil
}

// run creates file's devices through provision.Create and reports.
func (o *createOptions) run(cmd *cobra.Command, g *globals, file devnames.List) error {
	platform, err := o.pf.client()
	if err != nil {
		return err
	}
	list := file.Values()
	for _, n := range file.Names {
		// The client's own rule too: it is the one the platform call is held to.
		if err := platform.ValidateName(n.Value); err != nil {
			return withKind(errUsage, fmt.Errorf("%s %s %d: %w\nnothing was created", o.names, file.Source.Unit(), n.Line, err))
		}
	}
	if !g.json {
		fmt.Fprintf(g.out, "%d names from %s of %s\n", len(list), file.Source, o.names)
	}
	l, err := g.openLedger()
	if err != nil {
		return err
	}
	defer l.Close()

	var bar *progressbar.ProgressBar
	if !g.json && isTerminal(g.errOut) {
		bar = progressbar.NewOptions(len(list),
			progressbar.OptionSetWriter(g.errOut),
			progressbar.OptionSetDescription("creating devices"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish())
	}
	start := time.Now()
	res, err := provision.Create(cmd.Context(), provision.CreateOptions{
		Platform: platform, Ledger: l, Product: o.pf.product, Names: list,
		Progress: func(done, total int) {
			if bar != nil {
				bar.ChangeMax(total)
				_ = bar.Set(done)
			}
		},
	})
	if bar != nil {
		_ = bar.Finish()
	}
	elapsed := time.Since(start)
	if g.json {
		// The error, if any, is the error line Execute prints: once.
		failed := append([]string{}, res.Failed...)
		if perr := g.emit(createSummary{Type: typeSummary, Command: "create", Platform: platform.Name(), Product: o.pf.product,
			Requested: res.Requested, Skipped: res.Skipped, Healed: res.Healed, Created: res.Created, Failed: failed,
			Calls: res.Calls, Seconds: elapsed.Seconds(), Names: sourceJSON(o.names, file.Source)}); perr != nil {
			return perr
		}
	} else {
		fmt.Fprintf(g.out, "%s product %s: %d names, %d created, %d already in the ledger", platform.Name(), o.pf.product, res.Requested, res.Created, res.Skipped)
		if res.Healed > 0 {
			fmt.Fprintf(g.out, ", %d recovered from an interrupted run", res.Healed)
		}
		fmt.Fprintf(g.out, " (%d batch calls, %.1fs)\n", res.Calls, elapsed.Seconds())
		if len(res.Failed) > 0 {
			fmt.Fprintf(g.out, "refused by the platform (%d):\n  %s\n", len(res.Failed), strings.Join(res.Failed, "\n  "))
		}
		fmt.Fprintf(g.out, "secrets are in %s (keep it safe: it is the only copy; `iotburn ledger backup FILE` copies it)\n", ledger.Redact(l.Path()))
	}
	if err != nil {
		return err
	}
	if len(res.Failed) > 0 {
		return &exitError{kind: errFailed, err: fmt.Errorf("%d device(s) were not created", len(res.Failed))}
	}
	return nil
}

// sourceJSON is what was read from a names file, for --json.
func sourceJSON(path string, s devnames.Source) namesSource {
	out := namesSource{File: path, Kind: s.Kind, Column: s.Column, ColumnName: s.ColumnName, HeaderLine: s.HeaderLine, Columns: s.Columns}
	if s.Kind == "xlsx" {
		out.Sheet = s.Sheet
	} else {
		out.Encoding, out.Separator = s.Encoding, string(s.Separator)
	}
	return out
}

// createDryRun prints what create would do with file: each name, new or
// already in the ledger (which is only read, and only if it exists).
func createDryRun(g *globals, pf *platformFlags, path string, file devnames.List) error {
	known := map[string]bool{}
	ledgerNote := "no ledger at " + ledger.Redact(g.ledger) + " yet: every name is new"
	exists, err := g.ledgerExists()
	if err != nil {
		return err
	}
	if exists {
		l, err := ledger.OpenReadOnly(g.ledger)
		if err != nil {
			return withKind(errLedger, err)
		}
		known, err = l.KnownNames(pf.platform, pf.product)
		l.Close()
		if err != nil {
			return err
		}
		ledgerNote = "names already in " + ledger.Redact(g.ledger) + " are skipped, as create skips them"
	}
	create := 0
	for _, n := range file.Names {
		if !known[n.Value] {
			create++
		}
	}
	if g.json {
		for _, n := range file.Names {
			action := "create"
			if known[n.Value] {
				action = "skip"
			}
			if err := g.emit(nameEvent{Type: typeEvent, Event: "name", DeviceName: n.Value, Line: n.Line, Action: action}); err != nil {
				return err
			}
		}
		return g.emit(createSummary{Type: typeSummary, Command: "create", DryRun: true, Platform: pf.platform, Product: pf.product,
			Requested: len(file.Names), WouldCreate: create, Skipped: len(file.Names) - create, Failed: []string{},
			Names: sourceJSON(path, file.Source)})
	}
	fmt.Fprintf(g.out, "dry run: %d names from %s of %s\n", len(file.Names), file.Source, path)
	fmt.Fprintf(g.out, "%s %s: would create %d, %d already in the ledger (%s)\n", pf.platform, pf.product, create, len(file.Names)-create, ledgerNote)
	for _, n := range file.Names {
		mark := "create"
		if known[n.Value] {
			mark = "skip  "
		}
		fmt.Fprintf(g.out, "  %s %s %d  %s\n", mark, file.Source.Unit(), n.Line, n.Value)
	}
	fmt.Fprintln(g.out, "nothing was created (dry run)")
	return nil
}
