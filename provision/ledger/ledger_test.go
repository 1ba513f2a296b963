package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/provision/ledger/pgtest"
	"github.com/iotburn/iotburn/registry"
)

// TestMain lets the test binary double as the child processes of the
// multi-process and kill -9 tests (see process_test.go).
func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

func openTemp(t testing.TB) *Ledger {
	t.Helper()
	l, err := Open(filepath.Join(t.TempDir(), "iotburn.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// cred is the test's stand-in for a platform answer; the secret is derived
// from the name so any process can recompute it.
func cred(platform, product, name string) registry.Credential {
	return registry.Credential{Platform: platform, ProductID: product, DeviceName: name,
		DeviceSecret: "S3CRET-" + name, Region: "ap-guangzhou"}
}

// seed journals and completes names, as `iotburn create` would.
func seed(t testing.TB, l *Ledger, platform, product string, names ...string) {
	t.Helper()
	r, err := l.Journal(platform, product, names)
	if err != nil {
		t.Fatal(err)
	}
	creds := make([]registry.Credential, len(names))
	for i, n := range names {
		creds[i] = cred(platform, product, n)
	}
	if n, err := l.Complete(r.ID, creds); err != nil || n != len(names) {
		t.Fatalf("Complete = %d, %v; want %d, nil", n, err, len(names))
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

func TestOpenFileModesAndPragmas(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "iotburn.db")
	// A pre-existing world-readable file (copied around with cp) is tightened.
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seed(t, l, "tencent", "P1", "dev-a")
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	if l.Path() != path {
		t.Errorf("Path() = %q", l.Path())
	}
	for _, c := range []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"busy_timeout", fmt.Sprint(busyTimeout.Milliseconds())},
		{"user_version", fmt.Sprint(len(migrations))},
	} {
		var got string
		if err := l.db.QueryRow("PRAGMA " + c.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("PRAGMA %s = %s, want %s", c.pragma, got, c.want)
		}
	}
	// Reopening an up-to-date file migrates nothing and keeps the data.
	l2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if _, err := l2.Credential("tencent", "P1", "dev-a"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", ":memory:", "file:x.db", filepath.Join(dir, "a?b.db")} {
		if _, err := Open(bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}

func TestFutureSchemaRefused(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testEngine) {
		l := e.open(t)
		q := `PRAGMA user_version = 99`
		if e.pg() {
			q = `UPDATE schema_version SET version = 99`
		}
		if _, err := l.db.Exec(q); err != nil {
			t.Fatal(err)
		}
		l.Close()
		for _, open := range []func(string) (*Ledger, error){Open, OpenReadOnly} {
			if _, err := open(l.Path()); err == nil || !strings.Contains(err.Error(), "upgrade iotburn") {
				t.Fatalf("opening a v99 ledger: %v", err)
			}
		}
	})
}

func TestJournalOpenRequestsKnownNames(t *testing.T) {
	eachEngine(t, testJournalOpenRequestsKnownNames)
}

func testJournalOpenRequestsKnownNames(t *testing.T, e testEngine) {
	l := e.open(t)
	r1, err := l.Journal("tencent", "P1", []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetTask(r1.ID, "task-1"); err != nil {
		t.Fatal(err)
	}
	if err := l.SetTask(999, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetTask(999) = %v", err)
	}
	r2, err := l.Journal("tencent", "P1", []string{"c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Journal("aliyun", "K1", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Journal("tencent", "P1", nil); err == nil {
		t.Error("journal of no names accepted")
	}
	open, err := l.OpenRequests("tencent", "P1")
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 2 || open[0].ID != r1.ID || open[0].TaskID != "task-1" || !slices.Equal(open[0].Names, []string{"a", "b"}) ||
		open[1].ID != r2.ID || open[1].Done || open[0].CreatedAt.IsZero() {
		t.Fatalf("OpenRequests = %+v", open)
	}
	if all, _ := l.OpenRequests("", ""); len(all) != 3 {
		t.Errorf("OpenRequests(all) = %d, want 3", len(all))
	}
	// Only "a" came back from the platform for r1 ("b" failed there).
	if n, err := l.Complete(r1.ID, []registry.Credential{cred("tencent", "P1", "a")}); n != 1 || err != nil {
		t.Fatalf("Complete = %d, %v", n, err)
	}
	known, err := l.KnownNames("tencent", "P1")
	if err != nil {
		t.Fatal(err)
	}
	// a: credentialled; c: open request; b: its request is done and it was
	// never created, so a re-run may ask for it again.
	want := map[string]bool{"a": true, "c": true}
	if fmt.Sprint(known) != fmt.Sprint(want) {
		t.Errorf("KnownNames = %v, want %v", known, want)
	}
	if open, _ := l.OpenRequests("tencent", "P1"); len(open) != 1 || open[0].ID != r2.ID {
		t.Errorf("after Complete, OpenRequests = %+v", open)
	}
}

func TestComplete(t *testing.T) { eachEngine(t, testComplete) }

func testComplete(t *testing.T, e testEngine) {
	tests := []struct {
		name      string
		creds     []registry.Credential
		wantAdded int
		wantErr   error // nil, ErrSecretDiffers, or errAny
		wantDone  bool
	}{
		{"new", []registry.Credential{cred("tencent", "P1", "n1"), cred("tencent", "P1", "n2")}, 2, nil, true},
		{"already stored, same secret", []registry.Credential{cred("tencent", "P1", "old"), cred("tencent", "P1", "n1")}, 1, nil, true},
		{"duplicate within the answer", []registry.Credential{cred("tencent", "P1", "n1"), cred("tencent", "P1", "n1")}, 1, nil, true},
		{"empty platform means the request's", []registry.Credential{{ProductID: "P1", DeviceName: "n1", DeviceSecret: "s"}}, 1, nil, true},
		{"stored with another secret", []registry.Credential{{Platform: "tencent", ProductID: "P1", DeviceName: "old", DeviceSecret: "other"},
			cred("tencent", "P1", "n2")}, 1, ErrSecretDiffers, true},
		{"other product", []registry.Credential{cred("tencent", "P2", "n1")}, 0, errAny, false},
		{"name not asked for", []registry.Credential{cred("tencent", "P1", "zz")}, 0, errAny, false},
		{"nothing came back", nil, 0, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := e.open(t)
			seed(t, l, "tencent", "P1", "old")
			r, err := l.Journal("tencent", "P1", []string{"old", "n1", "n2"})
			if err != nil {
				t.Fatal(err)
			}
			added, err := l.Complete(r.ID, tc.creds)
			switch {
			case tc.wantErr == errAny && err == nil, tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if added != tc.wantAdded {
				t.Errorf("added = %d, want %d", added, tc.wantAdded)
			}
			if err != nil && strings.Contains(err.Error(), "S3CRET") {
				t.Errorf("error leaks a secret: %v", err)
			}
			open, _ := l.OpenRequests("tencent", "P1")
			if done := len(open) == 0; done != tc.wantDone {
				t.Errorf("request done = %v, want %v", done, tc.wantDone)
			}
			c, err := l.Credential("tencent", "P1", "old")
			if err != nil || c.DeviceSecret != "S3CRET-old" {
				t.Errorf("stored secret of old changed: %q, %v", c.DeviceSecret, err)
			}
			if n := rawInt(t, l, `SELECT count(*) FROM credentials`); n != 1+tc.wantAdded {
				t.Errorf("%d credentials stored, want %d", n, 1+tc.wantAdded)
			}
		})
	}
	if _, err := e.open(t).Complete(42, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Complete(unknown) = %v", err)
	}
}

var errAny = errors.New("any error")

func TestClaim(t *testing.T) { eachEngine(t, testClaim) }

func testClaim(t *testing.T, e testEngine) {
	l := e.open(t)
	seed(t, l, "tencent", "P1", "d1", "d2")
	seed(t, l, "aliyun", "K1", "k1")

	u1, err := l.Claim("tencent", "P1", "AA:01", "st1", "/dev/ttyUSB0")
	if err != nil {
		t.Fatal(err)
	}
	if u1.State != Reserved || u1.Cred != cred("tencent", "P1", "d1") || u1.HWID != "AA:01" || u1.Port != "/dev/ttyUSB0" || u1.Attempts != 0 {
		t.Fatalf("first claim = %+v (want oldest credential d1, reserved)", u1)
	}
	// The same board, replugged elsewhere: same unit, same credential, new place.
	again, err := l.Claim("tencent", "P1", "AA:01", "st2", "/dev/ttyUSB3")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != u1.ID || again.CredentialID != u1.CredentialID || again.Station != "st2" || again.Port != "/dev/ttyUSB3" {
		t.Fatalf("re-claim = %+v, want unit %d with new station/port", again, u1.ID)
	}
	u2, err := l.Claim("tencent", "P1", "AA:02", "st1", "p1")
	if err != nil || u2.Cred.DeviceName != "d2" {
		t.Fatalf("second board: %+v, %v", u2, err)
	}
	_, err = l.Claim("tencent", "P1", "AA:03", "st1", "p1")
	if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "iotburn create") || !strings.Contains(err.Error(), "2 in the ledger") {
		t.Errorf("claim with none free = %v", err)
	}
	// A known board under another product: refused, naming both.
	_, err = l.Claim("aliyun", "K1", "AA:01", "st1", "p1")
	if !errors.Is(err, ErrWrongProduct) || !strings.Contains(err.Error(), "tencent/P1") || !strings.Contains(err.Error(), "aliyun/K1") {
		t.Errorf("claim under another product = %v", err)
	}
	if c, _ := l.Counts("aliyun", "K1"); c.Free != 1 {
		t.Errorf("refused claim consumed a credential: %+v", c)
	}
	for _, bad := range [][3]string{{"", "P1", "x"}, {"tencent", "", "x"}, {"tencent", "P1", " "}} {
		if _, err := l.Claim(bad[0], bad[1], bad[2], "", ""); err == nil {
			t.Errorf("Claim%q accepted", bad)
		}
	}
	got, ok, err := l.UnitByHW("AA:02")
	if err != nil || !ok || got.ID != u2.ID || got.Cred.DeviceSecret != "S3CRET-d2" {
		t.Errorf("UnitByHW = %+v, %v, %v", got, ok, err)
	}
	if _, ok, err := l.UnitByHW("nope"); ok || err != nil {
		t.Errorf("UnitByHW(nope) = %v, %v", ok, err)
	}
}

func TestTransitions(t *testing.T) { eachEngine(t, testTransitions) }

func testTransitions(t *testing.T, e testEngine) {
	type op struct {
		name string
		do   func(l *Ledger, id int64) error
	}
	begin := op{"begin", func(l *Ledger, id int64) error { return l.Begin(id) }}
	burned := op{"burned", func(l *Ledger, id int64) error { return l.Burned(id, 1500*time.Millisecond) }}
	verified := op{"verified", func(l *Ledger, id int64) error { return l.Verified(id) }}
	fail := op{"fail", func(l *Ledger, id int64) error { return l.Fail(id, "readback mismatch") }}
	// path brings a fresh unit to the state under test.
	paths := map[State][]op{
		Reserved: nil,
		Burning:  {begin},
		Burned:   {begin, burned},
		Verified: {begin, burned, verified},
		Failed:   {begin, fail},
	}
	tests := []struct {
		from State
		op   op
		ok   bool
		want State
	}{
		{Reserved, begin, true, Burning},
		{Reserved, burned, false, Reserved},
		{Reserved, verified, false, Reserved},
		{Reserved, fail, true, Failed},
		{Burning, begin, true, Burning}, // resumed after a crash mid-burn
		{Burning, burned, true, Burned},
		{Burning, verified, false, Burning},
		{Burning, fail, true, Failed},
		{Burned, begin, true, Burning}, // re-burn, same credential
		{Burned, burned, false, Burned},
		{Burned, verified, true, Verified},
		{Burned, fail, true, Failed},
		{Verified, verified, true, Verified},
		{Verified, burned, false, Verified},
		{Verified, fail, true, Failed},
		{Failed, begin, true, Burning},
		{Failed, burned, false, Failed},
		{Failed, verified, false, Failed},
		{Failed, fail, true, Failed},
	}
	// One ledger, a board and a credential of its own for each case: the
	// cases are as independent as on fresh ledgers.
	l := e.open(t)
	for _, tc := range tests {
		name := fmt.Sprintf("%s_%s", tc.from, tc.op.name)
		t.Run(name, func(t *testing.T) {
			hw := "hw-" + name
			seed(t, l, "tencent", "P1", "d-"+name)
			u, err := l.Claim("tencent", "P1", hw, "st", "p")
			if err != nil {
				t.Fatal(err)
			}
			if u.Cred.DeviceName != "d-"+name {
				t.Fatalf("claimed %s, want d-%s", u.Cred.DeviceName, name)
			}
			for _, o := range paths[tc.from] {
				if err := o.do(l, u.ID); err != nil {
					t.Fatalf("setup %s: %v", o.name, err)
				}
			}
			before, _, _ := l.UnitByHW(hw)
			err = tc.op.do(l, u.ID)
			if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, ErrState)) {
				t.Fatalf("%s from %s: err = %v, want ok=%v", tc.op.name, tc.from, err, tc.ok)
			}
			after, _, _ := l.UnitByHW(hw)
			if after.State != tc.want || after.CredentialID != u.CredentialID {
				t.Errorf("state %s cred %d, want %s cred %d", after.State, after.CredentialID, tc.want, u.CredentialID)
			}
			switch {
			case tc.ok && tc.op.name == "begin":
				if after.Attempts != before.Attempts+1 || after.StartedAt.IsZero() || after.Error != "" || !after.BurnedAt.IsZero() {
					t.Errorf("after begin: %+v", after)
				}
			case tc.ok && tc.op.name == "burned":
				if after.Duration != 1500*time.Millisecond || after.BurnedAt.IsZero() {
					t.Errorf("after burned: %+v", after)
				}
			case tc.ok && tc.op.name == "fail":
				if after.Error != "readback mismatch" || after.Attempts != before.Attempts {
					t.Errorf("after fail: %+v", after)
				}
			}
		})
	}
	for _, o := range []op{begin, burned, verified, fail} {
		if err := o.do(l, 12345); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s on unknown unit: %v", o.name, err)
		}
	}
}

