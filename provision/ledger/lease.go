package ledger

import (
	"database/sql"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
)

// DefaultLease is how long a claim whose credential has not reached its
// board (Reserved, no Begin) is kept before the credential goes back to the
// pool, when nobody claims that board again. Between a claim and its Begin
// the line only renders the image (milliseconds), so a claim this old was
// left by a station that died or lost its boards. A board the ledger knows
// keeps its unit whatever the lease: a written credential (Begin) is never
// released, it stays with its board.
const DefaultLease = 5 * time.Minute

// DefaultWait is how long a transaction waits for a lost connection to a
// PostgreSQL ledger to come back before it fails with ErrUnavailable: a
// server restart takes seconds.
const DefaultWait = 30 * time.Second

// Environment variables that set a ledger's lease and wait (Go durations).
const (
	EnvLease = "IOTBURN_LEDGER_LEASE"
	EnvWait  = "IOTBURN_LEDGER_WAIT"
)

func (l *Ledger) timesFromEnv() error {
	for _, v := range []struct {
		env string
		set func(time.Duration)
	}{{EnvLease, l.SetLease}, {EnvWait, l.SetWait}} {
		s := os.Getenv(v.env)
		if s == "" {
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("ledger: %s=%q: want a positive duration such as 5m or 30s", v.env, s)
		}
		v.set(d)
	}
	return nil
}

// SetLease sets how long a claim nothing was written for is kept without
// being claimed again (DefaultLease).
func (l *Ledger) SetLease(d time.Duration) {
	l.clock.Lock()
	l.lease = d
	l.clock.Unlock()
}

// SetWait sets how long a transaction waits for a lost PostgreSQL
// connection (DefaultWait).
func (l *Ledger) SetWait(d time.Duration) {
	l.clock.Lock()
	l.wait = d
	l.clock.Unlock()
}

func (l *Ledger) leaseMS() int64 {
	l.clock.Lock()
	defer l.clock.Unlock()
	return l.lease.Milliseconds()
}

func (l *Ledger) waitFor() time.Duration {
	l.clock.Lock()
	defer l.clock.Unlock()
	return l.wait
}

// stations are the station names this handle claims for. Each gets a
// session the first time: its row in the stations table (host, pid, when
// it started), and the claims a previous run of the same station left are
// its own again for a lease. A goroutine then keeps the rows' seen_at
// fresh and gives back the credentials of claims whose lease ran out, the
// ones a dead station left, whoever left them.
type stations struct {
	mu    sync.Mutex
	names []string
	stop  chan struct{}
	done  chan struct{}
	// starting is held while a session is written, so that the boards of
	// a line starting together wait for the one write instead of each
	// making its own (16 durable commits in a row, each a whole fsync,
	// before the first board of 16 could go on).
	starting sync.Mutex
}

// session starts station's session on this handle, once.
func (l *Ledger) session(station string) error {
	if station == "" || l.readOnly {
		return nil
	}
	known := func() bool {
		l.st.mu.Lock()
		defer l.st.mu.Unlock()
		return slices.Contains(l.st.names, station)
	}
	if known() {
		return nil
	}
	l.st.starting.Lock()
	defer l.st.starting.Unlock()
	if known() { // started while this one waited
		return nil
	}
	host, _ := os.Hostname()
	err := l.write(func(t *txn) error {
		now := l.nowMS()
		if _, err := t.Exec(`INSERT INTO stations (name, host, pid, started_at, seen_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, started_at = excluded.started_at, seen_at = excluded.seen_at`,
			station, host, os.Getpid(), now, now); err != nil {
			return err
		}
		// A station that died holding claims gets them back: what its
		// boards were claimed for is kept another lease, for them to come
		// back to it.
		_, err := t.Exec(`UPDATE units SET lease_until = ? WHERE station = ? AND lease_until IS NOT NULL AND attempts = 0 AND state = 'reserved'`,
			now+l.leaseMS(), station)
		return err
	})
	if err != nil {
		return fmt.Errorf("ledger: start station %s: %w", station, err)
	}
	l.st.mu.Lock()
	defer l.st.mu.Unlock()
	if !slices.Contains(l.st.names, station) {
		l.st.names = append(l.st.names, station)
	}
	if l.st.stop == nil {
		l.st.stop, l.st.done = make(chan struct{}), make(chan struct{})
		go l.heartbeat(l.st.stop, l.st.done)
	}
	return nil
}

// heartbeatEvery is how often a handle with stations renews them and
// sweeps expired leases: a quarter lease, within [100 ms, 30 s].
func (l *Ledger) heartbeatEvery() time.Duration {
	return min(max(time.Duration(l.leaseMS())*time.Millisecond/4, 100*time.Millisecond), 30*time.Second)
}

func (l *Ledger) heartbeat(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(l.heartbeatEvery())
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			// One try each time: a lost connection is tried at the next tick,
			// and Close never waits for a reconnect.
			_ = l.beat()
		}
	}
}

