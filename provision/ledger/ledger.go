// Package ledger keeps iotburn's books: which device creations were asked
// of the platform (requests), which credentials exist (credentials), and
// which physical board holds which credential (units), with an append-only
// history of every step (events). One station keeps them in a SQLite file;
// many stations burning one batch share them on PostgreSQL (Open with a
// postgres:// URL). Both engines hold the same schema, states, constraints
// and guarding triggers; what differs (placeholders, DDL, locking, backup,
// integrity checks) is behind the small dialect type.
//
// The promise is "nothing lost, nothing twice" (DESIGN.md §4):
//   - a platform create call is journalled before it is sent, so a crash
//     between "platform created" and "secrets stored" can be healed;
//   - a credential, once given to a board, belongs to that board forever: the
//     schema has UNIQUE(units.credential_id) and UNIQUE(units.hw_id), and
//     triggers refuse to move a credential or revive a void one;
//   - every state change is one transaction (SQLite with synchronous=FULL),
//     so a kill -9 at any instant leaves either the old state or the new one;
//     a claim and a burn's end alone are lazy commits (durable with the next
//     one: see writeOpts.lazy), because the line repeats them safely if a
//     power cut takes them; the begin of a burn, before the first byte goes
//     to a board, is always durable, but boards beginning together share
//     one fsync on SQLite (a group commit: writeOpts.grouped, groupSync);
//   - stations sharing a PostgreSQL ledger never wait for one another's
//     claims (FOR UPDATE SKIP LOCKED) and never take the same credential; a
//     claim nothing was written for has a lease, so a station that dies
//     holding claims gets them back when it starts again, or they go back
//     to the pool when the lease runs out.
//
// A SQLite file holds device secrets: it is created 0600 (and its -wal/-shm
// too). No error or log line produced here contains a secret, nor a
// PostgreSQL password (Path and errors show the URL without it).
package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/iotburn/iotburn/registry"

	_ "modernc.org/sqlite" // driver "sqlite"
)

// State is where a credential stands on the line.
type State string

// The states. Created is a credential no board has yet; the others are the
// states of a unit (a board holding a credential). Void is a scrapped
// credential: it is never handed to another board.
const (
	Created  State = "created"
	Reserved State = "reserved"
	Burning  State = "burning"
	Burned   State = "burned"
	Verified State = "verified"
	Failed   State = "failed"
	Void     State = "void"
	// Exported is a credential handed out for flashing outside the line
	// (`iotburn image`): it has no unit and is never given to a board here.
	Exported State = "exported"
)

// States lists every state in line order, for reports that want a stable order.
var States = []State{Created, Exported, Reserved, Burning, Burned, Verified, Failed, Void}

// Errors callers can test with errors.Is. They are always wrapped with what
// was asked for and what to do next.
var (
	ErrNoCredentials = errors.New("no free credentials")
	ErrNotFound      = errors.New("not found in the ledger")
	ErrVoid          = errors.New("credential is void")
	ErrState         = errors.New("not allowed in this state")
	ErrWrongProduct  = errors.New("board already holds a credential of another product")
	ErrTaken         = errors.New("credential and board already belong to others")
	ErrSecretDiffers = errors.New("platform returned a different secret for a device already in the ledger")
	ErrExported      = errors.New("credential was exported for flashing outside the line")
)

// busyTimeout is how long a write waits for another process's transaction.
// Every transaction here is a handful of row writes, so 15 s only runs out
// when something is badly wrong (a process stopped in a debugger).
const busyTimeout = 15 * time.Second

