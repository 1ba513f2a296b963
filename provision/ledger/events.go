package ledger

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Event states beyond the unit states: a unit Released (its credential back
// in the pool, the unit gone) and a board Refused before it had a credential.
// Neither is ever a unit's state, so they are not in States.
const (
	Released State = "released"
	Refused  State = "refused"
)

// Event is one line of a board's history (schema v2): a transition of a unit,
// or a board refused before it had a credential. Events are only ever
// appended, in the same transaction as the change they record.
type Event struct {
	ID       int64
	Time     time.Time
	UnitID   int64 // 0: no unit (a refused board, or a credential voided with no board)
	HWID     string
	Station  string
	Port     string
	Platform string
	Product  string
	// DeviceName is the credential's name; "" for a refused board.
	DeviceName string
	// From is the state before; "" when there was none (a refused board) or
	// it is unknown (units carried over from a v1 ledger). Created means the
	// credential had no board yet.
	From, To State
	Attempt  int           // the unit's burn attempts after the event
	Duration time.Duration // the burn's, on To == Burned events only
	Error    string        // the failure, void or refusal reason; never a secret
}

// newUnitID is the id for a unit about to be inserted (SQLite). SQLite would
// reuse the highest rowid after Release deleted that unit, and the released
// unit's events would then read as the new board's history; skipping every
// id the history has seen keeps unit_id meaning one board. Both maxima are
// index seeks. PostgreSQL's identity column never gives an id twice.
const newUnitID = `(SELECT max((SELECT coalesce(max(id), 0) FROM units), (SELECT coalesce(max(unit_id), 0) FROM events)) + 1)`

// scrubbedError is the unit's error with its credential's secret cut out.
// Fail's contract is that reasons hold no secret; should a careless caller
// break it, the secret stays in the credentials row and does not spread into
// the history, which is read by audits and exports that need no secret.
// A certificate's private key is cut out the same way.
const scrubbedError = `CASE WHEN c.device_private_key = '' THEN ` + scrubbedSecret + ` ELSE replace(` + scrubbedSecret + `, c.device_private_key, '[secret]') END`
const scrubbedSecret = `CASE WHEN c.secret = '' THEN u.error ELSE replace(u.error, c.secret, '[secret]') END`

// logUnit appends the event for unit unitID going from `from` to `to`, in the
// caller's transaction, copying where the board is and what it holds from
// the unit's row as it stands now (so call it after the unit's UPDATE, and
// before a DELETE). One INSERT, no extra sync: it commits with the change.
func logUnit(tx *txn, now, unitID int64, from, to State) error {
	res, err := tx.Exec(`INSERT INTO events (time, unit_id, hw_id, station, port, platform, product, device_name,
			from_state, to_state, attempt, duration_ms, error)
		SELECT CAST(?1 AS BIGINT), u.id, u.hw_id, u.station, u.port, c.platform, c.product, c.device_name,
			CAST(?2 AS TEXT), CAST(?3 AS TEXT), u.attempts, CASE WHEN CAST(?3 AS TEXT) = 'burned' THEN u.duration_ms END, `+scrubbedError+`
		FROM units u JOIN credentials c ON c.id = u.credential_id WHERE u.id = ?4`,
		now, string(from), string(to), unitID)
	if err != nil {
		return fmt.Errorf("ledger: history of unit %d: %w", unitID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		// Never silently commit a transition without its event.
		return fmt.Errorf("ledger: history of unit %d: %d rows written (%v)", unitID, n, err)
	}
	return nil
}

// Refused records a board turned away before it was given a credential: it
// gave a garbage answer or none, its own name is not registered (product-level
// modes), or the product has no free credential. hwID may be "" when the board
// never told it. Such a board has no unit, so without this it would leave no
// trace in the ledger. reason goes into the audit: the caller must make sure
// it holds no secret.
func (l *Ledger) Refused(hwID, station, port, platform, product, reason string) error {
	if reason == "" {
		reason = "refused"
	}
	err := l.write(func(tx *txn) error {
		_, err := tx.Exec(`INSERT INTO events (time, hw_id, station, port, platform, product, to_state, error)
			VALUES (?, ?, ?, ?, ?, ?, 'refused', ?)`, l.nowMS(), hwID, station, port, platform, product, reason)
		return err
	})
	if err != nil {
		return fmt.Errorf("ledger: record refused board %q on %s: %w", hwID, port, err)
	}
	return nil
}

// EachEvent calls fn for every event matching f, oldest first (in the order
// they were committed on SQLite; on PostgreSQL, where stations commit at
// once, in id order, which is commit order for each board), streaming: memory does not grow with the number of
// events. Since selects events at or after Since; platform and product match
// what the event recorded, so refused boards of the selected product are
// included. fn's error stops the walk and is returned. Like EachUnit, the walk
// holds a read snapshot that does not block writers.
func (l *Ledger) EachEvent(f Filter, fn func(Event) error) error {
	if fn == nil {
		return errors.New("ledger: EachEvent needs a function")
	}
	var since int64
	if !f.Since.IsZero() {
		since = f.Since.UnixMilli()
	}
	rows, err := l.query(`SELECT id, time, unit_id, hw_id, station, port, platform, product, device_name,
			from_state, to_state, attempt, duration_ms, error
		FROM events
		WHERE (?1 = '' OR platform = ?1) AND (?2 = '' OR product = ?2) AND (?3 = '' OR station = ?3)
		  AND time >= ?4 AND (?5 = '' OR hw_id = ?5)
		ORDER BY id`, f.Platform, f.Product, f.Station, since, f.HWID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var e Event
		var at int64
		var unit, dur sql.NullInt64
		if err := rows.Scan(&e.ID, &at, &unit, &e.HWID, &e.Station, &e.Port, &e.Platform, &e.Product, &e.DeviceName,
			&e.From, &e.To, &e.Attempt, &dur, &e.Error); err != nil {
			return err
		}
		e.Time = time.UnixMilli(at).UTC()
		e.UnitID = unit.Int64
		if dur.Valid {
			e.Duration = time.Duration(dur.Int64) * time.Millisecond
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}
