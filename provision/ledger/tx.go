package ledger

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrUnavailable is a ledger that could not be reached (a PostgreSQL server
// stopped, restarting or cut off) for as long as a transaction waits for it
// (Ledger.SetWait). Nothing was changed, unless the error says the
// connection was lost while committing.
var ErrUnavailable = errors.New("ledger unreachable")

// ErrUncertain is a transaction whose commit was sent when the connection
// broke: it may or may not have been recorded. The books stay sound either
// way (it was one transaction); the line finds out which when the board is
// seen again.
var ErrUncertain = errors.New("connection lost while committing: the change may or may not be recorded")

// attemptTimeout bounds one try of a transaction on PostgreSQL: every one
// here is a handful of row writes, so a try that takes this long is stuck
// on a connection that died without a word (a cable pulled), and is tried
// again on a new one.
const attemptTimeout = 15 * time.Second

// txn is one transaction: the database/sql one, with the queries bound to
// the engine's placeholders.
type txn struct {
	tx    *sql.Tx
	d     *dialect
	ctx   context.Context
	stmts *stmtCache // nil: every statement prepared afresh
}

func (t *txn) Exec(q string, args ...any) (sql.Result, error) {
	if s := t.stmt(q); s != nil {
		return s.ExecContext(t.ctx, args...)
	}
	return t.tx.ExecContext(t.ctx, t.d.bind(q), args...)
}

func (t *txn) Query(q string, args ...any) (*sql.Rows, error) {
	if s := t.stmt(q); s != nil {
		return s.QueryContext(t.ctx, args...)
	}
	return t.tx.QueryContext(t.ctx, t.d.bind(q), args...)
}

func (t *txn) QueryRow(q string, args ...any) *sql.Row {
	if s := t.stmt(q); s != nil {
		return s.QueryRowContext(t.ctx, args...)
	}
	return t.tx.QueryRowContext(t.ctx, t.d.bind(q), args...)
}

// stmt is q prepared for this transaction from the cache, or nil (no cache,
// or q could not be prepared: it is then run, and fails, the plain way).
// The transaction closes it when it ends; the cached statement stays.
func (t *txn) stmt(q string) *sql.Stmt {
	if t.stmts == nil {
		return nil
	}
	s := t.stmts.get(t.ctx, t.d.bind(q))
	if s == nil {
		return nil
	}
	return t.tx.StmtContext(t.ctx, s)
}

// stmtCache keeps the write transactions' statements prepared. On SQLite,
// parsing a statement (and compiling the triggers it fires) costs more
// than running it: 46% of a claim's CPU (pprof of BenchmarkClaims, sqlite,
// before the cache). database/sql keeps a prepared *sql.Stmt on each
// connection it has run on (Tx.StmtContext prepares it on the transaction's
// connection the first time, and reuses it after), so each statement is
// parsed once a pooled connection. SQLite re-prepares a statement by itself
// when the schema changed under it (sqlite3_prepare_v2). Statements built
// with a varying text are cached up to stmtCacheMax, then prepared afresh.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

const stmtCacheMax = 256

func newStmtCache(db *sql.DB) *stmtCache { return &stmtCache{db: db, m: map[string]*sql.Stmt{}} }

func (c *stmtCache) get(ctx context.Context, q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[q]; ok {
		return s
	}
	if len(c.m) >= stmtCacheMax {
		return nil
	}
	s, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	c.m[q] = s
	return s
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, s := range c.m {
		s.Close()
		delete(c.m, q)
	}
}

func (t *txn) Prepare(q string) (*sql.Stmt, error) {
	return t.tx.PrepareContext(t.ctx, t.d.bind(q))
}

// query and queryRow read outside a transaction (each query one snapshot).
func (l *Ledger) query(q string, args ...any) (*sql.Rows, error) {
	return l.queryContext(context.Background(), q, args...)
}

func (l *Ledger) queryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	var rows *sql.Rows
	err := l.retryRead(ctx, func() (err error) {
		rows, err = l.db.QueryContext(ctx, l.d.bind(q), args...)
		return err
	})
	return rows, err
}