// Ledger is an open ledger: a SQLite file, or a PostgreSQL database shared
// by many stations. It is safe for concurrent use by many goroutines, and
// many processes may open the same ledger.
type Ledger struct {
	db   *sql.DB
	path string // as printed: a PostgreSQL URL without its password
	d    *dialect

	// wmu serialises this process's write transactions on SQLite. SQLite
	// allows one writer at a time anyway; queueing goroutines on a mutex is
	// cheaper and fairer than having them spin in SQLite's busy handler.
	// Other processes are kept in line by BEGIN IMMEDIATE + busy_timeout.
	// PostgreSQL needs none: its row locks keep stations apart.
	wmu sync.Mutex

	clock sync.Mutex
	now   func() time.Time
	lease time.Duration // how long a claim nothing was written for is kept without its station
	wait  time.Duration // how long a transaction waits for a lost connection

	readOnly bool // OpenReadOnly: write refuses

	st stations // the stations this handle claims for, and their leases

	// walSync makes grouped commits durable (writeOpts.grouped); nil on
	// PostgreSQL, which groups its commits' flushes itself.
	walSync *groupSync
	// stmts keeps the write transactions' statements prepared (SQLite: nil
	// on PostgreSQL, whose driver caches its prepared statements itself).
	stmts *stmtCache
	// lazy is SQLite's connection for lazy commits (lazyConn), under wmu.
	lazy *sql.Conn
}

// Open opens the ledger at path, creating it if needed, and brings its
// schema up to date. A path starting postgres:// or postgresql:// is a
// PostgreSQL database (github.com/jackc/pgx/v5: the URL's host, port,
// database, user, password and sslmode; host=/dir for a unix socket); the
// database must exist, its tables are made on first use. Anything else is
// a SQLite file.
//
// IOTBURN_LEDGER_LEASE (a Go duration, default DefaultLease) sets how long
// a claim whose credential never reached its board is kept for a station
// that stopped renewing it; IOTBURN_LEDGER_WAIT (default DefaultWait) how
// long a transaction waits for a lost PostgreSQL connection to come back.
func Open(path string) (*Ledger, error) {
	var (
		l   *Ledger
		err error
	)
	if IsURL(path) {
		l, err = openPostgres(path, false)
	} else {
		l, err = openSQLite(path)
	}
	if err != nil {
		return nil, err
	}
	if err := l.timesFromEnv(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func openSQLite(path string) (*Ledger, error) {
	// The driver takes everything after the first '?' as parameters and SQLite
	// reads "file:" as a URI; neither is a plain file name, so refuse rather
	// than open some other file.
	if err := plainPath(path); err != nil {
		return nil, err
	}
	// Create the file (and the WAL and shared-memory files SQLite will add)
	// 0600 before SQLite touches them: SQLite would create them with the
	// process umask, typically 0644, and the file holds device secrets.
	// SQLite gives -wal/-shm the main file's mode when it creates them; making
	// them here as well covers a umask or VFS that does not.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := createPrivate(p); err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
	}
	dsn := path + "?" + strings.Join([]string{
		fmt.Sprintf("_busy_timeout=%d", busyTimeout.Milliseconds()),
		"_foreign_keys=1",
		"_journal_mode=WAL",
		"_synchronous=FULL",
		// BEGIN IMMEDIATE takes the write lock up front. With the default
		// DEFERRED, two transactions that both read then write deadlock in
		// WAL mode (SQLITE_BUSY_SNAPSHOT, which busy_timeout does not retry).
		"_txlock=immediate",
	}, "&")
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	l := newLedger(db, path, sqliteDialect)
	l.walSync = newGroupSync(syncFiles(path+"-wal", path))
	// Connections kept open keep their prepared statements (stmtCache) and
	// their parsed schema; database/sql keeps 2 by default, and a line of
	// 16 ports reads on more at once.
	db.SetMaxIdleConns(sqliteIdleConns)
	ctx := context.Background()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		db.Close()
		return nil, fmt.Errorf("ledger %s: journal_mode is %q, want wal (%v)", path, mode, err)
	}
	l.wmu.Lock()
	err = migrate(ctx, db)
	l.wmu.Unlock()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	l.stmts = newStmtCache(db)
	return l, nil
}

func newLedger(db *sql.DB, path string, d *dialect) *Ledger {
	return &Ledger{db: db, path: Redact(path), d: d, now: time.Now, lease: DefaultLease, wait: DefaultWait}
}

// createPrivate creates p with mode 0600 if it does not exist, and takes
// group/other permissions away from an existing one: a ledger copied around
// with cp can arrive 0644.
func createPrivate(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(fi.Mode().Perm() &^ 0o077); err != nil {
			return fmt.Errorf("%s is readable by others and cannot be made private: %w", p, err)
		}
	}
	return nil
}

