package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrReadOnly is a write to a ledger opened with OpenReadOnly.
var ErrReadOnly = errors.New("ledger opened read-only")

// OpenReadOnly opens an existing ledger to read it as it is: it creates no
// file, runs no migration and writes nothing (SQLite's query_only on every
// connection, PostgreSQL's default_transaction_read_only, and every write
// method refuses with ErrReadOnly). For `ledger check` (which must see an
// old schema as old), `ledger backup` (a copy of the books as they are) and
// `create --dry-run`. Reading while another process writes is safe: WAL
// readers, and PostgreSQL's, see one consistent snapshot per query.
func OpenReadOnly(path string) (*Ledger, error) {
	if IsURL(path) {
		return openPostgres(path, true)
	}
	if err := plainPath(path); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	dsn := path + "?" + strings.Join([]string{
		fmt.Sprintf("_busy_timeout=%d", busyTimeout.Milliseconds()),
		"_foreign_keys=1",
		"_query_only=1",
	}, "&")
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	l := newLedger(db, path, sqliteDialect)
	l.readOnly = true
	v, err := l.SchemaVersion()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger %s: not a readable ledger: %w", path, err)
	}
	if v > Version {
		db.Close()
		return nil, fmt.Errorf("ledger %s: schema version %d is newer than this iotburn understands (%d): upgrade iotburn", path, v, Version)
	}
	if v == 0 {
		db.Close()
		return nil, fmt.Errorf("ledger %s: not an iotburn ledger (no schema): %w", path, ErrNotFound)
	}
	return l, nil
}

// plainPath refuses what the driver or SQLite would read as something other
// than a file name: everything after a '?' is parameters, "file:" is a URI.
func plainPath(path string) error {
	if path == "" {
		return errors.New("ledger: empty path")
	}
	if strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return fmt.Errorf("ledger: %q is not a plain file path", path)
	}
	return nil
}

// SchemaVersion is the ledger's schema version (SQLite's PRAGMA
// user_version, PostgreSQL's schema_version table; 0: no schema yet);
// Version is the one this iotburn writes.
func (l *Ledger) SchemaVersion() (int, error) {
	if l.d.engine == enginePostgres {
		var v int
		err := l.retryRead(context.Background(), func() (err error) {
			v, err = pgVersion(context.Background(), l.db)
			return err
		})
		return v, err
	}
	var v int
	err := l.db.QueryRow(`PRAGMA user_version`).Scan(&v)
	return v, err
}

// Problem is one thing `ledger check` found wrong. Code is stable, for
// scripts; Message names the rows (devices, boards, requests), never a
// secret; Fix says what to do.
type Problem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Fix     string `json:"fix"`
}

func (p Problem) String() string { return p.Message + ": " + p.Fix }

// Problem codes.
const (
	ProblemIntegrity     = "integrity"          // SQLite's integrity_check, PostgreSQL's amcheck
	ProblemForeignKey    = "foreign_key"        // a row pointing at nothing
	ProblemSchema        = "schema_not_current" // an older schema: migrate
	ProblemGuard         = "guard_missing"      // a trigger that keeps an invariant is gone
	ProblemTakenNoUnit   = "taken_without_unit" // a taken credential no unit holds
	ProblemFreeOnUnit    = "free_on_unit"       // a unit on a credential the line could hand out again
	ProblemExportedUnit  = "exported_on_unit"   // a unit on a credential exported for outside flashing
	ProblemVoidMismatch  = "void_mismatch"      // a void unit on a live credential, or the reverse
	ProblemEventMismatch = "unit_not_last_event"
	ProblemOpenRequest   = "open_request" // a create interrupted: devices may exist on the platform only
)

// guards are the triggers of the current schema: each keeps an invariant
// the Go code relies on, so one dropped (a hand edit) is a problem even while
// no row breaks it yet.
var guards = []string{"units_claim_free", "units_take", "units_credential_forever", "credentials_void_forever",
	"credentials_exported_forever", "credentials_export_free", "events_no_update", "events_no_delete",
	"pairings_forever"}

// checkShown is how many rows a problem names before "and N more".
const checkShown = 10

