package sim

import "time"

// pacer holds one direction of a board's UART to baud/10 bytes a second
// (8N1: ten bit times a byte). A pty moves bytes as fast as memory; without
// pacing every timing iotburn reports about the line would be fiction.
type pacer struct {
	baud int       // <= 0: unpaced
	next time.Time // when the wire is free again
}

// chunk is how many bytes to move per step: about 2 ms of wire time, so the
// board sees a line arrive progressively instead of all at once.
func (p *pacer) chunk() int {
	if p.baud <= 0 {
		return 4096
	}
	n := p.baud / 10 / 500
	return max(1, min(n, 1024))
}

// jitter is how far behind schedule the pacer may fall and still catch up.
// Timers oversleep by tens of microseconds each step; without this the board
// would lose that at every chunk and run ~15 % under line rate.
const jitter = 2 * time.Millisecond

// wait blocks until n more bytes would have crossed the wire, counting from
// when the wire was last busy. Idle time is not banked (a UART cannot send
// faster later for having been quiet), only timer jitter. It returns false if
// stop closes first.
func (p *pacer) wait(n int, stop <-chan struct{}) bool {
	if p.baud <= 0 {
		return true
	}
	now := time.Now()
	if p.next.Before(now.Add(-jitter)) {
		p.next = now
	}
	p.next = p.next.Add(time.Duration(n) * 10 * time.Second / time.Duration(p.baud))
	d := time.Until(p.next)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}
