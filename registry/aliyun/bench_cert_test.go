package aliyun

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/iotburn/iotburn/registry/emulator"
)

// BenchmarkCreateCert10k: 10,000 X.509 devices created through the client
// and their certificates and keys fetched, against the emulator with the
// documented per-action QPS limits and its state on disk. An X.509
// application takes 1,000 names, so there are 10; all are started first (the
// emulator makes their keys, RSA 2048, in the background on all CPUs), then
// each one's results are read. Every certificate comes from QueryDeviceCert,
// one device a call at its documented 10 QPS (the client paces at 90%): that
// is the floor, about 1,100 s for 10,000. Every certificate is checked to
// chain to <state>/ca.pem. IOTBURN_CERT_BENCH_N overrides the 10,000.
//
//	go test ./registry/aliyun -run XXX -bench CreateCert10k -benchtime 1x -timeout 60m
func BenchmarkCreateCert10k(b *testing.B) {
	total := 10000
	if n, err := strconv.Atoi(os.Getenv("IOTBURN_CERT_BENCH_N")); err == nil && n > 0 {
		total = n
	}
	for range b.N {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "state")
		_, c, _ := setup(b, emulator.Config{StateDir: dir, AliyunCertProducts: []string{certProduct}})
		c.retry = defaultRetry
		ctx := context.Background()
		calls0 := c.Calls()
		b.StartTimer()
		start := time.Now()
		var apps []string
		for i := 0; i < total; i += maxX509Batch {
			id, err := c.StartBatch(ctx, certProduct, names(fmt.Sprintf("c%05d-", i), min(maxX509Batch, total-i)))
			if err != nil {
				b.Fatal(err)
			}
			apps = append(apps, id)
		}
		certs := map[string]string{}
		for _, id := range apps {
			for {
				done, err := c.BatchDone(ctx, certProduct, id)
				if err != nil {
					b.Fatal(err)
				}
				if done {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			res, err := c.BatchResults(ctx, certProduct, id)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range res {
				if r.Err != "" || r.DevicePrivateKey == "" {
					b.Fatalf("%s: %q", r.DeviceName, r.Err)
				}
				certs[r.DeviceName] = r.DeviceCert
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		if len(certs) != total {
			b.Fatalf("%d certificates", len(certs))
		}
		caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
		if err != nil {
			b.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(caPEM)
		seen := map[string]bool{}
		for name, cp := range certs {
			blk, _ := pem.Decode([]byte(cp))
			if blk == nil || seen[cp] {
				b.Fatalf("%s: missing or repeated certificate", name)
			}
			seen[cp] = true
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				b.Fatalf("%s: %v", name, err)
			}
		}
		b.ReportMetric(float64(total)/elapsed.Seconds(), "devices/s")
		b.ReportMetric(elapsed.Seconds(), "s/run")
		b.ReportMetric(float64(c.Calls()-calls0), "calls/run")
		b.StartTimer()
	}
}
