package ledger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/iotburn/iotburn/provision/ledger/pgtest"
	"github.com/iotburn/iotburn/registry"
)

// singleStation builds the books of one station's batch on SQLite: boards
// in every state, a released claim, a refused board, an exported image and
// a void credential.
func singleStation(t *testing.T) *Ledger {
	t.Helper()
	l := openTemp(t)
	clock := t0
	l.SetClock(func() time.Time { clock = clock.Add(time.Second); return clock })
	seed(t, l, "tencent", "P1", names("d", 10)...) // d000 … d009
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	claim := func(hw string) Unit {
		t.Helper()
		u, err := l.Claim("tencent", "P1", hw, "solo", "p-"+hw)
		must(err)
		return u
	}
	a := claim("A1") // d000 verified
	must(l.Begin(a.ID))
	must(l.Burned(a.ID, time.Second))
	must(l.Verified(a.ID))
	b := claim("B1") // d001 burning
	must(l.Begin(b.ID))
	c := claim("C1") // d002 failed after a write
	must(l.Begin(c.ID))
	must(l.Fail(c.ID, "readback mismatch"))
	claim("D1") // d003 reserved
	claim("E1") // d004, released: back in the pool
	must(l.Release("E1"))
	f := claim("F1") // d004 again, then the board is scrapped
	must(l.Begin(f.ID))
	must(l.Void("tencent", "P1", "d004", "cracked"))
	must(l.Refused("", "solo", "p-X", "tencent", "P1", "no answer"))
	_, err := l.Export(ExportRequest{Platform: "tencent", Product: "P1", Device: "d008", Station: "solo", Note: "images/"})
	must(err)
	must(l.Void("tencent", "P1", "d009", "leaked"))
	return l
}

type movedEvent struct {
	at                     time.Time
	hw, station, port, dev string
	from, to               State
	attempt                int
	err                    string
}

