package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A model disk: what was written before a flush began is on disk once the
// flush ends. Every waiter must find its own write on disk when durable
// returns, however the flushes and commits interleave.
func TestGroupSyncCoversEveryCommitBeforeItReturns(t *testing.T) {
	var written, onDisk atomic.Int64
	var flushes atomic.Int64
	g := newGroupSync(func() error {
		flushes.Add(1)
		upto := written.Load()
		time.Sleep(200 * time.Microsecond) // the fsync; commits go on meanwhile
		for {
			cur := onDisk.Load()
			if upto <= cur || onDisk.CompareAndSwap(cur, upto) {
				return nil
			}
		}
	})
	const workers, each = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				mine := written.Add(1) // the commit reaches the file
				if err := g.durable(g.committed()); err != nil {
					errs <- err
					return
				}
				if got := onDisk.Load(); got < mine {
					errs <- errors.New("durable returned before the commit was flushed")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := flushes.Load(); n < 1 || n > workers*each {
		t.Fatalf("%d flushes for %d commits", n, workers*each)
	}
}

// Commits made while one flush runs share the next: 16 boards arriving
// together cost two fsyncs, not sixteen.
func TestGroupSyncSharesAFlush(t *testing.T) {
	const boards = 16
	var numbered sync.WaitGroup
	numbered.Add(boards)
	var flushes atomic.Int64
	g := newGroupSync(func() error {
		if flushes.Add(1) == 1 {
			numbered.Wait() // every board commits while the first fsync runs
		}
		return nil
	})
	var wg sync.WaitGroup
	for range boards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := g.committed()
			numbered.Done()
			if err := g.durable(n); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := flushes.Load(); n > 2 {
		t.Fatalf("%d boards committing together took %d flushes, want at most 2", boards, n)
	}
}

// A failed fsync is an error for the waiter that ran it, never a commit
// taken for durable; the next waiter flushes again.
func TestGroupSyncFailedFlushIsNotDurable(t *testing.T) {
	fail := errors.New("EIO")
	calls := 0
	g := newGroupSync(func() error {
		calls++
		if calls == 1 {
			return fail
		}
		return nil
	})
	n := g.committed()
	if err := g.durable(n); !errors.Is(err, fail) {
		t.Fatalf("first flush failed, durable = %v, want %v", err, fail)
	}
	if err := g.durable(n); err != nil {
		t.Fatalf("second flush worked, durable = %v", err)
	}
	if calls != 2 {
		t.Fatalf("%d flushes, want 2 (the failed one covered nothing)", calls)
	}
}

// On SQLite, Begin waits for the WAL's fsync: concurrent Begins each return
// only with their commit covered, and the WAL file is what is synced.
func TestBeginIsFlushedOnSQLite(t *testing.T) {
	l := openTemp(t)
	var synced atomic.Int64
	flush := l.walSync.flush
	l.walSync.flush = func() error { synced.Add(1); return flush() }

	const boards = 16
	seed(t, l, "tencent", "P1", names("d", boards)...)
	units := make([]int64, boards)
	for i := range units {
		u, err := l.Claim("tencent", "P1", fmt.Sprintf("hw%02d", i), "s", fmt.Sprintf("p%d", i))
		if err != nil {
			t.Fatal(err)
		}
		units[i] = u.ID
	}
	var wg sync.WaitGroup
	for _, id := range units {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Begin(id); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	g := l.walSync
	g.mu.Lock()
	commits, covered := g.commits, g.covered
	g.mu.Unlock()
	if commits != boards || covered != commits {
		t.Fatalf("%d Begins: %d grouped commits, %d covered by an fsync", boards, commits, covered)
	}
	if s := synced.Load(); s < 1 || s > boards {
		t.Fatalf("%d fsyncs for %d Begins", s, boards)
	}
	if c, _ := l.Counts("tencent", "P1"); c.ByState[Burning] != boards {
		t.Errorf("by state %v, want %d burning", c.ByState, boards)
	}
}

// The WAL is what holds a lazy commit until a checkpoint: syncFiles syncs it,
// and the database file when SQLite has removed the WAL.
func TestSyncFilesFallsBackToTheDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "l.db")
	if err := os.WriteFile(db, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syncFiles(filepath.Join(dir, "l.db-wal"), db)(); err != nil {
		t.Fatalf("no WAL: %v, want the database synced", err)
	}
	if err := syncFiles(filepath.Join(dir, "gone"))(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the database file gone: %v, want fs.ErrNotExist", err)
	}
	if err := syncFiles(filepath.Join(db, "not-a-dir"))(); err == nil {
		t.Fatal("a path that cannot be opened synced without an error")
	}
}

// Write transactions run prepared statements from the cache, which stays
// bounded however many different texts are run, and a text past the bound
// still runs.
func TestStmtCache(t *testing.T) {
	l := openTemp(t)
	seed(t, l, "tencent", "P1", names("d", 2)...)
	if _, err := l.Claim("tencent", "P1", "hw0", "s", "p"); err != nil {
		t.Fatal(err)
	}
	l.stmts.mu.Lock()
	cached := len(l.stmts.m)
	l.stmts.mu.Unlock()
	if cached == 0 {
		t.Fatal("a claim left no statement in the cache")
	}
	err := l.write(func(tx *txn) error {
		for i := range stmtCacheMax + 10 {
			var n int
			if err := tx.QueryRow(fmt.Sprintf(`SELECT %d + count(*) FROM units`, i)).Scan(&n); err != nil || n != i+1 {
				return fmt.Errorf("query %d: %d, %v", i, n, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	l.stmts.mu.Lock()
	cached = len(l.stmts.m)
	l.stmts.mu.Unlock()
	if cached > stmtCacheMax {
		t.Fatalf("%d statements cached, bound %d", cached, stmtCacheMax)
	}
	// The cached statements still serve the next claim.
	if u, err := l.Claim("tencent", "P1", "hw1", "s", "p"); err != nil || u.Cred.DeviceName != "d001" {
		t.Fatalf("second claim: %+v, %v", u, err)
	}
}
