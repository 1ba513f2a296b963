package ledger

import (
	"database/sql"
	"testing"

	"github.com/iotburn/iotburn/provision/ledger/pgtest"
)

// testEngine is one engine the suite runs on: open gives a fresh, empty
// ledger (a SQLite file in a temporary directory; a new database on the
// test binary's PostgreSQL server), closed when the test ends.
type testEngine struct {
	name string
	open func(testing.TB) *Ledger
	// url gives the name to Open for a fresh ledger without opening it.
	url func(testing.TB) string
}

var engines = []testEngine{
	{"sqlite", openTemp, func(tb testing.TB) string { return tb.TempDir() + "/iotburn.db" }},
	{"postgres", openPostgresTemp, pgtest.NewDB},
}

func openPostgresTemp(tb testing.TB) *Ledger {
	tb.Helper()
	l, err := Open(pgtest.NewDB(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// eachEngine runs f once per engine, as subtests named after it. The
// PostgreSQL half skips, saying why, only where no server can be started.
func eachEngine(t *testing.T, f func(t *testing.T, e testEngine)) {
	t.Helper()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { f(t, e) })
	}
}

func (e testEngine) pg() bool { return e.name == "postgres" }

// rawExec runs SQL straight on the ledger's database, past its Go code (as
// a hand edit would), with SQLite's placeholders bound for the engine.
func rawExec(l *Ledger, q string, args ...any) (sql.Result, error) {
	return l.db.Exec(l.d.bind(q), args...)
}

// rawInt is a one-number query straight on the ledger's database.
func rawInt(t testing.TB, l *Ledger, q string, args ...any) int {
	t.Helper()
	var n int
	if err := l.db.QueryRow(l.d.bind(q), args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
