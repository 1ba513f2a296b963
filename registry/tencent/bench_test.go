package tencent

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/emulator"
)

// BenchmarkCreate10k: 10,000 devices created and their secrets fetched through
// the client, against the emulator with the cloud's default limits (20
// requests a second per action, ~500 ms per 100-device task) and its state
// persisted to disk. Creates are started one after another while workers wait
// for finished tasks and page their results, as provision.Create does; the
// floor is 100 CreateMultiDevice calls at 20 a second. Target: < 10 s.
//
//	go test ./registry/tencent -run XXX -bench Create10k -benchtime 1x
func BenchmarkCreate10k(b *testing.B) {
	const total, workers = 10000, 8
	for range b.N {
		b.StopTimer()
		e, c, _ := setup(b, emulator.Config{StateDir: b.TempDir()})
		c.retry = defaultRetry
		ctx := context.Background()
		tasks := make(chan string, total/maxBatch)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			secrets = map[string]string{}
			failed  error
		)
		b.StartTimer()
		start := time.Now()
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for task := range tasks {
					for {
						done, err := c.BatchDone(ctx, testProduct, task)
						if err != nil || done {
							if err == nil {
								var res []registry.DeviceResult
								res, err = c.BatchResults(ctx, testProduct, task)
								mu.Lock()
								for _, r := range res {
									if r.Err != "" {
										err = fmt.Errorf("%s: %s", r.DeviceName, r.Err)
									}
									secrets[r.DeviceName] = r.DeviceSecret
								}
								mu.Unlock()
							}
							if err != nil {
								mu.Lock()
								failed = err
								mu.Unlock()
							}
							break
						}
						time.Sleep(150 * time.Millisecond)
					}
				}
			}()
		}
		for i := 0; i < total; i += maxBatch {
			task, err := c.StartBatch(ctx, testProduct, names(fmt.Sprintf("b%05d-", i), maxBatch))
			if err != nil {
				b.Fatal(err)
			}
			tasks <- task
		}
		close(tasks)
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		if failed != nil {
			b.Fatal(failed)
		}
		if len(secrets) != total {
			b.Fatalf("%d secrets", len(secrets))
		}
		for name, s := range secrets {
			if psk, ok := e.TencentDevice(testProduct, name); !ok || psk != s {
				b.Fatalf("%s disagrees with the emulator", name)
			}
		}
		b.ReportMetric(float64(total)/elapsed.Seconds(), "devices/s")
		b.ReportMetric(elapsed.Seconds(), "s/10k")
		b.StartTimer()
	}
}
