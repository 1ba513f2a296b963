// Package audit writes the record of a production run: one XLSX workbook
// with a row per board (sheet "Units"), a row per step of every board's
// history (sheet "Events": each attempt, failure and refusal, where a board's
// Units row shows only its latest) and the totals with a chart and each
// station's part (sheet "Summary"; Stations gives the same per-station
// figures without a workbook, for `iotburn ledger status`).
//
// Rows are streamed from the ledger into excelize's StreamWriter, so memory
// stays flat however many boards the run had (DESIGN.md §7: 100,000 rows in
// < 100 MB). Secrets appear only as registry.Fingerprint unless
// Options.IncludeSecrets is set.
package audit

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/devauth"
)

// Options says what goes into the record.
type Options struct {
	Station        string        // the station writing the record, shown on Summary (rows are selected by Filter)
	Filter         ledger.Filter // which units
	IncludeSecrets bool          // add a "secret" column with the device secrets themselves
	// History adds the Events sheet: every transition of every board and the
	// boards refused before a credential. Off by default: a second streamed
	// sheet costs excelize a second 16-32 MB buffer, and 100,000 boards with
	// their history go past the 100 MB the record may take (DESIGN §7).
	History bool
	Now     func() time.Time // "generated at" stamp; nil means time.Now
	// Generator names the program in the document properties
	// ("iotburn v1.2.3"); Operator and Lot (work order) say whose run it
	// was, on the Summary and in the properties.
	Generator, Operator, Lot string
}

// Summary is what the Summary sheet shows.
type Summary struct {
	Units   int
	ByState map[ledger.State]int
	// Yield is (burned + verified) / units; 0 with no units.
	Yield float64
	// BoardsPerHour is the boards with a burn on record divided by the
	// line's active time: from the start of the first burn (burned_at minus
	// its duration) to the last burned_at, less every pause between burns
	// longer than IdleGap (a break, a shift change). 0 when nothing was
	// burned or the active time is under a minute (too short to be a rate).
	BoardsPerHour float64
	Active        time.Duration  // the active time it is based on
	Stations      []string       // the stations of the selected units
	PerPort       map[string]int // units by port (as the OS names it)
	// Refused counts boards turned away before they had a credential
	// (garbage or no answer, unregistered name, no credential left): they
	// have no unit, so only the history knows them.
	Refused int
	// Attempts counts burns begun (each Begin), in the selected history.
	Attempts int
	// Events is the number of rows on the Events sheet.
	Events int
	// PerStation is each station's part (StationFigures), by name: on the
	// Summary sheet below the ports.
	PerStation []StationFigures
	// Gateways with sub-devices paired, and those sub-devices: the
	// Gateways sheet's.
	Gateways, SubDevices int
}

// IdleGap is the longest pause between two burns still counted as the
// line working: longer ones are breaks, left out of the active time.
const IdleGap = 10 * time.Minute

// Sheet names and the Units columns, exported so readers (tests, MES
// importers) need not repeat them.
const (
	SheetUnits   = "Units"
	SheetSummary = "Summary"
	SheetEvents  = "Events"
	// SheetGateways is there when the selection has gateways with
	// sub-devices paired (ledger.Pair): a row per sub-device.
	SheetGateways = "Gateways"
)

// GatewayColumns are the Gateways sheet's headers: each gateway (its board
// and state, as on Units) with each sub-device of its kit. A sub-device's
// secret is shown by fingerprint only; --include-secrets does not reach
// this sheet (the gateway's host gives them to the gateway, the line
// burns none).
var GatewayColumns = []string{"platform", "gateway product", "gateway", "gateway board", "gateway state",
	"sub-device product", "sub-device", "sub-device secret fingerprint"}

// Columns are the Units sheet's headers; "secret" is appended with IncludeSecrets.
// A certificate device's secret is its private key (its fingerprint is
// the key's); its certificate, public, is shown by its usual SHA-256
// fingerprint and its expiry, blank for a key device.
var Columns = []string{"time (UTC)", "station", "port", "board", "platform", "product", "region",
	"device name", "state", "attempts", "duration (s)", "error", "secret fingerprint",
	"cert fingerprint (SHA-256)", "cert expires (UTC)"}

