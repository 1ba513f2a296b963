package ledger

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/registry"
)

func exportedNames(items []ExportItem) string {
	s := make([]string, len(items))
	for i, e := range items {
		s[i] = e.Cred.DeviceName + ":" + string(e.From)
		if e.HWID != "" {
			s[i] += "@" + e.HWID
		}
	}
	return strings.Join(s, " ")
}

// TestExport: exports hand out free credentials and keep them off the line
// for good, write again what was exported, or write boards' own
// credentials for those boards; never one board's credential for another.
func TestExport(t *testing.T) { eachEngine(t, testExport) }

func testExport(t *testing.T, e testEngine) {
	l := e.open(t)
	clock := t0
	l.SetClock(func() time.Time { return clock })
	seed(t, l, "tencent", "P1", names("d", 5)...) // d000 … d004
	a, err := l.Claim("tencent", "P1", "A1", "st1", "p0")
	if err != nil || a.Cred.DeviceName != "d000" {
		t.Fatalf("claim: %v %v", a.Cred.DeviceName, err)
	}
	if err := l.Begin(a.ID); err != nil {
		t.Fatal(err)
	}
	if err := l.Burned(a.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	req := func(kind ExportKind, device string, max int) ExportRequest {
		return ExportRequest{Platform: "tencent", Product: "P1", Kind: kind, Device: device, Max: max, Station: "eng1", Note: "tencent-at to images/"}
	}

	type step struct {
		name string
		r    ExportRequest
		want string // exportedNames, by hand
		err  error
	}
	steps := []step{
		{"two free", req(ExportFree, "", 2), "d001:created d002:created", nil},
		{"a board's device without --bound", req(ExportFree, "d000", 0), "", ErrTaken},
		{"a free device that is on no board, as bound", req(ExportBound, "d004", 0), "", ErrNotFound},
		{"never exported, again", req(ExportAgain, "d003", 0), "", ErrNotFound},
		{"bound", req(ExportBound, "", 0), "d000:burned@A1", nil},
		{"bound device", req(ExportBound, "d000", 0), "d000:burned@A1", nil},
		{"again", req(ExportAgain, "", 0), "d001:exported d002:exported", nil},
		{"an exported device by name", req(ExportFree, "d001", 0), "d001:exported", nil},
		{"no such device", req(ExportFree, "nope", 0), "", ErrNotFound},
	}
	for _, s := range steps {
		clock = clock.Add(time.Second)
		got, err := l.Export(s.r)
		if s.err != nil {
			if !errors.Is(err, s.err) {
				t.Errorf("%s: err %v, want %v", s.name, err, s.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if exportedNames(got) != s.want {
			t.Errorf("%s: exported %q, want %q", s.name, exportedNames(got), s.want)
		}
		for _, e := range got {
			if e.Cred.DeviceSecret != "S3CRET-"+e.Cred.DeviceName || e.Cred.Region != "ap-guangzhou" {
				t.Errorf("%s: %s came with %+v", s.name, e.Cred.DeviceName, e.Cred)
			}
		}
	}
	if _, err := l.Export(req(ExportFree, "d000", 0)); err == nil || !strings.Contains(err.Error(), "A1") || !strings.Contains(err.Error(), "--bound") {
		t.Errorf("a board's device: %v, want the board named and --bound", err)
	}

	// The line never gives an exported credential to a board.
	b, err := l.Claim("tencent", "P1", "B1", "st1", "p1")
	if err != nil || b.Cred.DeviceName != "d003" {
		t.Fatalf("claim after export: %q %v, want d003 (d001 and d002 are exported)", b.Cred.DeviceName, err)
	}
	if _, err := l.ClaimName("tencent", "P1", "d001", "C1", "st1", "p2"); !errors.Is(err, ErrExported) {
		t.Errorf("ClaimName of an exported device: %v, want ErrExported", err)
	}
	c, err := l.Counts("tencent", "P1")
	if err != nil || c.Free != 1 || c.ByState[Exported] != 2 || c.ByState[Burned] != 1 || c.ByState[Reserved] != 1 || c.Total != 5 {
		t.Errorf("counts %+v, %v: want 1 free, 2 exported, 1 burned, 1 reserved", c, err)
	}

	// A failing check rolls the whole export back.
	boom := errors.New("render failed")
	_, err = l.Export(ExportRequest{Platform: "tencent", Product: "P1", Kind: ExportFree, Check: func(registry.Credential) error { return boom }})
	if !errors.Is(err, boom) {
		t.Errorf("check error: %v", err)
	}
	if c, _ := l.Counts("tencent", "P1"); c.Free != 1 {
		t.Errorf("a failed export marked credentials: %+v", c)
	}

	clock = clock.Add(time.Second)
	if got, err := l.Export(req(ExportFree, "", 0)); err != nil || exportedNames(got) != "d004:created" {
		t.Fatalf("the rest: %q %v", exportedNames(got), err)
	}
	if _, err := l.Export(req(ExportFree, "", 0)); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("nothing free: %v, want ErrNoCredentials", err)
	}
	clock = clock.Add(time.Second)
	if err := l.Void("tencent", "P1", "d002", "files lost"); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Export(req(ExportAgain, "", 0)); err != nil || exportedNames(got) != "d001:exported d004:exported" {
		t.Errorf("again after a void: %q %v", exportedNames(got), err)
	}
	if _, err := l.Export(req(ExportFree, "d002", 0)); !errors.Is(err, ErrVoid) {
		t.Errorf("a void device: %v", err)
	}

	// The history: one 'exported' event per image written, no unit; the
	// board named for bound ones; the void of an exported credential.
	var got []string
	err = l.EachEvent(Filter{}, func(e Event) error {
		if e.To == Exported || e.From == Exported {
			if e.UnitID != 0 || e.Station == "" && e.To == Exported {
				t.Errorf("event %+v", e)
			}
			got = append(got, e.DeviceName+" "+string(e.From)+">"+string(e.To)+" "+e.HWID+" "+e.Error)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"d001 created>exported  tencent-at to images/",
		"d002 created>exported  tencent-at to images/",
		"d000 burned>exported A1 tencent-at to images/",
		"d000 burned>exported A1 tencent-at to images/",
		"d001 exported>exported  tencent-at to images/",
		"d002 exported>exported  tencent-at to images/",
		"d001 exported>exported  tencent-at to images/",
		"d004 created>exported  tencent-at to images/",
		"d002 exported>void  files lost",
		"d001 exported>exported  tencent-at to images/",
		"d004 exported>exported  tencent-at to images/",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("export history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	checkInvariants(t, l)
	if p, err := l.Check(t.Context()); err != nil || len(p) != 0 {
		t.Errorf("check after exports: %v %v", p, err)
	}
}

// The database itself keeps an exported credential off every board, and
// exports only free ones, whatever the Go code does.
func TestExportGuards(t *testing.T) { eachEngine(t, testExportGuards) }

func testExportGuards(t *testing.T, e testEngine) {
	l := e.open(t)
	seed(t, l, "tencent", "P1", "e1", "t1")
	if _, err := l.Export(ExportRequest{Platform: "tencent", Product: "P1", Device: "e1"}); err != nil {
		t.Fatal(err)
	}
	u, err := l.Claim("tencent", "P1", "B1", "", "")
	if err != nil || u.Cred.DeviceName != "t1" {
		t.Fatalf("claim %v %v", u.Cred.DeviceName, err)
	}
	for _, q := range []string{
		`UPDATE credentials SET state = 'free' WHERE device_name = 'e1'`,
		`UPDATE credentials SET state = 'taken' WHERE device_name = 'e1'`,
		`INSERT INTO units (hw_id, credential_id, state, created_at, updated_at)
			SELECT 'C1', id, 'reserved', 0, 0 FROM credentials WHERE device_name = 'e1'`,
		`UPDATE credentials SET state = 'exported' WHERE device_name = 't1'`,
	} {
		if _, err := rawExec(l, q); err == nil {
			t.Errorf("allowed: %s", q)
		}
	}
	if _, err := rawExec(l, `UPDATE credentials SET state = 'void' WHERE device_name = 'e1'`); err != nil {
		t.Errorf("an exported credential cannot be voided: %v", err)
	}
}

// A product-level name has no secret: nothing to export.
func TestExportNoSecret(t *testing.T) { eachEngine(t, testExportNoSecret) }

func testExportNoSecret(t *testing.T, e testEngine) {
	l := e.open(t)
	if err := l.AddName("tencent", "P1", "", "mac-0001"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Export(ExportRequest{Platform: "tencent", Product: "P1"}); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("whole product: %v", err)
	}
	if _, err := l.Export(ExportRequest{Platform: "tencent", Product: "P1", Device: "mac-0001"}); err == nil || !strings.Contains(err.Error(), "--per-product") {
		t.Errorf("one name: %v", err)
	}
}
