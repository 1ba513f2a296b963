package audit

import (
	"archive/zip"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
)

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

// line builds a small ledger by driving the real API with a fixed clock:
//
//	board              port          station  events (minutes after 08:00)
//	AA:00:00:00:00:01  /dev/ttyUSB0  st1      claim+begin 0, burned 0:30 (30 s), verified 1:00
//	AA:00:00:00:00:02  /dev/ttyUSB1  st1      claim+begin 10, burned 10:30 (30 s)
//	AA:00:00:00:00:03  /dev/ttyUSB0  st1      claim+begin 20, failed 20:10 (reason quotes the secret)
//	AA:00:00:00:00:04  /dev/ttyUSB1  st1      claim+begin 30, burned 31:00 (60 s)
//	(no answer)        /dev/ttyUSB3  st1      refused 35, before any credential
//	860000000000001    /dev/ttyUSB2  st2      claim 40 (aliyun)
//
// and a fifth tencent credential d5 voided without a board (no Units row,
// but an event).
func line(t testing.TB) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(filepath.Join(t.TempDir(), "iotburn.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	clock := t0
	l.SetClock(func() time.Time { return clock })
	at := func(d time.Duration) { clock = t0.Add(d) }
	create := func(platform, product string, names ...string) {
		r, err := l.Journal(platform, product, names)
		if err != nil {
			t.Fatal(err)
		}
		var creds []registry.Credential
		for _, n := range names {
			creds = append(creds, registry.Credential{Platform: platform, ProductID: product, DeviceName: n,
				DeviceSecret: "S3CRET-" + n, Region: map[string]string{"tencent": "ap-guangzhou", "aliyun": "cn-shanghai"}[platform]})
		}
		if _, err := l.Complete(r.ID, creds); err != nil {
			t.Fatal(err)
		}
	}
	create("tencent", "P1", "d1", "d2", "d3", "d4", "d5")
	create("aliyun", "K1", "k1")
	if err := l.Void("tencent", "P1", "d5", "leaked"); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	claimBegin := func(hw, port string, m time.Duration) ledger.Unit {
		at(m)
		u, err := l.Claim("tencent", "P1", hw, "st1", port)
		must(err)
		must(l.Begin(u.ID))
		return u
	}
	u := claimBegin("AA:00:00:00:00:01", "/dev/ttyUSB0", 0)
	at(30 * time.Second)
	must(l.Burned(u.ID, 30*time.Second))
	at(time.Minute)
	must(l.Verified(u.ID))
	u = claimBegin("AA:00:00:00:00:02", "/dev/ttyUSB1", 10*time.Minute)
	at(10*time.Minute + 30*time.Second)
	must(l.Burned(u.ID, 30*time.Second))
	u = claimBegin("AA:00:00:00:00:03", "/dev/ttyUSB0", 20*time.Minute)
	at(20*time.Minute + 10*time.Second)
	must(l.Fail(u.ID, "readback mismatch: got S3CRET-d3"))
	u = claimBegin("AA:00:00:00:00:04", "/dev/ttyUSB1", 30*time.Minute)
	at(31 * time.Minute)
	must(l.Burned(u.ID, time.Minute))
	at(35 * time.Minute)
	must(l.Refused("", "st1", "/dev/ttyUSB3", "tencent", "P1", "identify: no answer"))
	at(40 * time.Minute)
	_, err = l.Claim("aliyun", "K1", "860000000000001", "st2", "/dev/ttyUSB2")
	must(err)
	return l
}

// Expected rows, written out by hand. Fingerprints are the first 8 hex digits
// of `printf %s S3CRET-dN | sha256sum`.
var wantUnits = [][]string{
	{"time (UTC)", "station", "port", "board", "platform", "product", "region", "device name", "state", "attempts", "duration (s)", "error", "secret fingerprint", "cert fingerprint (SHA-256)", "cert expires (UTC)"},
	{"2025-03-01 08:01:00", "st1", "/dev/ttyUSB0", "AA:00:00:00:00:01", "tencent", "P1", "ap-guangzhou", "d1", "verified", "1", "30", "", "07a9baee", "", ""},
	{"2025-03-01 08:10:30", "st1", "/dev/ttyUSB1", "AA:00:00:00:00:02", "tencent", "P1", "ap-guangzhou", "d2", "burned", "1", "30", "", "d2dd3546", "", ""},
	{"2025-03-01 08:20:10", "st1", "/dev/ttyUSB0", "AA:00:00:00:00:03", "tencent", "P1", "ap-guangzhou", "d3", "failed", "1", "", "readback mismatch: got [secret afcf7704]", "afcf7704", "", ""},
	{"2025-03-01 08:31:00", "st1", "/dev/ttyUSB1", "AA:00:00:00:00:04", "tencent", "P1", "ap-guangzhou", "d4", "burned", "1", "60", "", "b48813b1", "", ""},
	{"2025-03-01 08:40:00", "st2", "/dev/ttyUSB2", "860000000000001", "aliyun", "K1", "cn-shanghai", "k1", "reserved", "0", "", "", "43570c7a", "", ""},
}

// Expected Events rows, by hand from the story told above line().
var wantEvents = [][]string{
	{"time (UTC)", "station", "port", "board", "platform", "product", "device name", "from", "to", "attempt", "duration (s)", "error"},
	{"2025-03-01 08:00:00", "", "", "", "tencent", "P1", "d5", "created", "void", "0", "", "leaked"},
	{"2025-03-01 08:00:00", "st1", "/dev/ttyUSB0", "AA:00:00:00:00:01", "tencent", "P1", "d1", "created", "reserved", "0", "", ""},
	{"2025-03-01 08:00:00", "st1", "/dev/ttyUSB0", "AA:00:00:00:00:01", "tencent", "P1", "d1", "reserved", "burning", "1", "", ""},
	{"2025-03-01 08:00:30", "st1", "/dev/ttyUSB0", "AA:00:00:00:00:01", "tencent", "P1", "d1", "burning", "burned", "1", "30", ""},
	{"2025-03-01 08:01:00", "st1", "/dev/ttyUSB0", "AA:00:00:00:00:01", "tencent", "P1", "d1", "burned", "verified", "1", "", ""},
	{"2025-03-01 08:10:00", "st1", "/dev/ttyUSB1", "AA:00:00:00:00:02", "tencent", "P1", "d2", "created", "reserved", "0", "", ""},
	{"2025-03-01 08:10:00", "st1", "/dev/ttyUSB1", "AA:00:00:00:00:02", "tencent", "P1", "d2", "reserved", "burning", "1", "", ""},
	{"2025-03-01 08:10:30", "st1", "/dev/ttyUSB1", "AA:00:00:00:00:02", "tencent", "P1", "d2", "burning", "burned", "1", "30", ""},
	{"2025-03-01 08:20:00", "st1", "/dev/ttyUSB0", "AA:00:00:00:00:03", "tencent", "P1", "d3", "created", "reserved", "0", "", ""},
	{"2025-03-01 08:20:00", "st1", "/dev/ttyUSB0", "AA:00:00:00:00:03", "tencent", "P1", "d3", "reserved", "burning", "1", "", ""},
	{"2025-03-01 08:20:10", "st1", "/dev/ttyUSB0", "AA:00:00:00:00:03", "tencent", "P1", "d3", "burning", "failed", "1", "", "readback mismatch: got [secret]"},
	{"2025-03-01 08:30:00", "st1", "/dev/ttyUSB1", "AA:00:00:00:00:04", "tencent", "P1", "d4", "created", "reserved", "0", "", ""},
	{"2025-03-01 08:30:00", "st1", "/dev/ttyUSB1", "AA:00:00:00:00:04", "tencent", "P1", "d4", "reserved", "burning", "1", "", ""},
	{"2025-03-01 08:31:00", "st1", "/dev/ttyUSB1", "AA:00:00:00:00:04", "tencent", "P1", "d4", "burning", "burned", "1", "60", ""},
	{"2025-03-01 08:35:00", "st1", "/dev/ttyUSB3", "", "tencent", "P1", "", "", "refused", "0", "", "identify: no answer"},
	{"2025-03-01 08:40:00", "st2", "/dev/ttyUSB2", "860000000000001", "aliyun", "K1", "k1", "created", "reserved", "0", "", ""},
}

func TestWrite(t *testing.T) {
	l := line(t)
	tests := []struct {
		name     string
		opts     Options
		rows     []int // indexes into wantUnits (after the header)
		events   []int // indexes into wantEvents (after the header)
		secrets  bool
		wantSum  Summary
		selected string
	}{
		{
			name:   "all",
			rows:   []int{1, 2, 3, 4, 5},
			events: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
			wantSum: Summary{Units: 5, Yield: 0.6, Refused: 1, Attempts: 4,
				ByState: map[ledger.State]int{ledger.Verified: 1, ledger.Burned: 2, ledger.Failed: 1, ledger.Reserved: 1},
				// 3 boards burned: 08:00:00–08:10:30 (the 9.5 min pause
				// between the first two counts) and 08:30:00–08:31:00 (the
				// 19.5 min pause before it is a break, over IdleGap): 11.5 min.
				BoardsPerHour: 3 / (11.5 / 60), Active: 11*time.Minute + 30*time.Second, Stations: []string{"st1", "st2"},
				PerPort: map[string]int{"/dev/ttyUSB0": 2, "/dev/ttyUSB1": 2, "/dev/ttyUSB2": 1}},
			selected: "all units",
		},
		{
			name: "station st1, with secrets",
			opts: Options{Filter: ledger.Filter{Station: "st1"}, IncludeSecrets: true},
			rows: []int{1, 2, 3, 4}, secrets: true,
			// Not the void of d5: no board, so no station.
			events: []int{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
			wantSum: Summary{Units: 4, Yield: 0.75, Refused: 1, Attempts: 4,
				ByState:       map[ledger.State]int{ledger.Verified: 1, ledger.Burned: 2, ledger.Failed: 1},
				BoardsPerHour: 3 / (11.5 / 60), Active: 11*time.Minute + 30*time.Second, Stations: []string{"st1"},
				PerPort: map[string]int{"/dev/ttyUSB0": 2, "/dev/ttyUSB1": 2}},
			selected: "station st1",
		},
		{
			name:   "since 08:15, one product",
			opts:   Options{Filter: ledger.Filter{Product: "P1", Since: t0.Add(15 * time.Minute)}},
			rows:   []int{3, 4},
			events: []int{9, 10, 11, 12, 13, 14, 15},
			// One board burned, from 08:30:00 to 08:31:00: 60 an hour.
			wantSum: Summary{Units: 2, Yield: 0.5, Refused: 1, Attempts: 2,
				ByState:       map[ledger.State]int{ledger.Burned: 1, ledger.Failed: 1},
				BoardsPerHour: 60, Active: time.Minute, Stations: []string{"st1"},
				PerPort: map[string]int{"/dev/ttyUSB0": 1, "/dev/ttyUSB1": 1}},
			selected: "product P1, since 2025-03-01 08:15:00 UTC",
		},
		{
			name:     "nothing selected",
			opts:     Options{Filter: ledger.Filter{Station: "nowhere"}},
			wantSum:  Summary{ByState: map[ledger.State]int{}, PerPort: map[string]int{}},
			selected: "station nowhere",
		},
	}
	secrets := map[int]string{1: "S3CRET-d1", 2: "S3CRET-d2", 3: "S3CRET-d3", 4: "S3CRET-d4", 5: "S3CRET-k1"}
	// Without History: no Events sheet, the same figures.
	t.Run("without history", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.xlsx")
		sum, err := Write(l, path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !sameSummary(sum, tests[0].wantSum) {
			t.Errorf("Summary = %+v\nwant      %+v", sum, tests[0].wantSum)
		}
		f, err := excelize.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if got := f.GetSheetList(); !slices.Equal(got, []string{SheetSummary, SheetUnits}) {
			t.Errorf("sheets %v, want Summary and Units", got)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "audit.xlsx")
			// An older record at the same path is replaced whole.
			if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.opts.Station = "line-3"
			tc.opts.Now = func() time.Time { return time.Date(2025, 3, 1, 17, 0, 0, 0, time.UTC) }
			tc.opts.History = true
			sum, err := Write(l, path, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !sameSummary(sum, tc.wantSum) {
				t.Errorf("Summary = %+v\nwant      %+v", sum, tc.wantSum)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("left behind in the directory: %v", ents)
			}

			f, err := excelize.OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if got := f.GetSheetList(); !slices.Equal(got, []string{SheetSummary, SheetUnits, SheetEvents}) {
				t.Errorf("sheets = %v", got)
			}
			rows, err := f.GetRows(SheetUnits)
			if err != nil {
				t.Fatal(err)
			}
			want := [][]string{slices.Clone(wantUnits[0])}
			if tc.secrets {
				want[0] = append(want[0], "secret")
			}
			for _, i := range tc.rows {
				r := slices.Clone(wantUnits[i])
				if tc.secrets {
					r = append(r, secrets[i])
				}
				want = append(want, r)
			}
			if len(rows) != len(want) {
				t.Fatalf("%d rows on Units, want %d:\n%q", len(rows), len(want), rows)
			}
			for i := range want {
				if !slices.Equal(pad(rows[i], len(want[i])), want[i]) {
					t.Errorf("Units row %d:\n got %q\nwant %q", i+1, rows[i], want[i])
				}
			}

			// Events: the whole history of the selection, never a secret column.
			evRows, err := f.GetRows(SheetEvents)
			if err != nil {
				t.Fatal(err)
			}
			wantEv := [][]string{wantEvents[0]}
			for _, i := range tc.events {
				wantEv = append(wantEv, wantEvents[i])
			}
			if len(evRows) != len(wantEv) {
				t.Fatalf("%d rows on Events, want %d:\n%q", len(evRows), len(wantEv), evRows)
			}
			for i := range wantEv {
				if !slices.Equal(pad(evRows[i], len(wantEv[i])), wantEv[i]) {
					t.Errorf("Events row %d:\n got %q\nwant %q", i+1, evRows[i], wantEv[i])
				}
			}
			for _, r := range evRows {
				for _, c := range r {
					if strings.Contains(c, "S3CRET") {
						t.Errorf("Events cell %q holds a secret", c)
					}
				}
			}

			// Summary sheet: key figures and the by-state table the chart reads.
			checks := map[string]string{
				"A1": "iotburn production record", "B2": "2025-03-01 17:00:00", "A3": "stations", "B3": "line-3", "B6": tc.selected,
				"A7": "units", "A8": "burned (incl. verified)", "A9": "yield", "A10": "boards per hour",
				"A12": "refused before a credential", "B12": strconv.Itoa(tc.wantSum.Refused),
				"A13": "attempts", "B13": strconv.Itoa(tc.wantSum.Attempts),
				"A15": "state", "B15": "units",
				"A16": "reserved", "A17": "burning", "A18": "burned", "A19": "verified", "A20": "failed", "A21": "void",
			}
			for cell, v := range checks {
				if got, _ := f.GetCellValue(SheetSummary, cell); got != v {
					t.Errorf("Summary!%s = %q, want %q", cell, got, v)
				}
			}
			for i, st := range unitStates {
				raw, _ := f.GetCellValue(SheetSummary, cellName(2, stateRow+i), excelize.Options{RawCellValue: true})
				if raw != strconv.Itoa(tc.wantSum.ByState[st]) {
					t.Errorf("Summary count of %s = %q, want %d", st, raw, tc.wantSum.ByState[st])
				}
			}

			// Secrets: in no cell of any sheet, nor anywhere in the package,
			// unless asked for.
			allText := zipText(t, path)
			for i, s := range secrets {
				inRows := slices.Contains(tc.rows, i)
				if got := strings.Contains(allText, s); got != (tc.secrets && inRows) {
					t.Errorf("secret of row %d present = %v, want %v", i, got, tc.secrets && inRows)
				}
			}
			if !tc.secrets {
				for _, sh := range f.GetSheetList() {
					all, _ := f.GetRows(sh)
					for _, r := range all {
						for _, c := range r {
							if strings.Contains(c, "S3CRET") {
								t.Errorf("sheet %s cell %q holds a secret", sh, c)
							}
						}
					}
				}
			}
			if !strings.Contains(allText, "<barChart>") || !strings.Contains(allText, "Summary!$B$16:$B$21") {
				t.Error("no bar chart over Summary!$B$16:$B$21 in xl/charts/chart1.xml")
			}
		})
	}
}

func cellName(col, row int) string {
	n, _ := excelize.CoordinatesToCellName(col, row)
	return n
}

func pad(r []string, n int) []string {
	for len(r) < n {
		r = append(r, "")
	}
	return r
}

func sameSummary(a, b Summary) bool {
	eq := func(x, y map[ledger.State]int) bool {
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if y[k] != v {
				return false
			}
		}
		return true
	}
	if len(a.PerPort) != len(b.PerPort) {
		return false
	}
	for k, v := range a.PerPort {
		if b.PerPort[k] != v {
			return false
		}
	}
	return a.Units == b.Units && eq(a.ByState, b.ByState) && a.Refused == b.Refused && a.Attempts == b.Attempts &&
		a.Active == b.Active && slices.Equal(a.Stations, b.Stations) &&
		math.Abs(a.Yield-b.Yield) < 1e-9 && math.Abs(a.BoardsPerHour-b.BoardsPerHour) < 1e-9
}

// zipText returns every part of the xlsx package, decompressed, and checks
// the chart part is there.
func zipText(t *testing.T, path string) string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var b strings.Builder
	chart := false
	for _, f := range zr.File {
		chart = chart || f.Name == "xl/charts/chart1.xml"
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(&b, rc)
		rc.Close()
	}
	if !chart {
		t.Error("xl/charts/chart1.xml missing")
	}
	return b.String()
}

