package provision

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision/ledger"
)

// BenchmarkLine burns boards paced at 115200 baud on 1 and on 8 ports, once
// each, and reports boards per minute: the 8-port figure over the 1-port one
// is how well the line scales (the design asks for ≥ 7×). Run with
//
//	go test ./provision -run '^$' -bench Line -benchtime 5x
func BenchmarkLine(b *testing.B) {
	for _, ports := range []int{1, 8} {
		b.Run(fmt.Sprintf("ports=%d", ports), func(b *testing.B) {
			var boards int
			var busy time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dir := b.TempDir()
				l, err := ledger.Open(filepath.Join(dir, "l.db"))
				if err != nil {
					b.Fatal(err)
				}
				seedLedger(b, l, ports)
				farm, err := sim.Start(sim.Options{Dir: filepath.Join(dir, "boards"), Kind: "tencent-at", Count: ports, Baud: 115200})
				if err != nil {
					b.Fatal(err)
				}
				o := lineOpts(l, farm, 115200)
				b.StartTimer()
				start := time.Now()
				res, err := RunLine(context.Background(), o)
				busy += time.Since(start)
				b.StopTimer()
				if err != nil || res.Burned != ports {
					b.Fatalf("%+v %v", res, err)
				}
				boards += res.Burned
				farm.Close()
				l.Close()
			}
			b.ReportMetric(float64(boards)/busy.Minutes(), "boards/min")
		})
	}
}
