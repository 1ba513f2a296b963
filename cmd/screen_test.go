package cmd

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/provision"
)

// clock is a fake time for the screen: each call moves on by step.
type clock struct {
	t    time.Time
	step time.Duration
}

func (c *clock) now() time.Time { c.t = c.t.Add(c.step); return c.t }

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func ev(port string, stage provision.Stage, hw, dev, errText string) provision.Event {
	return provision.Event{Time: t0, Port: port, Stage: stage, HWID: hw, DeviceName: dev, Err: errText, Fingerprint: "ab12cd34"}
}

// The screens a technician sees, line for line.
func TestScreenFrames(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target int
		events []provision.Event
		notice string
		want   []string
	}{
		{
			name:   "a failed port",
			target: 8,
			events: []provision.Event{
				ev("/dev/ttyUSB0", provision.StageIdentify, "", "", ""),
				ev("/dev/ttyUSB1", provision.StageIdentify, "", "", ""),
				ev("/dev/ttyUSB0", provision.StageBurned, "24:0a:c4:00:00:01", "dev0001", ""),
				ev("/dev/ttyUSB1", provision.StageFailed, "", "", "identify: no answer from the ROM bootloader"),
			},
			want: []string{
				"ttyUSB0  burned    24:0a:c4:00:00:01 -> dev0001: swap the board",
				"ttyUSB1  FAILED    identify: no answer from the ROM bootloader",
				"total: 1 of 8 burned, yield 50%, 1 failed",
			},
		},
		{
			name: "an unplugged port",
			events: []provision.Event{
				ev("/dev/ttyUSB0", provision.StageBurned, "24:0a:c4:00:00:01", "dev0001", ""),
				ev("/dev/ttyUSB0", provision.StageUnplugged, "", "", ""),
				ev("/dev/ttyUSB3", provision.StageWrite, "24:0a:c4:00:00:03", "dev0002", ""),
			},
			want: []string{
				"ttyUSB0  unplugged ",
				"ttyUSB3  write     24:0a:c4:00:00:03 -> dev0002",
				"total: 1 burned, yield 100%, 0 failed",
			},
		},
		{
			name: "two ports with the same base name",
			events: []provision.Event{
				ev("/tmp/a/ttySIM00", provision.StageIdentify, "", "", ""),
				ev("/tmp/b/ttySIM00", provision.StageIdentify, "", "", ""),
				ev("/tmp/b/ttySIM01", provision.StageIdentify, "", "", ""),
			},
			want: []string{
				"a/ttySIM00  identify  ",
				"b/ttySIM00  identify  ",
				"ttySIM01    identify  ",
				"total: 0 burned, 0 failed",
			},
		},
		{
			name: "Ctrl-C",
			events: []provision.Event{
				ev("/dev/ttyUSB0", provision.StageVerify, "24:0a:c4:00:00:01", "dev0001", ""),
			},
			notice: "iotburn: stopping: finishing the boards in flight (Ctrl-C again to quit now)",
			want: []string{
				"ttyUSB0  verify    24:0a:c4:00:00:01 -> dev0001",
				"total: 0 burned, 0 failed",
				"iotburn: stopping: finishing the boards in flight (Ctrl-C again to quit now)",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			c := &clock{t: t0}
			s := newLineScreen(&out, terminal{tty: true, width: 200}, tc.target, c.now)
			for _, e := range tc.events {
				s.Event(e)
			}
			if tc.notice != "" {
				s.Notice(tc.notice)
			}
			s.mu.Lock()
			got := s.frame()
			s.mu.Unlock()
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// On a terminal: the frame is redrawn in place, the state coloured, a long
// reason cut at the width with an ellipsis rather than wrapped (width 40: 38
// characters and the ellipsis, the 40th column left free); NO_COLOR (color
// false) leaves the escapes out.
func TestScreenRedraw(t *testing.T) {
	for _, color := range []bool{true, false} {
		var out bytes.Buffer
		s := newLineScreen(&out, terminal{tty: true, color: color, width: 40}, 0, (&clock{t: t0}).now)
		s.Event(ev("/dev/ttyUSB0", provision.StageBurned, "mac1", "dev1", ""))
		s.Event(ev("/dev/ttyUSB1", provision.StageFailed, "", "", "identify: the board answers garbage to SYNC"))
		got := out.String()
		frame2 := "ttyUSB0  \x1b[32mburned\x1b[0m    mac1 -> dev1: swap …\n" +
			"ttyUSB1  \x1b[1m\x1b[31mFAILED\x1b[0m    identify: the board…\n" +
			"total: 1 burned, yield 50%, 1 failed\n"
		if !color {
			frame2 = "ttyUSB0  burned    mac1 -> dev1: swap …\n" +
				"ttyUSB1  FAILED    identify: the board…\n" +
				"total: 1 burned, yield 50%, 1 failed\n"
		}
		// The first frame (2 lines) is erased line by line before the second.
		if !strings.HasSuffix(got, "\x1b[1A\x1b[2K\x1b[1A\x1b[2K"+frame2) {
			t.Errorf("color=%v: output\n%q\nwant it to end with the erase of 2 lines and\n%q", color, got, frame2)
		}
	}
}

// Not a terminal (a log, a pipe): one plain line per finished board, the
// reason whole, notices as they come, no escapes.
func TestScreenPlain(t *testing.T) {
	var out bytes.Buffer
	s := newLineScreen(&out, terminal{}, 0, (&clock{t: t0}).now)
	s.Event(ev("/dev/ttyUSB0", provision.StageIdentify, "", "", ""))
	s.Event(ev("/dev/ttyUSB0", provision.StageFailed, "", "", "identify: the board on /dev/ttyUSB0 answers garbage to SYNC (37 bytes, no ROM response): wrong baud rate"))
	s.Notice("iotburn: stopping: finishing the boards in flight (Ctrl-C again to quit now)")
	s.Close()
	want := "10:00:00  ttyUSB0  FAILED   board: identify: the board on /dev/ttyUSB0 answers garbage to SYNC (37 bytes, no ROM response): wrong baud rate\n" +
		"iotburn: stopping: finishing the boards in flight (Ctrl-C again to quit now)\n"
	if out.String() != want {
		t.Errorf("got\n%q\nwant\n%q", out.String(), want)
	}
}

// Boards per hour is shown once there is a minute of work behind it.
func TestScreenRate(t *testing.T) {
	c := &clock{t: t0, step: 20 * time.Second}
	s := newLineScreen(&bytes.Buffer{}, terminal{tty: true, width: 200}, 0, c.now)
	s.Event(ev("/dev/ttyUSB0", provision.StageBurned, "m", "d", ""))
	if got := s.total(); strings.Contains(got, "boards/h") {
		t.Errorf("a rate from 40 s of work: %q", got)
	}
	c.step = 50 * time.Second // now 90 s: 1 board in 1.5 min = 40/h
	if got := s.total(); !strings.HasSuffix(got, ", 40 boards/h") {
		t.Errorf("total %q, want 40 boards/h", got)
	}
}