// EventColumns are the Events sheet's headers. There is no secret column,
// whatever the options: the history records what happened, not what was burned.
var EventColumns = []string{"time (UTC)", "station", "port", "board", "platform", "product", "device name",
	"from", "to", "attempt", "duration (s)", "error"}

// unitStates are the states a unit can be in, in line order (Created is a
// credential without a board, so never a row here).
var unitStates = []ledger.State{ledger.Reserved, ledger.Burning, ledger.Burned, ledger.Verified, ledger.Failed, ledger.Void}

// Write writes the record of the units matching opts.Filter to path. The
// file appears complete or not at all (written to a temporary file in the
// same directory, synced, then renamed) and is 0600, as it may hold secrets.
func Write(l *ledger.Ledger, path string, opts Options) (sum Summary, err error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return Summary{}, fmt.Errorf("audit: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	// TmpDir: StreamWriter spills rows past 16 MB to a temporary file (0600,
	// removed by Close); keep it beside the output rather than in a shared /tmp.
	f := excelize.NewFile(excelize.Options{TmpDir: dir})
	defer f.Close()
	if sum, err = fill(f, l, opts, now().UTC()); err != nil {
		return Summary{}, fmt.Errorf("audit: %w", err)
	}
	if _, err = f.WriteTo(tmp); err != nil {
		return Summary{}, fmt.Errorf("audit: write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return Summary{}, fmt.Errorf("audit: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return Summary{}, fmt.Errorf("audit: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return Summary{}, fmt.Errorf("audit: %w", err)
	}
	// Make the rename itself durable; a failure here does not undo the record.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return sum, nil
}

func fill(f *excelize.File, l *ledger.Ledger, opts Options, generated time.Time) (Summary, error) {
	if err := f.SetSheetName("Sheet1", SheetSummary); err != nil {
		return Summary{}, err
	}
	sheets := []string{SheetUnits}
	if opts.History {
		sheets = append(sheets, SheetEvents)
	}
	for _, sh := range sheets {
		if _, err := f.NewSheet(sh); err != nil {
			return Summary{}, err
		}
	}
	// Print setup goes on before the stream writers take the sheets over
	// (they keep what the sheet had, and write the rows after it).
	for _, sh := range append(sheets, SheetSummary) {
		if err := printSetup(f, sh, sh != SheetSummary); err != nil {
			return Summary{}, err
		}
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return Summary{}, err
	}
	when, err := f.NewStyle(&excelize.Style{CustomNumFmt: ptr("yyyy-mm-dd hh:mm:ss")})
	if err != nil {
		return Summary{}, err
	}
	st := newStationTally()
	sum, err := writeUnits(f, l, opts, st, bold, when)
	if err != nil {
		return Summary{}, err
	}
	if opts.History {
		err = writeEvents(f, l, opts, &sum, st, bold, when)
	} else {
		err = l.EachEvent(opts.Filter, func(e ledger.Event) error { sum.count(e); st.event(e); return nil })
	}
	if err != nil {
		return Summary{}, err
	}
	sum.PerStation = st.figures()
	if sum.Gateways, sum.SubDevices, err = writeGateways(f, l, opts, bold); err != nil {
		return Summary{}, err
	}
	if err := writeSummary(f, sum, opts, generated, bold, when); err != nil {
		return Summary{}, err
	}
	if err := docProps(f, sum, opts, generated); err != nil {
		return Summary{}, err
	}
	idx, err := f.GetSheetIndex(SheetSummary)
	if err != nil {
		return Summary{}, err
	}
	f.SetActiveSheet(idx)
	return sum, nil
}

func ptr[T any](v T) *T { return &v }

// printSetup prints a sheet landscape, as wide as one page and as long as
// it takes, and (for the tables) repeats the header row on every page.
func printSetup(f *excelize.File, sheet string, header bool) error {
	if err := f.SetSheetProps(sheet, &excelize.SheetPropsOptions{FitToPage: ptr(true)}); err != nil {
		return err
	}
	if err := f.SetPageLayout(sheet, &excelize.PageLayoutOptions{Orientation: ptr("landscape"), Size: ptr(9), // A4
		FitToWidth: ptr(1), FitToHeight: ptr(0)}); err != nil {
		return err
	}
	if !header {
		return nil
	}
	return f.SetDefinedName(&excelize.DefinedName{Name: "_xlnm.Print_Titles", RefersTo: "'" + sheet + "'!$1:$1", Scope: sheet})
}

// docProps says who made the record, when, and of what.
func docProps(f *excelize.File, sum Summary, opts Options, generated time.Time) error {
	gen := opts.Generator
	if gen == "" {
		gen = "iotburn"
	}
	desc := fmt.Sprintf("%d boards, %s", sum.Units, describe(opts.Filter))
	if opts.Lot != "" {
		desc += ", lot " + opts.Lot
	}
	stamp := generated.Format(time.RFC3339)
	return f.SetDocProps(&excelize.DocProperties{
		Title: "iotburn production record", Subject: describe(opts.Filter), Description: desc,
		Creator: gen, LastModifiedBy: firstNonEmpty(opts.Operator, gen), Created: stamp, Modified: stamp,
		Category: "audit", Keywords: "iotburn audit", Identifier: opts.Lot,
	})
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// writeUnits streams one row per unit and tallies the summary on the way.
func writeUnits(f *excelize.File, l *ledger.Ledger, opts Options, st *stationTally, bold, when int) (Summary, error) {
	sw, err := f.NewStreamWriter(SheetUnits)
	if err != nil {
		return Summary{}, err
	}
	cols := slices.Clone(Columns)
	if opts.IncludeSecrets {
		cols = append(cols, "secret")
	}
	widths := []float64{20, 10, 14, 20, 9, 14, 14, 22, 10, 9, 12, 40, 18, 66, 20, 30}
	for i := range cols {
		if err := sw.SetColWidth(i+1, i+1, widths[i]); err != nil {
			return Summary{}, err
		}
	}
	// Frozen header: the column names stay in view while scrolling 100,000 rows.
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return Summary{}, err
	}
	header := make([]any, len(cols))
	for i, c := range cols {
		header[i] = excelize.Cell{StyleID: bold, Value: c}
	}
	if err := sw.SetRow("A1", header); err != nil {
		return Summary{}, err
	}

	sum := Summary{ByState: map[ledger.State]int{}, PerPort: map[string]int{}}
	var burns []burn
	stations := map[string]bool{}
	row := make([]any, len(cols)) // reused: SetRow copies the values out
	n := 1
	err = l.EachUnit(opts.Filter, func(u ledger.Unit) error {
		n++
		st.unit(u)
		sum.Units++
		sum.ByState[u.State]++
		sum.PerPort[u.Port]++
		if u.Station != "" {
			stations[u.Station] = true
		}
		if !u.BurnedAt.IsZero() {
			burns = append(burns, burn{start: u.BurnedAt.Add(-u.Duration), end: u.BurnedAt})
		}
		var dur any // blank until burned
		if !u.BurnedAt.IsZero() {
			dur = u.Duration.Seconds()
		}
		secret := u.Cred.DeviceSecret
		if secret == "" {
			secret = u.Cred.DevicePrivateKey
		}
		var certFP, expires any // blank for a key device
		if info, ok := certInfo(u.Cred.DeviceCert); ok {
			certFP, expires = info.Fingerprint, excelize.Cell{StyleID: when, Value: info.NotAfter.UTC()}
		}
		row = append(row[:0],
			excelize.Cell{StyleID: when, Value: u.UpdatedAt.UTC()},
			u.Station, u.Port, u.HWID, u.Cred.Platform, u.Cred.ProductID, u.Cred.Region, u.Cred.DeviceName,
			string(u.State), u.Attempts, dur, scrub(u.Error, secret), registry.Fingerprint(secret), certFP, expires)
		if opts.IncludeSecrets {
			row = append(row, secret)
		}
		cell, err := excelize.CoordinatesToCellName(1, n)
		if err != nil {
			return err
		}
		return sw.SetRow(cell, row)
	})
	if err != nil {
		return Summary{}, err
	}
	// A table gives the header filter buttons (AutoFilter on a streamed sheet
	// would load it back into memory).
	last1, err := excelize.CoordinatesToCellName(len(cols), max(n, 2))
	if err != nil {
		return Summary{}, err
	}
	if err := sw.AddTable(&excelize.Table{Range: "A1:" + last1, Name: "UnitsTable", StyleName: "TableStyleLight9"}); err != nil {
		return Summary{}, err
	}
	if err := sw.Flush(); err != nil {
		return Summary{}, err
	}
	if sum.Units > 0 {
		sum.Yield = float64(sum.ByState[ledger.Burned]+sum.ByState[ledger.Verified]) / float64(sum.Units)
	}
	sum.Active = activeTime(burns)
	if sum.Active >= time.Minute {
		sum.BoardsPerHour = float64(len(burns)) / sum.Active.Hours()
	}
	sum.Stations = slices.Sorted(maps.Keys(stations))
	return sum, nil
}

// burn is one board's burn on record.
type burn struct{ start, end time.Time }

// activeTime is the time the line was working: the burns' spans joined,
// with the pauses between them counted unless longer than IdleGap.
func activeTime(burns []burn) time.Duration {
	if len(burns) == 0 {
		return 0
	}
	slices.SortFunc(burns, func(a, b burn) int { return a.start.Compare(b.start) })
	var total time.Duration
	cur := burns[0]
	for _, b := range burns[1:] {
		if b.start.Sub(cur.end) > IdleGap {
			total += cur.end.Sub(cur.start)
			cur = b
			continue
		}
		if b.end.After(cur.end) {
			cur.end = b.end
		}
	}
	return total + cur.end.Sub(cur.start)
}

// count adds one event of the history to the summary's figures.
func (sum *Summary) count(e ledger.Event) {
	sum.Events++
	switch {
	case e.To == ledger.Refused:
		sum.Refused++
	case e.To == ledger.Burning:
		sum.Attempts++
	case e.From == "":
		// A unit carried over from a v1 ledger: its one event holds the
		// attempts made before history was kept.
		sum.Attempts += e.Attempt
	}
}

// writeEvents streams one row per event of the selected history and counts
// refusals and burn attempts on the way.
func writeEvents(f *excelize.File, l *ledger.Ledger, opts Options, sum *Summary, st *stationTally, bold, when int) error {
	sw, err := f.NewStreamWriter(SheetEvents)
	if err != nil {
		return err
	}
	widths := []float64{20, 10, 14, 20, 9, 14, 22, 10, 10, 8, 12, 40}
	for i, w := range widths {
		if err := sw.SetColWidth(i+1, i+1, w); err != nil {
			return err
		}
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	header := make([]any, len(EventColumns))
	for i, c := range EventColumns {
		header[i] = excelize.Cell{StyleID: bold, Value: c}
	}
	if err := sw.SetRow("A1", header); err != nil {
		return err
	}
	row := make([]any, len(EventColumns))
	n := 1
	err = l.EachEvent(opts.Filter, func(e ledger.Event) error {
		n++
		sum.count(e)
		st.event(e)
		var dur any // blank unless the event is a burn
		if e.To == ledger.Burned {
			dur = e.Duration.Seconds()
		}
		// The ledger keeps secrets out of the history (it cuts a credential's
		// secret out of every reason it records), so there is none to scrub here.
		row = append(row[:0],
			excelize.Cell{StyleID: when, Value: e.Time.UTC()},
			e.Station, e.Port, e.HWID, e.Platform, e.Product, e.DeviceName,
			string(e.From), string(e.To), e.Attempt, dur, e.Error)
		cell, err := excelize.CoordinatesToCellName(1, n)
		if err != nil {
			return err
		}
		return sw.SetRow(cell, row)
	})
	if err != nil {
		return err
	}
	last, err := excelize.CoordinatesToCellName(len(EventColumns), max(n, 2))
	if err != nil {
		return err
	}
	if err := sw.AddTable(&excelize.Table{Range: "A1:" + last, Name: "EventsTable", StyleName: "TableStyleLight9"}); err != nil {
		return err
	}
	return sw.Flush()
}

// certInfo reads what the sheet shows of a certificate; a certificate
// that does not parse shows nothing rather than stopping the record.
func certInfo(certPEM string) (devauth.CertInfo, bool) {
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		return devauth.CertInfo{}, false
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return devauth.CertInfo{}, false
	}
	return devauth.CertInfo{Fingerprint: registry.CertFingerprint(certPEM), NotBefore: c.NotBefore, NotAfter: c.NotAfter, Subject: c.Subject.String()}, true
}

// scrub replaces the secret if a careless caller put it into a failure reason
// (a raw AT reply, say). Errors must not carry secrets in the first place
// (ledger.Fail says so); this is the last line of defence for the record.
func scrub(text, secret string) string {
	if secret == "" || !strings.Contains(text, secret) {
		return text
	}
	return strings.ReplaceAll(text, secret, "[secret "+registry.Fingerprint(secret)+"]")
}

// Summary sheet layout: a key/value block (with what yield and the rate
// mean written beside them), the counts by state (the chart's data), then
// per-port counts, then the per-station table (below the chart).
const (
	stateRow      = 16 // first row of the by-state table's data
	defCol        = "C"
	stationRowMin = 31 // the per-station table's header, at the earliest: clear of the chart
)

// StationColumns are the per-station table's headers on the Summary sheet.
var StationColumns = []string{"station", "units", "burned (incl. verified)", "failed", "yield", "boards per hour", "refused", "attempts"}

// writeStations writes the per-station table with its header at row.
func writeStations(set func(string, any, int) error, sum Summary, row, bold, pct, dec int) error {
	if err := set(fmt.Sprintf("A%d", row-1), fmt.Sprintf("per station (%d): a board counts for the station that claimed it last", len(sum.PerStation)), bold); err != nil {
		return err
	}
	for i, c := range StationColumns {
		cell, _ := excelize.CoordinatesToCellName(i+1, row)
		if err := set(cell, c, bold); err != nil {
			return err
		}
	}
	for i, st := range sum.PerStation {
		var rate any = st.BoardsPerHour
		if st.BoardsPerHour == 0 {
			rate = "under a minute"
		}
		vals := []any{st.Station, st.Units, st.Burned, st.ByState[ledger.Failed], st.Yield, rate, st.Refused, st.Attempts}
		styles := []int{0, 0, 0, 0, pct, dec, 0, 0}
		for j, v := range vals {
			cell, _ := excelize.CoordinatesToCellName(j+1, row+1+i)
			if err := set(cell, v, styles[j]); err != nil {
				return err
			}
		}
	}
	return nil
}

// stateColors colour each state by what it means: green done, red failed,
// amber in progress, greys for the rest (ARGB without alpha, as excelize
// takes them).
var stateColors = map[ledger.State]string{
	ledger.Reserved: "BFBFBF", ledger.Burning: "F2B134", ledger.Burned: "8FD18F",
	ledger.Verified: "2E8B57", ledger.Failed: "D9342B", ledger.Void: "595959",
}

func writeSummary(f *excelize.File, sum Summary, opts Options, generated time.Time, bold, when int) error {
	s := SheetSummary
	pct, err := f.NewStyle(&excelize.Style{NumFmt: 10}) // 0.00%
	if err != nil {
		return err
	}
	dec, err := f.NewStyle(&excelize.Style{CustomNumFmt: ptr("0.0")})
	if err != nil {
		return err
	}
	wrap, err := f.NewStyle(&excelize.Style{Alignment: &excelize.Alignment{WrapText: true, Vertical: "top"}})
	if err != nil {
		return err
	}
	set := func(cell string, v any, style int) error {
		if err := f.SetCellValue(s, cell, v); err != nil {
			return err
		}
		if style != 0 {
			return f.SetCellStyle(s, cell, cell, style)
		}
		return nil
	}
	stations := opts.Station
	if stations == "" {
		stations = strings.Join(sum.Stations, ", ")
	}
	var rate, active any = "not shown: under a minute of work", sum.Active.Hours()
	if sum.BoardsPerHour > 0 {
		rate = sum.BoardsPerHour
	}
	kv := []struct {
		k     string
		v     any
		style int
		def   string
	}{
		{k: "iotburn production record"},
		{k: "generated (UTC)", v: generated, style: when},
		{k: "stations", v: stations},
		{k: "operator", v: opts.Operator},
		{k: "lot / work order", v: opts.Lot},
		{k: "selection", v: describe(opts.Filter)},
		{k: "units", v: sum.Units, def: "boards in the selection, one row each on the Units sheet"},
		// Verified boards were burned first; a reader asking "how many are
		// burned" wants both.
		{k: "burned (incl. verified)", v: sum.ByState[ledger.Burned] + sum.ByState[ledger.Verified]},
		{k: "yield", v: sum.Yield, style: pct, def: "(burned + verified) / units: boards that hold their credential, of all the boards the selection saw"},
		{k: "boards per hour", v: rate, style: dec, def: "boards burned / active time; not shown for under a minute of work"},
		{k: "active time (hours)", v: active, style: dec, def: fmt.Sprintf("from the first burn's start to the last burn's end, less every pause between burns over %v (breaks)", IdleGap)},
		{k: "refused before a credential", v: sum.Refused, def: "boards turned away before they had a credential (no answer, garbage, unknown name, none left); they have no unit row"},
		{k: "attempts", v: sum.Attempts, def: "burns begun, retries included (the Events sheet, with --history, has each one and its error)"},
	}
	for i, e := range kv {
		if err := set(fmt.Sprintf("A%d", i+1), e.k, bold); err != nil {
			return err
		}
		if e.v != nil {
			if err := set(fmt.Sprintf("B%d", i+1), e.v, e.style); err != nil {
				return err
			}
		}
		if e.def != "" {
			if err := set(fmt.Sprintf("%s%d", defCol, i+1), e.def, wrap); err != nil {
				return err
			}
		}
	}
	if err := set(fmt.Sprintf("A%d", stateRow-1), "state", bold); err != nil {
		return err
	}
	if err := set(fmt.Sprintf("B%d", stateRow-1), "units", bold); err != nil {
		return err
	}
	var points []excelize.ChartDataPoint
	for i, st := range unitStates {
		if err := set(fmt.Sprintf("A%d", stateRow+i), string(st), 0); err != nil {
			return err
		}
		if err := set(fmt.Sprintf("B%d", stateRow+i), sum.ByState[st], 0); err != nil {
			return err
		}
		points = append(points, excelize.ChartDataPoint{Index: i, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{stateColors[st]}}})
	}
	portRow := stateRow + len(unitStates) + 1
	if err := set(fmt.Sprintf("A%d", portRow), "port", bold); err != nil {
		return err
	}
	if err := set(fmt.Sprintf("B%d", portRow), "units", bold); err != nil {
		return err
	}
	ports := slices.Sorted(maps.Keys(sum.PerPort))
	for i, p := range ports {
		if err := set(fmt.Sprintf("A%d", portRow+1+i), p, 0); err != nil {
			return err
		}
		if err := set(fmt.Sprintf("B%d", portRow+1+i), sum.PerPort[p], 0); err != nil {
			return err
		}
	}
	if err := writeStations(set, sum, max(portRow+len(ports)+2, stationRowMin), bold, pct, dec); err != nil {
		return err
	}
	for col, w := range map[string]float64{"A": 26, "B": 22, defCol: 60} {
		if err := f.SetColWidth(s, col, col, w); err != nil {
			return err
		}
	}
	lastState := stateRow + len(unitStates) - 1
	// Beside the state table, sized to stay on the one landscape page.
	return f.AddChart(s, fmt.Sprintf("%s%d", defCol, stateRow-1), &excelize.Chart{
		Type: excelize.Col,
		Series: []excelize.ChartSeries{{
			Name:       fmt.Sprintf("%s!$B$%d", s, stateRow-1),
			Categories: fmt.Sprintf("%s!$A$%d:$A$%d", s, stateRow, lastState),
			Values:     fmt.Sprintf("%s!$B$%d:$B$%d", s, stateRow, lastState),
			DataPoint:  points,
		}},
		Title:     excelize.ChartTitle{Paragraph: []excelize.RichTextRun{{Text: "Units by state"}}},
		Legend:    excelize.ChartLegend{Position: "none"},
		PlotArea:  excelize.ChartPlotArea{ShowVal: true},
		Dimension: excelize.ChartDimension{Width: 420, Height: 260},
	})
}

// describe renders the filter for the reader of the sheet.
func describe(f ledger.Filter) string {
	var parts []string
	for _, kv := range [][2]string{{"platform", f.Platform}, {"product", f.Product}, {"station", f.Station}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+" "+kv[1])
		}
	}
	if !f.Since.IsZero() {
		parts = append(parts, "since "+f.Since.UTC().Format("2006-01-02 15:04:05")+" UTC")
	}
	if len(parts) == 0 {
		return "all units"
	}
	return strings.Join(parts, ", ")
}

