package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ErrMoved is a write to a SQLite ledger whose books were moved to a
// shared ledger (MoveTo): it is an archive now, and its credentials are
// given out by the shared ledger only, so that none is given out twice.
var ErrMoved = errors.New("its books were moved to a shared ledger")

// ErrConflict is a move refused because the shared ledger holds other data
// for the same devices or boards.
var ErrConflict = errors.New("the shared ledger holds conflicting data")

// ErrProblems is a move refused because `ledger check` finds problems in
// the books to be moved.
var ErrProblems = errors.New("the books have problems")

// refuseIfMoved, at the start of every write transaction on a SQLite file,
// refuses writes to a file whose books were moved (or are being moved).
func refuseIfMoved(t *txn, path string) error {
	var target, state string
	err := t.QueryRow(`SELECT target, state FROM moves ORDER BY id DESC LIMIT 1`).Scan(&target, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if state == "moving" {
		return fmt.Errorf("ledger %s: %w: a move to %s was started and not finished: run `iotburn ledger export --to %s` again to finish it", path, ErrMoved, target, target)
	}
	return fmt.Errorf("ledger %s: %w (%s): use --ledger %s (or IOTBURN_LEDGER) on every station", path, ErrMoved, target, target)
}

// MoveInfo says what a move did.
type MoveInfo struct {
	Target                               string // the shared ledger, without its password
	Requests, Credentials, Units, Events int
	// Already: the shared ledger held these books already, identical (a
	// move run again); nothing was copied.
	Already bool
}

// MoveConflictError names the devices and boards a move found on the
// shared ledger with other data. It names no secret.
type MoveConflictError struct {
	Target  string
	Devices []string // platform/product/device: another secret, state or board there
	Boards  []string // boards there holding another device
	// Partly: some devices are there identical and others are not there at
	// all: a different run of the same batch.
	Partly bool
}

func (e *MoveConflictError) Error() string {
	var parts []string
	if len(e.Devices) > 0 {
		parts = append(parts, fmt.Sprintf("%d device(s) there with another secret, state or board: %s", len(e.Devices), list(e.Devices, len(e.Devices))))
	}
	if len(e.Boards) > 0 {
		parts = append(parts, fmt.Sprintf("%d board(s) there holding another device: %s", len(e.Boards), list(e.Boards, len(e.Boards))))
	}
	if e.Partly {
		parts = append(parts, "some of these devices are there already and the others are not")
	}
	return fmt.Sprintf("ledger: nothing was moved to %s: %s; check which ledger holds the truth for them (`iotburn ledger status` on both): "+
		"a move never merges two versions of a device or a board", e.Target, strings.Join(parts, "; "))
}

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *MoveConflictError) Unwrap() error { return ErrConflict }

