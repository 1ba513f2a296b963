package emulator

// Per-action rate limits, as the cloud has them: each API action has its own
// requests-per-second budget, and going over it is answered with
// RequestLimitExceeded rather than queued.

import (
	"sync"
	"time"
)

// rateLimiter is a token bucket per action: up to rate requests at once, refilled
// at rate per second.
type rateLimiter struct {
	rate float64 // <= 0: unlimited
	now  func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate int, now func() time.Time) *rateLimiter {
	return &rateLimiter{rate: float64(rate), now: now, buckets: map[string]*bucket{}}
}

// allow takes one token from action's bucket, or reports that there is none.
func (l *rateLimiter) allow(action string) bool {
	if l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[action]
	if b == nil {
		b = &bucket{tokens: l.rate, last: now}
		l.buckets[action] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(l.rate, b.tokens+dt*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