// writeGateways adds the Gateways sheet when the selection has paired
// gateways: those of the filter's platform whose product, or whose
// sub-devices' product, is the filter's (every one without a filter).
func writeGateways(f *excelize.File, l *ledger.Ledger, opts Options, bold int) (gateways, subs int, err error) {
	all, err := l.Pairings(opts.Filter.Platform, "")
	if err != nil {
		return 0, 0, err
	}
	var kits []ledger.Pairing
	for _, p := range all {
		if opts.Filter.Product == "" || opts.Filter.Product == p.GatewayProduct || opts.Filter.Product == p.SubProduct {
			kits = append(kits, p)
		}
	}
	if len(kits) == 0 {
		return 0, 0, nil
	}
	if _, err := f.NewSheet(SheetGateways); err != nil {
		return 0, 0, err
	}
	if err := printSetup(f, SheetGateways, true); err != nil {
		return 0, 0, err
	}
	sw, err := f.NewStreamWriter(SheetGateways)
	if err != nil {
		return 0, 0, err
	}
	for i, w := range []float64{10, 16, 30, 20, 10, 16, 30, 20} {
		if err := sw.SetColWidth(i+1, i+1, w); err != nil {
			return 0, 0, err
		}
	}
	header := make([]any, len(GatewayColumns))
	for i, c := range GatewayColumns {
		header[i] = excelize.Cell{StyleID: bold, Value: c}
	}
	if err := sw.SetRow("A1", header); err != nil {
		return 0, 0, err
	}
	n := 1
	for _, k := range kits {
		board, state := "", "no board"
		if u, ok, err := l.UnitByDevice(k.Platform, k.GatewayProduct, k.Gateway); err != nil {
			return 0, 0, err
		} else if ok {
			board, state = u.HWID, string(u.State)
		}
		for _, name := range k.SubDevices {
			fp := ""
			if c, err := l.Credential(k.Platform, k.SubProduct, name); err == nil {
				fp = registry.Fingerprint(c.DeviceSecret)
			} else if !errors.Is(err, ledger.ErrVoid) {
				return 0, 0, err
			}
			n++
			cell, err := excelize.CoordinatesToCellName(1, n)
			if err != nil {
				return 0, 0, err
			}
			if err := sw.SetRow(cell, []any{k.Platform, k.GatewayProduct, k.Gateway, board, state, k.SubProduct, name, fp}); err != nil {
				return 0, 0, err
			}
		}
		subs += len(k.SubDevices)
	}
	last, err := excelize.CoordinatesToCellName(len(GatewayColumns), n)
	if err != nil {
		return 0, 0, err
	}
	if err := sw.AddTable(&excelize.Table{Range: "A1:" + last, Name: "GatewaysTable", StyleName: "TableStyleLight9"}); err != nil {
		return 0, 0, err
	}
	return len(kits), subs, sw.Flush()
}
