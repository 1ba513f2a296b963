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

	"github.com/schollz/progressbar/v3"

	"github.com/iotburn/iotburn/provision"
)

// lineDisplay shows the line to a technician: one progress bar per port (its
// board's stage), a total bar with the running yield, and a plain line per
// finished board. On a terminal the bars are redrawn in place; elsewhere
// (a CI log, a pipe) only the per-board lines are printed.
type lineDisplay struct {
	w        io.Writer
	tty      bool
	mu       sync.Mutex
	ports    map[string]*portBar
	order    []string
	total    *progressbar.ProgressBar
	burned   int
	failed   int
	skipped  int
	drawn    int // lines drawn last time, to move back over them
	started  time.Time
	stopOnce sync.Once
	quit     chan struct{}
}

type portBar struct {
	bar   *progressbar.ProgressBar
	stage provision.Stage
	note  string
	// writeStart and bytes0 are the first progress report of the write in
	// progress, for its rate and the time left.
	writeStart time.Time
	bytes0     int64
}

// stageSteps maps a stage to how far along a board is, out of 4.
var stageSteps = map[provision.Stage]int{
	provision.StageIdentify: 0, provision.StageClaim: 1, provision.StageWrite: 2,
	provision.StageVerify: 3, provision.StageBurned: 4, provision.StageSkipped: 4, provision.StageFailed: 4,
}

func newLineDisplay(w io.Writer, total int) *lineDisplay {
	d := &lineDisplay{w: w, ports: map[string]*portBar{}, started: time.Now(), quit: make(chan struct{}), tty: isTerminal(w)}
	if total <= 0 {
		total = -1 // unknown: a spinner
	}
	d.total = progressbar.NewOptions(total, progressbar.OptionSetWriter(io.Discard),
		progressbar.OptionSetWidth(30), progressbar.OptionShowCount(), progressbar.OptionSetDescription(fmt.Sprintf("%-14s", "total")))
	if d.tty {
		go func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					d.mu.Lock()
					d.draw()
					d.mu.Unlock()
				case <-d.quit:
					return
				}
			}
		}()
	}
	return d
}

// Event takes one line event; safe for concurrent use.
func (d *lineDisplay) Event(e provision.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	pb := d.ports[e.Port]
	if pb == nil {
		pb = &portBar{bar: progressbar.NewOptions(4, progressbar.OptionSetWriter(io.Discard),
			progressbar.OptionSetWidth(20), progressbar.OptionSetDescription(fmt.Sprintf("%-14s", filepath.Base(e.Port))))}
		d.ports[e.Port] = pb
		d.order = append(d.order, e.Port)
		sort.Strings(d.order)
	}
	pb.stage = e.Stage
	if n, ok := stageSteps[e.Stage]; ok {
		_ = pb.bar.Set(n)
	}
	pb.note = strings.TrimSpace(e.DeviceName + " " + e.HWID)
	if e.Stage == provision.StageWrite && e.BytesTotal > 0 {
		pb.note = pb.writeProgress(e)
	} else {
		pb.writeStart = time.Time{}
	}
	if !e.Stage.Done() {
		return
	}
	switch e.Stage {
	case provision.StageBurned:
		d.burned++
		_ = d.total.Add(1)
	case provision.StageSkipped, provision.StageVerified:
		d.skipped++
	case provision.StageFailed:
		d.failed++
		pb.note = e.Err
	}
	if d.tty {
		d.clear()
	}
	fmt.Fprintln(d.w, boardLine(e))
	if d.tty {
		d.drawn = 0
		d.draw()
	}
}

// writeProgress is "312 KB of 1.0 MB, 10.9 KB/s, 1m05s left".
func (pb *portBar) writeProgress(e provision.Event) string {
	if pb.writeStart.IsZero() {
		pb.writeStart, pb.bytes0 = e.Time, e.BytesDone
	}
	s := fmt.Sprintf("%s of %s", humanBytes(e.BytesDone), humanBytes(e.BytesTotal))
	if el := e.Time.Sub(pb.writeStart).Seconds(); el > 0.5 && e.BytesDone > pb.bytes0 {
		rate := float64(e.BytesDone-pb.bytes0) / el
		left := time.Duration(float64(e.BytesTotal-e.BytesDone) / rate * float64(time.Second))
		s += fmt.Sprintf(", %s/s, %s left", humanBytes(int64(rate)), left.Round(time.Second))
	}
	return s
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

// Note prints a line above the bars (a warning), from any goroutine.
func (d *lineDisplay) Note(line string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tty {
		d.clear()
	}
	fmt.Fprintln(d.w, line)
	if d.tty {
		d.draw()
	}
}

// boardLine is the one-line record of a finished board.
func boardLine(e provision.Event) string {
	port := filepath.Base(e.Port)
	switch e.Stage {
	case provision.StageBurned:
		return fmt.Sprintf("%s  %-8s burned   %s -> %s (secret %s) in %s", e.Time.Format("15:04:05"), port, e.HWID, e.DeviceName, e.Fingerprint, e.Duration.Round(time.Millisecond))
	case provision.StageSkipped:
		return fmt.Sprintf("%s  %-8s skipped  %s already holds %s", e.Time.Format("15:04:05"), port, e.HWID, e.DeviceName)
	case provision.StageVerified:
		line := fmt.Sprintf("%s  %-8s verified %s holds %s (secret %s)", e.Time.Format("15:04:05"), port, e.HWID, e.DeviceName, e.Fingerprint)
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

func (d *lineDisplay) yield() string {
	done := d.burned + d.failed
	if done == 0 {
		return "yield -"
	}
	return fmt.Sprintf("yield %.0f%%", 100*float64(d.burned)/float64(done))
}

func (d *lineDisplay) clear() {
	for i := 0; i < d.drawn; i++ {
		fmt.Fprint(d.w, "\x1b[1A\x1b[2K")
	}
	d.drawn = 0
}

func (d *lineDisplay) draw() {
	d.clear()
	for _, p := range d.order {
		pb := d.ports[p]
		fmt.Fprintf(d.w, "%s %-8s %s\n", pb.bar.String(), pb.stage, truncate(pb.note, 60))
		d.drawn++
	}
	rate := 0.0
	if el := time.Since(d.started).Minutes(); el > 0 {
		rate = float64(d.burned) / el
	}
	fmt.Fprintf(d.w, "%s  %s  %.1f boards/min  %d failed  %d skipped\n", d.total.String(), d.yield(), rate, d.failed, d.skipped)
	d.drawn++
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// Close stops redrawing and leaves the final bars on screen.
func (d *lineDisplay) Close() {
	d.stopOnce.Do(func() {
		close(d.quit)
		d.mu.Lock()
		if d.tty {
			d.draw()
		}
		d.mu.Unlock()
	})
}

// isTerminal reports whether w is a terminal (bars are drawn only there; a log
// or a pipe gets plain lines).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