// Check tests the engine's own integrity (SQLite's integrity_check and
// foreign_key_check; on PostgreSQL, rows pointing at nothing and, where the
// amcheck extension is installed, every index of the books) and every
// invariant of the books: each taken credential on exactly one unit, no
// unit on a free, exported or (unless it is void itself) void credential,
// every unit in the state its last event says, no create request left open,
// the schema current and its guarding triggers in place (and enabled). It
// returns the problems found (none: the books are sound); err is for a
// ledger that could not be read at all. It writes nothing, and it reads
// while a batch writes (each query sees a consistent snapshot).
func (l *Ledger) Check(ctx context.Context) ([]Problem, error) {
	var out []Problem
	bad, err := l.integrity(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger check: %w", err)
	}
	if len(bad) > 0 {
		what := "SQLite integrity_check: "
		if l.d.engine == enginePostgres {
			what = "PostgreSQL amcheck: "
		}
		out = append(out, Problem{ProblemIntegrity, what + list(bad, len(bad)),
			"the ledger is damaged: stop using it, restore the latest `iotburn ledger backup`, and keep this one for inspection"})
	}
	v, err := l.SchemaVersion()
	if err != nil {
		return nil, err
	}
	if v < Version {
		out = append(out, Problem{ProblemSchema, fmt.Sprintf("schema version %d, this iotburn writes %d", v, Version),
			"run `iotburn ledger migrate` (any command that writes the ledger migrates it too)"})
	}

	type query struct {
		code, what, fix string
		minVersion      int
		q               string // one text column naming each row
		pg              string // the PostgreSQL text, where it differs
	}
	queries := []query{
		{ProblemForeignKey, "rows pointing at nothing", "restore the latest backup: a row was deleted by hand", 1,
			`SELECT "table" || ' row ' || rowid || ' -> ' || parent FROM pragma_foreign_key_check`,
			`SELECT 'units row ' || u.id || ' -> credentials' FROM units u WHERE NOT EXISTS (SELECT 1 FROM credentials c WHERE c.id = u.credential_id)
			 UNION ALL
			 SELECT 'credentials row ' || c.id || ' -> requests' FROM credentials c
			 WHERE c.request_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.id = c.request_id)`},
		{ProblemTakenNoUnit, "taken credentials that no unit holds",
			"a board's unit was deleted by hand: restore the latest backup, or void the device (`iotburn ledger void`) if no board holds it", 1,
			`SELECT c.platform || '/' || c.product || '/' || c.device_name FROM credentials c
			 WHERE c.state = 'taken' AND NOT EXISTS (SELECT 1 FROM units u WHERE u.credential_id = c.id) ORDER BY c.id`, ""},
		{ProblemFreeOnUnit, "free credentials that a board holds (the line could give them to a second board)",
			"void each device (`iotburn ledger void --device D --reason ...`) and burn its board again, or restore the latest backup", 1,
			`SELECT c.platform || '/' || c.product || '/' || c.device_name || ' on board ' || u.hw_id FROM units u
			 JOIN credentials c ON c.id = u.credential_id WHERE c.state = 'free' ORDER BY u.id`, ""},
		{ProblemExportedUnit, "exported credentials that a board here also holds (the image may be in another board)",
			"find the board flashed from the exported image; void the device (`iotburn ledger void`) and burn both boards again", 3,
			`SELECT c.platform || '/' || c.product || '/' || c.device_name || ' on board ' || u.hw_id FROM units u
			 JOIN credentials c ON c.id = u.credential_id WHERE c.state = 'exported' ORDER BY u.id`, ""},
		{ProblemVoidMismatch, "units whose void state differs from their credential's",
			"void the device again (`iotburn ledger void`): it voids both", 1,
			`SELECT c.platform || '/' || c.product || '/' || c.device_name || ' on board ' || u.hw_id || ' (unit ' || u.state || ', credential ' || c.state || ')'
			 FROM units u JOIN credentials c ON c.id = u.credential_id WHERE (u.state = 'void') != (c.state = 'void') ORDER BY u.id`, ""},
		{ProblemEventMismatch, "units whose state is not their last event's",
			"a unit was edited by hand outside a transition: restore the latest backup, or check the board with `iotburn verify`", 2,
			`SELECT 'board ' || u.hw_id || ' is ' || u.state || ', its last event says ' || coalesce((SELECT e.to_state FROM events e WHERE e.unit_id = u.id ORDER BY e.id DESC LIMIT 1), 'nothing')
			 FROM units u WHERE u.state IS DISTINCT FROM (SELECT e.to_state FROM events e WHERE e.unit_id = u.id ORDER BY e.id DESC LIMIT 1) ORDER BY u.id`, ""},
		{ProblemOpenRequest, "create requests left open by an interrupted `iotburn create` (their devices may exist on the platform and not here)",
			"run `iotburn create --platform P --product X --names FILE` again for each product named: it asks the platform what became of them before creating anything, and creates nothing twice", 1,
			`SELECT 'request ' || id || ' (' || platform || '/' || product || ', ' || json_array_length(names) || ' names' ||
			   CASE WHEN task_id = '' THEN ', no task id yet' ELSE ', task ' || task_id END || ', since ' ||
			   strftime('%Y-%m-%d %H:%M:%SZ', created_at / 1000, 'unixepoch') || ')'
			 FROM requests WHERE state = 'open' ORDER BY id`,
			`SELECT 'request ' || id || ' (' || platform || '/' || product || ', ' || json_array_length(names::json) || ' names' ||
			   CASE WHEN task_id = '' THEN ', no task id yet' ELSE ', task ' || task_id END || ', since ' ||
			   to_char(to_timestamp(created_at / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"') || ')'
			 FROM requests WHERE state = 'open' ORDER BY id`},
	}
	for _, q := range queries {
		if v < q.minVersion {
			continue
		}
		text := q.q
		if l.d.engine == enginePostgres && q.pg != "" {
			text = q.pg
		}
		names, n, err := firstRows(ctx, l, text)
		if err != nil {
			return nil, fmt.Errorf("ledger check (%s): %w", q.code, err)
		}
		if n > 0 {
			out = append(out, Problem{q.code, fmt.Sprintf("%d %s: %s", n, q.what, list(names, n)), q.fix})
		}
	}
	if v == Version {
		missing, err := l.missingGuards(ctx)
		if err != nil {
			return nil, err
		}
		if len(missing) > 0 {
			out = append(out, Problem{ProblemGuard, "the trigger(s) guarding the books are gone: " + strings.Join(missing, ", "),
				"someone edited the schema by hand: restore the latest backup (the data may be sound: run `iotburn ledger check` on it)"})
		}
	}
	return out, nil
}

