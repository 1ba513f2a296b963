package cmd

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/iotburn/iotburn/provision"
)

// terminal is what the screen may do on its writer: redraw in place (a
// terminal), colour (a terminal, and NO_COLOR unset), and how wide a line
// may be before it would wrap. It is decided once, from the writer, and
// injected, so the screen has tests for both.
type terminal struct {
	tty   bool
	color bool
	width int
}

// terminalOf looks at w: a *os.File that is a terminal redraws; NO_COLOR
// (no-color.org) or TERM=dumb turn colour off; the width is the
// terminal's, else COLUMNS, else 100.
func terminalOf(w io.Writer) terminal {
	t := terminal{width: 100}
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return t
	}
	t.tty = true
	_, noColor := os.LookupEnv("NO_COLOR")
	t.color = !noColor && os.Getenv("TERM") != "dumb"
	if wd, _, err := term.GetSize(int(f.Fd())); err == nil && wd > 20 {
		t.width = wd
	}
	return t
}

// ANSI colours, only where terminal.color.
const (
	red   = "\x1b[31m"
	green = "\x1b[32m"
	bold  = "\x1b[1m"
	reset = "\x1b[0m"
)

// lineScreen is the technician's view of the line: one row per port with
// its board's state (waiting, identify, write with bytes and rate, verify,
// burned, FAILED with the reason), a total row (burned of the target,
// yield, failures), and a notice that stays (stopping after Ctrl-C, a
// warning). On a terminal it is redrawn in place; elsewhere (a log, a pipe)
// it prints a plain line per finished board and each notice.
type lineScreen struct {
	w      io.Writer
	term   terminal
	now    func() time.Time
	target int // boards wanted; 0 or less: no target, the credentials left

	mu      sync.Mutex
	rows    map[string]*portRow
	order   []string
	labels  map[string]string
	burned  int
	failed  int
	skipped int
	started time.Time
	notices []string
	drawn   int

	stopOnce sync.Once
	quit     chan struct{}
}

type portRow struct {
	state  string // waiting, identify, claim, write, verify, burned, skipped, FAILED, unplugged
	board  string // the hardware id, and the device it holds
	detail string // bytes written, or why it failed
	bar    *progressbar.ProgressBar
	// The write in progress: its first report, for the rate and time left.
	writeStart time.Time
	bytes0     int64
	burned     int
	failed     int
}

func newLineScreen(w io.Writer, t terminal, target int, now func() time.Time) *lineScreen {
	if now == nil {
		now = time.Now
	}
	return &lineScreen{w: w, term: t, now: now, target: target, rows: map[string]*portRow{}, labels: map[string]string{},
		started: now(), quit: make(chan struct{})}
}

// live redraws a terminal screen every 200 ms until Close, so rates and
// progress move between events.
func (s *lineScreen) live() *lineScreen {
	if s.term.tty {
		go func() {
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
					s.mu.Lock()
					s.redraw()
					s.mu.Unlock()
				case <-s.quit:
					return
				}
			}
		}()
	}
	return s
}

// Event takes one line event; safe for concurrent use.
func (s *lineScreen) Event(e provision.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.row(e.Port)
	if e.HWID != "" {
		r.board = e.HWID
		if e.DeviceName != "" {
			r.board += " -> " + e.DeviceName
		}
	}
	r.detail = ""
	switch e.Stage {
	case provision.StageWaiting:
		r.state, r.board = "waiting", ""
	case provision.StageUnplugged:
		r.state = "unplugged"
		r.board = ""
	case provision.StageWrite:
		r.state = "write"
		if e.BytesTotal > 0 {
			r.detail = r.writeProgress(e)
		}
	case provision.StageBurned:
		r.state, r.detail = "burned", "swap the board"
		r.burned++
		s.burned++
	case provision.StageSkipped, provision.StageVerified:
		r.state, r.detail = string(e.Stage), "swap the board"
		s.skipped++
	case provision.StageFailed:
		r.state, r.detail = "FAILED", e.Err
		r.failed++
		s.failed++
	default:
		r.state = string(e.Stage)
	}
	if e.Stage != provision.StageWrite {
		r.writeStart = time.Time{}
	}
	if !e.Stage.Done() {
		return
	}
	if s.term.tty {
		s.redraw()
		return
	}
	fmt.Fprintln(s.w, boardLine(e))
}