func TestWriteFailsCleanly(t *testing.T) {
	l := line(t)
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "audit.xlsx")
	if _, err := Write(l, missing, Options{}); err == nil {
		t.Fatal("Write into a missing directory succeeded")
	}
	// A ledger that fails mid-stream leaves no file and no temporary.
	dir := t.TempDir()
	l.Close()
	if _, err := Write(l, filepath.Join(dir, "a.xlsx"), Options{}); err == nil {
		t.Fatal("Write from a closed ledger succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
}

func TestScrub(t *testing.T) {
	tests := []struct{ text, secret, want string }{
		{"timeout", "abc123", "timeout"},
		{"got abc123 back", "abc123", "got [secret " + registry.Fingerprint("abc123") + "] back"},
		{"no secret stored", "", "no secret stored"},
	}
	for _, tc := range tests {
		if got := scrub(tc.text, tc.secret); got != tc.want {
			t.Errorf("scrub(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestActiveTime(t *testing.T) {
	at := func(m float64) time.Time { return t0.Add(time.Duration(m * float64(time.Minute))) }
	for _, tc := range []struct {
		name  string
		burns []burn
		want  time.Duration
	}{
		{"none", nil, 0},
		{"one", []burn{{at(0), at(0.5)}}, 30 * time.Second},
		{"overlapping ports", []burn{{at(0), at(1)}, {at(0.5), at(1.5)}, {at(1.2), at(1.4)}}, 90 * time.Second},
		{"a pause of exactly IdleGap counts", []burn{{at(0), at(1)}, {at(11), at(12)}}, 12 * time.Minute},
		{"a break does not", []burn{{at(0), at(1)}, {at(12), at(13)}}, 2 * time.Minute},
		{"out of order", []burn{{at(12), at(13)}, {at(0), at(1)}}, 2 * time.Minute},
	} {
		if got := activeTime(tc.burns); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A second reader, Python's openpyxl (Debian's python3-openpyxl), opens the
// workbook and sees the document properties, the print setup and the
// columns an auditor asks for.
func TestWorkbookInOpenpyxl(t *testing.T) {
	py := ""
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import openpyxl").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		t.Skip("no python3 with openpyxl (Debian: apt-get install python3-openpyxl)")
	}
	l := line(t)
	path := filepath.Join(t.TempDir(), "audit.xlsx")
	gen := time.Date(2025, 3, 1, 17, 0, 0, 0, time.UTC)
	if _, err := Write(l, path, Options{Now: func() time.Time { return gen }, Generator: "iotburn v9.8.7", Operator: "Li Wei", Lot: "WO-2025-0301", History: true}); err != nil {
		t.Fatal(err)
	}
	script := `
import sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
p = wb.properties
print("creator", p.creator)
print("created", p.created.isoformat())
print("title", p.title)
for name in ("Units", "Events", "Summary"):
    ws = wb[name]
    print(name, "orientation", ws.page_setup.orientation, "fitToWidth", ws.page_setup.fitToWidth, "fitToHeight", ws.page_setup.fitToHeight, "fitToPage", ws.sheet_properties.pageSetUpPr.fitToPage)
    if name != "Summary":
        print(name, "print_titles", ws.print_title_rows)
        print(name, "header", "|".join(str(c.value) for c in ws[1]))
s = wb["Summary"]
print("summary", s["B4"].value, "|", s["B5"].value, "|", s["B3"].value)
`
	out, err := exec.Command(py, "-c", script, path).CombinedOutput()
	if err != nil {
		t.Fatalf("openpyxl: %v\n%s", err, out)
	}
	for _, want := range []string{
		"creator iotburn v9.8.7",
		"created 2025-03-01T17:00:00",
		"title iotburn production record",
		"Units orientation landscape fitToWidth 1 fitToHeight 0 fitToPage True",
		"Events orientation landscape fitToWidth 1 fitToHeight 0 fitToPage True",
		"Summary orientation landscape fitToWidth 1 fitToHeight 0 fitToPage True",
		"Units print_titles $1:$1",
		"Events print_titles $1:$1",
		"Units header " + strings.Join(Columns, "|"),
		"summary Li Wei | WO-2025-0301 | st1, st2",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("openpyxl does not show %q:\n%s", want, out)
		}
	}
}
