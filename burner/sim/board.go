package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Board is one simulated board: an identity and a flash that outlive its pty,
// and while plugged in, a pty pair with a paced reader and writer.
type Board struct {
	index    int
	path     string // DIR/ttySIM00
	filePath string // DIR/board-00.json
	baud     int
	kind     string
	log      *slog.Logger
	cloudURL string // Options.Cloud
	mqttAddr string // Options.MQTT

	mu  sync.Mutex // guards bf and flt
	bf  boardFile
	flt Fault

	plugMu sync.Mutex // serialises plug and unplug
	cur    *plug      // nil while unplugged

	chaos  Chaos
	rngMu  sync.Mutex
	rng    *rand.Rand
	closed atomic.Bool // Close: the chaos timers plug nothing back in
}

// chance is true with probability p, from the board's own source.
func (b *Board) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	b.rngMu.Lock()
	defer b.rngMu.Unlock()
	return b.rng.Float64() < p
}

// plug is one power cycle: from plug-in (Start, Replug) to Unplug/Close.
type plug struct {
	master, slave *os.File
	pts           string
	stop          chan struct{}
	ctx           context.Context // cancelled at unplug: ends a registration in flight
	cancel        context.CancelFunc
	wg            sync.WaitGroup
	out           outQueue
	rx, tx        pacer
	baud          atomic.Int64 // the board's UART speed now (CHANGE_BAUDRATE moves it)

	fwMu sync.Mutex // guards fw and host: Reset swaps them while the reader runs
	fw   firmware
	host *plugHost
}

// firmware is what the reader hands bytes to now.
func (p *plug) firmware() firmware { p.fwMu.Lock(); defer p.fwMu.Unlock(); return p.fw }

// Path is the board's stable port path, DIR/ttySIMnn.
func (b *Board) Path() string { return b.path }

// MAC is the board's station MAC, lowercase with colons.
func (b *Board) MAC() string { b.mu.Lock(); defer b.mu.Unlock(); return b.bf.MAC }

// IMEI is the board's IMEI (15 digits, Luhn-valid).
func (b *Board) IMEI() string { b.mu.Lock(); defer b.mu.Unlock(); return b.bf.IMEI }

// Flash is what the board holds right now.
func (b *Board) Flash() Flash { b.mu.Lock(); defer b.mu.Unlock(); return b.bf.flash() }

// Plugged reports whether the board is plugged in now.
func (b *Board) Plugged() bool {
	b.plugMu.Lock()
	defer b.plugMu.Unlock()
	return b.cur != nil
}

// SetFault makes the board misbehave from its next received byte on.
func (b *Board) SetFault(f Fault) {
	b.mu.Lock()
	b.flt = f
	b.mu.Unlock()
	b.log.Info("sim: fault set", "port", b.path, "fault", f.String())
}

func (b *Board) fault() Fault { b.mu.Lock(); defer b.mu.Unlock(); return b.flt }

// Unplug makes the board vanish as a USB adapter pulled from the hub does: the
// pty closes (a client's reads and writes fail with EIO) and the link goes.
func (b *Board) Unplug() error {
	b.plugMu.Lock()
	defer b.plugMu.Unlock()
	return b.unplugLocked()
}

func (b *Board) unplugLocked() error {
	p := b.cur
	if p == nil {
		return nil
	}
	b.cur = nil
	err := os.Remove(b.path)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	p.cancel()
	close(p.stop)
	p.master.Close() // wakes the reader and a writer blocked on a full pty
	p.slave.Close()
	p.wg.Wait()
	b.log.Info("sim: board unplugged", "port", b.path)
	return err
}

// Replug brings an unplugged board back on a new pty, with the same identity
// and flash, freshly booted (echo on, faults kept). Replugging a plugged board
// power-cycles it.
func (b *Board) Replug() error {
	b.plugMu.Lock()
	defer b.plugMu.Unlock()
	if err := b.unplugLocked(); err != nil {
		return err
	}
	return b.plugLocked()
}