// row returns the port's row, giving every port a label unique among them:
// the file name, or as much of the path as tells two apart.
func (s *lineScreen) row(port string) *portRow {
	r := s.rows[port]
	if r != nil {
		return r
	}
	r = &portRow{state: "waiting"}
	s.rows[port] = r
	s.order = append(s.order, port)
	sort.Strings(s.order)
	s.labels = uniqueLabels(s.order)
	return r
}

// uniqueLabels names each path by its shortest tail of path elements that
// no other path shares: ttyUSB0, or a/ttySIM00 beside b/ttySIM00.
func uniqueLabels(paths []string) map[string]string {
	out := make(map[string]string, len(paths))
	for depth := 1; len(out) < len(paths); depth++ {
		count := map[string]int{}
		tails := map[string]string{}
		for _, p := range paths {
			if _, done := out[p]; done {
				continue
			}
			tails[p] = tail(p, depth)
			count[tails[p]]++
		}
		for p, t := range tails {
			if count[t] == 1 || t == filepath.Clean(p) {
				out[p] = t
			}
		}
	}
	return out
}

func tail(p string, n int) string {
	parts := strings.Split(filepath.ToSlash(filepath.Clean(p)), "/")
	if n >= len(parts) {
		return filepath.Clean(p)
	}
	return strings.Join(parts[len(parts)-n:], "/")
}

