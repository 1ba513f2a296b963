package provision

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
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
	stop := make(chan struct{})
	var pulls atomic.Int32
	go func() {
		r := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(50+r.IntN(150)) * time.Millisecond):
			}
			b := farm.Boards()[r.IntN(16)]
			if b.Unplug() == nil {
				pulls.Add(1)
			}
			time.Sleep(time.Duration(r.IntN(100)) * time.Millisecond)
			_ = b.Replug()
		}
	}()
	go func() {
		time.Sleep(3 * time.Second)
		close(stop)
		// Then, as a technician does with a failed board, each is plugged
		// in once more (the line retries a failed board on a replug).
		time.Sleep(500 * time.Millisecond)
		for _, b := range farm.Boards() {
			_ = b.Replug()
		}
	}()
	res, err := RunLine(ctx, o)
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
