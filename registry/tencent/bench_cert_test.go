package tencent

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/emulator"
)

// BenchmarkCreateCert10k: 10,000 certificate devices created through the
// client, their certificates and keys fetched with the batch answers, against
// the emulator with the cloud's default limits (20 requests a second per
// action, at most 10 unfinished tasks) and its state on disk. The emulator
// makes an RSA-2048 key and signs a certificate for every device (on all
// CPUs), and a task finishes only once its certificates are made, so the
// signing is the floor here, not the API. Every certificate is checked to
// chain to <state>/ca.pem. IOTBURN_CERT_BENCH_N overrides the 10,000.
//
//	go test ./registry/tencent -run XXX -bench CreateCert10k -benchtime 1x -timeout 60m
func BenchmarkCreateCert10k(b *testing.B) {
	total := 10000
	if n, err := strconv.Atoi(os.Getenv("IOTBURN_CERT_BENCH_N")); err == nil && n > 0 {
		total = n
	}
	for range b.N {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "state")
		_, c, _ := setup(b, emulator.Config{StateDir: dir, CertProducts: []string{certProduct}})
		c.retry = defaultRetry
		ctx := context.Background()
		tasks := make(chan string, total/maxBatch+1)
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			certs  = map[string]string{}
			failed error
		)
		b.StartTimer()
		start := time.Now()
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for task := range tasks {
					for {
						done, err := c.BatchDone(ctx, certProduct, task)
						if err == nil && done {
							var res []registry.DeviceResult
							res, err = c.BatchResults(ctx, certProduct, task)
							mu.Lock()
							for _, r := range res {
								if r.Err != "" || r.DevicePrivateKey == "" {
									err = fmt.Errorf("%s: %q", r.DeviceName, r.Err)
								}
								certs[r.DeviceName] = r.DeviceCert
							}
							mu.Unlock()
						}
						if err != nil {
							mu.Lock()
							failed = err
							mu.Unlock()
						}
						if err != nil || done {
							break
						}
						time.Sleep(150 * time.Millisecond)
					}
				}
			}()
		}
		for i := 0; i < total; i += maxBatch {
			task, err := c.StartBatch(ctx, certProduct, names(fmt.Sprintf("c%05d-", i), min(maxBatch, total-i)))
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
		if len(certs) != total {
			b.Fatalf("%d certificates", len(certs))
		}
		verifyAll(b, dir, certs)
		b.ReportMetric(float64(total)/elapsed.Seconds(), "devices/s")
		b.ReportMetric(elapsed.Seconds(), "s/run")
		b.ReportMetric(float64(total), "devices")
		b.StartTimer()
	}
}

// verifyAll checks every certificate chains to dir/ca.pem and none repeats.
func verifyAll(b *testing.B, dir string, certs map[string]string) {
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	seen := map[string]bool{}
	for name, c := range certs {
		blk, _ := pem.Decode([]byte(c))
		if blk == nil || seen[c] {
			b.Fatalf("%s: missing or repeated certificate", name)
		}
		seen[c] = true
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
	}
}
