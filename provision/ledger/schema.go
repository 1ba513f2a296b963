package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrations[i] takes the schema from user_version i to i+1. Append only: a
// released migration is never edited, because ledgers in the field have
// already run it. Each runs in one transaction together with the version bump,
// so a crash mid-migration leaves the previous version intact.
var migrations = []string{
	// v1: the three books.
	`
CREATE TABLE requests (
	id         INTEGER PRIMARY KEY,
	platform   TEXT    NOT NULL,
	product    TEXT    NOT NULL,
	names      TEXT    NOT NULL,              -- JSON array of device names
	task_id    TEXT    NOT NULL DEFAULT '',   -- vendor task / apply id, once known
	state      TEXT    NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done')),
	created_at INTEGER NOT NULL,              -- unix milliseconds, UTC
	done_at    INTEGER
);
CREATE INDEX requests_open ON requests (platform, product) WHERE state = 'open';

CREATE TABLE credentials (
	id          INTEGER PRIMARY KEY,
	platform    TEXT    NOT NULL,
	product     TEXT    NOT NULL,
	region      TEXT    NOT NULL DEFAULT '',
	device_name TEXT    NOT NULL,
	secret      TEXT    NOT NULL DEFAULT '',
	request_id  INTEGER REFERENCES requests (id),
	-- free: no unit yet; taken: a unit holds it (forever); void: scrapped.
	-- Derived from units by the triggers below and kept as a column so the
	-- "oldest free credential" lookup is an index seek, not a scan of every
	-- credential ever burned.
	state       TEXT    NOT NULL DEFAULT 'free' CHECK (state IN ('free', 'taken', 'void')),
	void_reason TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	UNIQUE (platform, product, device_name)
);
CREATE INDEX credentials_free ON credentials (platform, product, id) WHERE state = 'free';

CREATE TABLE units (
	id            INTEGER PRIMARY KEY,
	hw_id         TEXT    NOT NULL UNIQUE,
	credential_id INTEGER NOT NULL UNIQUE REFERENCES credentials (id),
	station       TEXT    NOT NULL DEFAULT '',
	port          TEXT    NOT NULL DEFAULT '',
	state         TEXT    NOT NULL CHECK (state IN ('reserved', 'burning', 'burned', 'verified', 'failed', 'void')),
	attempts      INTEGER NOT NULL DEFAULT 0,
	error         TEXT    NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	started_at    INTEGER,
	updated_at    INTEGER NOT NULL,
	burned_at     INTEGER,
	duration_ms   INTEGER
);

-- The database guards its own invariants, so that a bug in Go code (or a
-- hand-edit with the sqlite3 shell) cannot hand one credential to two boards.
CREATE TRIGGER units_claim_free BEFORE INSERT ON units
WHEN (SELECT state FROM credentials WHERE id = NEW.credential_id) IS NOT 'free'
BEGIN
	SELECT RAISE(ABORT, 'credential is not free');
END;
CREATE TRIGGER units_take AFTER INSERT ON units
BEGIN
	UPDATE credentials SET state = 'taken' WHERE id = NEW.credential_id;
END;
CREATE TRIGGER units_credential_forever BEFORE UPDATE OF credential_id ON units
WHEN NEW.credential_id IS NOT OLD.credential_id
BEGIN
	SELECT RAISE(ABORT, 'a unit keeps its credential forever');
END;
CREATE TRIGGER credentials_void_forever BEFORE UPDATE OF state ON credentials
WHEN OLD.state = 'void' AND NEW.state IS NOT 'void'
BEGIN
	SELECT RAISE(ABORT, 'a void credential stays void');
END;
`,
	// v2: the history. units holds only each board's latest state, so a
	// re-burn overwrote the previous attempt and a board refused before it
	// had a credential left no trace. events is appended to in the same
	// transaction as every transition (and by Refused), so the two can never
	// disagree, whatever instant a crash hits.
	`
CREATE TABLE events (
	id          INTEGER PRIMARY KEY,
	time        INTEGER NOT NULL,              -- unix milliseconds, UTC
	-- The unit the event is about; NULL for a board refused before it had a
	-- credential, and for a credential voided while no board held it. No
	-- REFERENCES: history must outlive a unit deleted by Release.
	unit_id     INTEGER,
	-- Copied, not joined: the event says where the board was and what it
	-- held at that moment, even after the unit moves on or goes away.
	hw_id       TEXT    NOT NULL DEFAULT '',   -- '' when the board never told it
	station     TEXT    NOT NULL DEFAULT '',
	port        TEXT    NOT NULL DEFAULT '',
	platform    TEXT    NOT NULL DEFAULT '',
	product     TEXT    NOT NULL DEFAULT '',
	device_name TEXT    NOT NULL DEFAULT '',
	-- '' = no state before (a refused board; history carried over from v1).
	from_state  TEXT    NOT NULL DEFAULT '' CHECK (from_state IN ('', 'created', 'reserved', 'burning', 'burned', 'verified', 'failed', 'void')),
	to_state    TEXT    NOT NULL CHECK (to_state IN ('reserved', 'burning', 'burned', 'verified', 'failed', 'void', 'released', 'refused')),
	attempt     INTEGER NOT NULL DEFAULT 0,    -- the unit's burn attempts after the event
	duration_ms INTEGER,                       -- the burn's, on 'burned' events only
	error       TEXT    NOT NULL DEFAULT ''    -- never a secret: cut out on the way in
);
-- Per-unit history, and max(unit_id) for Claim's choice of a fresh unit id.
CREATE INDEX events_unit ON events (unit_id);

-- An audit trail that can be edited is not one.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
	SELECT RAISE(ABORT, 'the event history is append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
	SELECT RAISE(ABORT, 'the event history is append-only');
END;

-- Units from a v1 ledger get one event for the state they are in, stamped
-- with their last change and with no from-state: what happened before was
-- never recorded, and inventing it would be worse than saying so. It keeps
-- "a unit's state is the to_state of its last event" true for old units too.
INSERT INTO events (time, unit_id, hw_id, station, port, platform, product, device_name,
	from_state, to_state, attempt, duration_ms, error)
SELECT u.updated_at, u.id, u.hw_id, u.station, u.port, c.platform, c.product, c.device_name,
	'', u.state, u.attempts, CASE WHEN u.burned_at IS NOT NULL THEN u.duration_ms END,
	CASE WHEN c.secret = '' THEN u.error ELSE replace(u.error, c.secret, '[secret]') END
FROM units u JOIN credentials c ON c.id = u.credential_id
ORDER BY u.updated_at, u.id;
`,
	// v3: exports. `iotburn image` for a whole product used to write every
	// credential and record nothing, so a file flashed with another tool
	// could hold a credential the line later gave to a board. A credential
	// handed out for flashing outside the line is now 'exported': no unit,
	// never free again (only void), so the line never gives it to a board;
	// and every image written is an 'exported' event. CHECK constraints
	// cannot be altered in SQLite, so credentials and events are rebuilt as
	// SQLite's own procedure has it (sqlite.org/lang_altertable.html, "Making
	// Other Kinds Of Table Schema Changes"): foreign keys off for the
	// connection (migrate does that), new table, copy, drop, rename, then the
	// indexes and triggers again, and a foreign_key_check before the commit.
	// The triggers on units name credentials, and a rename checks every
	// trigger of the schema, so those two are dropped first and made again
	// word for word. Rows keep their ids, so units and events still point at
	// them.
	`
DROP TRIGGER units_claim_free;
DROP TRIGGER units_take;

CREATE TABLE credentials_v3 (
	id          INTEGER PRIMARY KEY,
	platform    TEXT    NOT NULL,
	product     TEXT    NOT NULL,
	region      TEXT    NOT NULL DEFAULT '',
	device_name TEXT    NOT NULL,
	secret      TEXT    NOT NULL DEFAULT '',
	request_id  INTEGER REFERENCES requests (id),
	-- free: no unit yet; taken: a unit holds it (forever); void: scrapped;
	-- exported: handed out for flashing outside the line (no unit, ever).
	-- Derived from units by the triggers below and kept as a column so the
	-- "oldest free credential" lookup is an index seek, not a scan of every
	-- credential ever burned.
	state       TEXT    NOT NULL DEFAULT 'free' CHECK (state IN ('free', 'taken', 'void', 'exported')),
	void_reason TEXT    NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	UNIQUE (platform, product, device_name)
);
INSERT INTO credentials_v3 (id, platform, product, region, device_name, secret, request_id, state, void_reason, created_at)
SELECT id, platform, product, region, device_name, secret, request_id, state, void_reason, created_at FROM credentials;
DROP TABLE credentials;
ALTER TABLE credentials_v3 RENAME TO credentials;
CREATE INDEX credentials_free ON credentials (platform, product, id) WHERE state = 'free';

CREATE TRIGGER units_claim_free BEFORE INSERT ON units
WHEN (SELECT state FROM credentials WHERE id = NEW.credential_id) IS NOT 'free'
BEGIN
	SELECT RAISE(ABORT, 'credential is not free');
END;
CREATE TRIGGER units_take AFTER INSERT ON units
BEGIN
	UPDATE credentials SET state = 'taken' WHERE id = NEW.credential_id;
END;
CREATE TRIGGER credentials_void_forever BEFORE UPDATE OF state ON credentials
WHEN OLD.state = 'void' AND NEW.state IS NOT 'void'
BEGIN
	SELECT RAISE(ABORT, 'a void credential stays void');
END;
-- An exported credential may be in a board flashed elsewhere: giving it
-- to a board here (or back to the pool) could put it in two.
CREATE TRIGGER credentials_exported_forever BEFORE UPDATE OF state ON credentials
WHEN OLD.state = 'exported' AND NEW.state NOT IN ('exported', 'void')
BEGIN
	SELECT RAISE(ABORT, 'an exported credential is never given to a board');
END;
-- Only a free credential can be exported.
CREATE TRIGGER credentials_export_free BEFORE UPDATE OF state ON credentials
WHEN NEW.state = 'exported' AND OLD.state NOT IN ('free', 'exported')
BEGIN
	SELECT RAISE(ABORT, 'only a free credential can be exported');
END;

CREATE TABLE events_v3 (
	id          INTEGER PRIMARY KEY,
	time        INTEGER NOT NULL,              -- unix milliseconds, UTC
	-- The unit the event is about; NULL for a board refused before it had a
	-- credential, for a credential voided while no board held it, and for
	-- exports (an image written is not a step of the board's own history).
	-- No REFERENCES: history must outlive a unit deleted by Release.
	unit_id     INTEGER,
	-- Copied, not joined: the event says where the board was and what it
	-- held at that moment, even after the unit moves on or goes away.
	hw_id       TEXT    NOT NULL DEFAULT '',   -- '' when the board never told it
	station     TEXT    NOT NULL DEFAULT '',
	port        TEXT    NOT NULL DEFAULT '',
	platform    TEXT    NOT NULL DEFAULT '',
	product     TEXT    NOT NULL DEFAULT '',
	device_name TEXT    NOT NULL DEFAULT '',
	-- '' = no state before (a refused board; history carried over from v1).
	from_state  TEXT    NOT NULL DEFAULT '' CHECK (from_state IN ('', 'created', 'reserved', 'burning', 'burned', 'verified', 'failed', 'void', 'exported')),
	to_state    TEXT    NOT NULL CHECK (to_state IN ('reserved', 'burning', 'burned', 'verified', 'failed', 'void', 'released', 'refused', 'exported')),
	attempt     INTEGER NOT NULL DEFAULT 0,    -- the unit's burn attempts after the event
	duration_ms INTEGER,                       -- the burn's, on 'burned' events only
	error       TEXT    NOT NULL DEFAULT ''    -- never a secret: cut out on the way in
);
INSERT INTO events_v3 (id, time, unit_id, hw_id, station, port, platform, product, device_name,
	from_state, to_state, attempt, duration_ms, error)
SELECT id, time, unit_id, hw_id, station, port, platform, product, device_name,
	from_state, to_state, attempt, duration_ms, error FROM events;
DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;
CREATE INDEX events_unit ON events (unit_id);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
	SELECT RAISE(ABORT, 'the event history is append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
	SELECT RAISE(ABORT, 'the event history is append-only');
END;
`,
	// v4: many stations, one batch. A claim nothing was written for has a
	// lease (units.lease_until): a station that died holding it gets it back
	// when it restarts, or its credential goes back to the pool when the
	// lease runs out. Each station's session is a row of stations. moves
	// records that this file's books were moved to a shared ledger
	// (`iotburn ledger export --to`): from then on it is an archive, and
	// writes are refused. (units.lease_until, INTEGER,
	// unix ms, NULL for no lease, is added first by addColumns: SQLite has
	// no ADD COLUMN IF NOT EXISTS. Every statement here holds if it ran
	// before, so a file whose version was set back by hand migrates too.)
	`
CREATE INDEX IF NOT EXISTS units_lease ON units (lease_until) WHERE lease_until IS NOT NULL;

CREATE TABLE IF NOT EXISTS stations (
	name       TEXT    PRIMARY KEY,
	host       TEXT    NOT NULL DEFAULT '',
	pid        INTEGER NOT NULL DEFAULT 0,
	started_at INTEGER NOT NULL,              -- the session started
	seen_at    INTEGER NOT NULL               -- its last heartbeat
);

CREATE TABLE IF NOT EXISTS moves (
	id          INTEGER PRIMARY KEY,
	target      TEXT    NOT NULL,             -- the shared ledger, without its password
	state       TEXT    NOT NULL CHECK (state IN ('moving', 'moved')),
	started_at  INTEGER NOT NULL,
	done_at     INTEGER,
	credentials INTEGER NOT NULL DEFAULT 0,
	units       INTEGER NOT NULL DEFAULT 0,
	events      INTEGER NOT NULL DEFAULT 0
);

`,
	// v5: device certificates. A certificate product's device (X.509:
	// Tencent EncryptionType "1", Aliyun AuthType "x509") has no secret but
	// a certificate and its private key, both PEM, as the platform issued
	// them: the private key is a secret like secret (Tencent hands it out
	// once, so the ledger is its only copy). Both columns are added by
	// addColumns ('' for every device before); nothing else changes.
	`SELECT 1`,
	// v6: gateways and their sub-devices. A pairing is recorded when the
	// factory pairs a kit (a gateway shipped with its sub-devices): a
	// sub-device has one gateway (the key), a gateway at most MaxSubDevices
	// (Pair checks it in the transaction that adds them, with the gateway's
	// row locked), and a pairing is never changed (the gateway registers and
	// binds exactly what its kit holds).
	pairingsSQL + `
CREATE TRIGGER IF NOT EXISTS pairings_forever BEFORE UPDATE ON pairings
BEGIN SELECT RAISE(ABORT, 'a sub-device keeps its gateway'); END;
`,
}

