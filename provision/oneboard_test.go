package provision

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/at"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates"
)

// A module that answers ERROR to AT+TCMODULE once per power cycle (the
// issue's glitch) is asked again: it is one unit with one credential,
// however often it is replugged and glitches.
func TestGlitchingBoardIsOneUnit(t *testing.T) {
	l := openLedger(t)
	seedLedger(t, l, 3)
	farm, err := sim.Start(sim.Options{Dir: t.TempDir(), Kind: "tencent-at", Count: 1, Baud: sim.Unpaced, Chaos: sim.Chaos{Glitch: "TCMODULE"}})
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	b := farm.Boards()[0]
	o := lineOpts(l, farm, 115200)
	for pass := range 3 {
		if pass > 0 {
			if err := b.Replug(); err != nil { // and it glitches again
				t.Fatal(err)
			}
		}
		if _, err := RunLine(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	c, err := l.Counts("tencent", testProduct)
	if err != nil {
		t.Fatal(err)
	}
	if c.Free != 2 {
		t.Fatalf("%d credentials free after 3 passes of one board, want 2 (one spent)", c.Free)
	}
	u, ok, err := l.UnitByHW(strings.ToLower(b.MAC()))
	if err != nil || !ok || u.State != ledger.Burned || u.Cred.DeviceName != b.Flash().DeviceName {
		t.Fatalf("the board's unit: %+v %v %v (flash holds %s)", u, ok, err, b.Flash().DeviceName)
	}
}

// A board the ledger bound under another of its ids (its IMEI, in a pass
// where AT+TCMODULE failed every time) and that holds that credential is
// that unit: the line resumes with it, and spends no second credential.
func TestBoardKnownByAnotherID(t *testing.T) {
	l := openLedger(t)
	seedLedger(t, l, 2)
	farm := startBoards(t, 1, sim.Unpaced)
	b := farm.Boards()[0]
	// The earlier pass, by hand: bound to "imei:…", burned, on the board.
	u, err := l.ClaimName("tencent", testProduct, "dev0001", "imei:"+b.IMEI(), "test", b.Path())
	if err != nil {
		t.Fatal(err)
	}
	burnByHand(t, l, u, b)
	res, err := RunLine(context.Background(), lineOpts(l, farm, 115200))
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 1 || res.Burned != 0 {
		t.Fatalf("got %+v, want the board recognised as done", res)
	}
	if c, _ := l.Counts("tencent", testProduct); c.Free != 1 {
		t.Fatalf("%d free, want 1: a second credential was spent on the board", c.Free)
	}
}

// A board burned from another ledger (another station, same product) is
// refused with the device it holds, and keeps it; this ledger spends
// nothing on it.
func TestBoardFromAnotherLedger(t *testing.T) {
	a, bl := openLedger(t), openLedger(t)
	seedLedger(t, a, 1)
	farm := startBoards(t, 1, sim.Unpaced)
	board := farm.Boards()[0]
	if res, err := RunLine(context.Background(), lineOpts(a, farm, 115200)); err != nil || res.Burned != 1 {
		t.Fatalf("station A: %+v %v", res, err)
	}
	held := board.Flash()
	// Station B's ledger: other names of the same product.
	req, err := bl.Journal("tencent", testProduct, []string{"other0001"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bl.Complete(req.ID, credsFor("other0001")); err != nil {
		t.Fatal(err)
	}
	var events []Event
	o := lineOpts(bl, farm, 115200)
	o.Events = func(e Event) { events = append(events, e) }
	res, err := RunLine(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Burned != 0 || res.Failed != 1 {
		t.Fatalf("station B: %+v, want the board refused", res)
	}
	last := events[len(events)-1]
	if !errors.Is(last.Cause, ErrHeldElsewhere) || !strings.Contains(last.Err, held.DeviceName) {
		t.Errorf("refusal %q (%v), want it to name %s", last.Err, last.Cause, held.DeviceName)
	}
	if now := board.Flash(); now.DeviceName != held.DeviceName || now.DeviceSecret != held.DeviceSecret {
		t.Errorf("the board now holds %s, want %s kept", now.DeviceName, held.DeviceName)
	}
	if c, _ := bl.Counts("tencent", testProduct); c.Free != 1 {
		t.Errorf("station B spent a credential on the refused board (%d free)", c.Free)
	}
}

func credsFor(names ...string) []registry.Credential {
	var out []registry.Credential
	for _, n := range names {
		out = append(out, registry.Credential{Platform: "tencent", ProductID: testProduct, DeviceName: n, DeviceSecret: "b3RoZXItc2VjcmV0LTAwMQ==", Region: "ap-guangzhou"})
	}
	return out
}

// burnByHand writes u's credential to the board through the AT driver and
// records it burned, as an earlier pass of the line would have.
func burnByHand(t *testing.T, l *ledger.Ledger, u ledger.Unit, b *sim.Board) {
	t.Helper()
	f, err := templates.Lookup("tencent-at")
	if err != nil {
		t.Fatal(err)
	}
	img, err := f.Render(u.Cred)
	if err != nil {
		t.Fatal(err)
	}
	p, err := burner.Open(b.Path(), 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d := at.New(p)
	ctx := context.Background()
	if err := d.Hello(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Begin(u.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.RunScript(ctx, img); err != nil {
		t.Fatal(err)
	}
	if err := l.Burned(u.ID, 0); err != nil {
		t.Fatal(err)
	}
}

// Hot-plug at 16 ports: boards pulled and plugged back in random order
// while the line runs, mid-write or not. Every board ends burned once, with
// one credential each, and the history has an attempt for every write that
// a pull cut short.
func TestHotPlug16(t *testing.T) {
	if testing.Short() {
		t.Skip("hot-plug")
	}
	l := openLedger(t)
	seedLedger(t, l, 20)
	farm := startBoards(t, 16, 9600) // slow: a pull lands mid-write
	o := lineOpts(l, farm, 9600)
	o.Once, o.Target, o.Scan = false, 16, 20*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The line reports each port's failures; once the pulls stop, a failed
	// board is plugged in once more, as a technician does with a board the
	// screen shows FAILED (the line retries a failed board on a replug).
	// Watching the line's own report, not the clock: on a slow machine a
	// pulled board's failure shows seconds after the pull.
	var failedMu sync.Mutex
	failed := map[string]bool{} // ports failed since their last replug
	o.Events = func(e Event) {
		if e.Stage == StageFailed {
			failedMu.Lock()
			failed[e.Port] = true
			failedMu.Unlock()
		}
	}
	byPath := map[string]*sim.Board{}
	for _, b := range farm.Boards() {
		byPath[b.Path()] = b
	}
	// The helpers below end with the line (ctx), and the test waits for
	// them: none touches a board after the test has closed the farm.
	lineCtx, lineDone := context.WithCancel(ctx)
	var helpers sync.WaitGroup
	defer helpers.Wait()
	defer lineDone()
	boards := farm.Boards()
	stop := make(chan struct{}) // closed when the pulls stop
	var pulls atomic.Int32
	helpers.Add(3)
	go func() {
		defer helpers.Done()
		r := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				return
			case <-lineCtx.Done():
				return
			case <-time.After(time.Duration(50+r.IntN(150)) * time.Millisecond):
			}
			b := boards[r.IntN(len(boards))]
			if b.Unplug() == nil {
				pulls.Add(1)
			}
			time.Sleep(time.Duration(r.IntN(100)) * time.Millisecond)
			_ = b.Replug()
		}
	}()
	go func() {
		defer helpers.Done()
		select {
		case <-time.After(3 * time.Second):
		case <-lineCtx.Done():
		}
		close(stop)
	}()
	go func() {
		defer helpers.Done()
		select {
		case <-stop:
		case <-lineCtx.Done():
			return
		}
		for {
			select {
			case <-lineCtx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			failedMu.Lock()
			ports := failed
			failed = map[string]bool{}
			failedMu.Unlock()
			for port := range ports {
				_ = byPath[port].Replug()
			}
		}
	}()
	res, err := RunLine(ctx, o)
	lineDone()
	helpers.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.Burned != 16 || ctx.Err() != nil {
		t.Fatalf("got %+v (ctx %v), want 16 boards burned", res, ctx.Err())
	}
	seen := map[string]bool{}
	for _, b := range farm.Boards() {
		u, ok, err := l.UnitByHW(strings.ToLower(b.MAC()))
		if err != nil || !ok || u.State != ledger.Burned || u.Cred.DeviceName != b.Flash().DeviceName {
			t.Fatalf("board %s: unit %+v %v, flash %s", b.Path(), u, err, b.Flash().DeviceName)
		}
		if seen[u.Cred.DeviceName] {
			t.Fatalf("credential %s on two boards", u.Cred.DeviceName)
		}
		seen[u.Cred.DeviceName] = true
	}
	if c, _ := l.Counts("tencent", testProduct); c.Free != 4 {
		t.Errorf("%d free, want 4: the pulls spent credentials", c.Free)
	}
	attempts := 0
	if err := l.EachEvent(ledger.Filter{}, func(e ledger.Event) error {
		if e.To == ledger.Burning {
			attempts++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pulls, %d burn attempts for 16 boards", pulls.Load(), attempts)
	if attempts < 16 {
		t.Errorf("%d attempts recorded, want at least one per board", attempts)
	}
}

// A board pulled mid-write and back before the line's next scan (a short
// pull; the simulator's replug swaps the port in one step, so its path is
// never seen missing) is burned when it is back, not left as failed: the
// line cannot tell it from a new board, and must not take it for one done.
func TestQuickReplugMidWriteIsServedAgain(t *testing.T) {
	l := openLedger(t)
	seedLedger(t, l, 2)
	farm := startBoards(t, 1, 9600) // slow: the write is long enough to cut
	b := farm.Boards()[0]
	o := lineOpts(l, farm, 9600)
	o.Once, o.Target = false, 1
	var once sync.Once
	var stages []Stage
	var mu sync.Mutex
	o.Events = func(e Event) {
		mu.Lock()
		stages = append(stages, e.Stage)
		mu.Unlock()
		if e.Stage == StageWrite {
			once.Do(func() {
				if err := b.Replug(); err != nil {
					t.Error(err)
				}
			})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := RunLine(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if res.Burned != 1 || res.Failed != 1 || ctx.Err() != nil {
		t.Fatalf("got %+v (ctx %v), stages %v: want the cut write failed, then the board burned", res, ctx.Err(), stages)
	}
	if got := b.Flash().DeviceName; got == "" {
		t.Fatal("the board holds no credential")
	}
	if c, _ := l.Counts("tencent", testProduct); c.Free != 1 {
		t.Errorf("%d free, want 1: the board got two credentials", c.Free)
	}
}
