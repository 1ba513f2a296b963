package esprom_test

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkWriteFlash writes the NVS partition (24 KB) to a board paced at
// the baud rate and reports payload bytes per second of WriteFlash against
// line rate (baud/10, 8N1). 921600 is reached as on the line: connect at
// 115200, then CHANGE_BAUDRATE. The design target is ≥ 90 % of line rate
// uncompressed; compressed, an NVS image (mostly 0xFF) deflates ~20:1, so
// its payload rate exceeds line rate.
func BenchmarkWriteFlash(b *testing.B) {
	img := image(b)
	for _, baud := range []int{115200, 921600} {
		for _, compress := range []bool{false, true} {
			name := fmt.Sprintf("%d/%s", baud, map[bool]string{false: "raw", true: "deflate"}[compress])
			b.Run(name, func(b *testing.B) {
				f := farm(b, 1, 115200)
				l, _ := open(b, f.Boards()[0], 115200)
				l.Timeout = 3 * time.Second
				if err := l.Connect(ctx(b)); err != nil {
					b.Fatal(err)
				}
				if baud != 115200 {
					if err := l.ChangeBaud(ctx(b), baud); err != nil {
						b.Fatal(err)
					}
				}
				if err := l.Attach(ctx(b)); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				start := time.Now()
				for range b.N {
					if err := l.WriteFlash(ctx(b), nvsOffset, img, compress, nil); err != nil {
						b.Fatal(err)
					}
				}
				rate := float64(len(img)*b.N) / time.Since(start).Seconds()
				b.StopTimer()
				b.ReportMetric(rate, "payload_B/s")
				b.ReportMetric(100*rate/(float64(baud)/10), "%line")
			})
		}
	}
}

// BenchmarkWriteFlashUnpaced is the per-block cost without a wire: the
// protocol's round trip, the simulator's fsync, the pty. It is what a paced
// burn loses against line rate.
func BenchmarkWriteFlashUnpaced(b *testing.B) {
	img := image(b)
	f := farm(b, 1, -1)
	l, _ := open(b, f.Boards()[0], 115200)
	if err := l.Connect(ctx(b)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := l.WriteFlash(ctx(b), nvsOffset, img, false, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(img)/0x400), "µs/block")
}
