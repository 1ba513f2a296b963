package registry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff waits before retry number try (1 = the first retry): exponential
// from base, capped at max, with jitter so that many stations throttled at
// once do not retry in step. It returns early with ctx's error.
func Backoff(ctx context.Context, try int, base, max time.Duration) error {
	d := min(max, base<<(try-1))
	if d <= 0 { // shifted past the int64 range
		d = max
	}
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