// integrity is what the engine finds wrong with its own storage.
func (l *Ledger) integrity(ctx context.Context) ([]string, error) {
	var q string
	if l.d.engine == enginePostgres {
		// amcheck (in PostgreSQL's contrib, installed by a superuser with
		// CREATE EXTENSION amcheck) checks each B-tree index against its
		// rules; without it there is nothing here to run.
		var has bool
		if err := l.queryRow(`SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'amcheck')`).Scan(&has); err != nil || !has {
			return nil, err
		}
		rows, err := l.queryContext(ctx, `SELECT c.oid::regclass::text FROM pg_index i
			JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid JOIN pg_am a ON a.oid = c.relam
			WHERE a.amname = 'btree' AND t.relnamespace = current_schema()::regnamespace
			  AND t.relname IN ('requests', 'credentials', 'units', 'events', 'stations', 'moves', 'pairings') ORDER BY 1`)
		if err != nil {
			return nil, err
		}
		var idx []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return nil, err
			}
			idx = append(idx, s)
		}
		rows.Close()
		var bad []string
		for _, ix := range idx {
			if _, err := l.db.ExecContext(ctx, `SELECT bt_index_check($1::regclass, true)`, ix); err != nil {
				if sqlState(err) == "" || connLost(err) {
					return nil, err
				}
				bad = append(bad, ix+": "+err.Error())
			}
		}
		return bad, nil
	}
	// integrity_check(N) stops after N errors; its rows are "ok" or errors.
	q = `PRAGMA integrity_check(100)`
	rows, err := l.db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var bad []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		if s != "ok" {
			bad = append(bad, s)
		}
	}
	return bad, rows.Err()
}