func (l *Ledger) beat() error {
	l.st.mu.Lock()
	names := slices.Clone(l.st.names)
	l.st.mu.Unlock()
	if l.d.serialWrites {
		l.wmu.Lock()
		defer l.wmu.Unlock()
	}
	_, err := l.writeOnce(true, false, func(t *txn) error {
		now := l.nowMS()
		for _, n := range names {
			if _, err := t.Exec(`UPDATE stations SET seen_at = ? WHERE name = ?`, now, n); err != nil {
				return err
			}
		}
		_, err := releaseExpired(t, now)
		return err
	})
	return err
}

func (l *Ledger) stopStations() {
	l.st.mu.Lock()
	stop, done := l.st.stop, l.st.done
	l.st.stop = nil
	l.st.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// ReleaseExpired gives back to the pool the credentials of claims whose
// lease ran out: boards claimed, nothing written to them (no Begin), not
// claimed again since. A claim whose write had started is never released:
// that credential stays with its board. Each release is a 'released' event
// saying whose lease it was. It returns how many were released. Any station
// running does this as it goes; `iotburn ledger release --expired` does it
// by hand.
func (l *Ledger) ReleaseExpired() (int, error) {
	var n int
	err := l.write(func(t *txn) (err error) {
		n, err = releaseExpired(t, l.nowMS())
		return err
	})
	return n, err
}

// releaseExpired releases up to 200 expired claims in t, skipping those
// another station is working on at this instant (PostgreSQL).
func releaseExpired(t *txn, now int64) (int, error) {
	rows, err := t.Query(`SELECT u.id, u.credential_id, u.station, u.lease_until, u.state FROM units u
		WHERE u.lease_until IS NOT NULL AND u.lease_until < ? AND u.attempts = 0 AND u.state IN ('reserved', 'failed')
		ORDER BY u.id LIMIT 200`+t.d.skipLockedUnits, now)
	if err != nil {
		return 0, err
	}
	type claim struct {
		id, cred, until int64
		station         string
		state           State
	}
	var expired []claim
	for rows.Next() {
		var c claim
		if err := rows.Scan(&c.id, &c.cred, &c.station, &c.until, &c.state); err != nil {
			rows.Close()
			return 0, err
		}
		expired = append(expired, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, c := range expired {
		who := "its station"
		if c.station != "" {
			who = "station " + c.station
		}
		reason := fmt.Sprintf("lease expired at %s: %s stopped claiming the board and nothing was written to it; its credential went back to the pool",
			time.UnixMilli(c.until).UTC().Format("2006-01-02 15:04:05Z"), who)
		if _, err := t.Exec(`UPDATE units SET error = ? WHERE id = ?`, reason, c.id); err != nil {
			return 0, err
		}
		if err := releaseUnit(t, now, c.id, c.cred, c.state); err != nil {
			return 0, err
		}
	}
	return len(expired), nil
}

// releaseUnit deletes a unit nothing was written for and frees its
// credential, writing the 'released' event first (it copies the board and
// device from the row about to go). Its callers have checked, in the same
// transaction, that no write was begun (attempts 0).
func releaseUnit(t *txn, now, id, credID int64, state State) error {
	if err := logUnit(t, now, id, state, Released); err != nil {
		return err
	}
	if _, err := t.Exec(`DELETE FROM units WHERE id = ?`, id); err != nil {
		return err
	}
	_, err := t.Exec(`UPDATE credentials SET state = 'free' WHERE id = ? AND state = 'taken'`, credID)
	return err
}

// Station is one station's session as the ledger last saw it.
type Station struct {
	Name, Host string
	PID        int
	Started    time.Time // the session started (the process opened the ledger and claimed)
	Seen       time.Time // the last heartbeat
	// Held counts the station's claims nothing was written for yet that
	// still have a lease; Leased is when the last of them runs out.
	Held   int
	Leased time.Time
}

// Stations lists the stations that have claimed on this ledger, by name.
func (l *Ledger) Stations() ([]Station, error) {
	rows, err := l.query(`SELECT s.name, s.host, s.pid, s.started_at, s.seen_at,
			(SELECT count(*) FROM units u WHERE u.station = s.name AND u.lease_until IS NOT NULL AND u.attempts = 0 AND u.state = 'reserved'),
			(SELECT max(u.lease_until) FROM units u WHERE u.station = s.name AND u.attempts = 0 AND u.state = 'reserved')
		FROM stations s ORDER BY s.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Station
	for rows.Next() {
		var s Station
		var started, seen, leased sql.NullInt64
		if err := rows.Scan(&s.Name, &s.Host, &s.PID, &started, &seen, &s.Held, &leased); err != nil {
			return nil, err
		}
		s.Started, s.Seen, s.Leased = fromMS(started), fromMS(seen), fromMS(leased)
		out = append(out, s)
	}
	return out, rows.Err()
}
