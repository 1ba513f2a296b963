package ledger

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx", for the hand edits

	"github.com/iotburn/iotburn/provision/ledger/pgtest"
)

func TestOpenReadOnly(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "none.db")
	if _, err := OpenReadOnly(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("OpenReadOnly created a file")
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReadOnly(empty); err == nil {
		t.Error("an empty file opened as a ledger")
	}

	l := openTemp(t)
	seed(t, l, "tencent", "P1", "d1")
	ro, err := OpenReadOnly(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Claim("tencent", "P1", "A1", "", ""); !errors.Is(err, ErrReadOnly) {
		t.Errorf("claim on a read-only ledger: %v", err)
	}
	if _, err := ro.db.Exec(`UPDATE credentials SET region = 'x'`); err == nil {
		t.Error("SQL write on a read-only ledger")
	}
	if c, err := ro.Credential("tencent", "P1", "d1"); err != nil || c.DeviceSecret != "S3CRET-d1" {
		t.Errorf("read: %+v %v", c, err)
	}
	for _, bad := range []string{"", "file:x.db", "a?b.db", ":memory:"} {
		if _, err := OpenReadOnly(bad); err == nil {
			t.Errorf("OpenReadOnly(%q) succeeded", bad)
		}
	}
}

// The same on PostgreSQL: a database without the books is no ledger, and
// a read-only handle writes nothing, through the API or past it.
func TestOpenReadOnlyPostgres(t *testing.T) {
	url := pgtest.NewDB(t)
	if _, err := OpenReadOnly(url); !errors.Is(err, ErrNotFound) {
		t.Errorf("a database without a schema: %v", err)
	}
	l, err := Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seed(t, l, "tencent", "P1", "d1")
	ro, err := OpenReadOnly(url)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Claim("tencent", "P1", "A1", "", ""); !errors.Is(err, ErrReadOnly) {
		t.Errorf("claim on a read-only ledger: %v", err)
	}
	if _, err := ro.db.Exec(`UPDATE credentials SET region = 'x'`); sqlState(err) != "25006" { // read_only_sql_transaction
		t.Errorf("SQL write on a read-only ledger: %v", err)
	}
	if c, err := ro.Credential("tencent", "P1", "d1"); err != nil || c.DeviceSecret != "S3CRET-d1" {
		t.Errorf("read: %+v %v", c, err)
	}
	if v, err := ro.SchemaVersion(); err != nil || v != Version {
		t.Errorf("schema version %d %v, want %d", v, err, Version)
	}
}

// v2File writes a ledger as iotburn with schema v2 left it: the v1 and v2
// migrations verbatim (released migrations are never edited) and rows of
// every kind, written by hand.
func v2File(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v2.db")
	db, err := sql.Open("sqlite", path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{migrations[0], migrations[1], `PRAGMA user_version = 2`,
		`INSERT INTO requests (id, platform, product, names, task_id, state, created_at, done_at)
			VALUES (1, 'tencent', 'P1', '["d1","d2","d3","d4"]', 'task-1', 'done', 0, 0)`,
		`INSERT INTO requests (id, platform, product, names, task_id, state, created_at)
			VALUES (2, 'tencent', 'P1', '["d5"]', '', 'open', 1000)`}
	for _, n := range []string{"d1", "d2", "d3", "d4"} {
		stmts = append(stmts, `INSERT INTO credentials (platform, product, region, device_name, secret, request_id, created_at)
			VALUES ('tencent', 'P1', 'ap-guangzhou', '`+n+`', 'S3CRET-`+n+`', 1, 0)`)
	}
	stmts = append(stmts,
		`INSERT INTO units (id, hw_id, credential_id, station, port, state, attempts, created_at, started_at, updated_at, burned_at, duration_ms)
			VALUES (1, 'A1', 1, 'st1', 'p0', 'burned', 1, 0, 10, 20, 20, 10)`,
		`INSERT INTO events (time, unit_id, hw_id, station, port, platform, product, device_name, from_state, to_state, attempt)
			VALUES (0, 1, 'A1', 'st1', 'p0', 'tencent', 'P1', 'd1', 'created', 'reserved', 0),
			       (10, 1, 'A1', 'st1', 'p0', 'tencent', 'P1', 'd1', 'reserved', 'burning', 1),
			       (20, 1, 'A1', 'st1', 'p0', 'tencent', 'P1', 'd1', 'burning', 'burned', 1),
			       (30, NULL, 'Z9', 'st1', 'p1', 'tencent', 'P1', '', '', 'refused', 0)`,
		`UPDATE credentials SET state = 'void', void_reason = 'leaked' WHERE device_name = 'd4'`,
		`INSERT INTO events (time, platform, product, device_name, from_state, to_state, error)
			VALUES (40, 'tencent', 'P1', 'd4', 'created', 'void', 'leaked')`)
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// A v2 ledger upgrades to v3 in place: every row kept with its id, the
// guards rebuilt, foreign keys on again, and the line carries on.
func TestMigrateV2(t *testing.T) {
	path := v2File(t)
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := ro.SchemaVersion(); v != 2 {
		t.Fatalf("read-only open changed the version to %d", v)
	}
	probs, err := ro.Check(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if codes := problemCodes(probs); !slices.Equal(codes, []string{ProblemSchema, ProblemOpenRequest}) {
		t.Errorf("check of a v2 ledger: %v", probs)
	}
	ro.Close()

	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if v, _ := l.SchemaVersion(); v != Version {
		t.Fatalf("version %d after migration, want %d", v, Version)
	}
	c, err := l.Counts("tencent", "P1")
	if err != nil || c.Total != 4 || c.ByState[Burned] != 1 || c.ByState[Void] != 1 || c.Free != 2 {
		t.Errorf("counts after migration: %+v %v", c, err)
	}
	want := []ev{
		{0, 1, "A1", "st1", "p0", "d1", Created, Reserved, 0, 0, ""},
		{10 * time.Millisecond, 1, "A1", "st1", "p0", "d1", Reserved, Burning, 1, 0, ""},
		{20 * time.Millisecond, 1, "A1", "st1", "p0", "d1", Burning, Burned, 1, 0, ""},
		{30 * time.Millisecond, 0, "Z9", "st1", "p1", "", "", Refused, 0, 0, ""},
		{40 * time.Millisecond, 0, "", "", "", "d4", Created, Void, 0, 0, "leaked"},
	}
	var got []ev
	if err := l.EachEvent(Filter{}, func(e Event) error {
		got = append(got, ev{e.Time.Sub(time.UnixMilli(0)), e.UnitID, e.HWID, e.Station, e.Port, e.DeviceName, e.From, e.To, e.Attempt, 0, e.Error})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sameEvents(t, "v2 history after migration", got, want)
	for i := 0; i < 4; i++ { // every pooled connection, not just the one that migrated
		var fk int
		if err := l.db.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Errorf("foreign_keys = %d after migration (%v)", fk, err)
		}
	}
	var n int
	if err := l.db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name LIKE '%_v3'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d leftover _v3 objects", n)
	}
	// The old guards still hold, the new ones too.
	for _, q := range []string{
		`UPDATE credentials SET state = 'free' WHERE device_name = 'd4'`,
		`UPDATE units SET credential_id = 2 WHERE id = 1`,
		`INSERT INTO units (hw_id, credential_id, state, created_at, updated_at) VALUES ('B1', 1, 'reserved', 0, 0)`,
		`DELETE FROM events`,
		`UPDATE events SET error = 'x'`,
	} {
		if _, err := l.db.Exec(q); err == nil {
			t.Errorf("allowed after migration: %s", q)
		}
	}
	u, err := l.Claim("tencent", "P1", "B1", "st1", "p1")
	if err != nil || u.Cred.DeviceName != "d2" || u.ID != 2 {
		t.Fatalf("claim after migration: unit %d %q %v", u.ID, u.Cred.DeviceName, err)
	}
	if got, err := l.Export(ExportRequest{Platform: "tencent", Product: "P1"}); err != nil || exportedNames(got) != "d3:created" {
		t.Errorf("export after migration: %q %v", exportedNames(got), err)
	}
	checkInvariants(t, l)
	probs, err = l.Check(t.Context())
	if err != nil || !slices.Equal(problemCodes(probs), []string{ProblemOpenRequest}) {
		t.Errorf("check after migration: %v %v", probs, err)
	}
}

// A current file whose version was set back by hand (as a test of an old
// schema does) migrates again: every step holds if it ran before.
func TestMigrateAgain(t *testing.T) {
	l := openTemp(t)
	seed(t, l, "tencent", "P1", "d1")
	if _, err := l.Claim("tencent", "P1", "A1", "st1", "p0"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.db.Exec(`PRAGMA user_version = 3`); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l2, err := Open(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if v, _ := l2.SchemaVersion(); v != Version {
		t.Fatalf("version %d, want %d", v, Version)
	}
	if u, ok, err := l2.UnitByHW("A1"); err != nil || !ok || u.LeaseUntil.IsZero() {
		t.Errorf("A1 after migrating again: %+v %v %v", u, ok, err)
	}
	if p, err := l2.Check(t.Context()); err != nil || len(p) != 0 {
		t.Errorf("check: %v %v", p, err)
	}
}

func problemCodes(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Code)
	}
	return out
}

// TestCheck breaks a sound ledger by hand, one way at a time, and expects
// check to name each problem, on both engines.
func TestCheck(t *testing.T) { eachEngine(t, testCheck) }

func testCheck(t *testing.T, e testEngine) {
	tests := []struct {
		name  string
		sql   []string // SQLite: run with foreign keys off, as a careless hand edit would
		pg    []string // PostgreSQL, where it differs (replica role: foreign keys not enforced)
		codes []string
		msg   string
	}{
		{name: "sound"},
		{name: "unit deleted", sql: []string{`DELETE FROM units WHERE hw_id = 'A1'`},
			codes: []string{ProblemTakenNoUnit}, msg: "tencent/P1/d000"},
		{name: "credential freed under a board", sql: []string{`UPDATE credentials SET state = 'free' WHERE device_name = 'd000'`},
			codes: []string{ProblemFreeOnUnit}, msg: "d000 on board A1"},
		{name: "unit voided alone", sql: []string{`UPDATE units SET state = 'void' WHERE hw_id = 'B1'`},
			codes: []string{ProblemVoidMismatch, ProblemEventMismatch}, msg: "board B1 is void, its last event says burning"},
		{name: "unit state edited", sql: []string{`UPDATE units SET state = 'verified' WHERE hw_id = 'A1'`},
			codes: []string{ProblemEventMismatch}, msg: "board A1 is verified, its last event says burned"},
		{name: "credential deleted", sql: []string{`DELETE FROM credentials WHERE device_name = 'd001'`},
			pg:    []string{`SET session_replication_role = replica`, `DELETE FROM credentials WHERE device_name = 'd001'`},
			codes: []string{ProblemForeignKey}, msg: "units row"},
		{name: "exported under a board", sql: []string{`DROP TRIGGER credentials_export_free`,
			`UPDATE credentials SET state = 'exported' WHERE device_name = 'd000'`},
			pg: []string{`DROP TRIGGER credentials_export_free ON credentials`,
				`UPDATE credentials SET state = 'exported' WHERE device_name = 'd000'`},
			codes: []string{ProblemExportedUnit, ProblemGuard}, msg: "credentials_export_free"},
		{name: "guard dropped", sql: []string{`DROP TRIGGER units_claim_free`, `DROP TRIGGER events_no_delete`},
			pg:    []string{`DROP TRIGGER units_claim_free ON units`, `DROP TRIGGER events_no_delete ON events`},
			codes: []string{ProblemGuard}, msg: "units_claim_free, events_no_delete"},
		{name: "open request", sql: []string{`INSERT INTO requests (platform, product, names, created_at) VALUES ('tencent', 'P1', '["x1","x2"]', 0)`},
			codes: []string{ProblemOpenRequest}, msg: "tencent/P1, 2 names, no task id yet, since 1970-01-01 00:00:00Z"},
	}
	if e.pg() {
		tests = append(tests, struct {
			name  string
			sql   []string
			pg    []string
			codes []string
			msg   string
		}{name: "guard disabled", pg: []string{`ALTER TABLE events DISABLE TRIGGER events_no_update`},
			codes: []string{ProblemGuard}, msg: "events_no_update"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := e.open(t)
			seed(t, l, "tencent", "P1", names("d", 4)...)
			a, _ := l.Claim("tencent", "P1", "A1", "st1", "p0")
			if err := l.Begin(a.ID); err != nil {
				t.Fatal(err)
			}
			if err := l.Burned(a.ID, time.Second); err != nil {
				t.Fatal(err)
			}
			b, _ := l.Claim("tencent", "P1", "B1", "st1", "p1")
			if err := l.Begin(b.ID); err != nil {
				t.Fatal(err)
			}
			path := l.Path()
			l.Close()
			stmts, driver, dsn := tt.sql, "sqlite", path+"?_foreign_keys=0"
			if e.pg() {
				driver, dsn = "pgx", path
				if tt.pg != nil {
					stmts = tt.pg
				}
			}
			db, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			db.SetMaxOpenConns(1) // one session: a SET holds for the statements after it
			for _, q := range stmts {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			db.Close()
			ro, err := OpenReadOnly(path)
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			probs, err := ro.Check(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			got := problemCodes(probs)
			slices.Sort(got)
			want := slices.Clone(tt.codes)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("problems %v, want %v", probs, tt.codes)
			}
			all := ""
			for _, p := range probs {
				if p.Fix == "" {
					t.Errorf("problem without a fix: %+v", p)
				}
				all += p.String() + "\n"
			}
			if !strings.Contains(all, tt.msg) {
				t.Errorf("problems do not mention %q:\n%s", tt.msg, all)
			}
			if strings.Contains(all, "S3CRET") {
				t.Errorf("a secret in the report:\n%s", all)
			}
		})
	}
}

// A damaged file: integrity_check's complaint is a problem, not a crash.
func TestCheckDamagedFile(t *testing.T) {
	l := openTemp(t)
	seed(t, l, "tencent", "P1", names("d", 400)...)
	path := l.Path()
	l.Close()
	// Damage an index without touching the table: the index of names
	// (UNIQUE) loses its entries, and integrity_check sees the mismatch.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var root int
	if err := db.QueryRow(`SELECT rootpage FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'credentials' AND name LIKE 'sqlite_autoindex%'`).Scan(&root); err != nil {
		t.Fatal(err)
	}
	var pageSize int
	if err := db.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The root page of the index: an interior or leaf b-tree page; a leaf
	// with no cells (0x0A, 0 cells) makes every entry vanish.
	page := make([]byte, 8)
	page[0] = 0x0A
	page[5], page[6] = byte(pageSize>>8), byte(pageSize) // cell content area at the end
	if _, err := f.WriteAt(page, int64(root-1)*int64(pageSize)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	probs, err := ro.Check(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if codes := problemCodes(probs); len(codes) == 0 || codes[0] != ProblemIntegrity {
		t.Fatalf("problems of a damaged file: %v", probs)
	}

	if !strings.Contains(probs[0].Fix, "backup") {
		t.Errorf("fix: %s", probs[0].Fix)
	}
}

func TestBackup(t *testing.T) { eachEngine(t, testBackup) }

func testBackup(t *testing.T, e testEngine) {
	l := e.open(t)
	seed(t, l, "tencent", "P1", names("d", 10)...)
	u, _ := l.Claim("tencent", "P1", "A1", "st1", "p0")
	if err := l.Begin(u.ID); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dest := filepath.Join(dir, "backup.db")
	ro, err := OpenReadOnly(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	info, err := ro.Backup(t.Context(), dest)
	if err != nil {
		t.Fatal(err)
	}
	if info.Credentials != 10 || info.Units != 1 || info.Events != 2 || info.Version != Version || info.Bytes == 0 {
		t.Errorf("backup info %+v", info)
	}
	st, err := os.Stat(dest)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup mode %v %v, want 0600", st.Mode().Perm(), err)
	}
	for _, side := range []string{"-journal", "-wal", "-shm"} {
		if _, err := os.Stat(dest + side); err == nil {
			t.Errorf("backup left %s", dest+side)
		}
	}
	b, err := Open(dest)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := b.Credential("tencent", "P1", "d005"); err != nil || c.DeviceSecret != "S3CRET-d005" {
		t.Errorf("secret in the backup: %+v %v", c, err)
	}
	if got, ok, _ := b.UnitByHW("A1"); !ok || got.State != Burning || got.Cred.DeviceName != "d000" {
		t.Errorf("unit in the backup: %+v", got)
	}
	b.Close()

	// Never over a file, nor through a name SQLite would read otherwise.
	before, _ := os.ReadFile(dest)
	if _, err := l.Backup(t.Context(), dest); !errors.Is(err, fs.ErrExist) {
		t.Errorf("backup over a file: %v", err)
	}
	if after, _ := os.ReadFile(dest); string(after) != string(before) {
		t.Error("an existing file was changed")
	}
	for _, bad := range []string{"file:" + filepath.Join(dir, "x.db"), filepath.Join(dir, "x?mode=memory"), filepath.Join(dir, "no", "such", "dir.db")} {
		if _, err := l.Backup(t.Context(), bad); err == nil {
			t.Errorf("backup to %q succeeded", bad)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("failed backups left files: %v", ents)
	}
}

// Backups taken while another goroutine runs boards through the line are
// each one consistent instant of the books: check finds nothing wrong in
// any of them, and each later one holds at least what the one before did.
func TestBackupWhileWriting(t *testing.T) { eachEngine(t, testBackupWhileWriting) }

func testBackupWhileWriting(t *testing.T, e testEngine) {
	l := e.open(t)
	// Fewer on PostgreSQL, where each transaction is round trips to a
	// server: the five backups still land while boards are being written.
	boards := 400
	if e.pg() {
		boards = 150
	}
	seed(t, l, "tencent", "P1", names("d", boards)...)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	var done atomic.Int64
	werr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < boards && ctx.Err() == nil; i++ {
			u, err := l.Claim("tencent", "P1", "HW"+itoa(int64(i)), "st1", "p0")
			if err == nil {
				err = l.Begin(u.ID)
			}
			if err == nil {
				err = l.Burned(u.ID, time.Millisecond)
			}
			if err != nil {
				werr <- err
				return
			}
			done.Add(1)
		}
	}()
	ro, err := OpenReadOnly(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	dir := t.TempDir()
	lastEvents := 0
	for i := 0; i < 5; i++ {
		for done.Load() < int64((i+1)*20) && len(werr) == 0 && done.Load() < int64(boards) {
			time.Sleep(time.Millisecond)
		}
		dest := filepath.Join(dir, "b"+itoa(int64(i))+".db")
		info, err := ro.Backup(t.Context(), dest)
		if err != nil {
			t.Fatal(err)
		}
		if info.Events < lastEvents {
			t.Errorf("backup %d has %d events, the one before %d", i, info.Events, lastEvents)
		}
		lastEvents = info.Events
		t.Logf("backup %d: %d units, %d events (%d boards done)", i, info.Units, info.Events, done.Load())
		b, err := OpenReadOnly(dest)
		if err != nil {
			t.Fatal(err)
		}
		probs, err := b.Check(t.Context())
		b.Close()
		if err != nil || len(probs) != 0 {
			t.Errorf("backup %d (%+v): %v %v", i, info, probs, err)
		}
		// Events come three per board in three transactions: a snapshot
		// holds whole transactions, so units and events agree.
		if info.Events < 3*(info.Units-1)+1 || info.Events > 3*info.Units {
			t.Errorf("backup %d: %d units and %d events: not one instant", i, info.Units, info.Events)
		}
	}
	wg.Wait()
	select {
	case err := <-werr:
		t.Fatalf("the writer failed while backups ran: %v", err)
	default:
	}
	if lastEvents == 3*boards {
		t.Log("the writer finished before the last backup: the machine is fast; the earlier ones overlapped it")
	}
}

func TestInterrupted(t *testing.T) { eachEngine(t, testInterrupted) }

func testInterrupted(t *testing.T, e testEngine) {
	l := e.open(t)
	seed(t, l, "tencent", "P1", names("d", 4)...)
	seed(t, l, "aliyun", "a1X", "a-0001")
	a, _ := l.Claim("tencent", "P1", "A1", "st1", "p0") // reserved: claimed, nothing written
	b, _ := l.Claim("tencent", "P1", "B1", "st1", "p1") // burning: a write cut short, twice
	for range 2 {
		if err := l.Begin(b.ID); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := l.Claim("tencent", "P1", "C1", "st1", "p2") // burned: done
	if err := l.Begin(c.ID); err != nil {
		t.Fatal(err)
	}
	if err := l.Burned(c.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	x, _ := l.Claim("aliyun", "a1X", "X1", "st2", "p0")
	if err := l.Begin(x.ID); err != nil {
		t.Fatal(err)
	}

	got, err := l.Interrupted("tencent", "P1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Unit.HWID != "A1" || got[1].Unit.HWID != "B1" {
		t.Fatalf("interrupted: %+v", got)
	}
	for _, tt := range []struct {
		i    int
		want []string
	}{
		{0, []string{"board A1", "same device d000", "attempt 1", "iotburn ledger release --hw A1"}},
		{1, []string{"board B1", "same device d001", "attempt 3", "no new credential", "iotburn ledger void --platform tencent --product P1 --device d001", "cannot be released"}},
	} {
		for _, w := range tt.want {
			if !strings.Contains(got[tt.i].Next, w) {
				t.Errorf("%s: %q does not say %q", got[tt.i].Unit.HWID, got[tt.i].Next, w)
			}
		}
	}
	if all, _ := l.Interrupted("", ""); len(all) != 3 {
		t.Errorf("all products: %d interrupted, want 3", len(all))
	}
	_ = a
}