// writeProgress is "312 KB of 1.0 MB, 10.9 KB/s, 1m05s left".
func (r *portRow) writeProgress(e provision.Event) string {
	if r.writeStart.IsZero() {
		r.writeStart, r.bytes0 = e.Time, e.BytesDone
	}
	if r.bar == nil {
		r.bar = progressbar.NewOptions64(e.BytesTotal, progressbar.OptionSetWriter(io.Discard), progressbar.OptionSetWidth(12),
			progressbar.OptionSetElapsedTime(false), progressbar.OptionSetPredictTime(false))
	}
	r.bar.ChangeMax64(e.BytesTotal)
	_ = r.bar.Set64(e.BytesDone)
	out := fmt.Sprintf("%s %s of %s", strings.TrimSpace(r.bar.String()), humanBytes(e.BytesDone), humanBytes(e.BytesTotal))
	if el := e.Time.Sub(r.writeStart).Seconds(); el >= 1 && e.BytesDone > r.bytes0 {
		rate := float64(e.BytesDone-r.bytes0) / el
		left := time.Duration(float64(e.BytesTotal-e.BytesDone) / rate * float64(time.Second))
		out += fmt.Sprintf(", %s/s, %s left", humanBytes(int64(rate)), left.Round(time.Second))
	}
	return out
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Notice shows a line that stays: on a terminal under the rows (a warning,
// "stopping…"), elsewhere printed once.
func (s *lineScreen) Notice(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.term.tty {
		fmt.Fprintln(s.w, line)
		return
	}
	s.notices = append(s.notices, line)
	s.redraw()
}

// frame is the screen as lines, without colour or truncation.
func (s *lineScreen) frame() []string {
	width := 0
	for _, p := range s.order {
		width = max(width, utf8.RuneCountInString(s.labels[p]))
	}
	var out []string
	for _, p := range s.order {
		r := s.rows[p]
		text := r.board
		if r.detail != "" {
			if text != "" {
				text += ": "
			}
			text += r.detail
		}
		out = append(out, fmt.Sprintf("%-*s  %-9s %s", width, s.labels[p], r.state, text))
	}
	return append(append(out, s.total()), s.notices...)
}

// total is the totals row: burned (of the target), yield, failures, and the
// rate once there is a minute of work to base it on.
func (s *lineScreen) total() string {
	line := fmt.Sprintf("total: %d burned", s.burned)
	if s.target > 0 {
		line = fmt.Sprintf("total: %d of %d burned", s.burned, s.target)
	}
	if done := s.burned + s.failed; done > 0 {
		line += fmt.Sprintf(", yield %.0f%%", 100*float64(s.burned)/float64(done))
	}
	line += fmt.Sprintf(", %d failed", s.failed)
	if s.skipped > 0 {
		line += fmt.Sprintf(", %d already done", s.skipped)
	}
	if el := s.now().Sub(s.started); el >= time.Minute && s.burned > 0 {
		line += fmt.Sprintf(", %.0f boards/h", float64(s.burned)/el.Hours())
	}
	return line
}

// fit cuts a line to the terminal's width, never wrapping: the tail goes, an
// ellipsis says so.
func (s *lineScreen) fit(line string) string {
	if utf8.RuneCountInString(line) < s.term.width {
		return line
	}
	runes := []rune(line)
	return string(runes[:s.term.width-2]) + "…"
}

// paint colours the state word of a row: red FAILED, green burned.
func (s *lineScreen) paint(line string) string {
	if !s.term.color {
		return line
	}
	for word, c := range map[string]string{" FAILED ": bold + red, " burned ": green} {
		if i := strings.Index(line, word); i >= 0 {
			return line[:i+1] + c + strings.TrimSpace(word) + reset + line[i+len(word)-1:]
		}
	}
	return line
}

// redraw moves up over the last frame and draws the new one.
func (s *lineScreen) redraw() {
	var b strings.Builder
	for range s.drawn {
		b.WriteString("\x1b[1A\x1b[2K")
	}
	lines := s.frame()
	for _, l := range lines {
		b.WriteString(s.paint(s.fit(l)))
		b.WriteByte('\n')
	}
	s.drawn = len(lines)
	io.WriteString(s.w, b.String())
}

// Close stops redrawing, leaving the last frame on screen.
func (s *lineScreen) Close() {
	s.stopOnce.Do(func() {
		close(s.quit)
		s.mu.Lock()
		if s.term.tty {
			s.redraw()
		}
		s.mu.Unlock()
	})
}

// boardLine is the one-line record of a finished board (logs, pipes).
func boardLine(e provision.Event) string {
	port := filepath.Base(e.Port)
	switch e.Stage {
	case provision.StageBurned:
		held := "secret " + e.Fingerprint
		if e.Fingerprint == "" {
			held = "no secret: its gateway registers it"
		}
		return fmt.Sprintf("%s  %-8s burned   %s -> %s (%s) in %s", e.Time.Format("15:04:05"), port, e.HWID, e.DeviceName, held, e.Duration.Round(time.Millisecond))
	case provision.StageSkipped:
		return fmt.Sprintf("%s  %-8s skipped  %s already holds %s", e.Time.Format("15:04:05"), port, e.HWID, e.DeviceName)
	case provision.StageNotChecked:
		return fmt.Sprintf("%s  %-8s NOT CHECKED %s %s: %s", e.Time.Format("15:04:05"), port, e.HWID, e.DeviceName, e.Err)
	case provision.StageVerified:
		held := "secret " + e.Fingerprint
		if e.Fingerprint == "" {
			held = "no secret: its gateway registers it"
		}
		line := fmt.Sprintf("%s  %-8s verified %s holds %s (%s)", e.Time.Format("15:04:05"), port, e.HWID, e.DeviceName, held)
		if e.SubDevices > 0 {
			line += fmt.Sprintf(", %d sub-devices in its topology", e.SubDevices)
		}
		if e.MQTT != "" {
			line += ", mqtt " + e.MQTT
		}
		return line
	default:
		who := e.HWID
		if who == "" {
			who = "board"
		}
		return fmt.Sprintf("%s  %-8s FAILED   %s: %s", e.Time.Format("15:04:05"), port, who, e.Err)
	}
}

// isTerminal reports whether w is a terminal (progress bars are drawn only
// there; a log or a pipe gets plain lines).
func isTerminal(w io.Writer) bool { return terminalOf(w).tty }