// MoveTo moves the books of this SQLite ledger (a single station's batch)
// onto the shared ledger at target (a postgres:// URL; its tables are
// made if the database has none), in one transaction there: every create
// request, credential, board and event, each board on its credential as
// here, the history in its order. Ids are the shared ledger's own.
//
// It refuses, moving nothing, when `ledger check` finds a problem here
// (ErrProblems), or when the shared ledger holds any of these devices or
// boards with other data (a *MoveConflictError, errors.Is ErrConflict): it
// never merges two versions of a device or a board. Run again after it
// finished, it finds the books there identical and says so (Already).
//
// Before copying, this file is marked as moving, and from then on refuses
// every write (ErrMoved): no station can give out one of these credentials
// here while, or after, the shared ledger gives it out. A refused move
// takes the mark away again; a move cut off (a crash, a lost connection)
// leaves it, and is finished by running it again.
func (l *Ledger) MoveTo(ctx context.Context, target string) (MoveInfo, error) {
	info := MoveInfo{Target: Redact(target)}
	switch {
	case l.d.engine != engineSQLite:
		return info, fmt.Errorf("ledger %s: only a SQLite ledger is moved onto a shared one", l.path)
	case !IsURL(target):
		return info, fmt.Errorf("ledger: move to %q: give the shared ledger's postgres:// URL", target)
	case l.readOnly:
		return info, fmt.Errorf("ledger %s: %w", l.path, ErrReadOnly)
	}
	probs, err := l.Check(ctx)
	if err != nil {
		return info, err
	}
	if len(probs) > 0 {
		codes := make([]string, len(probs))
		for i, p := range probs {
			codes[i] = p.Code
		}
		return info, fmt.Errorf("ledger %s: %w (%s): `iotburn ledger check` says what to do; nothing was moved", l.path, ErrProblems, strings.Join(codes, ", "))
	}
	dst, err := Open(target)
	if err != nil {
		return info, err
	}
	defer dst.Close()
	if dst.d.engine != enginePostgres {
		return info, fmt.Errorf("ledger: move to %s: not a PostgreSQL ledger", info.Target)
	}

	// Freeze this file first.
	var moved bool
	err = l.writeWith(writeOpts{moving: true}, func(t *txn) error {
		var id int64
		var to, state string
		err := t.QueryRow(`SELECT id, target, state FROM moves ORDER BY id DESC LIMIT 1`).Scan(&id, &to, &state)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = t.Exec(`INSERT INTO moves (target, state, started_at) VALUES (?, 'moving', ?)`, info.Target, l.nowMS())
			return err
		case err != nil:
			return err
		case to != info.Target:
			return fmt.Errorf("ledger %s: %w to %s, not %s", l.path, ErrMoved, to, info.Target)
		}
		moved = state == "moved"
		return nil
	})
	if err != nil {
		return info, err
	}

	src, err := l.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return info, err
	}
	defer src.Rollback()
	st := &txn{tx: src, d: l.d, ctx: ctx}
	var copied MoveInfo
	var refused bool // a refusal from the shared ledger: nothing was written there
	err = dst.writeWith(writeOpts{settled: func(t *txn) (bool, error) {
		same, err := compareBooks(st, t, info.Target)
		return err == nil && same, err
	}}, func(t *txn) error {
		same, err := compareBooks(st, t, info.Target)
		if err != nil {
			var ce *MoveConflictError
			refused = errors.As(err, &ce)
			return err
		}
		if same {
			copied = MoveInfo{Already: true}
			return nil
		}
		copied, err = moveRows(st, t)
		return err
	})
	if err != nil {
		if refused || !errors.Is(err, ErrUncertain) {
			// Nothing reached the shared ledger: this file is in charge again.
			if uerr := l.writeWith(writeOpts{moving: true}, func(t *txn) error {
				_, err := t.Exec(`DELETE FROM moves WHERE state = 'moving'`)
				return err
			}); uerr != nil && !moved {
				return info, fmt.Errorf("%w; and this file could not be put back in service: %v", err, uerr)
			}
		}
		return info, err
	}
	copied.Target = info.Target
	if moved && !copied.Already {
		// Marked moved, but not there: the shared ledger lost them (restored
		// from an older backup?). They were copied again just now.
		moved = false
	}
	err = l.writeWith(writeOpts{moving: true}, func(t *txn) error {
		_, err := t.Exec(`UPDATE moves SET state = 'moved', done_at = coalesce(done_at, ?), credentials = ?, units = ?, events = ?
			WHERE id = (SELECT max(id) FROM moves)`, l.nowMS(), copied.Credentials, copied.Units, copied.Events)
		return err
	})
	return copied, err
}

// srcCredential is a credential to move, with its board if it has one.
type srcCredential struct {
	id, requestID                                              sql.NullInt64
	platform, product, region, name, secret, state, voidReason string
	cert, privateKey                                           string
	created                                                    int64
	hw, unitState                                              sql.NullString
	attempts                                                   sql.NullInt64
}

func (c srcCredential) key() string { return c.platform + "/" + c.product + "/" + c.name }

