package ledger

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotburn/iotburn/provision/ledger/pgtest"
)

// The shared ledger's figures (issue 15), measured here:
//
//	go test ./provision/ledger -run '^$' -bench 'Claims|BoardLatency' -benchtime 2000x
//
// Claims: claims a second with 1, 4 and 16 stations at once on one
// PostgreSQL ledger, each station its own handle (its own connections, as
// a process of its own), beside SQLite's single station. BoardLatency: what
// the ledger adds to one board (claim, begin, burned: three transactions),
// mean and 99th percentile. The PostgreSQL server is durable (fsync and
// synchronous commits on), as SQLite is with synchronous=FULL.

var (
	durableOnce sync.Once
	durable     *pgtest.Server
	durableErr  error
	benchDB     atomic.Int64
)

// benchLedgers opens n handles on one fresh ledger of engine.
func benchLedgers(b *testing.B, engine string, n int) []*Ledger {
	b.Helper()
	var path string
	if engine == "sqlite" {
		path = filepath.Join(b.TempDir(), "bench.db")
	} else {
		durableOnce.Do(func() { durable, durableErr = pgtest.Start(pgtest.Options{Durable: true}) })
		if durableErr != nil {
			pgtest.Unavailable(b, durableErr)
		}
		name := fmt.Sprintf("bench%d", benchDB.Add(1))
		if err := durable.CreateDB(name); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { durable.DropDB(name) })
		path = durable.URL(name)
	}
	var out []*Ledger
	for range n {
		l, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		out = append(out, l)
	}
	return out
}

// seedN stores n credentials in batches of 1,000, as create does.
func seedN(b *testing.B, l *Ledger, n int) {
	b.Helper()
	for i := 0; i < n; i += 1000 {
		var batch []string
		for j := i; j < min(i+1000, n); j++ {
			batch = append(batch, fmt.Sprintf("dev-%07d", j))
		}
		seed(b, l, platform, product, batch...)
	}
}

var benchCases = []struct {
	engine   string
	stations int
}{{"sqlite", 1}, {"postgres", 1}, {"postgres", 4}, {"postgres", 16}}

func BenchmarkClaims(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(fmt.Sprintf("%s/stations=%d", bc.engine, bc.stations), func(b *testing.B) {
			ls := benchLedgers(b, bc.engine, bc.stations)
			seedN(b, ls[0], b.N+bc.stations)
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, bc.stations)
			b.ResetTimer()
			start := time.Now()
			for s, l := range ls {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if _, err := l.Claim(platform, product, fmt.Sprintf("hw-%07d", i), fmt.Sprintf("st%d", s), "p"); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			select {
			case err := <-errs:
				b.Fatal(err)
			default:
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "claims/s")
		})
	}
}

func BenchmarkBoardLatency(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(fmt.Sprintf("%s/stations=%d", bc.engine, bc.stations), func(b *testing.B) {
			ls := benchLedgers(b, bc.engine, bc.stations)
			seedN(b, ls[0], b.N+bc.stations)
			var next atomic.Int64
			var mu sync.Mutex
			var lat []time.Duration
			var wg sync.WaitGroup
			errs := make(chan error, bc.stations)
			b.ResetTimer()
			for s, l := range ls {
				wg.Go(func() {
					var mine []time.Duration
					defer func() { mu.Lock(); lat = append(lat, mine...); mu.Unlock() }()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						t := time.Now()
						u, err := l.Claim(platform, product, fmt.Sprintf("hw-%07d", i), fmt.Sprintf("st%d", s), "p")
						if err == nil {
							err = l.Begin(u.ID)
						}
						if err == nil {
							err = l.Burned(u.ID, time.Second)
						}
						if err != nil {
							errs <- err
							return
						}
						mine = append(mine, time.Since(t))
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			select {
			case err := <-errs:
				b.Fatal(err)
			default:
			}
			slices.Sort(lat)
			var sum time.Duration
			for _, d := range lat {
				sum += d
			}
			b.ReportMetric(float64(sum.Microseconds())/float64(len(lat))/1000, "ms/board")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms/board")
		})
	}
}