// pairingsSQL is v6's table, the same on both engines.
const pairingsSQL = `
CREATE TABLE IF NOT EXISTS pairings (
	sub_id     BIGINT  NOT NULL PRIMARY KEY REFERENCES credentials (id),  -- a sub-device has one gateway
	gateway_id BIGINT  NOT NULL REFERENCES credentials (id),
	paired_at  BIGINT  NOT NULL,
	CHECK (sub_id <> gateway_id)
);
CREATE INDEX IF NOT EXISTS pairings_gateway ON pairings (gateway_id);
`

// Version is the schema version this iotburn writes (PRAGMA user_version).
var Version = len(migrations)

// addColumns are the columns migration i (to version i+1) adds before its
// SQL runs, each only if the table lacks it.
var addColumns = map[int][]struct{ table, column, decl string }{
	3: {{"units", "lease_until", "INTEGER"}},
	4: {
		{"credentials", "device_cert", "TEXT NOT NULL DEFAULT ''"},
		{"credentials", "device_private_key", "TEXT NOT NULL DEFAULT ''"},
	},
}

func addMissingColumns(ctx context.Context, tx *sql.Tx, step int) error {
	for _, c := range addColumns[step] {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, c.table, c.column).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			// Names are our own constants, not input.
			if _, err := tx.ExecContext(ctx, `ALTER TABLE `+c.table+` ADD COLUMN `+c.column+` `+c.decl); err != nil {
				return err
			}
		}
	}
	return nil
}