// missingGuards names the guarding triggers that are gone (or, on
// PostgreSQL, disabled: a disabled trigger guards nothing).
func (l *Ledger) missingGuards(ctx context.Context) ([]string, error) {
	names, q := guards, `SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name = ?`
	if l.d.engine == enginePostgres {
		names, q = pgGuards, `SELECT count(*) FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid
			WHERE NOT g.tgisinternal AND g.tgenabled <> 'D' AND g.tgname = ? AND t.relnamespace = current_schema()::regnamespace`
	}
	var missing []string
	for _, g := range names {
		var n int
		if err := l.db.QueryRowContext(ctx, l.d.bind(q), g).Scan(&n); err != nil {
			return nil, err
		}
		if n == 0 {
			missing = append(missing, g)
		}
	}
	return missing, nil
}

// firstRows returns the first checkShown values of a one-column query and how
// many rows it has.
func firstRows(ctx context.Context, l *Ledger, q string) ([]string, int, error) {
	rows, err := l.queryContext(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []string
	n := 0
	for rows.Next() {
		n++
		if n > checkShown {
			continue
		}
		var s sql.NullString
		if err := rows.Scan(&s); err != nil {
			return nil, 0, err
		}
		out = append(out, s.String)
	}
	return out, n, rows.Err()
}

func list(items []string, total int) string {
	if len(items) > checkShown {
		items = items[:checkShown]
	}
	s := strings.Join(items, "; ")
	if total > len(items) {
		s += fmt.Sprintf("; … and %d more", total-len(items))
	}
	return s
}

// BackupInfo describes a backup written.
type BackupInfo struct {
	Path                       string
	Bytes                      int64
	Version                    int
	Credentials, Units, Events int
}

// Backup writes a consistent copy of the ledger to dest, a new SQLite
// ledger file: from a SQLite ledger with SQLite's VACUUM INTO, from a
// PostgreSQL one by copying every row, ids kept, in one REPEATABLE READ
// transaction. Either way the copy is the books at one instant even while
// stations write (readers do not block writers, nor writers them), and the
// copy is a ledger like any other: `iotburn ledger export --to` puts it on
// a PostgreSQL database again. dest is created 0600 (it holds every
// secret) and never overwritten: it must not exist (fs.ErrExist
// otherwise). The copy is synced, then opened and integrity-checked; a
// failed backup leaves no file behind.
func (l *Ledger) Backup(ctx context.Context, dest string) (BackupInfo, error) {
	if err := plainPath(dest); err != nil {
		return BackupInfo{}, fmt.Errorf("backup: %w", err)
	}
	abs, err := filepath.Abs(dest)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("backup: %w", err)
	}
	// O_EXCL: refuse an existing file, atomically. SQLite's VACUUM INTO
	// writes into an empty file and keeps its mode.
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return BackupInfo{}, fmt.Errorf("backup: %s already exists: a backup never overwrites a file: give a new name: %w", dest, fs.ErrExist)
	}
	if err != nil {
		return BackupInfo{}, fmt.Errorf("backup: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(abs)
		return BackupInfo{}, fmt.Errorf("backup: %w", err)
	}
	info, err := l.backupInto(ctx, abs)
	if err != nil {
		for _, p := range []string{abs, abs + "-journal", abs + "-wal", abs + "-shm"} {
			os.Remove(p)
		}
		return BackupInfo{}, fmt.Errorf("backup to %s: %w (nothing was written)", dest, err)
	}
	info.Path = dest
	return info, nil
}

