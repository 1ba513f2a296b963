package ledger

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// engine names a database engine behind a Ledger.
type engine int

const (
	engineSQLite engine = iota
	enginePostgres
)

func (e engine) String() string {
	if e == enginePostgres {
		return "postgres"
	}
	return "sqlite"
}

// dialect is what differs between the engines. Everything else, the books'
// logic and most of their SQL, is shared: queries are written with SQLite's
// placeholders (? and ?NNN), which bind rewrites to PostgreSQL's $N.
type dialect struct {
	engine engine
	// serialWrites: this process queues its write transactions on a mutex
	// (SQLite has one writer at a time anyway). PostgreSQL takes them at
	// once, row locks keeping them apart.
	serialWrites bool
	// newUnitID is the id expression of a unit being inserted: SQLite's
	// rowid would reuse a released unit's id, PostgreSQL's identity never does.
	newUnitID string
	// forUpdate and skipLocked end a SELECT that locks what it reads, so
	// that two stations never take the same row and never wait for each
	// other's (PostgreSQL). SQLite's write transaction holds the whole file.
	forUpdate, forUpdateUnits, skipLocked, skipLockedUnits string
	// lockBoard, run first in a claim, makes two claims of one board (a
	// glitch, a board moved between stations mid-claim) take turns, so the
	// second finds the first's unit instead of taking a second credential
	// for the same board; claims of other boards never wait for it.
	lockBoard string
	// checksMoves: the ledger may have been moved to a shared one (export
	// --to) and then refuses writes. Only a SQLite file is ever moved.
	checksMoves bool

	binds sync.Map // query → the engine's text (PostgreSQL)
}

var sqliteDialect = &dialect{
	engine:       engineSQLite,
	serialWrites: true,
	newUnitID:    newUnitID,
	checksMoves:  true,
}

var postgresDialect = &dialect{
	engine:         enginePostgres,
	newUnitID:      `DEFAULT`,
	forUpdate:      ` FOR UPDATE`,
	forUpdateUnits: ` FOR UPDATE OF u`,
	skipLocked:     ` FOR UPDATE SKIP LOCKED`,
	// OF u: lock the unit, not the credential joined to it.
	skipLockedUnits: ` FOR UPDATE OF u SKIP LOCKED`,
	lockBoard:       `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`,
}

// bind turns a query written with SQLite's placeholders into the engine's.
func (d *dialect) bind(q string) string {
	if d.engine == engineSQLite {
		return q
	}
	if v, ok := d.binds.Load(q); ok {
		return v.(string)
	}
	b := rebindDollar(q)
	d.binds.Store(q, b)
	return b
}

// rebindDollar rewrites ? (the next argument) and ?NNN (argument NNN) to
// $N, leaving string literals, quoted names and comments alone.
func rebindDollar(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(q) {
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c { // doubled quote inside
						j += 2
						continue
					}
					break
				}
				j++
			}
			b.WriteString(q[i:min(j+1, len(q))])
			i = j
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			b.WriteString(q[i : i+j])
			i += j - 1
		case c == '?':
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			b.WriteByte('$')
			if j > i+1 {
				b.WriteString(q[i+1 : j])
			} else {
				n++
				b.WriteString(strconv.Itoa(n))
			}
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// IsURL reports whether a --ledger value names a PostgreSQL database
// (postgres:// or postgresql://) rather than a SQLite file.
func IsURL(path string) bool {
	p := strings.ToLower(path)
	return strings.HasPrefix(p, "postgres://") || strings.HasPrefix(p, "postgresql://")
}

// Redact is a ledger's name fit to print: a PostgreSQL URL without its
// password (a file path as it is).
func Redact(path string) string {
	if !IsURL(path) {
		return path
	}
	u, err := url.Parse(path)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if q.Has("password") {
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// ---- errors by kind, never by text ----

// sqlState is the PostgreSQL SQLSTATE of err, "" if it has none.
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// conflict reports an error PostgreSQL asks the client to retry: a
// serialization failure, a deadlock it broke, a lock not available. Its
// transaction was rolled back.
func conflict(err error) bool {
	switch sqlState(err) {
	case "40001", "40P01", "55P03":
		return true
	}
	return false
}

// uniqueViolation reports a UNIQUE constraint refusing a row, on either
// engine.
func uniqueViolation(err error) bool {
	if sqlState(err) == "23505" {
		return true
	}
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// connLost reports an error that says the database could not be reached,
// or the connection to it broke: the server stopped, restarted, is still
// starting, or the network failed. Nothing about the data.
func connLost(err error) bool {
	if err == nil {
		return false
	}
	if st := sqlState(err); st != "" {
		// Class 08: connection exception; 57P01-57P03: the server shutting
		// down, crashed, or not accepting connections yet.
		return strings.HasPrefix(st, "08") || st == "57P01" || st == "57P02" || st == "57P03"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ENOENT),
		errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		return true
	}
	// A connection pgx closed after a failure, or an error it raised
	// before sending anything.
	return errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err)
}
