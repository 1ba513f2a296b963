package cmd

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/provision/audit"
	"github.com/iotburn/iotburn/provision/ledger"
)

func newAuditCmd(g *globals) *cobra.Command {
	var (
		pf             platformFlags
		out, station   string
		since          time.Duration
		includeSecrets bool
		history        bool
		operator, lot  string
	)
	c := &cobra.Command{
		Use:   "audit --out audit.xlsx",
		Short: "Write the audit workbook: one row per board, a summary and a chart",
		Long: `audit writes an XLSX workbook from the ledger: a Units sheet (one row per board: time, station,
port, MAC/IMEI, product, device name, state, attempts, duration, error, secret fingerprint) and a
Summary sheet (stations, operator, lot, counts by state, yield and boards per hour with their
definitions, boards refused, burn attempts, per port) with a chart; --history adds an Events sheet
with every transition of every board, each attempt's error included. Every sheet prints landscape,
one page wide, the header row repeated; the document properties name iotburn and the time.
Secrets are shown only as a fingerprint (first 8 hex digits of SHA-256) unless --include-secrets.`,
		Example: `  iotburn audit --out audit.xlsx
  iotburn audit --out today.xlsx --product ABCDEFGHIJ --since 12h
  iotburn audit --out full.xlsx --history
  iotburn audit --out WO-1234.xlsx --operator "Li Wei" --lot WO-1234`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.openExistingLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			f := ledger.Filter{Product: pf.product, Station: station}
			if pf.product != "" {
				f.Platform = pf.platform
			}
			if since > 0 {
				f.Since = time.Now().Add(-since)
			}
			sum, err := audit.Write(l, out, audit.Options{Station: station, Filter: f, IncludeSecrets: includeSecrets, History: history,
				Generator: "iotburn " + version(), Operator: operator, Lot: lot})
			if err != nil {
				return err
			}
			if g.json {
				byState := map[string]int{}
				for st, n := range sum.ByState {
					byState[string(st)] = n
				}
				return g.emit(auditSummary{Type: typeSummary, Command: "audit", File: out, Units: sum.Units, Yield: sum.Yield,
					BoardsPerHour: sum.BoardsPerHour, ActiveSeconds: sum.Active.Seconds(), ByState: byState, PerPort: sum.PerPort})
			}
			fmt.Fprintf(g.out, "wrote %s: %d boards, yield %.1f%%, %.0f boards/hour\n", out, sum.Units, 100*sum.Yield, sum.BoardsPerHour)
			return nil
		},
	}
	pf.register(c, false)
	c.Flags().StringVar(&out, "out", "audit.xlsx", "the workbook to write")
	c.Flags().StringVar(&station, "station", "", "only this station's boards")
	c.Flags().DurationVar(&since, "since", 0, "only boards handled in this last while (e.g. 12h)")
	c.Flags().BoolVar(&history, "history", false, "add an Events sheet: every transition of every board, and the boards refused before a credential")
	c.Flags().StringVar(&operator, "operator", "", "who ran the line, for the record")
	c.Flags().StringVar(&lot, "lot", "", "the lot or work order, for the record")
	c.Flags().BoolVar(&includeSecrets, "include-secrets", false, "add a column with each device secret (the file is 0600; handle with care)")
	return c
}