func (b *Board) plugLocked() error {
	master, slave, err := openPTY(b.baud)
	if err != nil {
		return fmt.Errorf("sim: board %s: open pty: %w", b.path, err)
	}
	p := &plug{
		master: master, slave: slave, pts: slave.Name(),
		stop: make(chan struct{}),
		rx:   pacer{baud: b.baud}, tx: pacer{baud: b.baud},
	}
	p.out.ready = make(chan struct{}, 1)
	p.baud.Store(int64(b.baud))
	// Swap the link in one rename so a client never sees it missing on restart.
	tmp := b.path + ".new"
	os.Remove(tmp)
	if err := os.Symlink(p.pts, tmp); err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("sim: board %s: link: %w", b.path, err)
	}
	if err := os.Rename(tmp, b.path); err != nil {
		os.Remove(tmp)
		master.Close()
		slave.Close()
		return fmt.Errorf("sim: board %s: link: %w", b.path, err)
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.host = newPlugHost(b, p, bootPlugIn)
	p.fw = kinds[b.kind](p.host)
	b.cur = p
	p.wg.Add(2)
	go b.readLoop(p)
	go b.writeLoop(p)
	b.chaosTimers(p)
	b.log.Info("sim: board plugged", "port", b.path, "pty", p.pts, "kind", b.kind, "mac", b.MAC()) // b.MAC locks: the firmware may be committing already
	return nil
}

// chaosTimers pulls or power-cycles the board at the plan's times after this
// plug-in. The timers are not the plug's own goroutines (Unplug waits for
// those): they end with the plug.
func (b *Board) chaosTimers(p *plug) {
	for _, t := range []struct {
		after  time.Duration
		replug time.Duration // 0: power-cycle at once
	}{{b.chaos.UnplugAfter, time.Second}, {b.chaos.RebootAfter, 0}} {
		if t.after <= 0 {
			continue
		}
		go func() {
			select {
			case <-p.stop:
				return
			case <-time.After(t.after):
			}
			b.plugMu.Lock()
			if b.cur != p || b.closed.Load() { // replugged or closed meanwhile
				b.plugMu.Unlock()
				return
			}
			if t.replug == 0 {
				b.log.Info("sim: chaos: board reboots", "port", b.path)
				_ = b.unplugLocked()
				_ = b.plugLocked()
				b.plugMu.Unlock()
				return
			}
			b.log.Info("sim: chaos: board pulled", "port", b.path)
			_ = b.unplugLocked()
			b.plugMu.Unlock()
			time.Sleep(t.replug)
			b.plugMu.Lock()
			if b.cur == nil && !b.closed.Load() {
				_ = b.plugLocked()
			}
			b.plugMu.Unlock()
		}()
	}
}

// Reset presses the board's reset button (EN) while it stays plugged in:
// its pty and link stay, what it was running stops (a registration in
// flight, an MQTT session), its UART is back at the boot rate, and it
// starts afresh. download holds BOOT (IO0 low) meanwhile, so an ESP32 comes
// up in its ROM's download mode with the ROM's banner; otherwise it boots
// from its flash. This is what esptool's DTR/RTS reset does on an adapter
// with the auto-reset circuit (reference/espressif.md §2.6), which a pty
// cannot carry. AT boards simply reboot.
func (b *Board) Reset(download bool) error {
	b.plugMu.Lock()
	defer b.plugMu.Unlock()
	p := b.cur
	if p == nil {
		return fmt.Errorf("sim: board %s is unplugged: plug it in first", b.path)
	}
	boot := bootFlash
	if download {
		boot = bootDownload
	}
	if p.baud.Load() > 0 {
		p.baud.Store(int64(b.baud))
		p.out.switchBaud(b.baud)
	}
	h := newPlugHost(b, p, boot)
	p.fwMu.Lock()
	old := p.host
	p.host = h
	p.fwMu.Unlock()
	old.cancel()
	fw := kinds[b.kind](h)
	p.fwMu.Lock()
	p.fw = fw
	p.fwMu.Unlock()
	b.log.Info("sim: board reset", "port", b.path, "download", download)
	return nil
}