func (l *Ledger) backupInto(ctx context.Context, abs string) (BackupInfo, error) {
	if l.d.engine == enginePostgres {
		if err := l.copyToFile(ctx, abs); err != nil {
			return BackupInfo{}, err
		}
	} else {
		// Its own connection: query_only (OpenReadOnly) refuses VACUUM INTO,
		// though it writes nothing to this file.
		db, err := sql.Open("sqlite", fmt.Sprintf("%s?_busy_timeout=%d", l.path, busyTimeout.Milliseconds()))
		if err != nil {
			return BackupInfo{}, err
		}
		_, err = db.ExecContext(ctx, `VACUUM INTO ?`, abs)
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return BackupInfo{}, err
		}
	}
	f, err := os.OpenFile(abs, os.O_RDWR, 0)
	if err != nil {
		return BackupInfo{}, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return BackupInfo{}, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return BackupInfo{}, err
	}
	st, err := f.Stat()
	f.Close()
	if err != nil {
		return BackupInfo{}, err
	}
	if d, err := os.Open(filepath.Dir(abs)); err == nil {
		_ = d.Sync() // the new name, on file systems that need it
		d.Close()
	}
	// Read the copy back: it must be a sound ledger of the same schema.
	b, err := OpenReadOnly(abs)
	if err != nil {
		return BackupInfo{}, err
	}
	defer b.Close()
	info := BackupInfo{Bytes: st.Size()}
	var ok string
	if err := b.db.QueryRowContext(ctx, `PRAGMA integrity_check(1)`).Scan(&ok); err != nil || ok != "ok" {
		return BackupInfo{}, fmt.Errorf("the copy fails integrity_check: %q %v", ok, err)
	}
	if info.Version, err = b.SchemaVersion(); err != nil {
		return BackupInfo{}, err
	}
	counts := []struct {
		dst *int
		q   string
	}{{&info.Credentials, `SELECT count(*) FROM credentials`}, {&info.Units, `SELECT count(*) FROM units`}}
	if info.Version >= 2 {
		counts = append(counts, struct {
			dst *int
			q   string
		}{&info.Events, `SELECT count(*) FROM events`})
	}
	for _, c := range counts {
		if err := b.db.QueryRowContext(ctx, c.q).Scan(c.dst); err != nil {
			return BackupInfo{}, err
		}
	}
	return info, nil
}

// Interrupted is a board a run left half-done, and what the next run does
// with it (provision/line.go: a board the ledger knows gets the same unit
// and credential back, whatever its state).
type Interrupted struct {
	Unit Unit
	// Next is what the line does when the board is plugged in again, and
	// what to do if it never comes back.
	Next string
}

// Interrupted lists the units left reserved (claimed, never written) or
// burning (a write begun and never finished: a run killed or stopped by a
// second Ctrl-C), in claim order, for platform/product ("" for either: all).
// On a line running now they may simply be in flight.
func (l *Ledger) Interrupted(platform, product string) ([]Interrupted, error) {
	rows, err := l.query(`SELECT `+unitCols+unitFrom+`
		WHERE u.state IN ('reserved', 'burning') AND (?1 = '' OR c.platform = ?1) AND (?2 = '' OR c.product = ?2)
		ORDER BY u.id`, platform, product)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Interrupted
	for rows.Next() {
		u, err := scanUnit(rows)
		if err != nil {
			return nil, err
		}
		var next string
		if u.State == Burning {
			next = fmt.Sprintf("when board %s is plugged in again the line gives it the same device %s and burns it again "+
				"(attempt %d); no new credential is used. If the board is gone for good: "+
				"`iotburn ledger void --platform %s --product %s --device %s --reason ...` (it may hold the secret, so it cannot be released)",
				u.HWID, u.Cred.DeviceName, u.Attempts+1, u.Cred.Platform, u.Cred.ProductID, u.Cred.DeviceName)
		} else {
			next = fmt.Sprintf("when board %s is plugged in again the line gives it the same device %s and burns it (attempt %d). "+
				"If the board is gone for good: `iotburn ledger release --hw %s` puts %s back in the pool (nothing was written to the board)",
				u.HWID, u.Cred.DeviceName, u.Attempts+1, u.HWID, u.Cred.DeviceName)
			if !u.LeaseUntil.IsZero() {
				next += fmt.Sprintf("; unless the board is claimed again by %s (its lease), any station running does that itself",
					u.LeaseUntil.Local().Format("2006-01-02 15:04:05"))
			}
		}
		out = append(out, Interrupted{Unit: u, Next: next})
	}
	return out, rows.Err()
}
