package ledger

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/iotburn/iotburn/registry"
)

// Unit is one physical board and the credential it holds.
type Unit struct {
	ID                   int64
	HWID, Station, Port  string // HWID: the board's MAC / IMEI / chip id
	State                State
	Attempts             int    // burns begun
	Error                string // last failure (or void) reason
	Cred                 registry.Credential
	CredentialID         int64
	CreatedAt            time.Time // first claimed
	StartedAt, UpdatedAt time.Time // StartedAt: last Begin; zero if never
	BurnedAt             time.Time // zero unless the current image was burned
	Duration             time.Duration
	// LeaseUntil, for a claim nothing was written for yet (Reserved, no
	// attempt), is when its credential goes back to the pool unless the
	// board is claimed again; zero: no lease (a written board keeps its
	// credential for good).
	LeaseUntil time.Time
}

// unitCols and unitFrom are shared by every query that returns a Unit, so
// scanUnit has one column order to keep in step with.
const unitCols = `u.id, u.hw_id, u.station, u.port, u.state, u.attempts, u.error, u.credential_id,
	u.created_at, u.started_at, u.updated_at, u.burned_at, u.duration_ms, u.lease_until,
	c.platform, c.product, c.device_name, c.secret, c.region, c.device_cert, c.device_private_key`
const unitFrom = ` FROM units u JOIN credentials c ON c.id = u.credential_id `

type scanner interface{ Scan(dest ...any) error }

func scanUnit(s scanner) (Unit, error) {
	var u Unit
	var created, started, updated, burned, dur, lease sql.NullInt64
	err := s.Scan(&u.ID, &u.HWID, &u.Station, &u.Port, &u.State, &u.Attempts, &u.Error, &u.CredentialID,
		&created, &started, &updated, &burned, &dur, &lease,
		&u.Cred.Platform, &u.Cred.ProductID, &u.Cred.DeviceName, &u.Cred.DeviceSecret, &u.Cred.Region,
		&u.Cred.DeviceCert, &u.Cred.DevicePrivateKey)
	if err != nil {
		return Unit{}, err
	}
	u.CreatedAt, u.StartedAt, u.UpdatedAt, u.BurnedAt = fromMS(created), fromMS(started), fromMS(updated), fromMS(burned)
	u.LeaseUntil = fromMS(lease)
	if dur.Valid {
		u.Duration = time.Duration(dur.Int64) * time.Millisecond
	}
	return u, nil
}

// Claim gives the board hwID its credential for platform/product, in one
// transaction.
//
// A board the ledger already knows gets the same unit and credential back,
// whatever state it is in (so a half-done board resumes with what it may
// already hold); its station and port are updated to where it is now. A
// known board whose credential is of another platform/product is refused
// (ErrWrongProduct, naming both), as is a voided board (ErrVoid). A new board
// takes the oldest free credential and a new unit in state Reserved, with a
// lease (Unit.LeaseUntil): if nothing is written to it (Begin) and the board
// is not claimed again before the lease runs out, the credential goes back
// to the pool (ReleaseExpired). If none is free, expired claims are given
// back first; if there is still none the error wraps ErrNoCredentials.
//
// Concurrent Claims, from goroutines or from processes sharing the ledger,
// never hand out one credential twice: on SQLite the transaction holds the
// write lock from its first statement; on PostgreSQL each claim locks the
// credential it takes (FOR UPDATE SKIP LOCKED), so stations never wait for
// one another and never take the same one; UNIQUE(credential_id) backs both
// up. station names the station in the ledger (its session, its leases) and
// in every event of the board.
func (l *Ledger) Claim(platform, product, hwID, station, port string) (Unit, error) {
	if platform == "" || product == "" {
		return Unit{}, errors.New("ledger: claim needs a platform and a product")
	}
	if strings.TrimSpace(hwID) == "" {
		return Unit{}, errors.New("ledger: claim needs the board's hardware id")
	}
	if err := l.session(station); err != nil {
		return Unit{}, fmt.Errorf("claim for board %s: %w", hwID, err)
	}
	var u Unit
	// A claim is the same whether or not a cut-off commit made it: tried
	// again, it finds the board's unit.
	again := func(*txn) (bool, error) { return false, nil }
	err := l.writeWith(writeOpts{unique: true, settled: again, lazy: true}, func(tx *txn) error {
		now := l.nowMS()
		if err := lockBoard(tx, hwID); err != nil {
			return err
		}
		var err error
		u, err = scanUnit(tx.QueryRow(`SELECT `+unitCols+unitFrom+`WHERE u.hw_id = ?`+tx.d.forUpdateUnits, hwID))
		switch {
		case err == nil:
			if u.Cred.Platform != platform || u.Cred.ProductID != product {
				return fmt.Errorf("ledger: board %s holds device %s of %s/%s, not %s/%s: %w",
					hwID, u.Cred.DeviceName, u.Cred.Platform, u.Cred.ProductID, platform, product, ErrWrongProduct)
			}
			if u.State == Void {
				return fmt.Errorf("ledger: board %s (device %s) was voided (%s): set it aside: %w",
					hwID, u.Cred.DeviceName, u.Error, ErrVoid)
			}
			if err := l.reclaim(tx, now, u.ID, station, port); err != nil {
				return err
			}
		case errors.Is(err, sql.ErrNoRows):
			credID, err := freeCredential(tx, now, platform, product)
			if err != nil {
				return err
			}
			if err := l.newUnit(tx, now, hwID, credID, station, port); err != nil {
				return err
			}
		default:
			return err
		}
		u, err = scanUnit(tx.QueryRow(`SELECT `+unitCols+unitFrom+`WHERE u.hw_id = ?`, hwID))
		return err
	})
	if err != nil {
		return Unit{}, fmt.Errorf("claim for board %s: %w", hwID, err)
	}
	return u, nil
}