// readLoop takes bytes off the wire at line rate and hands them to the firmware.
func (b *Board) readLoop(p *plug) {
	defer p.wg.Done()
	buf := make([]byte, p.rx.chunk())
	var line []byte // the line being glitched, for chaos's glitch
	glitched := false
	for {
		if baud := int(p.baud.Load()); baud > 0 && baud != p.rx.baud {
			p.rx = pacer{baud: baud} // the firmware or a reset changed the rate
		}
		if len(buf) != p.rx.chunk() {
			buf = make([]byte, p.rx.chunk())
		}
		n, err := p.master.Read(buf)
		if err != nil {
			return // closed by Unplug/Close
		}
		if !p.rx.wait(n, p.stop) {
			return
		}
		fw := p.firmware()
		in := buf[:n]
		switch f := b.fault(); {
		case f == FaultDrop:
			continue
		case f == FaultGarble || b.wrongBaud(p):
			// The board hears noise and answers noise, once per line it thinks it got.
			if endsRequest(fw, in) {
				p.out.push(noise())
			}
			continue
		}
		if b.chance(b.chaos.Drop) {
			continue // lost on the wire
		}
		if b.chaos.Stall > 0 && endsRequest(fw, in) && b.chance(b.chaos.StallP) {
			select {
			case <-p.stop:
				return
			case <-time.After(b.chaos.Stall):
			}
		}
		if b.chaos.Glitch != "" && !glitched && b.kind != "esp32" {
			// Held back a line at a time, so the glitched command never
			// reaches the firmware: the board answers ERROR instead.
			line = append(line, in...)
			i := bytes.IndexAny(line, "\r\n")
			if i < 0 {
				continue
			}
			cmd := strings.ToUpper(strings.TrimSpace(string(line[:i])))
			if strings.HasPrefix(cmd, "AT+"+b.chaos.Glitch) {
				glitched = true
				p.out.push([]byte("\r\nERROR\r\n"))
				rest := line[i:]
				for len(rest) > 0 && (rest[0] == '\r' || rest[0] == '\n') {
					rest = rest[1:] // the line's whole terminator goes with it
				}
				in, line = rest, nil
				if len(in) == 0 {
					continue
				}
			} else {
				in, line = line, nil
			}
		}
		fw.receive(in)
	}
}

// wrongBaud reports a client that set the line to another speed than the
// board's: on a real UART both sides would see garbage.
func (b *Board) wrongBaud(p *plug) bool {
	baud := int(p.baud.Load())
	if baud <= 0 {
		return false
	}
	got := lineBaud(p.slave)
	return got != 0 && got != baud
}

func noise() []byte {
	out := make([]byte, 4+rand.IntN(20))
	for i := range out {
		out[i] = byte(0x80 | rand.IntN(128)) // framing errors read back with the high bit set
	}
	return out
}

// writeLoop puts queued answers on the wire at line rate.
func (b *Board) writeLoop(p *plug) {
	defer p.wg.Done()
	buf := make([]byte, p.tx.chunk())
	for {
		n, baud, ok := p.out.pop(buf, p.stop)
		if !ok {
			return
		}
		if n > 0 && b.chance(b.chaos.Garble) {
			copy(buf[:n], noise())
		}
		if n > 0 {
			if !p.tx.wait(n, p.stop) {
				return
			}
			if _, err := p.master.Write(buf[:n]); err != nil {
				return
			}
		}
		if baud != 0 { // what was queued before the switch is on the wire
			p.tx = pacer{baud: baud}
			buf = make([]byte, p.tx.chunk())
		}
	}
}