// Close stops renewing this handle's leases and closes the ledger.
func (l *Ledger) Close() error {
	l.stopStations()
	l.wmu.Lock()
	l.dropLazyConn()
	l.wmu.Unlock()
	if l.stmts != nil {
		l.stmts.close()
	}
	return l.db.Close()
}

// sqliteIdleConns is how many SQLite connections the pool keeps open.
const sqliteIdleConns = 8

// Path is the file the ledger lives in, or its PostgreSQL URL without the
// password: what to print.
func (l *Ledger) Path() string { return l.path }

// Engine is "sqlite" or "postgres".
func (l *Ledger) Engine() string { return l.d.engine.String() }

// SetClock replaces the clock used to stamp rows (tests, simulations).
func (l *Ledger) SetClock(now func() time.Time) {
	l.clock.Lock()
	l.now = now
	l.clock.Unlock()
}

func (l *Ledger) nowMS() int64 {
	l.clock.Lock()
	defer l.clock.Unlock()
	return l.now().UnixMilli()
}

// Times are stored as unix milliseconds: ordered, compact, and free of the
// time-zone and text-format questions an auditor's tool would otherwise ask.
func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// ---- requests: the journal of platform create calls ----

// Request is one journalled platform create call.
type Request struct {
	ID                int64
	Platform, Product string
	Names             []string
	TaskID            string // vendor task / apply id; "" until SetTask
	Done              bool
	CreatedAt         time.Time
}

// Journal records, before the call is sent, that names are about to be
// created on the platform. If the process dies before Complete, the request
// stays open and OpenRequests returns it so the next run can ask the platform
// what became of it instead of creating the names again.
func (l *Ledger) Journal(platform, product string, names []string) (Request, error) {
	if platform == "" || product == "" {
		return Request{}, errors.New("ledger: journal needs a platform and a product")
	}
	if len(names) == 0 {
		return Request{}, errors.New("ledger: journal of no names")
	}
	js, err := json.Marshal(names)
	if err != nil {
		return Request{}, err
	}
	r := Request{Platform: platform, Product: product, Names: append([]string(nil), names...)}
	err = l.write(func(tx *txn) error {
		now := l.nowMS()
		r.CreatedAt = time.UnixMilli(now).UTC()
		return tx.QueryRow(`INSERT INTO requests (platform, product, names, created_at) VALUES (?, ?, ?, ?) RETURNING id`,
			platform, product, string(js), now).Scan(&r.ID)
	})
	if err != nil {
		return Request{}, fmt.Errorf("ledger: journal %d names for %s/%s: %w", len(names), platform, product, err)
	}
	return r, nil
}

// SetTask records the vendor's task id for a journalled request as soon as
// the platform answers, so healing can query that task.
func (l *Ledger) SetTask(requestID int64, taskID string) error {
	return l.write(func(tx *txn) error {
		res, err := tx.Exec(`UPDATE requests SET task_id = ? WHERE id = ?`, taskID, requestID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("ledger: request %d: %w", requestID, ErrNotFound)
		}
		return nil
	})
}

