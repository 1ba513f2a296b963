package sim

import (
	"context"
	"sync"
	"time"
)

// The simulated ESP32 takes the real chip's time: its flash erases and
// programs at the W25Q32JV's datasheet times (spiflash.go), and its CPU
// inflates deflated data at esp32InflateRate. The delays are real sleeps on
// the firmware's goroutine, which is the board's reader: a busy ROM reads
// nothing, as the real single-threaded ROM. Beside the sleeps, every board
// keeps an exact account of the time charged (ESP32Busy), so tests can check
// the model without timing anything.

// esp32InflateRate is how many bytes a second the chip's inflater (miniz's
// tinfl in the ESP32 ROM; the flasher stub calls the same ROM copy: its
// Makefile builds miniz.c only for the ESP8266) produces. No published figure
// was found (esptool's issues and docs give end-to-end rates that mix in the
// UART and the flash); 500 kB/s is a deliberately harsh guess: tinfl at a few
// tens of cycles an output byte would give 1–2 MB/s even if the ROM ran the
// CPU from the 40 MHz crystal (assumed, not looked up).
const esp32InflateRate = 500_000

// inflateTime is the CPU time for n bytes of inflater output.
func inflateTime(n int) time.Duration {
	return time.Duration(n) * time.Second / esp32InflateRate
}

// esp32Clock is the firmware's time. The pty boards use the wall clock; unit
// tests inject a virtual one so error-code tests stay fast.
type esp32Clock interface {
	now() time.Time
	// sleepUntil returns once t has come, false if the board lost power
	// first (Unplug, Replug, Close).
	sleepUntil(t time.Time) bool
}

// clockHost is implemented by a host that brings its own clock (tests).
type clockHost interface {
	esp32Clock() esp32Clock
}

// wallClock sleeps for real, interrupted by the end of the power cycle.
type wallClock struct{ ctx context.Context }

func (c wallClock) now() time.Time { return time.Now() }

func (c wallClock) sleepUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return c.ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// esp32Time is the chip's two timelines, the CPU's and the flash chip's, as
// points on the clock. An operation that makes the CPU wait (a synchronous
// SPI command, inflating) moves the CPU's; an erase the stub starts and does
// not wait for moves only the flash's. settle sleeps until the CPU's.
//
// Deadlines chain from the moment a command is taken (take), so the real time
// a command takes is at least what it was charged, however late each timer
// fires.
type esp32Time struct {
	clk   esp32Clock
	cpu   time.Time // the CPU is busy until then
	flash time.Time // the flash chip is busy until then
	acct  *esp32Account
}

// take is the main loop picking up a command: it waits until the CPU is free
// (the stub may still be writing the previous block), then the CPU's timeline
// starts from now. false: the board lost power.
func (t *esp32Time) take() bool {
	if !t.clk.sleepUntil(t.cpu) {
		return false
	}
	if now := t.clk.now(); now.After(t.cpu) {
		t.cpu = now
	}
	return true
}

// settle sleeps until the CPU has done what it was charged. false: the board
// lost power.
func (t *esp32Time) settle() bool { return t.clk.sleepUntil(t.cpu) }

// waitFlash makes the CPU wait for the flash chip to be idle (reading the
// status register until WIP clears, as every ROM SPI routine does first).
func (t *esp32Time) waitFlash() {
	if t.flash.After(t.cpu) {
		t.cpu = t.flash
	}
}

// flashIdle reports whether the flash chip is idle now, on the CPU's timeline
// (the stub's spiflash_is_ready).
func (t *esp32Time) flashIdle() bool { return !t.flash.After(t.cpu) }

// erase runs an erase; wait: the CPU waits for it (the ROM's routines),
// otherwise it only starts it (the stub's start_next_erase).
func (t *esp32Time) erase(op eraseOp, wait bool) {
	t.waitFlash()
	d := op.duration()
	t.flash = t.cpu.Add(d)
	if wait {
		t.cpu = t.flash
	}
	t.acct.add(func(b *ESP32Busy) {
		b.Erase += d
		switch op.size {
		case flashSector:
			b.SectorErases++
		case flashBlock:
			b.BlockErases++
		default:
			b.ChipErases++
		}
	})
}

// program runs n page programs; the CPU waits for each (the ROM's write
// routine polls the status register after every program).
func (t *esp32Time) program(pages int) {
	if pages == 0 {
		return
	}
	t.waitFlash()
	d := time.Duration(pages) * w25PageProgram
	t.cpu = t.cpu.Add(d)
	t.flash = t.cpu
	t.acct.add(func(b *ESP32Busy) { b.Program += d; b.Pages += pages })
}

// inflate charges the CPU for n bytes of inflater output.
func (t *esp32Time) inflate(n int) {
	if n == 0 {
		return
	}
	d := inflateTime(n)
	t.cpu = t.cpu.Add(d)
	t.acct.add(func(b *ESP32Busy) { b.Inflate += d })
}

// work charges the CPU for a delay the firmware's code makes (ets_delay_us).
func (t *esp32Time) work(d time.Duration) {
	if d <= 0 {
		return
	}
	t.cpu = t.cpu.Add(d)
	t.acct.add(func(b *ESP32Busy) { b.Delay += d })
}

// ESP32Busy is the time a simulated ESP32 has been charged, by what for, over
// all its power cycles: the exact account of the delays it slept.
type ESP32Busy struct {
	Erase, Program, Inflate, Delay        time.Duration
	SectorErases, BlockErases, ChipErases int
	Pages                                 int // page programs
}

// Total is everything charged. Erases the stub starts in the background
// overlap other work, so a stub session can take less wall time than this.
func (b ESP32Busy) Total() time.Duration { return b.Erase + b.Program + b.Inflate + b.Delay }

// esp32Account is one board's ESP32Busy, shared by its successive power
// cycles (firmware instances) and read by tests from other goroutines.
type esp32Account struct {
	mu sync.Mutex
	b  ESP32Busy
}

func (a *esp32Account) add(f func(*ESP32Busy)) {
	a.mu.Lock()
	f(&a.b)
	a.mu.Unlock()
}

func (a *esp32Account) get() ESP32Busy {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.b
}

// esp32Accounts holds each board's account by its flash file's path: the
// firmware knows its host only through that interface, and the account must
// outlive a power cycle.
var esp32Accounts sync.Map // string → *esp32Account

func esp32AccountFor(flashPath string) *esp32Account {
	a, _ := esp32Accounts.LoadOrStore(flashPath, &esp32Account{})
	return a.(*esp32Account)
}

// ESP32Busy is what this esp32 board has been charged since this process
// first plugged it in (zero for other kinds).
func (b *Board) ESP32Busy() ESP32Busy {
	if b.kind != "esp32" {
		return ESP32Busy{}
	}
	return esp32AccountFor(flashFileName(b.filePath)).get()
}