func history(t *testing.T, l *Ledger) ([]movedEvent, []int64) {
	t.Helper()
	var out []movedEvent
	var units []int64
	if err := l.EachEvent(Filter{}, func(e Event) error {
		out = append(out, movedEvent{e.Time, e.HWID, e.Station, e.Port, e.DeviceName, e.From, e.To, e.Attempt, e.Error})
		units = append(units, e.UnitID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out, units
}

func TestMoveTo(t *testing.T) {
	src := singleStation(t)
	url := pgtest.NewDB(t)
	srcCounts, err := src.Counts("", "")
	if err != nil {
		t.Fatal(err)
	}
	srcHistory, srcUnits := history(t, src)

	info, err := src.MoveTo(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	// 1 request, 10 credentials, 5 boards (E1 was released), and the
	// history as built above, by hand: A1 4 (claim, begin, burned,
	// verified), B1 2, C1 3, D1 1, E1 2 (claim, release), F1 3 (claim,
	// begin, void), 1 refusal, 1 export, 1 void of d009.
	want := MoveInfo{Target: Redact(url), Requests: 1, Credentials: 10, Units: 5, Events: 18}
	if info != want {
		t.Fatalf("move: %+v, want %+v", info, want)
	}
	dst, err := Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if c, _ := dst.Counts("", ""); fmt.Sprint(c) != fmt.Sprint(srcCounts) {
		t.Errorf("counts on the shared ledger %+v, here %+v", c, srcCounts)
	}
	for _, hw := range []string{"A1", "B1", "C1", "D1", "F1"} {
		s, _, _ := src.UnitByHW(hw)
		d, ok, err := dst.UnitByHW(hw)
		if err != nil || !ok || d.State != s.State || d.Attempts != s.Attempts || d.Cred != s.Cred || d.Error != s.Error ||
			!d.UpdatedAt.Equal(s.UpdatedAt) || !d.LeaseUntil.Equal(s.LeaseUntil) {
			t.Errorf("board %s: shared %+v, here %+v (%v)", hw, d, s, err)
		}
	}
	dstHistory, dstUnits := history(t, dst)
	if !slices.Equal(dstHistory, srcHistory) {
		t.Errorf("history:\n%v\nwant\n%v", dstHistory, srcHistory)
	}
	// Unit ids are the shared ledger's, one for one: E1's released unit
	// has its own, and no event lost its board.
	m := map[int64]int64{}
	for i, s := range srcUnits {
		if d, seen := m[s]; seen && d != dstUnits[i] || (s == 0) != (dstUnits[i] == 0) {
			t.Errorf("event %d: unit %d here is %d there, and %d before", i, s, dstUnits[i], m[s])
		}
		m[s] = dstUnits[i]
	}
	if len(m) != 7 { // 6 boards and "no unit"
		t.Errorf("%d unit ids in the moved history, want 7: %v", len(m), m)
	}
	checkInvariants(t, dst)
	if p, err := dst.Check(context.Background()); err != nil || len(p) != 0 {
		t.Errorf("check on the shared ledger: %v %v", p, err)
	}

	// The file is an archive now: read, never written.
	for name, write := range map[string]func() error{
		"claim": func() error { _, err := src.Claim("tencent", "P1", "G1", "solo", "p"); return err },
		"void":  func() error { return src.Void("tencent", "P1", "d005", "x") },
		"journal": func() error {
			_, err := src.Journal("tencent", "P1", []string{"n1"})
			return err
		},
	} {
		if err := write(); !errors.Is(err, ErrMoved) {
			t.Errorf("%s on a moved ledger: %v, want ErrMoved", name, err)
		}
	}
	if c, err := src.Counts("", ""); err != nil || c.Total != 10 {
		t.Errorf("reading the moved ledger: %+v %v", c, err)
	}
	// Again: nothing to do, nothing twice.
	again, err := src.MoveTo(context.Background(), url)
	if err != nil || !again.Already {
		t.Fatalf("second move: %+v %v", again, err)
	}
	if c, _ := dst.Counts("", ""); c.Total != 10 {
		t.Errorf("after the second move %d credentials", c.Total)
	}
	if _, err := src.MoveTo(context.Background(), pgtest.NewDB(t)); !errors.Is(err, ErrMoved) {
		t.Errorf("a move to another ledger after the first: %v", err)
	}
	// The line goes on there: the one free credential left is d005.
	if u, err := dst.Claim("tencent", "P1", "G1", "line-2", "p"); err != nil || u.Cred.DeviceName != "d005" {
		t.Errorf("claim on the shared ledger: %s %v", u.Cred.DeviceName, err)
	}
}

// A move never merges two versions of a device or a board, and refuses
// books that check finds fault with; nothing is moved, and the file stays
// in service.
func TestMoveToRefused(t *testing.T) {
	url := pgtest.NewDB(t)
	dst, err := Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	seed(t, dst, "tencent", "P1", "x1", "x2")
	if _, err := dst.Claim("tencent", "P1", "HW1", "line-1", "p"); err != nil { // HW1 holds x1
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		build   func(l *Ledger)
		err     error
		devices []string
		boards  int
		partly  bool
	}{
		{"another secret", func(l *Ledger) {
			r, _ := l.Journal("tencent", "P1", []string{"x2"})
			l.Complete(r.ID, []registry.Credential{{Platform: "tencent", ProductID: "P1", DeviceName: "x2", DeviceSecret: "OTHER"}})
		}, ErrConflict, []string{"tencent/P1/x2"}, 0, false},
		{"a board on another device", func(l *Ledger) {
			seed(t, l, "tencent", "P1", "y1")
			l.Claim("tencent", "P1", "HW1", "solo", "p")
		}, ErrConflict, nil, 1, false},
		{"partly there", func(l *Ledger) { seed(t, l, "tencent", "P1", "x2", "y2") }, ErrConflict, nil, 0, true},
		{"open request", func(l *Ledger) {
			seed(t, l, "tencent", "P1", "z1")
			l.Journal("tencent", "P1", []string{"z2"})
		}, ErrProblems, nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := openTemp(t)
			tt.build(src)
			before, _ := dst.Counts("", "")
			_, err := src.MoveTo(context.Background(), url)
			if !errors.Is(err, tt.err) {
				t.Fatalf("move: %v, want %v", err, tt.err)
			}
			var ce *MoveConflictError
			if errors.As(err, &ce) {
				if !slices.Equal(ce.Devices, tt.devices) || len(ce.Boards) != tt.boards || ce.Partly != tt.partly {
					t.Errorf("conflict %+v, want devices %v, %d boards, partly %v", ce, tt.devices, tt.boards, tt.partly)
				}
			}
			if after, _ := dst.Counts("", ""); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("a refused move changed the shared ledger: %+v, was %+v", after, before)
			}
			// Still in service here.
			seed(t, src, "aliyun", "K1", "k1")
			if _, err := src.Claim("aliyun", "K1", "Z9", "solo", "p"); err != nil {
				t.Errorf("the file after a refused move: %v", err)
			}
		})
	}
}

// A move cut off before it finished (the file marked, the shared ledger
// never written) is finished by running it again.
func TestMoveToResumed(t *testing.T) {
	src := singleStation(t)
	url := pgtest.NewDB(t)
	if _, err := rawExec(src, `INSERT INTO moves (target, state, started_at) VALUES (?, 'moving', 0)`, Redact(url)); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Claim("tencent", "P1", "G1", "solo", "p"); !errors.Is(err, ErrMoved) {
		t.Fatalf("claim during a move: %v", err)
	}
	info, err := src.MoveTo(context.Background(), url)
	if err != nil || info.Already || info.Credentials != 10 {
		t.Fatalf("move resumed: %+v %v", info, err)
	}
	if n := rawInt(t, src, `SELECT count(*) FROM moves WHERE state = 'moved'`); n != 1 {
		t.Errorf("%d moves marked done", n)
	}
}

// The backup of a shared ledger is a SQLite ledger file; moved onto an
// empty database it is the same books again (a restore).
func TestBackupRestorePostgres(t *testing.T) {
	src := singleStation(t)
	url := pgtest.NewDB(t)
	if _, err := src.MoveTo(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	pg, err := OpenReadOnly(url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	dest := filepath.Join(t.TempDir(), "shared-backup.db")
	info, err := pg.Backup(context.Background(), dest)
	if err != nil {
		t.Fatal(err)
	}
	if info.Credentials != 10 || info.Units != 5 || info.Events != 18 || info.Version != Version {
		t.Errorf("backup %+v", info)
	}
	for _, side := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(dest + side); err == nil {
			t.Errorf("backup left %s", side)
		}
	}
	b, err := Open(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if p, err := b.Check(context.Background()); err != nil || len(p) != 0 {
		t.Errorf("check of the backup: %v %v", p, err)
	}
	want, _ := history(t, pg)
	got, _ := history(t, b)
	if !slices.Equal(got, want) {
		t.Errorf("backup history differs")
	}
	restored := pgtest.NewDB(t)
	if info, err := b.MoveTo(context.Background(), restored); err != nil || info.Units != 5 {
		t.Fatalf("restore: %+v %v", info, err)
	}
	r, err := Open(restored)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, _ := history(t, r); !slices.Equal(got, want) {
		t.Errorf("restored history differs")
	}
}