// migrate brings the schema to len(migrations). It runs in an IMMEDIATE
// transaction (the DSN's _txlock), so two processes opening a fresh file at
// the same moment do not both create the tables.
//
// It runs on one connection with foreign keys off: a migration that
// rebuilds a table other tables reference (v3) would otherwise have the
// DROP refused or, worse, cascade. PRAGMA foreign_keys cannot change inside
// a transaction, so it is set around them, each transaction proves with
// foreign_key_check that nothing dangles before it commits, and the
// connection goes back to the pool with foreign keys on again (or the open
// fails).
func migrate(ctx context.Context, db *sql.DB) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return err
	}
	defer func() {
		var on int
		_, e := conn.ExecContext(ctx, `PRAGMA foreign_keys = ON`)
		if e == nil {
			e = conn.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&on)
		}
		if e == nil && on != 1 {
			e = errors.New("foreign keys stayed off")
		}
		if e != nil && err == nil {
			err = fmt.Errorf("after migrating: %w", e)
		}
	}()
	for {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		var v int
		if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
			tx.Rollback()
			return err
		}
		if v > len(migrations) {
			tx.Rollback()
			return fmt.Errorf("ledger schema version %d is newer than this iotburn understands (%d): upgrade iotburn", v, len(migrations))
		}
		if v == len(migrations) {
			return tx.Rollback()
		}
		if err := addMissingColumns(ctx, tx, v); err != nil {
			tx.Rollback()
			return fmt.Errorf("ledger migration to version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("ledger migration to version %d: %w", v+1, err)
		}
		if n, err := countRows(ctx, tx, `PRAGMA foreign_key_check`); err != nil || n != 0 {
			tx.Rollback()
			return fmt.Errorf("ledger migration to version %d: %d foreign key violation(s) (%v): nothing was changed", v+1, n, err)
		}
		// PRAGMA takes no bound parameters; v is our own integer.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
}

// countRows counts the rows a query returns.
func countRows(ctx context.Context, tx *sql.Tx, q string) (int, error) {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}