// queryRow reads one row; its Scan waits for a lost connection as
// retryRead does.
func (l *Ledger) queryRow(q string, args ...any) row {
	return row{l: l, q: q, args: args}
}

type row struct {
	l    *Ledger
	q    string
	args []any
}

func (r row) Scan(dest ...any) error {
	ctx := context.Background()
	return r.l.retryRead(ctx, func() error {
		return r.l.db.QueryRowContext(ctx, r.l.d.bind(r.q), r.args...).Scan(dest...)
	})
}

// retryRead runs a read again while a PostgreSQL connection is lost, as
// write does; a read changes nothing, so it is always safe to repeat.
func (l *Ledger) retryRead(ctx context.Context, f func() error) error {
	if l.d.engine != enginePostgres {
		return f()
	}
	deadline := time.Now().Add(l.waitFor())
	for pause := 50 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		err := f()
		if err == nil || !connLost(err) || ctx.Err() != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ledger %s: %w for %v (%v)", l.path, ErrUnavailable, l.waitFor(), err)
		}
		time.Sleep(pause)
	}
}

// writeOpts say how a write transaction may be tried again.
type writeOpts struct {
	// unique: a UNIQUE violation means another station did the same thing
	// at the same instant (two claims of one board): try again, and find
	// what it did.
	unique bool
	// settled, after a connection lost while committing, says whether the
	// change is in the books (read once the ledger answers again): true, it
	// was committed; false, it was not, and is tried again. nil: the caller
	// gets ErrUncertain.
	settled func(t *txn) (bool, error)
	// moving: the transaction marks a move (MoveTo), so a move under way
	// does not refuse it.
	moving bool
	// lazy: the commit need not reach the disk before it returns; it does
	// with the next durable commit (SQLite's WAL and PostgreSQL's WAL are
	// both written in order, and a durable commit flushes all before it).
	// Only for a change whose loss in a power cut is harmless because the
	// line does it again: a claim (nothing reached the board yet; Begin,
	// durable, comes before the first byte) and a burn's end (lost, the unit
	// is burning again and the same credential is burned again into the
	// same board). A process crash loses no lazy commit: only the OS's cache
	// is skipped.
	lazy bool
	// grouped: the commit is durable when the write returns, but shares its
	// fsync with the commits made at the same time (groupSync): on SQLite it
	// is a lazy commit and then a wait for the WAL's next fsync. PostgreSQL
	// groups concurrent commits' WAL flushes itself (a backend's flush writes
	// every commit record queued before it: postgresql.org/docs/current/
	// wal-configuration.html, commit_delay), so there it is a durable commit.
	grouped bool
}

// write runs fn in one transaction, committing if fn returns nil.
//
// On SQLite the transaction is IMMEDIATE (the DSN's _txlock): it holds the
// write lock from its first statement. On PostgreSQL it is READ COMMITTED,
// and every row it changes is locked by the SELECT … FOR UPDATE that read
// it. fn is run again, from the start, when PostgreSQL asks for it (a
// serialization failure or a deadlock it broke) and while the connection
// is lost (the server stopping, restarting, unreachable), for up to the
// ledger's wait; fn must therefore set its results afresh each time.
func (l *Ledger) write(fn func(t *txn) error) error { return l.writeWith(writeOpts{}, fn) }