// lockBoard makes claims of one board take turns (PostgreSQL).
func lockBoard(tx *txn, hwID string) error {
	if tx.d.lockBoard == "" {
		return nil
	}
	_, err := tx.Exec(tx.d.lockBoard, hwID)
	return err
}

// errFreeLocked is every free credential locked by claims under way at
// this instant: the transaction is tried again, and gets one of them if a
// claim gives its up, or finds none left.
var errFreeLocked = errors.New("every free credential is being claimed at this instant")

// freeCredential picks the oldest free credential of platform/product and
// locks it, giving back expired claims first if none is free.
func freeCredential(tx *txn, now int64, platform, product string) (int64, error) {
	pick := `SELECT id FROM credentials WHERE platform = ? AND product = ? AND state = 'free' ORDER BY id LIMIT 1` + tx.d.skipLocked
	var credID int64
	err := tx.QueryRow(pick, platform, product).Scan(&credID)
	if errors.Is(err, sql.ErrNoRows) {
		var n int
		if n, err = releaseExpired(tx, now); err == nil && n > 0 {
			err = tx.QueryRow(pick, platform, product).Scan(&credID)
		} else if err == nil {
			err = sql.ErrNoRows
		}
	}
	if errors.Is(err, sql.ErrNoRows) && tx.d.skipLocked != "" {
		// Skipped rows are free ones other claims hold locks on.
		var locked bool
		if err := tx.QueryRow(`SELECT EXISTS (SELECT 1 FROM credentials WHERE platform = ? AND product = ? AND state = 'free')`,
			platform, product).Scan(&locked); err != nil {
			return 0, err
		}
		if locked {
			return 0, errFreeLocked
		}
	}
	if errors.Is(err, sql.ErrNoRows) {
		var total int
		if err := tx.QueryRow(`SELECT count(*) FROM credentials WHERE platform = ? AND product = ?`,
			platform, product).Scan(&total); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("ledger: %s/%s has no free credential (%d in the ledger, all taken or void): "+
			"create more with `iotburn create`: %w", platform, product, total, ErrNoCredentials)
	}
	return credID, err
}

// newUnit inserts a unit in state Reserved for board hwID on credential
// credID (the schema's triggers check it is free and mark it taken), with a
// lease, and its first event.
func (l *Ledger) newUnit(tx *txn, now int64, hwID string, credID int64, station, port string) error {
	var id int64
	err := tx.QueryRow(`INSERT INTO units (id, hw_id, credential_id, station, port, state, created_at, updated_at, lease_until)
		VALUES (`+tx.d.newUnitID+`, ?, ?, ?, ?, 'reserved', ?, ?, ?) RETURNING id`,
		hwID, credID, station, port, now, now, now+l.leaseMS()).Scan(&id)
	if err != nil {
		return err
	}
	// A board the ledger knew already changes no state, so only a first
	// claim is an event; where a returning board is now shows in its next
	// transition's event.
	return logUnit(tx, now, id, Created, Reserved)
}