func TestVoidNeverReassigned(t *testing.T) { eachEngine(t, testVoidNeverReassigned) }

func testVoidNeverReassigned(t *testing.T, e testEngine) {
	l := e.open(t)
	seed(t, l, "tencent", "P1", "d1", "d2", "d3")
	u, err := l.Claim("tencent", "P1", "hw1", "st", "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Begin(u.ID); err != nil {
		t.Fatal(err)
	}
	if err := l.Void("tencent", "P1", "d1", "board scrapped: cracked PCB"); err != nil {
		t.Fatal(err)
	}
	// A free credential can be voided too (e.g. a leaked secret).
	if err := l.Void("tencent", "P1", "d2", "secret leaked"); err != nil {
		t.Fatal(err)
	}
	if err := l.Void("tencent", "P1", "d2", "again"); err != nil {
		t.Errorf("second void: %v", err)
	}
	if err := l.Void("tencent", "P1", "nope", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("void unknown = %v", err)
	}
	if err := l.Void("tencent", "P1", "d3", ""); err == nil {
		t.Error("void without a reason accepted")
	}
	got, _, _ := l.UnitByHW("hw1")
	if got.State != Void || got.Error != "board scrapped: cracked PCB" {
		t.Errorf("voided unit = %+v", got)
	}
	if _, err := l.Claim("tencent", "P1", "hw1", "st", "p"); !errors.Is(err, ErrVoid) {
		t.Errorf("claim of a voided board = %v", err)
	}
	if err := l.Begin(u.ID); !errors.Is(err, ErrState) {
		t.Errorf("begin of a void unit = %v", err)
	}
	if _, err := l.Credential("tencent", "P1", "d2"); !errors.Is(err, ErrVoid) || strings.Contains(err.Error(), "S3CRET") {
		t.Errorf("Credential(void) = %v", err)
	}
	// New boards get d3, then nothing: neither d1 nor d2 is handed out again.
	if u, err := l.Claim("tencent", "P1", "hw2", "st", "p"); err != nil || u.Cred.DeviceName != "d3" {
		t.Fatalf("claim after voids = %+v, %v", u, err)
	}
	if _, err := l.Claim("tencent", "P1", "hw3", "st", "p"); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("claim with only void credentials left = %v", err)
	}
	var seen []string
	l.Credentials("tencent", "P1", func(c registry.Credential) error { seen = append(seen, c.DeviceName); return nil })
	if !slices.Equal(seen, []string{"d3"}) {
		t.Errorf("Credentials lists %v, want only d3", seen)
	}
	// The schema itself refuses to revive a void credential.
	if _, err := rawExec(l, `UPDATE credentials SET state = 'free' WHERE device_name = 'd2'`); err == nil {
		t.Error("schema let a void credential become free")
	}
	if _, err := rawExec(l, `UPDATE units SET credential_id = (SELECT id FROM credentials WHERE device_name = 'd2')`); err == nil {
		t.Error("schema let a unit change credential")
	}
}

