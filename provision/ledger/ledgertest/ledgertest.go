// Package ledgertest builds big ledgers quickly, for benchmarks of the code
// that reads them (audit). Going through Claim/Begin/Burned would cost one
// synced transaction per step — minutes for 100,000 boards — so Fill writes
// the rows in one unsynced transaction straight into the ledger's schema.
// Never use it on a real ledger.
package ledgertest

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/iotburn/iotburn/provision/ledger"
)

// Fill adds n boards to the ledger file at path, each with its own credential
// of platform/product (device "dev-%07d", secret "S3CRET-%07d", board
// "HW-%07d"), claimed one per second from start on stations "st1".."st2" and
// ports "p0".."p7", in states cycling verified, burned, failed, burning,
// reserved. The ledger must not be open elsewhere.
func Fill(path, platform, product string, n int, start time.Time) error {
	l, err := ledger.Open(path) // creates the file 0600 and the schema
	if err != nil {
		return err
	}
	if err := l.Close(); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", path+"?_pragma=synchronous(OFF)&_pragma=foreign_keys(1)&_txlock=immediate")
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var base int64
	if err := tx.QueryRow(`SELECT coalesce(max(id), 0) FROM credentials`).Scan(&base); err != nil {
		return err
	}
	cred, err := tx.Prepare(`INSERT INTO credentials (id, platform, product, region, device_name, secret, created_at)
		VALUES (?, ?, ?, 'ap-guangzhou', ?, ?, ?)`)
	if err != nil {
		return err
	}
	unit, err := tx.Prepare(`INSERT INTO units (hw_id, credential_id, station, port, state, attempts, error,
		created_at, started_at, updated_at, burned_at, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	// One event per board (its last transition), so the audit's Events sheet
	// is as long as its Units sheet.
	event, err := tx.Prepare(`INSERT INTO events (time, unit_id, hw_id, station, port, platform, product, device_name,
		from_state, to_state, attempt, duration_ms, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'created', ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	states := []ledger.State{ledger.Verified, ledger.Burned, ledger.Failed, ledger.Burning, ledger.Reserved}
	for i := range n {
		id := base + int64(i) + 1
		t := start.Add(time.Duration(i) * time.Second).UnixMilli()
		if _, err := cred.Exec(id, platform, product, fmt.Sprintf("dev-%07d", id), fmt.Sprintf("S3CRET-%07d", id), t); err != nil {
			return err
		}
		st := states[i%len(states)]
		var started, burned, dur any
		errText, attempts := "", 1
		switch st {
		case ledger.Verified, ledger.Burned:
			started, burned, dur = t, t+800, 800
		case ledger.Failed:
			started, errText, attempts = t, "readback mismatch on AT+TCDEVINFOSET?", 2
		case ledger.Burning:
			started = t
		case ledger.Reserved:
			attempts = 0
		}
		res, err := unit.Exec(fmt.Sprintf("HW-%07d", id), id, fmt.Sprintf("st%d", 1+i%2), fmt.Sprintf("p%d", i%8),
			string(st), attempts, errText, t, started, t+800, burned, dur)
		if err != nil {
			return err
		}
		uid, err := res.LastInsertId()
		if err != nil {
			return err
		}
		if _, err := event.Exec(t+800, uid, fmt.Sprintf("HW-%07d", id), fmt.Sprintf("st%d", 1+i%2), fmt.Sprintf("p%d", i%8),
			platform, product, fmt.Sprintf("dev-%07d", id), string(st), attempts, dur, errText); err != nil {
			return err
		}
	}
	return tx.Commit()
}
