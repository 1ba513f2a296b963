package emulator

// Fault injection for tests and the demo: the next n requests of an action
// fail with a chosen code, or are delayed.

import (
	"sync"
	"time"
)

type fault struct {
	code  string        // vendor error code to answer with
	delay time.Duration // or: wait this long, then serve normally
}

type faults struct {
	mu      sync.Mutex
	pending map[string][]fault // per action, in order
}

func newFaults() *faults { return &faults{pending: map[string][]fault{}} }

func (f *faults) add(action string, n int, x fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.pending[action] = append(f.pending[action], x)
	}
}

// take removes and returns the next fault for action, if any.
func (f *faults) take(action string) (fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.pending[action]
	if len(q) == 0 {
		return fault{}, false
	}
	f.pending[action] = q[1:]
	return q[0], true
}
