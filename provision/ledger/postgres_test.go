package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/iotburn/iotburn/provision/ledger/pgtest"
)

func TestRebindDollar(t *testing.T) {
	tests := []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`WHERE a = ? AND b = ?`, `WHERE a = $1 AND b = $2`},
		{`WHERE (?1 = '' OR p = ?1) AND t >= ?4`, `WHERE ($1 = '' OR p = $1) AND t >= $4`},
		{`SELECT '?', "a?b", ? -- what?` + "\n" + `, ?`, `SELECT '?', "a?b", $1 -- what?` + "\n" + `, $2`},
		{`SELECT 'it''s ?', ?`, `SELECT 'it''s ?', $1`},
		{`VALUES (?, ?, ?)`, `VALUES ($1, $2, $3)`},
	}
	for _, tt := range tests {
		if got := rebindDollar(tt.in); got != tt.want {
			t.Errorf("rebindDollar(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIsURLAndRedact(t *testing.T) {
	tests := []struct {
		in     string
		url    bool
		redact string
	}{
		{"iotburn.db", false, "iotburn.db"},
		{"/srv/postgres://x.db", false, "/srv/postgres://x.db"},
		{"postgres://line@db.factory/iotburn", true, "postgres://line@db.factory/iotburn"},
		{"postgresql://line:s3cret@db.factory:5433/iotburn?sslmode=require", true, "postgresql://line@db.factory:5433/iotburn?sslmode=require"},
		{"POSTGRES://line@/iotburn?host=/run/postgresql&password=s3cret", true, "postgres://line@/iotburn?host=%2Frun%2Fpostgresql"},
	}
	for _, tt := range tests {
		if got := IsURL(tt.in); got != tt.url {
			t.Errorf("IsURL(%q) = %v", tt.in, got)
		}
		if got := Redact(tt.in); got != tt.redact {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.redact)
		}
	}
}

func TestConnLost(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"refused", fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), true},
		{"socket gone", &net.OpError{Op: "dial", Net: "unix", Err: syscall.ENOENT}, true},
		{"eof", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"bad conn", fmt.Errorf("x: %w", sql.ErrConnDone), true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"a guard", &pgconn.PgError{Code: "23000"}, false},
		{"serialization", &pgconn.PgError{Code: "40001"}, false},
		{"not found", ErrNotFound, false},
		{"nothing", nil, false},
	}
	for _, tt := range tests {
		if got := connLost(tt.err); got != tt.want {
			t.Errorf("%s: connLost(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
	if !conflict(&pgconn.PgError{Code: "40P01"}) || conflict(&pgconn.PgError{Code: "23505"}) {
		t.Error("conflict classification")
	}
}

// Claims never wait for another station: with the oldest free credential
// locked by a transaction that does not end, a claim takes the next one at
// once.
func TestClaimSkipsLocked(t *testing.T) {
	url := pgtest.NewDB(t)
	l, err := Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seed(t, l, "tencent", "P1", "d1", "d2", "d3")
	other, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var id int64
	if err := tx.QueryRow(`SELECT id FROM credentials WHERE device_name = 'd1' FOR UPDATE`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	done := make(chan Unit, 1)
	errc := make(chan error, 1)
	go func() {
		u, err := l.Claim("tencent", "P1", "A1", "st1", "p")
		if err != nil {
			errc <- err
			return
		}
		done <- u
	}()
	select {
	case u := <-done:
		if u.Cred.DeviceName != "d2" {
			t.Errorf("claimed %s, want d2 (d1 is locked by another station)", u.Cred.DeviceName)
		}
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("a claim waited for another station's lock")
	}
	// When the other transaction gives d1 up, the next board gets it.
	tx.Rollback()
	if u, err := l.Claim("tencent", "P1", "B1", "st1", "p"); err != nil || u.Cred.DeviceName != "d1" {
		t.Errorf("after the lock went: %s %v, want d1", u.Cred.DeviceName, err)
	}
}

// The server stops mid-line and comes back: transactions wait for it and
// go through; one that waits longer than the ledger's wait fails with
// ErrUnavailable, and nothing is half-done either way.
func TestConnectionLost(t *testing.T) {
	srv, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		pgtest.Unavailable(t, err)
	}
	defer srv.Close()
	if err := srv.CreateDB("lost"); err != nil {
		t.Fatal(err)
	}
	l, err := Open(srv.URL("lost"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seed(t, l, "tencent", "P1", names("d", 10)...)
	a, err := l.Claim("tencent", "P1", "A", "st1", "p0")
	if err == nil {
		err = l.Begin(a.ID)
	}
	if err != nil {
		t.Fatal(err)
	}

	// Down for about a second: Burned, a claim and reads wait and succeed.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	wg.Go(func() { errs[0] = l.Burned(a.ID, time.Second) })
	wg.Go(func() { _, errs[1] = l.Claim("tencent", "P1", "B", "st1", "p1") })
	wg.Go(func() { _, errs[2] = l.Counts("tencent", "P1") })
	wg.Go(func() { _, _, errs[3] = l.UnitByHW("A") })
	time.Sleep(time.Second)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d across the restart: %v", i, err)
		}
	}
	if u, _, err := l.UnitByHW("A"); err != nil || u.State != Burned || u.Attempts != 1 {
		t.Errorf("A after the restart: %s attempt %d (%v), want burned once", u.State, u.Attempts, err)
	}

	// Down for longer than the wait: ErrUnavailable, and not a net.Error
	// (that would read as the cloud platform being unreachable).
	l.SetWait(500 * time.Millisecond)
	srv.Stop()
	_, err = l.Claim("tencent", "P1", "C", "st1", "p2")
	var ne net.Error
	if !errors.Is(err, ErrUnavailable) || errors.As(err, &ne) {
		t.Errorf("claim with the server down: %v, want ErrUnavailable", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	l.SetWait(DefaultWait)
	if _, ok, err := l.UnitByHW("C"); ok || err != nil {
		t.Errorf("the failed claim left a unit (%v, %v)", ok, err)
	}
	if u, err := l.Claim("tencent", "P1", "C", "st1", "p2"); err != nil || u.State != Reserved {
		t.Errorf("claim once back: %+v %v", u, err)
	}
	checkInvariants(t, l)
	if p, err := l.Check(context.Background()); err != nil || len(p) != 0 {
		t.Errorf("check: %v %v", p, err)
	}
}

// The shared ledger checks its indexes with amcheck where it is installed.
func TestCheckAmcheck(t *testing.T) {
	l := openPostgresTemp(t)
	if _, err := l.db.Exec(`CREATE EXTENSION IF NOT EXISTS amcheck`); err != nil {
		t.Skipf("amcheck is not installed with this PostgreSQL: %v", err)
	}
	seed(t, l, "tencent", "P1", names("d", 50)...)
	bad, err := l.integrity(context.Background())
	if err != nil || len(bad) != 0 {
		t.Fatalf("amcheck on a sound ledger: %v %v", bad, err)
	}
}