func readCredentials(src *txn) ([]srcCredential, error) {
	rows, err := src.Query(`SELECT c.id, c.platform, c.product, c.region, c.device_name, c.secret, c.request_id, c.state, c.void_reason, c.created_at,
			u.hw_id, u.state, u.attempts, c.device_cert, c.device_private_key
		FROM credentials c LEFT JOIN units u ON u.credential_id = c.id ORDER BY c.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []srcCredential
	for rows.Next() {
		var c srcCredential
		if err := rows.Scan(&c.id, &c.platform, &c.product, &c.region, &c.name, &c.secret, &c.requestID, &c.state, &c.voidReason, &c.created,
			&c.hw, &c.unitState, &c.attempts, &c.cert, &c.privateKey); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// compareBooks looks every device and board to be moved up on the shared
// ledger: none there (false, nil: move them), all there identical (true,
// nil: moved before), or anything else (a *MoveConflictError).
func compareBooks(src, dst *txn, target string) (bool, error) {
	creds, err := readCredentials(src)
	if err != nil {
		return false, err
	}
	look, err := dst.Prepare(`SELECT c.secret, c.state, u.hw_id, u.state, u.attempts, c.device_cert, c.device_private_key FROM credentials c LEFT JOIN units u ON u.credential_id = c.id
		WHERE c.platform = ? AND c.product = ? AND c.device_name = ?`)
	if err != nil {
		return false, err
	}
	defer look.Close()
	board, err := dst.Prepare(`SELECT c.platform, c.product, c.device_name FROM units u JOIN credentials c ON c.id = u.credential_id WHERE u.hw_id = ?`)
	if err != nil {
		return false, err
	}
	defer board.Close()
	ce := &MoveConflictError{Target: target}
	same, fresh := 0, 0
	for _, c := range creds {
		var secret, state, cert, key string
		var hw, unitState sql.NullString
		var attempts sql.NullInt64
		err := look.QueryRowContext(dst.ctx, c.platform, c.product, c.name).Scan(&secret, &state, &hw, &unitState, &attempts, &cert, &key)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			fresh++
		case err != nil:
			return false, err
		case secret == c.secret && cert == c.cert && key == c.privateKey && state == c.state && hw == c.hw && unitState == c.unitState && attempts == c.attempts:
			same++
			continue
		default:
			ce.Devices = append(ce.Devices, c.key())
			continue
		}
		if !c.hw.Valid {
			continue
		}
		var p, pr, n string
		err = board.QueryRowContext(dst.ctx, c.hw.String).Scan(&p, &pr, &n)
		switch {
		case err == nil:
			ce.Boards = append(ce.Boards, fmt.Sprintf("%s (here %s, there %s/%s/%s)", c.hw.String, c.key(), p, pr, n))
		case !errors.Is(err, sql.ErrNoRows):
			return false, err
		}
	}
	ce.Partly = same > 0 && fresh > 0
	if len(ce.Devices) > 0 || len(ce.Boards) > 0 || ce.Partly {
		return false, ce
	}
	return fresh == 0 && len(creds) > 0, nil
}

// moveRows copies the books from src into dst through dst's guards (each
// board takes its credential as a claim would), ids mapped to dst's own.
func moveRows(src, dst *txn) (MoveInfo, error) {
	var info MoveInfo
	reqIDs := map[int64]int64{}
	rows, err := src.Query(`SELECT id, platform, product, names, task_id, state, created_at, done_at FROM requests ORDER BY id`)
	if err != nil {
		return info, err
	}
	type request struct {
		id                                    int64
		platform, product, names, task, state string
		created                               int64
		done                                  sql.NullInt64
	}
	var reqs []request
	for rows.Next() {
		var r request
		if err := rows.Scan(&r.id, &r.platform, &r.product, &r.names, &r.task, &r.state, &r.created, &r.done); err != nil {
			rows.Close()
			return info, err
		}
		reqs = append(reqs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return info, err
	}
	for _, r := range reqs {
		var id int64
		if err := dst.QueryRow(`INSERT INTO requests (platform, product, names, task_id, state, created_at, done_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			r.platform, r.product, r.names, r.task, r.state, r.created, r.done).Scan(&id); err != nil {
			return info, fmt.Errorf("move request %d: %w", r.id, err)
		}
		reqIDs[r.id] = id
	}
	info.Requests = len(reqs)

	creds, err := readCredentials(src)
	if err != nil {
		return info, err
	}
	credIDs := map[int64]int64{}
	for _, c := range creds {
		var req any
		if c.requestID.Valid {
			req = reqIDs[c.requestID.Int64]
		}
		state := c.state
		if c.hw.Valid {
			state = "free" // the board's unit takes it below
		}
		var id int64
		if err := dst.QueryRow(`INSERT INTO credentials (platform, product, region, device_name, secret, device_cert, device_private_key, request_id, state, void_reason, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			c.platform, c.product, c.region, c.name, c.secret, c.cert, c.privateKey, req, state, c.voidReason, c.created).Scan(&id); err != nil {
			return info, fmt.Errorf("move device %s: %w", c.key(), err)
		}
		credIDs[c.id.Int64] = id
	}
	info.Credentials = len(creds)
	if err := movePairings(src, dst, credIDs); err != nil {
		return info, err
	}

	unitIDs := map[int64]int64{}
	rows, err = src.Query(`SELECT id, hw_id, credential_id, station, port, state, attempts, error, created_at, started_at, updated_at,
		burned_at, duration_ms, lease_until FROM units ORDER BY id`)
	if err != nil {
		return info, err
	}
	type unit struct {
		id, cred                          int64
		hw, station, port, state, errText string
		attempts                          int
		created, updated                  int64
		started, burned, dur, lease       sql.NullInt64
	}
	var units []unit
	for rows.Next() {
		var u unit
		if err := rows.Scan(&u.id, &u.hw, &u.cred, &u.station, &u.port, &u.state, &u.attempts, &u.errText, &u.created, &u.started, &u.updated,
			&u.burned, &u.dur, &u.lease); err != nil {
			rows.Close()
			return info, err
		}
		units = append(units, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return info, err
	}
	for _, u := range units {
		var id int64
		if err := dst.QueryRow(`INSERT INTO units (hw_id, credential_id, station, port, state, attempts, error, created_at, started_at, updated_at,
				burned_at, duration_ms, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			u.hw, credIDs[u.cred], u.station, u.port, u.state, u.attempts, u.errText, u.created, u.started, u.updated,
			u.burned, u.dur, u.lease).Scan(&id); err != nil {
			return info, fmt.Errorf("move board %s: %w", u.hw, err)
		}
		unitIDs[u.id] = id
	}
	info.Units = len(units)
	// A void board's credential is void too (Void sets both).
	for _, c := range creds {
		if c.hw.Valid && c.state == "void" {
			if _, err := dst.Exec(`UPDATE credentials SET state = 'void' WHERE id = ?`, credIDs[c.id.Int64]); err != nil {
				return info, fmt.Errorf("move device %s: %w", c.key(), err)
			}
		}
	}

	// The history, in its order, each event on its board's new unit id; a
	// released unit (its id only in the history) gets a new id of its own.
	rows, err = src.Query(`SELECT time, unit_id, hw_id, station, port, platform, product, device_name, from_state, to_state, attempt,
		duration_ms, error FROM events ORDER BY id`)
	if err != nil {
		return info, err
	}
	defer rows.Close()
	ins, err := dst.Prepare(`INSERT INTO events (time, unit_id, hw_id, station, port, platform, product, device_name, from_state, to_state, attempt,
		duration_ms, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return info, err
	}
	defer ins.Close()
	for rows.Next() {
		var at int64
		var unitID, dur sql.NullInt64
		var hw, station, port, platform, product, device, from, to, errText string
		var attempt int
		if err := rows.Scan(&at, &unitID, &hw, &station, &port, &platform, &product, &device, &from, &to, &attempt, &dur, &errText); err != nil {
			return info, err
		}
		var unit any
		if unitID.Valid {
			id, ok := unitIDs[unitID.Int64]
			if !ok {
				if err := dst.QueryRow(`SELECT nextval(pg_get_serial_sequence('units', 'id'))`).Scan(&id); err != nil {
					return info, err
				}
				unitIDs[unitID.Int64] = id
			}
			unit = id
		}
		if _, err := ins.ExecContext(dst.ctx, at, unit, hw, station, port, platform, product, device, from, to, attempt, dur, errText); err != nil {
			return info, fmt.Errorf("move history: %w", err)
		}
		info.Events++
	}
	if err := rows.Err(); err != nil {
		return info, err
	}
	return info, copyStations(src, dst)
}

// copyStations brings the stations' rows along; a station the shared
// ledger knows already keeps its own row.
func copyStations(src, dst *txn) error {
	rows, err := src.Query(`SELECT name, host, pid, started_at, seen_at FROM stations ORDER BY name`)
	if err != nil {
		return err
	}
	type station struct {
		name, host    string
		pid           int
		started, seen int64
	}
	var all []station
	for rows.Next() {
		var s station
		if err := rows.Scan(&s.name, &s.host, &s.pid, &s.started, &s.seen); err != nil {
			rows.Close()
			return err
		}
		all = append(all, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, s := range all {
		if _, err := dst.Exec(`INSERT INTO stations (name, host, pid, started_at, seen_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			s.name, s.host, s.pid, s.started, s.seen); err != nil {
			return err
		}
	}
	return nil
}

// bookTables are the tables a backup copies, parents first, with their
// columns (moves stays behind: a backup is not moved anywhere).
var bookTables = []struct{ name, cols string }{
	{"requests", "id, platform, product, names, task_id, state, created_at, done_at"},
	{"credentials", "id, platform, product, region, device_name, secret, device_cert, device_private_key, request_id, state, void_reason, created_at"},
	{"pairings", "sub_id, gateway_id, paired_at"},
	{"units", "id, hw_id, credential_id, station, port, state, attempts, error, created_at, started_at, updated_at, burned_at, duration_ms, lease_until"},
	{"events", "id, time, unit_id, hw_id, station, port, platform, product, device_name, from_state, to_state, attempt, duration_ms, error"},
	{"stations", "name, host, pid, started_at, seen_at"},
}

// copyToFile writes the books of a PostgreSQL ledger, as they are at one
// instant (REPEATABLE READ), into a new SQLite ledger file at abs (which
// exists, empty), row for row with their ids. The file's guards are taken
// off while it is filled and made again word for word after, so that the
// copy is faithful even of books `ledger check` would find fault with.
func (l *Ledger) copyToFile(ctx context.Context, abs string) error {
	dst, err := openSQLite(abs)
	if err != nil {
		return err
	}
	src, err := l.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		dst.Close()
		return err
	}
	defer src.Rollback()
	st := &txn{tx: src, d: l.d, ctx: ctx}
	err = dst.write(func(t *txn) error {
		rows, err := t.Query(`SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY name`)
		if err != nil {
			return err
		}
		var names, defs []string
		for rows.Next() {
			var n, s string
			if err := rows.Scan(&n, &s); err != nil {
				rows.Close()
				return err
			}
			names, defs = append(names, n), append(defs, s)
		}
		rows.Close()
		for _, n := range names {
			if _, err := t.Exec(`DROP TRIGGER ` + n); err != nil {
				return err
			}
		}
		for _, tb := range bookTables {
			if err := copyTable(st, t, tb.name, tb.cols); err != nil {
				return fmt.Errorf("copy %s: %w", tb.name, err)
			}
		}
		for _, s := range defs {
			if _, err := t.Exec(s); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyTable copies every row of table from src to dst as it is.
func copyTable(src, dst *txn, table, cols string) error {
	n := strings.Count(cols, ",") + 1
	rows, err := src.Query(`SELECT ` + cols + ` FROM ` + table + ` ORDER BY 1`)
	if err != nil {
		return err
	}
	defer rows.Close()
	ins, err := dst.Prepare(`INSERT INTO ` + table + ` (` + cols + `) VALUES (` + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + `)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	vals := make([]any, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if _, err := ins.ExecContext(dst.ctx, vals...); err != nil {
			return err
		}
	}
	return rows.Err()
}

// MovedTo says where this ledger's books were moved (MoveTo), if they were:
// the shared ledger's URL without its password, and whether the move
// finished. A PostgreSQL ledger is never moved.
func (l *Ledger) MovedTo() (target string, finished bool, err error) {
	if !l.d.checksMoves {
		return "", false, nil
	}
	var state string
	err = l.queryRow(`SELECT target, state FROM moves ORDER BY id DESC LIMIT 1`).Scan(&target, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		if v, verr := l.SchemaVersion(); verr == nil && v < 4 {
			return "", false, nil // before moves existed
		}
		return "", false, err
	}
	return target, state == "moved", nil
}
