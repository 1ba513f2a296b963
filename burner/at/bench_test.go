package at_test

import (
	"testing"
	"time"
)

// BenchmarkBurn writes one Tencent credential per op to a board paced at
// 115200 and reports the script's payload rate against line rate. Each line
// is a round trip (command, OK, URC, flash fsync), so this is per-board
// overhead as much as throughput.
func BenchmarkBurn(b *testing.B) {
	f := farm(b, 1, 115200)
	d := open(b, f.Boards()[0], 115200)
	d.Timeout = 2 * time.Second
	if err := d.Hello(ctx(b)); err != nil {
		b.Fatal(err)
	}
	script := []byte(credLine + "\r\n")
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := d.RunScript(ctx(b), script); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start).Seconds()
	rate := float64(len(script)*b.N) / el
	b.ReportMetric(rate, "payload_B/s")
	b.ReportMetric(100*rate/11520, "%line")
}
