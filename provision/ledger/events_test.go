package ledger

import (
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// ev is the part of an Event the history tests compare, written out by hand.
type ev struct {
	at                     time.Duration // after t0
	unit                   int64
	hw, station, port, dev string
	from, to               State
	attempt                int
	dur                    time.Duration
	err                    string
}

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

func events(t *testing.T, l *Ledger, f Filter) []ev {
	t.Helper()
	var out []ev
	var lastID int64
	err := l.EachEvent(f, func(e Event) error {
		if e.ID <= lastID {
			t.Errorf("event %d after event %d: not in commit order", e.ID, lastID)
		}
		lastID = e.ID
		if e.Platform != "tencent" || e.Product != "P1" {
			t.Errorf("event %d: platform/product %s/%s", e.ID, e.Platform, e.Product)
		}
		out = append(out, ev{e.Time.Sub(t0), e.UnitID, e.HWID, e.Station, e.Port, e.DeviceName, e.From, e.To, e.Attempt, e.Duration, e.Error})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameEvents(t *testing.T, what string, got, want []ev) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: %d events:", what, len(got))
		for i := range max(len(got), len(want)) {
			var g, w ev
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			mark := "  "
			if g != w {
				mark = "!="
			}
			t.Errorf("%s got  %+v\n   want %+v", mark, g, w)
		}
	}
}

// TestHistory: a board burned, failed by QA, re-burned elsewhere and
// verified; two boards refused before any credential; a claim released; a
// credential voided with and without a board. Every step is one event, in
// order, with the right states, attempts and places.
func TestHistory(t *testing.T) { eachEngine(t, testHistory) }

func testHistory(t *testing.T, e testEngine) {
	l := e.open(t)
	seed(t, l, "tencent", "P1", "d1", "d2", "d3")
	clock := t0
	l.SetClock(func() time.Time { return clock })
	at := func(d time.Duration) { clock = t0.Add(d) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	s := time.Second

	u, err := l.Claim("tencent", "P1", "AA:01", "st1", "/dev/ttyUSB0")
	must(err)
	at(1 * s)
	must(l.Begin(u.ID))
	at(31 * s)
	must(l.Burned(u.ID, 30*s))
	at(60 * s)
	// A careless reason quoting the secret: the history keeps it out.
	must(l.Fail(u.ID, "verify: got S3CRET-d1"))
	// The board comes back at another station: the claim alone changes no
	// state (no event); the re-burn's events say where it is now.
	at(120 * s)
	u2, err := l.Claim("tencent", "P1", "AA:01", "st2", "/dev/ttyUSB3")
	must(err)
	if u2.ID != u.ID {
		t.Fatalf("re-claim gave unit %d, want %d", u2.ID, u.ID)
	}
	at(121 * s)
	must(l.Begin(u.ID))
	at(141 * s)
	must(l.Burned(u.ID, 20*s))
	at(200 * s)
	must(l.Verified(u.ID))
	// A transition refused by the state machine writes nothing.
	if err := l.Burned(u.ID, s); !errors.Is(err, ErrState) {
		t.Fatalf("Burned on a verified unit: %v", err)
	}

	at(300 * s)
	must(l.Refused("", "st1", "/dev/ttyUSB1", "tencent", "P1", "identify: garbage answer"))
	at(310 * s)
	must(l.Refused("BB:02", "st1", "/dev/ttyUSB2", "tencent", "P1", "no free credential"))

	at(400 * s)
	c, err := l.Claim("tencent", "P1", "CC:03", "st1", "/dev/ttyUSB4")
	must(err)
	at(410 * s)
	must(l.Release("CC:03"))
	at(415 * s)
	d, err := l.Claim("tencent", "P1", "DD:04", "st1", "/dev/ttyUSB4")
	must(err)
	// SQLite would hand the released unit's id to the next unit; the
	// history would then mix two boards under one unit id.
	if c.ID != 2 || d.ID != 3 {
		t.Errorf("unit ids %d then %d after a release, want 2 then 3", c.ID, d.ID)
	}
	at(420 * s)
	must(l.Void("tencent", "P1", "d2", "leaked"))
	at(430 * s)
	must(l.Void("tencent", "P1", "d3", "never made"))
	must(l.Void("tencent", "P1", "d3", "again")) // already void: no change, no event

	want := []ev{
		{0, 1, "AA:01", "st1", "/dev/ttyUSB0", "d1", Created, Reserved, 0, 0, ""},
		{1 * s, 1, "AA:01", "st1", "/dev/ttyUSB0", "d1", Reserved, Burning, 1, 0, ""},
		{31 * s, 1, "AA:01", "st1", "/dev/ttyUSB0", "d1", Burning, Burned, 1, 30 * s, ""},
		{60 * s, 1, "AA:01", "st1", "/dev/ttyUSB0", "d1", Burned, Failed, 1, 0, "verify: got [secret]"},
		{121 * s, 1, "AA:01", "st2", "/dev/ttyUSB3", "d1", Failed, Burning, 2, 0, ""},
		{141 * s, 1, "AA:01", "st2", "/dev/ttyUSB3", "d1", Burning, Burned, 2, 20 * s, ""},
		{200 * s, 1, "AA:01", "st2", "/dev/ttyUSB3", "d1", Burned, Verified, 2, 0, ""},
		{300 * s, 0, "", "st1", "/dev/ttyUSB1", "", "", Refused, 0, 0, "identify: garbage answer"},
		{310 * s, 0, "BB:02", "st1", "/dev/ttyUSB2", "", "", Refused, 0, 0, "no free credential"},
		{400 * s, 2, "CC:03", "st1", "/dev/ttyUSB4", "d2", Created, Reserved, 0, 0, ""},
		{410 * s, 2, "CC:03", "st1", "/dev/ttyUSB4", "d2", Reserved, Released, 0, 0, ""},
		{415 * s, 3, "DD:04", "st1", "/dev/ttyUSB4", "d2", Created, Reserved, 0, 0, ""},
		{420 * s, 3, "DD:04", "st1", "/dev/ttyUSB4", "d2", Reserved, Void, 0, 0, "leaked"},
		{430 * s, 0, "", "", "", "d3", Created, Void, 0, 0, "never made"},
	}
	sameEvents(t, "all", events(t, l, Filter{}), want)
	sameEvents(t, "board AA:01", events(t, l, Filter{HWID: "AA:01"}), want[:7])
	sameEvents(t, "station st2", events(t, l, Filter{Station: "st2"}), want[4:7])
	sameEvents(t, "since 300 s, product P1", events(t, l, Filter{Product: "P1", Since: t0.Add(300 * s)}), want[7:])
	sameEvents(t, "another platform", events(t, l, Filter{Platform: "aliyun"}), nil)

	// fn's error stops the walk and comes back.
	stop := errors.New("stop")
	n := 0
	if err := l.EachEvent(Filter{}, func(Event) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("EachEvent with a failing fn: %v after %d events", err, n)
	}
	// The history cannot be edited, even by hand.
	history := []string{`UPDATE events SET error = '' WHERE id = 4`, `DELETE FROM events`}
	if e.pg() {
		history = append(history, `TRUNCATE events`)
	}
	for _, q := range history {
		if _, err := rawExec(l, q); err == nil {
			t.Errorf("the history was edited: %s", q)
		}
	}
	if n := rawInt(t, l, `SELECT count(*) FROM events`); n != len(want) {
		t.Errorf("%d events after the edits were refused, want %d", n, len(want))
	}
	checkInvariants(t, l)
}

// TestMigrateV1 builds a ledger file as iotburn with schema v1 left it, then
// opens it: the data is kept, each unit gets one event for the state it is in
// (with no from-state: its past was not recorded), and the line carries on.
func TestMigrateV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	// migrations[0] is the v1 schema verbatim: released migrations are never edited.
	stmts := []string{migrations[0], `PRAGMA user_version = 1`,
		`INSERT INTO requests (id, platform, product, names, task_id, state, created_at, done_at)
			VALUES (1, 'tencent', 'P1', '["d1","d2","d3","d4"]', 'task-1', 'done', 0, 0)`}
	for _, n := range []string{"d1", "d2", "d3", "d4"} {
		stmts = append(stmts, `INSERT INTO credentials (platform, product, region, device_name, secret, request_id, created_at)
			VALUES ('tencent', 'P1', 'ap-guangzhou', '`+n+`', 'S3CRET-`+n+`', 1, 0)`)
	}
	stmts = append(stmts,
		// A board burned on its second attempt, and one that failed.
		`INSERT INTO units (id, hw_id, credential_id, station, port, state, attempts, error, created_at, started_at, updated_at, burned_at, duration_ms)
			VALUES (1, 'A1', 1, 'st1', 'p0', 'burned', 2, '', 0, `+itoa(ms(60*time.Second))+`, `+itoa(ms(90*time.Second))+`, `+itoa(ms(90*time.Second))+`, 30000)`,
		`INSERT INTO units (id, hw_id, credential_id, station, port, state, attempts, error, created_at, started_at, updated_at)
			VALUES (2, 'A2', 2, 'st1', 'p1', 'failed', 1, 'no answer to AT', 0, 0, `+itoa(ms(120*time.Second))+`)`,
		`UPDATE credentials SET state = 'void', void_reason = 'leaked' WHERE device_name = 'd4'`)
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var v int
	if err := l.db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("user_version %d (%v), want %d", v, err, len(migrations))
	}
	// The old books are intact.
	if c, err := l.Credential("tencent", "P1", "d1"); err != nil || c.DeviceSecret != "S3CRET-d1" {
		t.Errorf("credential d1 after migration: %+v, %v", c, err)
	}
	if c, _ := l.Counts("tencent", "P1"); c.Total != 4 || c.ByState[Burned] != 1 || c.ByState[Failed] != 1 || c.ByState[Void] != 1 || c.Free != 1 {
		t.Errorf("counts after migration: %+v", c)
	}
	if open, err := l.OpenRequests("", ""); err != nil || len(open) != 0 {
		t.Errorf("open requests after migration: %v, %v", open, err)
	}
	u, ok, err := l.UnitByHW("A1")
	if err != nil || !ok || u.Attempts != 2 || u.Duration != 30*time.Second || !u.BurnedAt.Equal(t0.Add(90*time.Second)) {
		t.Errorf("unit A1 after migration: %+v, %v, %v", u, ok, err)
	}

	// And the line carries on, now with history.
	clock := t0.Add(time.Hour)
	l.SetClock(func() time.Time { return clock })
	if err := l.Begin(2); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(20 * time.Second)
	if err := l.Burned(2, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	n, err := l.Claim("tencent", "P1", "A3", "st2", "p2")
	if err != nil || n.ID != 3 || n.Cred.DeviceName != "d3" {
		t.Fatalf("claim after migration: unit %d device %q, %v", n.ID, n.Cred.DeviceName, err)
	}
	h := time.Hour
	want := []ev{
		{90 * time.Second, 1, "A1", "st1", "p0", "d1", "", Burned, 2, 30 * time.Second, ""},
		{120 * time.Second, 2, "A2", "st1", "p1", "d2", "", Failed, 1, 0, "no answer to AT"},
		{h, 2, "A2", "st1", "p1", "d2", Failed, Burning, 2, 0, ""},
		{h + 20*time.Second, 2, "A2", "st1", "p1", "d2", Burning, Burned, 2, 20 * time.Second, ""},
		{h + 20*time.Second, 3, "A3", "st2", "p2", "d3", Created, Reserved, 0, 0, ""},
	}
	sameEvents(t, "after migration", events(t, l, Filter{}), want)
	checkInvariants(t, l)

	// Opening again migrates nothing twice.
	l.Close()
	l2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	sameEvents(t, "reopened", events(t, l2, Filter{}), want)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
