package ledger

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLease: a claim nothing was written for goes back to the pool when
// its lease runs out; a claim renewed by its board coming back, a claim
// whose write had started, a failed board after a write: never. A station
// starting again gets its own claims back for another lease.
func TestLease(t *testing.T) { eachEngine(t, testLease) }

func testLease(t *testing.T, e testEngine) {
	l := e.open(t)
	clock := t0
	l.SetClock(func() time.Time { return clock })
	l.SetLease(time.Minute)
	seed(t, l, "tencent", "P1", names("d", 6)...)
	claim := func(hw, station string) Unit {
		t.Helper()
		u, err := l.Claim("tencent", "P1", hw, station, "p-"+hw)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	a := claim("A", "st1") // d000: nothing written
	b := claim("B", "st1") // d001: written (Begin)
	c := claim("C", "st2") // d002: written, then failed
	d := claim("D", "st2") // d003: claimed again at +50 s
	if want := t0.Add(time.Minute); !a.LeaseUntil.Equal(want) {
		t.Fatalf("lease until %v, want %v", a.LeaseUntil, want)
	}
	for _, step := range []error{l.Begin(b.ID), l.Begin(c.ID), l.Fail(c.ID, "write timeout")} {
		if step != nil {
			t.Fatal(step)
		}
	}
	if u, _, _ := l.UnitByHW("B"); !u.LeaseUntil.IsZero() {
		t.Errorf("a written board kept a lease: %v", u.LeaseUntil)
	}
	clock = t0.Add(50 * time.Second)
	if d2 := claim("D", "st2"); d2.ID != d.ID || !d2.LeaseUntil.Equal(clock.Add(time.Minute)) {
		t.Errorf("D claimed again: unit %d lease %v", d2.ID, d2.LeaseUntil)
	}

	clock = t0.Add(59 * time.Second) // not yet
	if n, err := l.ReleaseExpired(); err != nil || n != 0 {
		t.Fatalf("before the lease ran out: %d released, %v", n, err)
	}
	clock = t0.Add(61 * time.Second)
	if n, err := l.ReleaseExpired(); err != nil || n != 1 {
		t.Fatalf("after the lease: %d released, %v; want 1 (A)", n, err)
	}
	for hw, want := range map[string]bool{"A": false, "B": true, "C": true, "D": true} {
		if _, ok, _ := l.UnitByHW(hw); ok != want {
			t.Errorf("board %s has a unit: %v, want %v", hw, ok, want)
		}
	}
	// d000 is free again: the next new board gets it (the oldest free).
	if u := claim("E", "st3"); u.Cred.DeviceName != "d000" {
		t.Errorf("next board got %s, want d000 back", u.Cred.DeviceName)
	}
	var released []Event
	l.EachEvent(Filter{}, func(ev Event) error {
		if ev.To == Released {
			released = append(released, ev)
		}
		return nil
	})
	if len(released) != 1 || released[0].HWID != "A" || released[0].Station != "st1" ||
		!strings.Contains(released[0].Error, "lease expired") || !strings.Contains(released[0].Error, "station st1") {
		t.Errorf("release events: %+v", released)
	}

	// Nor by hand: a written board's claim is not Release's to undo.
	for _, hw := range []string{"B", "C"} {
		if err := l.Release(hw); !errors.Is(err, ErrState) {
			t.Errorf("release of written board %s: %v, want ErrState", hw, err)
		}
	}

	// st2 dies holding D's claim; long after its lease, st2 starts again (a
	// new handle, the same name): the claim is its own again, for a lease.
	clock = t0.Add(10 * time.Minute)
	l2, err := Open(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	l2.SetClock(func() time.Time { return clock })
	l2.SetLease(time.Minute)
	seed(t, l2, "tencent", "P1", "d900")
	if _, err := l2.Claim("tencent", "P1", "F", "st2", "p-F"); err != nil {
		t.Fatal(err)
	}
	if u, _, _ := l2.UnitByHW("D"); !u.LeaseUntil.Equal(clock.Add(time.Minute)) {
		t.Errorf("st2 restarted: D's lease %v, want %v", u.LeaseUntil, clock.Add(time.Minute))
	}
	st, err := l2.Stations()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, s := range st {
		got[s.Name] = s.Held
		if s.PID != os.Getpid() || s.Seen.IsZero() {
			t.Errorf("station %+v", s)
		}
	}
	// st1's only claim went back; st2 holds D and F; st3 holds E.
	if fmt.Sprint(got) != fmt.Sprint(map[string]int{"st1": 0, "st2": 2, "st3": 1}) {
		t.Errorf("held per station: %v", got)
	}
	checkInvariants(t, l2)
}

// A claim with no free credential left takes back expired claims first.
func TestClaimTakesBackExpired(t *testing.T) { eachEngine(t, testClaimTakesBackExpired) }

func testClaimTakesBackExpired(t *testing.T, e testEngine) {
	l := e.open(t)
	clock := t0
	l.SetClock(func() time.Time { return clock })
	l.SetLease(time.Minute)
	seed(t, l, "tencent", "P1", "d1")
	if _, err := l.Claim("tencent", "P1", "A", "st1", "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Claim("tencent", "P1", "B", "st2", "p"); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("within the lease: %v, want ErrNoCredentials", err)
	}
	clock = clock.Add(2 * time.Minute)
	u, err := l.Claim("tencent", "P1", "B", "st2", "p")
	if err != nil || u.Cred.DeviceName != "d1" {
		t.Fatalf("after the lease: %+v %v", u, err)
	}
	if _, ok, _ := l.UnitByHW("A"); ok {
		t.Error("A kept its unit")
	}
	checkInvariants(t, l)
}

// A station killed holding claims: the stations still running give back
// what it claimed and never wrote, once the lease is over; what it had
// begun writing stays with its boards.
func TestLeaseAfterKill9(t *testing.T) { eachEngine(t, testLeaseAfterKill9) }

func testLeaseAfterKill9(t *testing.T, e testEngine) {
	path := e.url(t)
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seed(t, l, platform, product, names("dev-", 10)...)
	// The child's leases must outlive the kill and the count after it (its
	// own heartbeat sweeps expired claims while it lives): 2 s leaves room
	// for a machine busy enough to take a second between the two (a 400 ms
	// lease failed once, in a fresh-clone CI beside a flake-check).
	cmd := child(t, childEnv+"=hold", childDB+"="+path, EnvLease+"=2s")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		cmd.Process.Kill()
		t.Fatalf("child: %q %v", buf, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if c, _ := l.Counts(platform, product); c.ByState[Reserved] != 3 || c.ByState[Burning] != 2 {
		t.Fatalf("after the kill: %v, want 3 reserved and 2 burning", c.ByState)
	}
	// A station running here (its board written at once, so it holds no
	// lease of its own): its heartbeat, every quarter lease, sweeps. Its
	// own claim must be begun within that lease: 4 s (400 ms was too short
	// for a busy machine, and the claim was swept before its Begin).
	l.SetLease(4 * time.Second)
	u, err := l.Claim(platform, product, "other-0", "other", "p")
	if err == nil {
		err = l.Begin(u.ID)
	}
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := l.Counts(platform, product)
		if err != nil {
			t.Fatal(err)
		}
		if c.ByState[Burning] != 3 {
			t.Fatalf("a written board lost its credential: %v", c.ByState)
		}
		if c.ByState[Reserved] == 0 && c.Free == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dead station's claims were not given back: %v, %d free", c.ByState, c.Free)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := range 5 {
		u, ok, err := l.UnitByHW("held-" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		if wrote := i < 2; ok != wrote || (ok && u.State != Burning) {
			t.Errorf("board held-%d: unit %v (%s), want one only if written", i, ok, u.State)
		}
	}
	checkInvariants(t, l)
}

// childHold claims five boards as station "held", begins writing two,
// says ready, and waits to be killed.
func childHold(l *Ledger) error {
	for i := range 5 {
		u, err := l.Claim(platform, product, "held-"+strconv.Itoa(i), "held", "p")
		if err != nil {
			return err
		}
		if i < 2 {
			if err := l.Begin(u.ID); err != nil {
				return err
			}
		}
	}
	os.Stdout.WriteString("ready\n")
	select {}
}
