package provision

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates"
)

// seedLedger stores n credentials as a finished create would, with secrets
// made up here (the line does not care where they came from).
func seedLedger(t testing.TB, l *ledger.Ledger, n int) map[string]string {
	t.Helper()
	list := names("dev", n)
	req, err := l.Journal("tencent", testProduct, list)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{}
	creds := make([]registry.Credential, n)
	for i, name := range list {
		secret := fmt.Sprintf("c2VjcmV0%012dAA==", i) // 24 characters, like a 16-byte PSK in base64
		secrets[name] = secret
		creds[i] = registry.Credential{Platform: "tencent", ProductID: testProduct, DeviceName: name, DeviceSecret: secret, Region: "ap-guangzhou"}
	}
	if _, err := l.Complete(req.ID, creds); err != nil {
		t.Fatal(err)
	}
	return secrets
}

func startBoards(t *testing.T, n, baud int) *sim.Farm {
	t.Helper()
	farm, err := sim.Start(sim.Options{Dir: t.TempDir(), Kind: "tencent-at", Count: n, Baud: baud})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	return farm
}

func lineOpts(l *ledger.Ledger, farm *sim.Farm, baud int) LineOptions {
	f, _ := templates.Lookup("tencent-at")
	var paths []string
	for _, b := range farm.Boards() {
		paths = append(paths, b.Path())
	}
	return LineOptions{
		Ledger: l, Platform: "tencent", Product: testProduct, Format: f, Station: "test",
		Ports: func() ([]string, error) { return paths, nil }, Open: OpenATBoard("tencent", baud),
		Once: true, Scan: 50 * time.Millisecond, OpTimeout: 10 * time.Second,
	}
}

// checkBoards asserts every board's flash holds the credential the ledger
// gave its hardware id, and that no two boards share one.
func checkBoards(t *testing.T, l *ledger.Ledger, farm *sim.Farm, secrets map[string]string) {
	t.Helper()
	seen := map[string]string{}
	for _, b := range farm.Boards() {
		fl := b.Flash()
		if fl.DeviceName == "" {
			t.Errorf("%s holds no credential", b.Path())
			continue
		}
		if fl.ProductID != testProduct || fl.DeviceSecret != secrets[fl.DeviceName] {
			t.Errorf("%s holds %s/%s with the wrong secret", b.Path(), fl.ProductID, fl.DeviceName)
		}
		if other, dup := seen[fl.DeviceName]; dup {
			t.Errorf("%s and %s both hold %s", other, b.Path(), fl.DeviceName)
		}
		seen[fl.DeviceName] = b.Path()
		u, ok, err := l.UnitByHW(strings.ToLower(b.MAC()))
		if err != nil || !ok {
			t.Errorf("%s (mac %s): no unit in the ledger (%v)", b.Path(), b.MAC(), err)
			continue
		}
		if u.Cred.DeviceName != fl.DeviceName || u.State != ledger.Burned {
			t.Errorf("%s: ledger says %s %s, board holds %s", b.Path(), u.Cred.DeviceName, u.State, fl.DeviceName)
		}
	}
}

