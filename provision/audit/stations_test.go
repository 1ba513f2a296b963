package audit

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/iotburn/iotburn/provision/ledger"
)

// The line of line(), per station, worked out by hand from its story: st1
// burned three boards (08:00:00–08:10:30 and 08:30:00–08:31:00: 11.5 min
// of work, the 19.5 min pause a break), failed one, turned one away; st2
// claimed one board and wrote nothing yet.
var wantStations = []StationFigures{
	{Station: "st1", Units: 4, ByState: map[ledger.State]int{ledger.Verified: 1, ledger.Burned: 2, ledger.Failed: 1}, Burned: 3,
		Yield: 0.75, BoardsPerHour: 3 / (11.5 / 60), Active: 11*time.Minute + 30*time.Second, Refused: 1, Attempts: 4, Failures: 1},
	{Station: "st2", Units: 1, ByState: map[ledger.State]int{ledger.Reserved: 1}},
}

func sameStations(t *testing.T, got, want []StationFigures) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d stations %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Station != w.Station || g.Units != w.Units || fmt.Sprint(g.ByState) != fmt.Sprint(w.ByState) || g.Burned != w.Burned ||
			math.Abs(g.Yield-w.Yield) > 1e-9 || math.Abs(g.BoardsPerHour-w.BoardsPerHour) > 1e-9 || g.Active != w.Active ||
			g.Refused != w.Refused || g.Attempts != w.Attempts || g.Failures != w.Failures {
			t.Errorf("station %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestStations(t *testing.T) {
	l := line(t)
	got, err := Stations(l, ledger.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	sameStations(t, got, wantStations)
	only, err := Stations(l, ledger.Filter{Station: "st2"})
	if err != nil {
		t.Fatal(err)
	}
	sameStations(t, only, wantStations[1:])

	// The workbook: the same figures in Summary, and its table on the sheet.
	path := filepath.Join(t.TempDir(), "audit.xlsx")
	sum, err := Write(l, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sameStations(t, sum.PerStation, wantStations)
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The table's header at row 31 (clear of the chart), a row a station.
	want := map[string]string{
		"A30": "per station (2): a board counts for the station that claimed it last",
		"A31": "station", "B31": "units", "C31": "burned (incl. verified)", "D31": "failed", "E31": "yield", "F31": "boards per hour", "G31": "refused", "H31": "attempts",
		"A32": "st1", "B32": "4", "C32": "3", "D32": "1", "E32": "0.75", "G32": "1", "H32": "4",
		"A33": "st2", "B33": "1", "C33": "0", "D33": "0", "E33": "0", "F33": "under a minute", "G33": "0", "H33": "0",
	}
	for cell, v := range want {
		if got, _ := f.GetCellValue(SheetSummary, cell, excelize.Options{RawCellValue: true}); got != v {
			t.Errorf("Summary!%s = %q, want %q", cell, got, v)
		}
	}
	raw, _ := f.GetCellValue(SheetSummary, "F32", excelize.Options{RawCellValue: true})
	var rate float64
	if _, err := fmt.Sscan(raw, &rate); err != nil || math.Abs(rate-3/(11.5/60)) > 1e-6 {
		t.Errorf("st1's boards per hour on the sheet: %q", raw)
	}
}