func TestRelease(t *testing.T) { eachEngine(t, testRelease) }

func testRelease(t *testing.T, e testEngine) {
	l := e.open(t)
	seed(t, l, "tencent", "P1", "d1", "d2")
	u, _ := l.Claim("tencent", "P1", "hw1", "st", "p")
	if err := l.Fail(u.ID, "no answer to AT"); err != nil {
		t.Fatal(err)
	}
	if err := l.Release("hw1"); err != nil {
		t.Fatalf("release before any burn: %v", err)
	}
	if _, ok, _ := l.UnitByHW("hw1"); ok {
		t.Error("released unit still there")
	}
	// d1 is free again and goes to the next board.
	u2, _ := l.Claim("tencent", "P1", "hw2", "st", "p")
	if u2.Cred.DeviceName != "d1" {
		t.Errorf("after release, next board got %s, want d1", u2.Cred.DeviceName)
	}
	l.Begin(u2.ID)
	l.Fail(u2.ID, "write timeout")
	if err := l.Release("hw2"); !errors.Is(err, ErrState) {
		t.Errorf("release after a burn began = %v", err)
	}
	if err := l.Release("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("release unknown = %v", err)
	}
}

func TestCountsAndEachUnit(t *testing.T) { eachEngine(t, testCountsAndEachUnit) }

