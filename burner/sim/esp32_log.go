package sim

import (
	"context"
	"fmt"
	"time"
)

// espLog is the UART console of a booted ESP32: the ROM's lines as they
// are, the bootloader's and the app's in ESP-IDF's log format,
// LOG_FORMAT(letter, format) = LOG_COLOR_<letter> "<letter> (%u) %s: " format
// LOG_RESET_COLOR "\n" (espressif/esp-idf components/log/include/esp_log.h),
// with CONFIG_LOG_COLORS on (its default in v4.4): errors "\033[0;31m",
// warnings "\033[0;33m", info "\033[0;32m", reset "\033[0m"; debug and
// verbose lines have no colour. The number is milliseconds since the CPU
// started (esp_log_early_timestamp / esp_log_timestamp).
//
// Lines end "\r\n": the app's stdout turns "\n" into "\r\n"
// (CONFIG_NEWLIB_STDOUT_LINE_ENDING_CRLF, the default), and the ROM's and
// bootloader's printf is taken to do the same. [NOT FROM A SOURCE for the
// ROM's]
//
// Every line takes its own time on the wire before the next is written: the
// chip's UART driver blocks a task whose output outruns the line, so a
// boot loop cannot fill the host's buffers faster than the UART empties them.
type espLog struct {
	c     *esp32Chip
	ctx   context.Context
	start time.Time
}

// espROMTime is the time the ROM has taken before the second-stage
// bootloader prints its first line: ESP32 boot logs start at "I (27)" to
// "I (31)". [NOT FROM A SOURCE: read off published boot logs]
const espROMTime = 27 * time.Millisecond

func (l *espLog) ms() int64 { return (time.Since(l.start) + espROMTime).Milliseconds() }

// raw writes text as it is (the ROM's lines, a kit's own printf).
func (l *espLog) raw(s string) {
	l.c.h.send([]byte(s))
	if baud := l.c.h.lineBaud(); baud > 0 {
		pause(l.ctx, time.Duration(len(s))*10*time.Second/time.Duration(baud))
	}
}

func (l *espLog) line(level byte, tag, format string, a ...any) {
	color, reset := "", ""
	switch level {
	case 'E':
		color, reset = "\033[0;31m", "\033[0m"
	case 'W':
		color, reset = "\033[0;33m", "\033[0m"
	case 'I':
		color, reset = "\033[0;32m", "\033[0m"
	}
	l.raw(fmt.Sprintf("%s%c (%d) %s: %s%s\r\n", color, level, l.ms(), tag, fmt.Sprintf(format, a...), reset))
}

func (l *espLog) I(tag, format string, a ...any) { l.line('I', tag, format, a...) }
func (l *espLog) W(tag, format string, a ...any) { l.line('W', tag, format, a...) }
func (l *espLog) E(tag, format string, a ...any) { l.line('E', tag, format, a...) }

// pause sleeps d, false if the board lost power (or was reset) first.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// espWithheld stands where the kits print a secret on their console (a
// DeviceSecret, a registration signature, a DeviceToken): the simulator
// never writes one to a port. [DEVIATION: the real firmware prints them]
const espWithheld = "********"