func TestLineOnceBurnsEveryBoardThenRecognisesThem(t *testing.T) {
	l := openLedger(t)
	secrets := seedLedger(t, l, 6)
	farm := startBoards(t, 4, 921600)
	o := lineOpts(l, farm, 921600)
	var mu sync.Mutex
	var finals []Event
	o.Events = func(e Event) {
		if e.Stage.Done() {
			mu.Lock()
			finals = append(finals, e)
			mu.Unlock()
		}
	}
	res, err := RunLine(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Burned != 4 || res.Failed != 0 {
		t.Fatalf("got %+v, want 4 burned", res)
	}
	checkBoards(t, l, farm, secrets)
	for _, e := range finals {
		if e.Fingerprint != registry.Fingerprint(secrets[e.DeviceName]) || strings.Contains(e.Err, secrets[e.DeviceName]) {
			t.Errorf("event %+v: wrong fingerprint or a secret in it", e)
		}
	}
	c, err := l.Counts("tencent", testProduct)
	if err != nil {
		t.Fatal(err)
	}
	if c.Free != 2 || c.ByState[ledger.Burned] != 4 {
		t.Errorf("counts %+v, want 4 burned and 2 free", c)
	}

	// Same boards again: recognised by hardware id, not burned twice.
	res, err = RunLine(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Burned != 0 || res.Skipped != 4 {
		t.Fatalf("second pass %+v, want 4 skipped", res)
	}
	if c2, _ := l.Counts("tencent", testProduct); c2.Free != 2 {
		t.Errorf("second pass used credentials: %+v", c2)
	}
}

// A board that vanishes mid-burn is a failed unit, the others go on; replugged,
// it gets the same credential and burns.
func TestLineBoardVanishesMidBurn(t *testing.T) {
	l := openLedger(t)
	secrets := seedLedger(t, l, 4)
	farm := startBoards(t, 3, 921600)
	victim := farm.Boards()[1]
	o := lineOpts(l, farm, 921600)
	var once sync.Once
	o.Events = func(e Event) {
		if e.Port == victim.Path() && e.Stage == StageWrite {
			once.Do(func() {
				victim.SetFault(sim.FaultDrop) // the command goes nowhere…
				go func() {
					time.Sleep(100 * time.Millisecond)
					victim.Unplug() // …and then the board is gone
				}()
			})
		}
	}
	res, err := RunLine(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Burned != 2 || res.Failed != 1 {
		t.Fatalf("got %+v, want 2 burned and 1 failed", res)
	}
	u, ok, err := l.UnitByHW(strings.ToLower(victim.MAC()))
	if err != nil || !ok {
		t.Fatalf("vanished board has no unit: %v", err)
	}
	if u.State != ledger.Failed || !strings.Contains(u.Error, "vanished") {
		t.Errorf("vanished board: state %s, error %q", u.State, u.Error)
	}
	first := u.Cred.DeviceName

	victim.SetFault(sim.FaultNone)
	if err := victim.Replug(); err != nil {
		t.Fatal(err)
	}
	res, err = RunLine(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Burned != 1 || res.Skipped != 2 {
		t.Fatalf("after replug %+v, want 1 burned and 2 skipped", res)
	}
	u, _, _ = l.UnitByHW(strings.ToLower(victim.MAC()))
	if u.Cred.DeviceName != first || u.Attempts != 2 {
		t.Errorf("retried board got %s after %d attempts, want %s after 2", u.Cred.DeviceName, u.Attempts, first)
	}
	checkBoards(t, l, farm, secrets)
}

func TestLineTargetStops(t *testing.T) {
	l := openLedger(t)
	seedLedger(t, l, 10)
	farm := startBoards(t, 4, 921600)
	o := lineOpts(l, farm, 921600)
	o.Once, o.Target = false, 2
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := RunLine(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Burned != 2 || ctx.Err() != nil || !strings.Contains(res.Stop, "target") {
		t.Fatalf("got %+v (ctx %v), want the line to stop itself after 2", res, ctx.Err())
	}
}

func TestLineOutOfCredentials(t *testing.T) {
	l := openLedger(t)
	seedLedger(t, l, 2)
	farm := startBoards(t, 3, 921600)
	res, err := RunLine(context.Background(), lineOpts(l, farm, 921600))
	if err != nil {
		t.Fatal(err)
	}
	// The third board is not a failed board: the line ran out, and says so.
	if res.Burned != 2 || res.Failed != 0 || !strings.Contains(res.Stop, "create") || !errors.Is(res.StopErr, ledger.ErrNoCredentials) {
		t.Fatalf("got %+v, want 2 burned, the line stopped for want of credentials, with advice to create more", res)
	}
}

func TestLineGarbageBoard(t *testing.T) {
	l := openLedger(t)
	seedLedger(t, l, 2)
	farm := startBoards(t, 2, 921600)
	farm.Boards()[0].SetFault(sim.FaultGarble)
	var mu sync.Mutex
	var errs []string
	o := lineOpts(l, farm, 921600)
	o.Events = func(e Event) {
		if e.Stage == StageFailed {
			mu.Lock()
			errs = append(errs, e.Err)
			mu.Unlock()
		}
	}
	res, err := RunLine(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Burned != 1 || res.Failed != 1 || len(errs) != 1 || !strings.Contains(errs[0], "garbage") {
		t.Fatalf("got %+v, errors %q: want 1 burned and a garbage error", res, errs)
	}
	if c, _ := l.Counts("tencent", testProduct); c.Free != 1 {
		t.Errorf("a garbage board consumed a credential: %+v", c)
	}
	// The refused board is in the ledger's history (and so in the audit),
	// though it never got a credential.
	var refused []ledger.Event
	if err := l.EachEvent(ledger.Filter{}, func(e ledger.Event) error {
		if e.To == ledger.Refused {
			refused = append(refused, e)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(refused) != 1 || refused[0].Port != farm.Boards()[0].Path() || !strings.Contains(refused[0].Error, "garbage") {
		t.Errorf("refused events %+v, want the garbage board's", refused)
	}
}

func TestLineNoPorts(t *testing.T) {
	l := openLedger(t)
	f, _ := templates.Lookup("tencent-at")
	_, err := RunLine(context.Background(), LineOptions{Ledger: l, Platform: "tencent", Product: testProduct, Format: f, Once: true,
		Ports: func() ([]string, error) { return burner.Expand(filepath.Join(t.TempDir(), "tty*")) }, Open: OpenATBoard("tencent", 115200)})
	if err == nil || !strings.Contains(err.Error(), "--ports") {
		t.Fatalf("err = %v, want advice about --ports", err)
	}
}

// The line all shift: when a board is done the technician swaps it for the
// next one on the same port; the line notices the new board (another MAC)
// and burns it, until the target.
func TestLineContinuousWithSwaps(t *testing.T) {
	l := openLedger(t)
	secrets := seedLedger(t, l, 10)
	farm := startBoards(t, 2, 921600)
	byPath := map[string]*sim.Board{}
	for _, b := range farm.Boards() {
		byPath[b.Path()] = b
	}
	o := lineOpts(l, farm, 921600)
	o.Once, o.Target = false, 5
	var mu sync.Mutex
	var swaps sync.WaitGroup
	defer swaps.Wait()          // before the boards are closed
	seen := map[string]string{} // hw id -> device
	o.Events = func(e Event) {
		if e.Stage != StageBurned {
			return
		}
		mu.Lock()
		if prev, dup := seen[e.HWID]; dup {
			t.Errorf("board %s burned twice (%s, %s)", e.HWID, prev, e.DeviceName)
		}
		seen[e.HWID] = e.DeviceName
		mu.Unlock()
		swaps.Add(1)
		go func() { // the technician's hand: a moment later, the next board
			defer swaps.Done()
			time.Sleep(20 * time.Millisecond)
			if err := byPath[e.Port].Swap(); err != nil {
				t.Error(err)
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := RunLine(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Burned != 5 || res.Failed != 0 || ctx.Err() != nil {
		t.Fatalf("got %+v (ctx %v), want 5 boards burned across 2 ports", res, ctx.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	devices := map[string]bool{}
	for hw, dev := range seen {
		u, ok, err := l.UnitByHW(hw)
		if err != nil || !ok || u.Cred.DeviceName != dev || u.Cred.DeviceSecret != secrets[dev] || devices[dev] {
			t.Errorf("board %s: unit %+v (%v), device %s", hw, u.Cred.DeviceName, err, dev)
		}
		devices[dev] = true
	}
}