func testCountsAndEachUnit(t *testing.T, e testEngine) {
	l := e.open(t)
	clock := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	l.SetClock(func() time.Time { return clock })
	seed(t, l, "tencent", "P1", names("t", 6)...)
	seed(t, l, "aliyun", "K1", names("a", 2)...)
	step := func(hw, station string, ops ...string) {
		clock = clock.Add(time.Minute)
		platform, product := "tencent", "P1"
		if strings.HasPrefix(hw, "A") {
			platform, product = "aliyun", "K1"
		}
		u, err := l.Claim(platform, product, hw, station, "p-"+hw)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range ops {
			switch o {
			case "begin":
				err = l.Begin(u.ID)
			case "burned":
				err = l.Burned(u.ID, time.Second)
			case "verified":
				err = l.Verified(u.ID)
			case "fail":
				err = l.Fail(u.ID, "x")
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	step("T1", "st1", "begin", "burned", "verified")
	step("T2", "st1", "begin", "burned")
	step("T3", "st2", "begin")
	step("T4", "st2", "begin", "fail")
	step("A1", "st1")
	if err := l.Void("tencent", "P1", "t005", "leaked"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		platform, product string
		want              map[State]int
		free, total       int
	}{
		{"tencent", "P1", map[State]int{Verified: 1, Burned: 1, Burning: 1, Failed: 1, Created: 1, Void: 1}, 1, 6},
		{"aliyun", "K1", map[State]int{Reserved: 1, Created: 1}, 1, 2},
		{"", "", map[State]int{Verified: 1, Burned: 1, Burning: 1, Failed: 1, Created: 2, Void: 1, Reserved: 1}, 2, 8},
		{"tencent", "nope", map[State]int{}, 0, 0},
	}
	for _, tc := range tests {
		c, err := l.Counts(tc.platform, tc.product)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(c.ByState) != fmt.Sprint(tc.want) || c.Free != tc.free || c.Total != tc.total {
			t.Errorf("Counts(%q,%q) = %+v, want %v free %d total %d", tc.platform, tc.product, c, tc.want, tc.free, tc.total)
		}
	}
	filters := []struct {
		name string
		f    Filter
		want []string
	}{
		{"all", Filter{}, []string{"T1", "T2", "T3", "T4", "A1"}},
		{"station", Filter{Station: "st2"}, []string{"T3", "T4"}},
		{"platform", Filter{Platform: "aliyun"}, []string{"A1"}},
		{"product", Filter{Product: "P1", Station: "st1"}, []string{"T1", "T2"}},
		{"since", Filter{Since: time.Date(2025, 3, 1, 8, 3, 0, 0, time.UTC)}, []string{"T3", "T4", "A1"}},
	}
	for _, tc := range filters {
		var got []string
		if err := l.EachUnit(tc.f, func(u Unit) error { got = append(got, u.HWID); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("EachUnit(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := l.EachUnit(Filter{}, func(Unit) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("EachUnit did not stop on fn's error: %v after %d", err, n)
	}
	// The stamps come from the clock: T1 was claimed at 08:01, burned at 08:01.
	u, _, _ := l.UnitByHW("T1")
	if want := time.Date(2025, 3, 1, 8, 1, 0, 0, time.UTC); !u.CreatedAt.Equal(want) || !u.BurnedAt.Equal(want) || u.Duration != time.Second {
		t.Errorf("T1 stamps: %+v", u)
	}
}

func TestClaimName(t *testing.T) { eachEngine(t, testClaimName) }

func testClaimName(t *testing.T, e testEngine) {
	l := e.open(t)
	seed(t, l, "tencent", "P1", "d1", "d2", "d3")
	if _, err := l.Claim("tencent", "P1", "hwA", "st", "p"); err != nil { // takes d1
		t.Fatal(err)
	}
	if err := l.Void("tencent", "P1", "d3", "scrapped"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, device, hw string
		want             error  // nil: success
		wantDev          string // on success
	}{
		{"free credential, new board", "d2", "hwB", nil, "d2"},
		{"same board, same credential again", "d2", "hwB", nil, "d2"},
		{"credential on another board", "d1", "hwC", ErrTaken, ""},
		{"board holds another credential", "d2", "hwA", ErrTaken, ""},
		{"void credential", "d3", "hwD", ErrVoid, ""},
		{"no such device", "d9", "hwE", ErrNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := l.ClaimName("tencent", "P1", tc.device, tc.hw, "st", "p9")
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil || u.Cred.DeviceName != tc.wantDev || u.HWID != tc.hw || u.Port != "p9" || u.State != Reserved {
				t.Fatalf("ClaimName = %+v, %v", u, err)
			}
		})
	}
	checkInvariants(t, l)
}

func TestAddName(t *testing.T) { eachEngine(t, testAddName) }

func testAddName(t *testing.T, e testEngine) {
	l := e.open(t)
	for i := 0; i < 2; i++ { // twice: the second is a no-op
		if err := l.AddName("tencent", "P1", "ap-guangzhou", "240AC4000001"); err != nil {
			t.Fatal(err)
		}
	}
	u, err := l.ClaimName("tencent", "P1", "240AC4000001", "24:0a:c4:00:00:01", "st", "p0")
	if err != nil {
		t.Fatal(err)
	}
	if u.Cred.DeviceName != "240AC4000001" || u.Cred.DeviceSecret != "" || u.State != Reserved {
		t.Fatalf("claimed %+v", u)
	}
	c, _ := l.Counts("tencent", "P1")
	if c.Total != 1 {
		t.Fatalf("%d credentials, want 1", c.Total)
	}
}

// VerifiedWithKey verifies a burned unit and stores the key the platform
// holds now in the same transaction; from a state that cannot be verified it
// changes nothing, key included.
func TestVerifiedWithKey(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testEngine) {
		l := e.open(t)
		seed(t, l, "tencent", "P1", "d1", "d2")
		keyOf := func(name string) string {
			key := ""
			if err := l.Credentials("tencent", "P1", func(c registry.Credential) error {
				if c.DeviceName == name {
					key = c.DeviceSecret
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return key
		}
		u1, err := l.Claim("tencent", "P1", "hw1", "s", "p1")
		if err != nil {
			t.Fatal(err)
		}
		u2, err := l.Claim("tencent", "P1", "hw2", "s", "p2")
		if err != nil {
			t.Fatal(err)
		}
		old2 := keyOf(u2.Cred.DeviceName)
		if err := l.Begin(u1.ID); err != nil {
			t.Fatal(err)
		}
		if err := l.Burned(u1.ID, time.Second); err != nil {
			t.Fatal(err)
		}
		if err := l.VerifiedWithKey(u1.ID, "fresh-key-1"); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := l.UnitByHW("hw1"); got.State != Verified || keyOf(u1.Cred.DeviceName) != "fresh-key-1" || got.Cred.DeviceSecret != "fresh-key-1" {
			t.Errorf("unit %s with key %q, want verified with the fresh key", got.State, keyOf(u1.Cred.DeviceName))
		}
		// Reserved, never burned: refused, nothing changed.
		if err := l.VerifiedWithKey(u2.ID, "fresh-key-2"); !errors.Is(err, ErrState) {
			t.Errorf("verify of a reserved unit: %v, want ErrState", err)
		}
		if keyOf(u2.Cred.DeviceName) != old2 {
			t.Error("a refused verification changed the key")
		}
		if n := rawInt(t, l, `SELECT COUNT(*) FROM events WHERE unit_id = ? AND to_state = 'verified'`, u1.ID); n != 1 {
			t.Errorf("%d verified events, want 1", n)
		}
	})
}

// Claims and burns are lazy commits (on SQLite, synchronous=NORMAL on their
// own connection for their transaction): every connection the pool hands out
// afterwards is back at FULL, so a durable write never runs lax.
func TestLazyCommitsLeaveThePoolDurable(t *testing.T) {
	l := openTemp(t)
	seed(t, l, "tencent", "P1", names("d", 4)...)
	for i := range 4 {
		u, err := l.Claim("tencent", "P1", fmt.Sprintf("hw%d", i), "s", "p")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Begin(u.ID); err != nil {
			t.Fatal(err)
		}
		if err := l.Burned(u.ID, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	var conns []*sql.Conn
	for range 4 {
		c, err := l.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var level int
		if err := c.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&level); err != nil {
			t.Fatal(err)
		}
		if level != 2 {
			t.Errorf("a pooled connection at synchronous=%d after lazy commits, want 2 (FULL)", level)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	if c, _ := l.Counts("tencent", "P1"); c.ByState[Burned] != 4 {
		t.Errorf("by state %v, want 4 burned", c.ByState)
	}
}
