package provision

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/emulator"
	"github.com/iotburn/iotburn/registry/tencent"
)

const testProduct = "ABCDEFGHIJ"

// cloud starts the platform emulator on a loopback port and returns a real
// SDK client for it.
func cloud(t *testing.T, cfg emulator.Config) (*emulator.Emulator, *tencent.Client) {
	t.Helper()
	cfg.SecretID, cfg.SecretKey = emulator.NewKeyPair()
	if cfg.Products == nil {
		cfg.Products = []string{testProduct}
	}
	if cfg.TaskDelay == 0 {
		cfg.TaskDelay = 50 * time.Millisecond
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = -1
	}
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(func() { srv.Close(); emu.Close() })
	client, err := tencent.New(tencent.Config{SecretID: cfg.SecretID, SecretKey: cfg.SecretKey, Region: "ap-guangzhou", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return emu, client
}

func openLedger(t *testing.T) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(filepath.Join(t.TempDir(), "iotburn.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i+1)
	}
	return out
}

// storedSecrets reads every credential of the test product from the ledger.
func storedSecrets(t *testing.T, l *ledger.Ledger) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := l.Credentials("tencent", testProduct, func(c registry.Credential) error {
		if _, dup := got[c.DeviceName]; dup {
			t.Errorf("ledger holds %s twice", c.DeviceName)
		}
		got[c.DeviceName] = c.DeviceSecret
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// checkAgainstPlatform asserts that the ledger holds exactly the devices the
// emulator created, each with the secret the emulator issued.
func checkAgainstPlatform(t *testing.T, emu *emulator.Emulator, l *ledger.Ledger, want int) {
	t.Helper()
	stored := storedSecrets(t, l)
	onPlatform := emu.TencentDeviceNames(testProduct)
	if len(onPlatform) != want || len(stored) != want {
		t.Fatalf("platform has %d devices, ledger %d, want %d each", len(onPlatform), len(stored), want)
	}
	secrets := map[string]bool{}
	for _, name := range onPlatform {
		psk, _ := emu.TencentDevice(testProduct, name)
		if stored[name] != psk {
			t.Errorf("%s: ledger secret differs from the one the platform issued", name)
		}
		if secrets[psk] {
			t.Errorf("%s: secret issued twice", name)
		}
		secrets[psk] = true
	}
}

func TestCreateSplitsStoresAndIsIdempotent(t *testing.T) {
	emu, client := cloud(t, emulator.Config{})
	l := openLedger(t)
	list := names("dev", 250)
	var lastDone, lastTotal int
	res, err := Create(context.Background(), CreateOptions{Platform: client, Ledger: l, Product: testProduct, Names: list,
		Progress: func(d, tot int) { lastDone, lastTotal = d, tot }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != 250 || res.Calls != 3 || res.Skipped != 0 {
		t.Fatalf("first run: %+v, want 250 created in 3 calls", res)
	}
	if lastDone != 250 || lastTotal != 250 {
		t.Errorf("progress ended at %d/%d", lastDone, lastTotal)
	}
	checkAgainstPlatform(t, emu, l, 250)

	// The same create again, plus 10 new names: only the new ones are sent.
	res, err = Create(context.Background(), CreateOptions{Platform: client, Ledger: l, Product: testProduct, Names: append(list, names("new", 10)...)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != 10 || res.Skipped != 250 || res.Calls != 1 {
		t.Fatalf("second run: %+v, want 10 created, 250 skipped, 1 call", res)
	}
	checkAgainstPlatform(t, emu, l, 260)
}

// A run killed after the task id was journalled leaves an open request; the
// next run finishes it from the platform and creates nothing twice.
func TestCreateHealsRequestWithTask(t *testing.T) {
	emu, client := cloud(t, emulator.Config{})
	l := openLedger(t)
	list := names("dev", 30)
	ctx := context.Background()
	req, err := l.Journal("tencent", testProduct, list)
	if err != nil {
		t.Fatal(err)
	}
	task, err := client.StartBatch(ctx, testProduct, list)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetTask(req.ID, task); err != nil {
		t.Fatal(err)
	}
	// "crash" here; then the same command again
	res, err := Create(ctx, CreateOptions{Platform: client, Ledger: l, Product: testProduct, Names: list})
	if err != nil {
		t.Fatal(err)
	}
	if res.Healed != 30 || res.Created != 0 || res.Calls != 0 {
		t.Fatalf("got %+v, want 30 healed and no new call", res)
	}
	checkAgainstPlatform(t, emu, l, 30)
}

// A run killed while its create call was in flight (journalled, no task id
// yet): the next run looks the names up, keeps what exists, sends the rest
// again under the same journal entry.
func TestCreateHealsRequestWithoutTask(t *testing.T) {
	emu, client := cloud(t, emulator.Config{})
	l := openLedger(t)
	ctx := context.Background()
	list := names("dev", 20)
	if _, err := l.Journal("tencent", testProduct, list); err != nil {
		t.Fatal(err)
	}
	// The call reached the platform for the first 12 names only.
	task, err := client.StartBatch(ctx, testProduct, list[:12])
	if err != nil {
		t.Fatal(err)
	}
	for {
		done, err := client.BatchDone(ctx, testProduct, task)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, err := Create(ctx, CreateOptions{Platform: client, Ledger: l, Product: testProduct, Names: list})
	if err != nil {
		t.Fatal(err)
	}
	if res.Healed != 20 || res.Created != 0 || res.Skipped != 20 {
		t.Fatalf("got %+v, want all 20 healed by the journal entry", res)
	}
	checkAgainstPlatform(t, emu, l, 20)
}

// The same, but the rerun comes while the lost call's task is still running:
// the platform refuses to create the names again (they are being created);
// the heal waits for the task's devices instead of dropping them.
func TestCreateHealsWhileLostTaskRuns(t *testing.T) {
	emu, client := cloud(t, emulator.Config{TaskDelay: 600 * time.Millisecond})
	l := openLedger(t)
	ctx := context.Background()
	list := names("dev", 10)
	if _, err := l.Journal("tencent", testProduct, list); err != nil {
		t.Fatal(err)
	}
	if _, err := client.StartBatch(ctx, testProduct, list); err != nil {
		t.Fatal(err)
	}
	res, err := Create(ctx, CreateOptions{Platform: client, Ledger: l, Product: testProduct, Names: list})
	if err != nil {
		t.Fatal(err)
	}
	if res.Healed != 10 || res.Created != 0 {
		t.Fatalf("got %+v, want 10 healed", res)
	}
	checkAgainstPlatform(t, emu, l, 10)
}

// A call the platform refuses changes nothing and leaves no open request.
func TestCreateRefusedLeavesNothingOpen(t *testing.T) {
	_, client := cloud(t, emulator.Config{})
	l := openLedger(t)
	_, err := Create(context.Background(), CreateOptions{Platform: client, Ledger: l, Product: "NOSUCHPROD", Names: names("dev", 3)})
	if err == nil {
		t.Fatal("create on a missing product succeeded")
	}
	open, err2 := l.OpenRequests("tencent", "NOSUCHPROD")
	if err2 != nil {
		t.Fatal(err2)
	}
	if len(open) != 0 {
		t.Fatalf("%d requests left open after a refusal: %v", len(open), err)
	}
}

// BenchmarkCreate1000 measures devices created and stored per second against
// the emulator (with its default rate limit, as the cloud would have it).
func BenchmarkCreate1000(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cfg := emulator.Config{Products: []string{testProduct}, TaskDelay: 0}
		cfg.SecretID, cfg.SecretKey = emulator.NewKeyPair()
		emu, err := emulator.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(emu)
		client, err := tencent.New(tencent.Config{SecretID: cfg.SecretID, SecretKey: cfg.SecretKey, Region: "ap-guangzhou", Endpoint: srv.URL})
		if err != nil {
			b.Fatal(err)
		}
		l, err := ledger.Open(filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		res, err := Create(context.Background(), CreateOptions{Platform: client, Ledger: l, Product: testProduct, Names: names("dev", 1000)})
		if err != nil || res.Created != 1000 {
			b.Fatalf("%+v %v", res, err)
		}
		b.ReportMetric(1000/time.Since(start).Seconds(), "devices/s")
		b.StopTimer()
		l.Close()
		srv.Close()
		emu.Close()
	}
}