// outQueue is the board's transmit buffer: the firmware never blocks on a
// slow wire, the writer drains it at line rate.
type outQueue struct {
	mu    sync.Mutex
	buf   []byte
	ready chan struct{}
	// A baud switch pending after the first switchAt bytes of buf.
	switchAt  int
	switchTo  int
	switching bool
}

// switchBaud makes the writer change speed once everything queued so far
// has gone out: a UART answers at the old rate, then switches.
func (q *outQueue) switchBaud(baud int) {
	q.mu.Lock()
	q.switchAt, q.switchTo, q.switching = len(q.buf), baud, true
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *outQueue) push(p []byte) {
	q.mu.Lock()
	q.buf = append(q.buf, p...)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop moves up to len(dst) queued bytes into dst, waiting for some. baud,
// if not 0, is a speed to switch to after sending them; ok false means stop.
func (q *outQueue) pop(dst []byte, stop <-chan struct{}) (n, baud int, ok bool) {
	for {
		q.mu.Lock()
		if len(q.buf) > 0 || q.switching {
			d := dst
			if q.switching {
				d = dst[:min(len(dst), q.switchAt)]
			}
			n = copy(d, q.buf)
			q.buf = append(q.buf[:0], q.buf[n:]...)
			if q.switching {
				q.switchAt -= n
				if q.switchAt == 0 {
					baud, q.switching = q.switchTo, false
				}
			}
			q.mu.Unlock()
			return n, baud, true
		}
		q.mu.Unlock()
		select {
		case <-q.ready:
		case <-stop:
			return 0, 0, false
		}
	}
}

// plugHost is the firmware's view of its board during one power cycle (from
// plug-in or a Reset to the next).
type plugHost struct {
	b      *Board
	p      *plug
	bctx   context.Context // ends with the plug or at the next Reset
	cancel context.CancelFunc
	boot   bootKind
}

// bootKind is how the board was last started.
type bootKind int

const (
	bootPlugIn   bootKind = iota // plugged in: an ESP32 is in download mode, silent
	bootDownload                 // Reset with BOOT held: download mode, the ROM's banner
	bootFlash                    // Reset with BOOT released: an ESP32 boots its flash
)

func newPlugHost(b *Board, p *plug, boot bootKind) *plugHost {
	h := &plugHost{b: b, p: p, boot: boot}
	h.bctx, h.cancel = context.WithCancel(p.ctx)
	return h
}

func (h *plugHost) bootMode() bootKind { return h.boot }

func (h *plugHost) send(p []byte)     { h.p.out.push(p) }
func (h *plugHost) flashPath() string { return flashFileName(h.b.filePath) }
func (h *plugHost) lineBaud() int     { return int(h.p.baud.Load()) }

// setBaud switches the board's UART: receiving at once (the firmware runs on
// the reader's goroutine), sending after what is already queued.
func (h *plugHost) setBaud(baud int) {
	if h.p.baud.Load() <= 0 {
		return // unpaced boards stay unpaced
	}
	h.p.baud.Store(int64(baud)) // the reader takes the new rate before its next read
	h.p.out.switchBaud(baud)
}
func (h *plugHost) fault() Fault                      { return h.b.fault() }
func (h *plugHost) cloud() (baseURL, mqttAddr string) { return h.b.cloudURL, h.b.mqttAddr }
func (h *plugHost) ctx() context.Context              { return h.bctx }
func (h *plugHost) logger() *slog.Logger              { return h.b.log.With("port", h.b.path) }

func (h *plugHost) file() boardFile {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	return h.b.bf.clone()
}

func (h *plugHost) commit(change func(*boardFile)) error {
	b := h.b
	b.mu.Lock()
	defer b.mu.Unlock()
	next := b.bf.clone()
	change(&next)
	if err := writeBoardFile(b.filePath, next); err != nil {
		b.log.Error("sim: flash write failed", "port", b.path, "err", err)
		return err
	}
	b.bf = next
	return nil
}