// OpenRequests lists the requests not yet completed, oldest first: the ones a
// crash interrupted. Empty platform or product means any.
func (l *Ledger) OpenRequests(platform, product string) ([]Request, error) {
	rows, err := l.query(`SELECT id, platform, product, names, task_id, created_at FROM requests
		WHERE state = 'open' AND (?1 = '' OR platform = ?1) AND (?2 = '' OR product = ?2) ORDER BY id`,
		platform, product)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Request
	for rows.Next() {
		var r Request
		var names string
		var created sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Platform, &r.Product, &names, &r.TaskID, &created); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(names), &r.Names); err != nil {
			return nil, fmt.Errorf("ledger: request %d: names: %w", r.ID, err)
		}
		r.CreatedAt = fromMS(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

// SecretConflictError reports devices the platform returned with a secret
// other than the one already stored. It names devices, never secrets.
type SecretConflictError struct {
	RequestID int64
	Devices   []string
}

func (e *SecretConflictError) Error() string {
	return fmt.Sprintf("ledger: request %d: %d device(s) already in the ledger came back with a different secret; "+
		"the stored secret was kept (a board may already hold it): check %s on the platform",
		e.RequestID, len(e.Devices), strings.Join(e.Devices, ", "))
}

// Unwrap makes errors.Is(err, ErrSecretDiffers) true.
func (e *SecretConflictError) Unwrap() error { return ErrSecretDiffers }

// Complete stores the credentials a request produced and marks the request
// done, in one transaction: either both happen or neither.
//
// A device already in the ledger is not stored twice and not counted in
// added. If it is stored with a different secret, the stored secret is kept,
// because it may already be burned into a board and the ledger must never
// silently change what a board holds; the rest of the request is still
// committed and err is a *SecretConflictError (errors.Is ErrSecretDiffers)
// naming the devices, with added still valid. Any other error means nothing
// was committed.
//
// Every credential must belong to the request's platform and product (an
// empty Platform is taken as the request's) and name one of its names: a
// mismatch means the caller is completing the wrong request.
func (l *Ledger) Complete(requestID int64, creds []registry.Credential) (added int, err error) {
	var conflicts []string
	err = l.write(func(tx *txn) error {
		added, conflicts = 0, nil
		var platform, product, namesJS string
		err := tx.QueryRow(`SELECT platform, product, names FROM requests WHERE id = ?`+tx.d.forUpdate, requestID).
			Scan(&platform, &product, &namesJS)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("ledger: request %d: %w", requestID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		var names []string
		if err := json.Unmarshal([]byte(namesJS), &names); err != nil {
			return fmt.Errorf("ledger: request %d: names: %w", requestID, err)
		}
		asked := make(map[string]bool, len(names))
		for _, n := range names {
			asked[n] = true
		}
		now := l.nowMS()
		ins, err := tx.Prepare(`INSERT INTO credentials (platform, product, region, device_name, secret, device_cert, device_private_key, request_id, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (platform, product, device_name) DO NOTHING`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, c := range creds {
			if c.Platform == "" {
				c.Platform = platform
			}
			if c.Platform != platform || c.ProductID != product {
				return fmt.Errorf("ledger: request %d is for %s/%s, got a credential for %s/%s (device %s)",
					requestID, platform, product, c.Platform, c.ProductID, c.DeviceName)
			}
			if !asked[c.DeviceName] {
				return fmt.Errorf("ledger: request %d did not ask for device %q: wrong task?", requestID, c.DeviceName)
			}
			res, err := ins.Exec(platform, product, c.Region, c.DeviceName, c.DeviceSecret, c.DeviceCert, c.DevicePrivateKey, requestID, now)
			if err != nil {
				return fmt.Errorf("ledger: store %s: %w", c.DeviceName, err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				added++
				continue
			}
			// A certificate or key that changed is as much a conflict as a
			// secret: the board may hold the stored pair.
			var stored, cert, key string
			if err := tx.QueryRow(`SELECT secret, device_cert, device_private_key FROM credentials WHERE platform = ? AND product = ? AND device_name = ?`,
				platform, product, c.DeviceName).Scan(&stored, &cert, &key); err != nil {
				return err
			}
			if stored != c.DeviceSecret || cert != c.DeviceCert || key != c.DevicePrivateKey {
				conflicts = append(conflicts, c.DeviceName)
			}
		}
		_, err = tx.Exec(`UPDATE requests SET state = 'done', done_at = ? WHERE id = ?`, now, requestID)
		return err
	})
	if err != nil {
		return 0, err
	}
	if len(conflicts) > 0 {
		return added, &SecretConflictError{RequestID: requestID, Devices: conflicts}
	}
	return added, nil
}

// KnownNames is every device name of platform/product that is credentialled
// (void ones included: the name exists on the platform) or named in an open
// request (it may exist on the platform already). A re-run of `create` skips
// these, so nothing is created twice.
func (l *Ledger) KnownNames(platform, product string) (map[string]bool, error) {
	if platform == "" || product == "" {
		return nil, errors.New("ledger: known names need a platform and a product")
	}
	known := map[string]bool{}
	rows, err := l.query(`SELECT device_name FROM credentials WHERE platform = ? AND product = ?`, platform, product)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		known[n] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	open, err := l.OpenRequests(platform, product)
	if err != nil {
		return nil, err
	}
	for _, r := range open {
		for _, n := range r.Names {
			known[n] = true
		}
	}
	return known, nil
}
