package pgtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

// A server of its own: a table written, the server stopped and started
// again, the row still there; then closed, its directory gone.
func TestStartStopStart(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		Unavailable(t, err)
	}
	defer s.Close()
	if err := s.CreateDB("one"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exec := func(q string) (int, error) {
		c, err := pgx.Connect(ctx, s.URL("one"))
		if err != nil {
			return 0, err
		}
		defer c.Close(ctx)
		var n int
		err = c.QueryRow(ctx, q).Scan(&n)
		return n, err
	}
	c, err := pgx.Connect(ctx, s.URL("one"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`CREATE TABLE t (v INTEGER)`, `INSERT INTO t VALUES (7)`} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	c.Close(ctx)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := exec(`SELECT 1`); err == nil {
		t.Fatal("a stopped server took a connection")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if v, err := exec(`SELECT v FROM t`); err != nil || v != 7 {
		t.Fatalf("after a restart: %d, %v; want 7", v, err)
	}
	dir := s.Dir
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left behind: %v", dir, err)
	}
}

// Two databases from the shared server are two: a table in one is not in
// the other.
func TestNewDB(t *testing.T) {
	ctx := context.Background()
	a, b := NewDB(t), NewDB(t)
	if a == b {
		t.Fatalf("the same database twice: %s", a)
	}
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, `CREATE TABLE only_in_a (v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relname = 'only_in_a'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("database b sees a's table: %d %v", n, err)
	}
}