// reclaim notes where a known board is now, and renews the lease of a
// claim nothing was written for yet: the board is back.
func (l *Ledger) reclaim(tx *txn, now, unitID int64, station, port string) error {
	_, err := tx.Exec(`UPDATE units SET station = ?, port = ?, updated_at = ?,
			lease_until = CASE WHEN attempts = 0 AND state = 'reserved' THEN CAST(? AS BIGINT) ELSE lease_until END
		WHERE id = ?`, station, port, now, now+l.leaseMS(), unitID)
	return err
}

// ClaimName gives board hwID one named credential (`iotburn burn --device
// NAME`), in one transaction. If the board already holds that credential it
// gets its unit back (station and port updated). Refused, with errors.Is
// ErrTaken, if the board holds another credential or the credential is on
// another board; ErrVoid if it was voided; ErrNotFound if there is no such
// device.
func (l *Ledger) ClaimName(platform, product, deviceName, hwID, station, port string) (Unit, error) {
	if platform == "" || product == "" || deviceName == "" {
		return Unit{}, errors.New("ledger: claim needs a platform, a product and a device name")
	}
	if strings.TrimSpace(hwID) == "" {
		return Unit{}, errors.New("ledger: claim needs the board's hardware id")
	}
	if err := l.session(station); err != nil {
		return Unit{}, fmt.Errorf("claim %s for board %s: %w", deviceName, hwID, err)
	}
	var u Unit
	again := func(*txn) (bool, error) { return false, nil }
	err := l.writeWith(writeOpts{unique: true, settled: again, lazy: true}, func(tx *txn) error {
		now := l.nowMS()
		if err := lockBoard(tx, hwID); err != nil {
			return err
		}
		var credID int64
		var state, reason string
		err := tx.QueryRow(`SELECT id, state, void_reason FROM credentials WHERE platform = ? AND product = ? AND device_name = ?`+tx.d.forUpdate,
			platform, product, deviceName).Scan(&credID, &state, &reason)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("ledger: no device %s of %s/%s: create it with `iotburn create`: %w", deviceName, platform, product, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if state == "void" {
			return fmt.Errorf("ledger: device %s of %s/%s was voided (%s): %w", deviceName, platform, product, reason, ErrVoid)
		}
		if state == string(Exported) {
			return fmt.Errorf("ledger: device %s of %s/%s was exported for flashing outside the line (`iotburn image`), so it may be in another board: "+
				"burn another device, or void it if its image was never flashed: %w", deviceName, platform, product, ErrExported)
		}
		held, err := scanUnit(tx.QueryRow(`SELECT `+unitCols+unitFrom+`WHERE u.hw_id = ?`+tx.d.forUpdateUnits, hwID))
		switch {
		case err == nil && held.CredentialID != credID:
			return fmt.Errorf("ledger: board %s already holds device %s of %s/%s, and a board keeps its credential: %w",
				hwID, held.Cred.DeviceName, held.Cred.Platform, held.Cred.ProductID, ErrTaken)
		case err == nil && held.State == Void:
			return fmt.Errorf("ledger: board %s (device %s) was voided (%s): %w", hwID, deviceName, held.Error, ErrVoid)
		case err == nil:
			err = l.reclaim(tx, now, held.ID, station, port)
		case errors.Is(err, sql.ErrNoRows):
			var other string
			err = tx.QueryRow(`SELECT hw_id FROM units WHERE credential_id = ?`, credID).Scan(&other)
			if err == nil {
				return fmt.Errorf("ledger: device %s is on board %s: one credential, one board: %w", deviceName, other, ErrTaken)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			err = l.newUnit(tx, now, hwID, credID, station, port)
		}
		if err != nil {
			return err
		}
		u, err = scanUnit(tx.QueryRow(`SELECT `+unitCols+unitFrom+`WHERE u.hw_id = ?`, hwID))
		return err
	})
	if err != nil {
		return Unit{}, fmt.Errorf("claim %s for board %s: %w", deviceName, hwID, err)
	}
	return u, nil
}

// transition moves a unit to state `to` if it is in one of `from`, setting
// the extra columns in set (an SQL fragment with ? placeholders for args),
// and appends the event in the same transaction. A commit cut off by a lost
// connection is looked up once the ledger answers again: the unit in state
// `to` with this transition's stamp means it was recorded.
func (l *Ledger) transition(unitID int64, from []State, to State, set string, args ...any) error {
	return l.transitionWith(writeOpts{}, unitID, from, to, nil, set, args...)
}

// transitionThen is transition with then run in the same transaction after
// the unit moved (nil: nothing more).
func (l *Ledger) transitionThen(unitID int64, from []State, to State, then func(tx *txn) error, set string, args ...any) error {
	return l.transitionWith(writeOpts{}, unitID, from, to, then, set, args...)
}

// transitionWith is a transition written with o (then as for transitionThen).
func (l *Ledger) transitionWith(o writeOpts, unitID int64, from []State, to State, then func(tx *txn) error, set string, args ...any) error {
	var now int64
	settled := func(tx *txn) (bool, error) {
		var cur State
		var at int64
		err := tx.QueryRow(`SELECT state, updated_at FROM units WHERE id = ?`, unitID).Scan(&cur, &at)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return err == nil && cur == to && at == now, err
	}
	o.settled = settled
	return l.writeWith(o, func(tx *txn) error {
		now = l.nowMS()
		var cur State
		err := tx.QueryRow(`SELECT state FROM units WHERE id = ?`+tx.d.forUpdate, unitID).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("ledger: unit %d: %w", unitID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		ok := false
		for _, s := range from {
			ok = ok || s == cur
		}
		if !ok {
			return fmt.Errorf("ledger: unit %d is %s, cannot become %s: %w", unitID, cur, to, ErrState)
		}
		q := `UPDATE units SET state = ?, updated_at = ?`
		if set != "" {
			q += ", " + set
		}
		if _, err := tx.Exec(q+` WHERE id = ?`, append(append([]any{to, now}, args...), unitID)...); err != nil {
			return err
		}
		if err := logUnit(tx, now, unitID, cur, to); err != nil {
			return err
		}
		if then != nil {
			return then(tx)
		}
		return nil
	})
}

// Begin marks the unit burning: call it just before the first byte goes to
// the board. It counts an attempt and forgets a previous burn's result, so a
// failed, interrupted (still burning after a crash) or re-burned board starts
// again with the same credential. From here the credential is the board's:
// the claim's lease is gone, and the unit is never released.
func (l *Ledger) Begin(unitID int64) error {
	// Durable before the first byte, but grouped (writeOpts): boards that
	// arrive together share one fsync.
	return l.transitionWith(writeOpts{grouped: true}, unitID, []State{Reserved, Burning, Failed, Burned, Verified}, Burning,
		nil, `attempts = attempts + 1, started_at = ?, error = '', burned_at = NULL, duration_ms = NULL, lease_until = NULL`, l.nowMS())
}

// Burned records that the image was written and read back; d is how long it took.
func (l *Ledger) Burned(unitID int64, d time.Duration) error {
	// Lazy (writeOpts): lost in a power cut, the unit is burning again and
	// the line burns the same credential into the same board again.
	return l.transitionWith(writeOpts{lazy: true}, unitID, []State{Burning}, Burned, nil, `burned_at = ?, duration_ms = ?`, l.nowMS(), d.Milliseconds())
}

// Verified records that QA found the board holding its credential. Verifying
// again is harmless.
func (l *Ledger) Verified(unitID int64) error {
	return l.transition(unitID, []State{Burned, Verified}, Verified, ``)
}

// VerifiedWithKey records a verification in which the board was found to
// hold secret, the key the platform holds for its device now, and makes it
// the credential's stored key in the same transaction. The platform issues a
// fresh key when a pre-created device registers itself before its first
// connect (Tencent IoT Hub, doc 1081/138031: the old key stops working), so
// in the product-level modes the key create stored is replaced by the
// board's own registration; the ledger keeps the one that logs in. The
// audit then shows the new key's fingerprint.
func (l *Ledger) VerifiedWithKey(unitID int64, secret string) error {
	if secret == "" {
		return l.Verified(unitID)
	}
	return l.transitionThen(unitID, []State{Burned, Verified}, Verified, func(tx *txn) error {
		_, err := tx.Exec(`UPDATE credentials SET secret = ? WHERE id = (SELECT credential_id FROM units WHERE id = ?)`, secret, unitID)
		return err
	}, ``)
}

// Fail records why the unit failed; it keeps its credential and resumes with
// Begin. The reason is stored and printed in audits: the caller must make
// sure it holds no secret (no image bytes, no raw AT replies with the key).
func (l *Ledger) Fail(unitID int64, reason string) error {
	if reason == "" {
		reason = "failed"
	}
	return l.transition(unitID, []State{Reserved, Burning, Burned, Verified, Failed}, Failed, `error = ?`, reason)
}

// UnitByHW looks a board up by hardware id.
func (l *Ledger) UnitByHW(hwID string) (Unit, bool, error) {
	u, err := scanUnit(l.queryRow(`SELECT `+unitCols+unitFrom+`WHERE u.hw_id = ?`, hwID))
	if errors.Is(err, sql.ErrNoRows) {
		return Unit{}, false, nil
	}
	if err != nil {
		return Unit{}, false, err
	}
	return u, true, nil
}

// Void scraps a credential (a dead board, a leaked secret): the credential and
// its unit, if any, become void and the credential is never handed to another
// board. Voiding a void credential again keeps the first reason. Deleting the
// device on the platform is the caller's business.
func (l *Ledger) Void(platform, product, deviceName, reason string) error {
	if reason == "" {
		return errors.New("ledger: void needs a reason (it goes into the audit)")
	}
	return l.write(func(tx *txn) error {
		now := l.nowMS()
		var id int64
		var state string
		err := tx.QueryRow(`SELECT id, state FROM credentials WHERE platform = ? AND product = ? AND device_name = ?`+tx.d.forUpdate,
			platform, product, deviceName).Scan(&id, &state)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("ledger: device %s of %s/%s: %w", deviceName, platform, product, ErrNotFound)
		}
		if err != nil || state == "void" {
			return err
		}
		var unitID int64
		var unitState State
		err = tx.QueryRow(`SELECT id, state FROM units WHERE credential_id = ?`+tx.d.forUpdate, id).Scan(&unitID, &unitState)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(`UPDATE credentials SET state = 'void', void_reason = ? WHERE id = ?`, reason, id); err != nil {
			return err
		}
		if unitID == 0 {
			// No board ever held it: the event has no unit, but the audit
			// still shows when and why the credential was scrapped.
			from := Created
			if state == string(Exported) {
				from = Exported
			}
			_, err = tx.Exec(`INSERT INTO events (time, platform, product, device_name, from_state, to_state, error)
				SELECT CAST(? AS BIGINT), platform, product, device_name, CAST(? AS TEXT), 'void',
					CASE WHEN device_private_key = '' THEN
						CASE WHEN secret = '' THEN void_reason ELSE replace(void_reason, secret, '[secret]') END
					ELSE replace(CASE WHEN secret = '' THEN void_reason ELSE replace(void_reason, secret, '[secret]') END, device_private_key, '[secret]') END
				FROM credentials WHERE id = ?`, now, string(from), id)
			return err
		}
		if _, err := tx.Exec(`UPDATE units SET state = 'void', error = ?, updated_at = ?, lease_until = NULL WHERE id = ?`,
			reason, now, unitID); err != nil {
			return err
		}
		return logUnit(tx, now, unitID, unitState, Void)
	})
}

// Release undoes a Claim whose credential never reached the board (no Begin:
// attempts is 0), returning the credential to the free pool; for a board
// unplugged before burning started. Once a burn has begun the board may hold
// the secret, so Release refuses: Void it instead.
func (l *Ledger) Release(hwID string) error {
	return l.write(func(tx *txn) error {
		var id, credID int64
		var attempts int
		var state State
		err := tx.QueryRow(`SELECT id, credential_id, attempts, state FROM units WHERE hw_id = ?`+tx.d.forUpdate, hwID).
			Scan(&id, &credID, &attempts, &state)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("ledger: board %s: %w", hwID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if attempts != 0 || (state != Reserved && state != Failed) {
			return fmt.Errorf("ledger: board %s is %s after %d burn attempt(s): it may hold its secret; void it instead: %w",
				hwID, state, attempts, ErrState)
		}
		return releaseUnit(tx, l.nowMS(), id, credID, state)
	})
}

// Counts is a census of credentials. Every credential is counted once, in
// exactly one state: Void if voided, Exported if handed out for flashing
// outside the line, Created if no board has it, else its unit's state. So
// the values of ByState add up to Total.
type Counts struct {
	ByState map[State]int
	Free    int // credentials the line can still give a board (= ByState[Created])
	Total   int // credentials
}

// Counts takes the census for platform/product; "" for either means all.
func (l *Ledger) Counts(platform, product string) (Counts, error) {
	rows, err := l.query(`SELECT CASE WHEN c.state IN ('void', 'exported') THEN c.state WHEN u.id IS NULL THEN 'created' ELSE u.state END AS s,
			count(*)
		FROM credentials c LEFT JOIN units u ON u.credential_id = c.id
		WHERE (?1 = '' OR c.platform = ?1) AND (?2 = '' OR c.product = ?2)
		GROUP BY s`, platform, product)
	if err != nil {
		return Counts{}, err
	}
	defer rows.Close()
	c := Counts{ByState: map[State]int{}}
	for rows.Next() {
		var s State
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return Counts{}, err
		}
		c.ByState[s] = n
		c.Total += n
	}
	c.Free = c.ByState[Created]
	return c, rows.Err()
}

// Filter selects units (EachUnit) or events (EachEvent); zero fields match
// everything.
type Filter struct {
	Platform, Product, Station string
	Since                      time.Time // units changed, or events, at or after Since
	HWID                       string    // one board
}

// EachUnit calls fn for every unit matching f, in claim order (the order the
// boards were first seen), streaming: memory does not grow with the number of
// rows. fn's error stops the walk and is returned. fn may call other Ledger
// methods (the walk holds a read snapshot, which does not block writers).
func (l *Ledger) EachUnit(f Filter, fn func(Unit) error) error {
	var since int64
	if !f.Since.IsZero() {
		since = f.Since.UnixMilli()
	}
	rows, err := l.query(`SELECT `+unitCols+unitFrom+`
		WHERE (?1 = '' OR c.platform = ?1) AND (?2 = '' OR c.product = ?2) AND (?3 = '' OR u.station = ?3)
		  AND u.updated_at >= ?4 AND (?5 = '' OR u.hw_id = ?5)
		ORDER BY u.id`, f.Platform, f.Product, f.Station, since, f.HWID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUnit(rows)
		if err != nil {
			return err
		}
		if err := fn(u); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Credentials calls fn for every credential of platform/product that is not
// void, in creation order, streaming (`iotburn ledger export`). The
// values carry secrets: handle them accordingly.
func (l *Ledger) Credentials(platform, product string, fn func(registry.Credential) error) error {
	rows, err := l.query(`SELECT platform, product, device_name, secret, region, device_cert, device_private_key FROM credentials
		WHERE platform = ? AND product = ? AND state != 'void' ORDER BY id`, platform, product)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var c registry.Credential
		if err := rows.Scan(&c.Platform, &c.ProductID, &c.DeviceName, &c.DeviceSecret, &c.Region, &c.DeviceCert, &c.DevicePrivateKey); err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Credential looks one device's credential up. A missing device wraps
// ErrNotFound; a void one wraps ErrVoid (nothing should be burned with it).
func (l *Ledger) Credential(platform, product, deviceName string) (registry.Credential, error) {
	var c registry.Credential
	var state, reason string
	err := l.queryRow(`SELECT platform, product, device_name, secret, region, device_cert, device_private_key, state, void_reason FROM credentials
		WHERE platform = ? AND product = ? AND device_name = ?`, platform, product, deviceName).
		Scan(&c.Platform, &c.ProductID, &c.DeviceName, &c.DeviceSecret, &c.Region, &c.DeviceCert, &c.DevicePrivateKey, &state, &reason)
	if errors.Is(err, sql.ErrNoRows) {
		return registry.Credential{}, fmt.Errorf("ledger: device %s of %s/%s: %w", deviceName, platform, product, ErrNotFound)
	}
	if err != nil {
		return registry.Credential{}, err
	}
	if state == "void" {
		return registry.Credential{}, fmt.Errorf("ledger: device %s of %s/%s was voided (%s): %w",
			deviceName, platform, product, reason, ErrVoid)
	}
	return c, nil
}

// AddName records a device that the line names itself, for the product-level
// modes where the platform creates the device when the board registers
// (Tencent auto-create, Aliyun registration-free). It has no secret: the
// board fetches its own. A name already present is left as it is.
func (l *Ledger) AddName(platform, product, region, deviceName string) error {
	if platform == "" || product == "" || deviceName == "" {
		return errors.New("ledger: a name needs a platform, a product and a device name")
	}
	return l.write(func(tx *txn) error {
		_, err := tx.Exec(`INSERT INTO credentials (platform, product, region, device_name, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (platform, product, device_name) DO NOTHING`, platform, product, region, deviceName, l.nowMS())
		return err
	})
}
