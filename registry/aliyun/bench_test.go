package aliyun

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry/emulator"
)

// BenchmarkCreate10k: 10,000 devices created and their secrets stored in a
// ledger through provision.Create, against the emulator with the cloud's
// documented per-action QPS limits, its default (compressed) check and
// creation times, and its state persisted to disk. One application holds all
// 10,000 names, so the floor is QueryPageByApplyId: 200 pages at 50 a second.
// Target (DESIGN.md §7): < 10 s.
//
//	go test ./registry/aliyun -run XXX -bench Create10k -benchtime 1x
func BenchmarkCreate10k(b *testing.B) {
	const total = 10000
	for range b.N {
		b.StopTimer()
		e, c, _ := setup(b, emulator.Config{StateDir: b.TempDir()})
		c.retry = defaultRetry
		l, err := ledger.Open(filepath.Join(b.TempDir(), "iotburn.db"))
		if err != nil {
			b.Fatal(err)
		}
		all := names("bench-", total)
		calls0 := c.Calls()
		b.StartTimer()
		start := time.Now()
		res, err := provision.Create(context.Background(), provision.CreateOptions{Platform: c, Ledger: l, Product: testProduct, Names: all})
		elapsed := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if res.Created != total || len(e.AliyunDeviceNames(testProduct)) != total {
			b.Fatalf("created %d", res.Created)
		}
		l.Close()
		b.ReportMetric(float64(total)/elapsed.Seconds(), "devices/s")
		b.ReportMetric(elapsed.Seconds(), "s/10k")
		b.ReportMetric(float64(c.Calls()-calls0), "calls/10k")
		b.StartTimer()
	}
}
