package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// groupSync makes lazy commits durable together: a group commit. Each
// waiter's commit is numbered once it has returned (its frames are in the
// WAL, in the OS's cache); one flush then covers every commit numbered
// before the flush began, so boards that arrive together share one fsync
// instead of queueing one each behind SQLite's single writer.
//
// Why it is enough: SQLite writes a WAL in order, and with
// synchronous=NORMAL a commit is complete in the file but not yet synced
// (sqlite.org/pragma.html#pragma_synchronous, "WAL mode ... NORMAL ... a
// transaction committed in WAL mode with synchronous=NORMAL might roll back
// following a power loss"); an fsync of the WAL file makes every frame in it
// durable, whoever wrote it: fsync flushes the file's data, not one file
// descriptor's (POSIX fsync; PostgreSQL's checkpointer relies on the same,
// syncing files its backends wrote). A checkpoint that moved frames into the
// database file synced both files itself.
type groupSync struct {
	flush func() error // makes every commit so far durable

	mu       sync.Mutex
	cond     *sync.Cond
	commits  uint64 // commits numbered so far (from 1)
	covered  uint64 // every commit numbered ≤ covered is durable
	flushing bool
}

func newGroupSync(flush func() error) *groupSync {
	g := &groupSync{flush: flush}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// committed numbers a commit that has returned; durable(n) waits for it.
func (g *groupSync) committed() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.commits++
	return g.commits
}

// durable returns once commit n is on disk: after a flush that began after
// n was numbered. A waiter that finds no flush running runs one itself; the
// others wait for it, and whoever is left runs the next one. A failed flush
// is each waiter's error to see (it runs its own next, or returns it).
func (g *groupSync) durable(n uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.covered < n {
		if g.flushing {
			g.cond.Wait()
			continue
		}
		g.flushing = true
		upto := g.commits // every one of these has returned: it is in the file
		g.mu.Unlock()
		err := g.flush()
		g.mu.Lock()
		g.flushing = false
		if err == nil && upto > g.covered {
			g.covered = upto
		}
		g.cond.Broadcast()
		if err != nil {
			return err
		}
	}
	return nil
}

// syncFiles fsyncs the first of paths that exists: the WAL, or, when SQLite
// has checkpointed and removed it, the database file (no WAL means every
// commit is in the database file, which the checkpoint synced; syncing it
// again costs nothing when it is clean).
func syncFiles(paths ...string) func() error {
	return func() error {
		for _, p := range paths {
			f, err := os.Open(p) // fsync needs no write access
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			err = f.Sync()
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		}
		// The database file itself is gone: nothing written is safe.
		return fmt.Errorf("sync: none of %v exists: %w", paths, fs.ErrNotExist)
	}
}