func (l *Ledger) writeWith(o writeOpts, fn func(t *txn) error) error {
	if l.readOnly {
		return fmt.Errorf("ledger %s: %w", l.path, ErrReadOnly)
	}
	if o.grouped && l.walSync != nil {
		o.grouped, o.lazy = false, true
		if err := l.writeWith(o, fn); err != nil {
			return err
		}
		return l.walSync.durable(l.walSync.committed())
	}
	if l.d.serialWrites {
		l.wmu.Lock()
		defer l.wmu.Unlock()
	}
	deadline := time.Now().Add(l.waitFor())
	pause := 50 * time.Millisecond
	for tries := 1; ; tries++ {
		committing, err := l.writeOnce(!o.moving, o.lazy, fn)
		if err == nil {
			return nil
		}
		if l.d.engine != enginePostgres {
			return err
		}
		switch {
		case conflict(err) && tries < 20, o.unique && uniqueViolation(err) && tries < 5,
			errors.Is(err, errFreeLocked) && tries < 500:
			time.Sleep(time.Duration(min(tries, 10)) * time.Millisecond)
			continue
		case errors.Is(err, errFreeLocked):
			return fmt.Errorf("ledger %s: %w for %d tries", l.path, err, tries)
		case !connLost(err):
			return err
		}
		if committing {
			if o.settled == nil {
				return fmt.Errorf("ledger %s: %w (%v)", l.path, ErrUncertain, err)
			}
			done, serr := l.settle(deadline, o.settled)
			if serr != nil {
				return serr
			}
			if done {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ledger %s: %w for %v (%v)", l.path, ErrUnavailable, l.waitFor(), err)
		}
		time.Sleep(pause)
		pause = min(2*pause, time.Second)
	}
}

// writeOnce is one try of a write transaction; committing says the error
// came from the COMMIT itself. lazy: see writeOpts.
func (l *Ledger) writeOnce(checkMoves, lazy bool, fn func(t *txn) error) (committing bool, err error) {
	ctx := context.Background()
	if l.d.engine == enginePostgres {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
	}
	var tx *sql.Tx
	if lazy && l.d.engine != enginePostgres {
		// SQLite's synchronous level is the connection's: lazy commits go
		// through a connection of their own, kept at NORMAL, out of the pool
		// (which stays at FULL). wmu, held by every SQLite write, keeps it
		// to one transaction at a time.
		conn, err := l.lazyConn(ctx)
		if err != nil {
			return false, err
		}
		tx, err = conn.BeginTx(ctx, nil)
		if err != nil {
			l.dropLazyConn()
			return false, err
		}
	} else {
		tx, err = l.db.BeginTx(ctx, nil)
		if err != nil {
			return false, err
		}
	}
	t := &txn{tx: tx, d: l.d, ctx: ctx, stmts: l.stmts}
	if lazy && l.d.engine == enginePostgres {
		if _, err := t.tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			tx.Rollback()
			return false, err
		}
	}
	if checkMoves && l.d.checksMoves {
		if err := refuseIfMoved(t, l.path); err != nil {
			tx.Rollback()
			return false, err
		}
	}
	if err := fn(t); err != nil {
		tx.Rollback()
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return true, err
	}
	return false, nil
}

// settle asks, once the ledger answers again, whether a transaction whose
// commit was cut off is in the books.
func (l *Ledger) settle(deadline time.Time, settled func(t *txn) (bool, error)) (bool, error) {
	for pause := 50 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		var done bool
		_, err := l.writeOnce(false, false, func(t *txn) (err error) {
			done, err = settled(t)
			return err
		})
		if err == nil {
			return done, nil
		}
		if !connLost(err) {
			return false, err
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("ledger %s: %w (%v)", l.path, ErrUncertain, err)
		}
		time.Sleep(pause)
	}
}

// lazyConn is the SQLite connection lazy commits are made on
// (synchronous=NORMAL), opened the first time; the caller holds wmu.
func (l *Ledger) lazyConn(ctx context.Context) (*sql.Conn, error) {
	if l.lazy != nil {
		return l.lazy, nil
	}
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		conn.Close()
		return nil, err
	}
	l.lazy = conn
	return conn, nil
}

// dropLazyConn closes the lazy commits' connection, never to be pooled
// again at NORMAL; the next lazy commit opens another. The caller holds wmu
// (or is Close).
func (l *Ledger) dropLazyConn() {
	if l.lazy == nil {
		return
	}
	_ = l.lazy.Raw(func(any) error { return driver.ErrBadConn })
	l.lazy.Close()
	l.lazy = nil
}
