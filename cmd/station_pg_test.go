package cmd

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision/audit"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/provision/ledger/pgtest"
	"github.com/iotburn/iotburn/registry"
)

// IOTBURN_LEDGER gives --ledger its default; the flag wins over it; --help
// shows the default without a password.
func TestLedgerFlagFromEnv(t *testing.T) {
	dir := t.TempDir()
	fromEnv, fromFlag := filepath.Join(dir, "env.db"), filepath.Join(dir, "flag.db")
	t.Setenv(envLedger, fromEnv)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ledger", "migrate"}, fromEnv},
		{[]string{"--ledger", fromFlag, "ledger", "migrate"}, fromFlag},
	} {
		if l, err := ledger.Open(tc.want); err == nil { // a ledger to migrate
			l.Close()
		}
		out, _, err := run(t, append([]string{"--json"}, tc.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if m := jsonLines(t, out)[0]; m["ledger"] != tc.want {
			t.Errorf("%v: ledger %v, want %s", tc.args, m["ledger"], tc.want)
		}
	}
	t.Setenv(envLedger, "postgres://line:s3cret@db.factory/iotburn")
	_, help, _ := run(t, "ledger", "status", "--help")
	out, _, _ := run(t, "ledger", "status", "--help")
	if all := out + help; strings.Contains(all, "s3cret") || !strings.Contains(all, "postgres://line@db.factory/iotburn") {
		t.Errorf("--help: the default is not shown, or shown with its password:\n%s", all)
	}
}

// `ledger release --expired` gives back claims whose lease ran out; it
// needs --hw or --expired.
func TestLedgerReleaseExpired(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.db")
	// A lease long enough that this handle's own heartbeat (which sweeps
	// expired leases too) cannot give A back before the command does; the
	// lease is then run out by hand, after the handle is closed.
	t.Setenv(ledger.EnvLease, "1h")
	l, err := ledger.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := l.Journal(registry.Tencent, "P1", []string{"d1", "d2"})
	l.Complete(r.ID, []registry.Credential{{ProductID: "P1", DeviceName: "d1", DeviceSecret: "s1"}, {ProductID: "P1", DeviceName: "d2", DeviceSecret: "s2"}})
	a, _ := l.Claim(registry.Tencent, "P1", "A", "st", "p")
	b, _ := l.Claim(registry.Tencent, "P1", "B", "st", "p")
	if err := l.Begin(b.ID); err != nil {
		t.Fatal(err)
	}
	l.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE units SET lease_until = 1 WHERE lease_until IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, _, err := run(t, "--ledger", path, "ledger", "release"); exitCode(err) != exitUsage {
		t.Errorf("release without --hw or --expired: %v", err)
	}
	out, _, err := run(t, "--ledger", path, "--json", "ledger", "release", "--expired")
	if err != nil {
		t.Fatal(err)
	}
	if m := jsonLines(t, out)[0]; m["released"] != 1.0 {
		t.Errorf("released %v, want 1 (A; B was written)", m["released"])
	}
	l, _ = ledger.Open(path)
	defer l.Close()
	if _, ok, _ := l.UnitByHW("A"); ok {
		t.Errorf("A (unit %d) kept its claim", a.ID)
	}
	if u, ok, _ := l.UnitByHW("B"); !ok || u.State != ledger.Burning {
		t.Errorf("B lost its credential: %+v", u)
	}
}

// `ledger migrate` makes the books in an empty PostgreSQL database, and
// says so; again, it has nothing to do.
func TestLedgerMigratePostgres(t *testing.T) {
	url := pgtest.NewDB(t)
	for _, want := range []float64{0, float64(ledger.Version)} {
		out, _, err := run(t, "--ledger", url, "--json", "ledger", "migrate")
		if err != nil {
			t.Fatal(err)
		}
		if m := jsonLines(t, out)[0]; m["from"] != want || m["to"] != float64(ledger.Version) {
			t.Errorf("migrate: %v, want from %v to %d", m, want, ledger.Version)
		}
	}
	out, _, err := run(t, "--ledger", url, "--json", "ledger", "check")
	if err != nil {
		t.Fatalf("check of the new books: %v\n%s", err, out)
	}
}

// `ledger export --to` moves a single station's SQLite batch onto the
// shared ledger; the file is then an archive; a batch that conflicts with
// the shared ledger is refused, nothing moved.
func TestLedgerExportToShared(t *testing.T) {
	b, iot := newBookLine(t, "dev1", "dev2", "dev3")
	b.batchOnce(t, "farm", 2)
	url := pgtest.NewDB(t)
	out, err := iot("--json", "ledger", "export", "--to", url)
	if err != nil {
		t.Fatalf("export --to: %v\n%s", err, out)
	}
	if m := jsonLines(t, out)[0]; m["credentials"] != 3.0 || m["units"] != 2.0 || m["already"] != false {
		t.Errorf("move: %v", m)
	}
	if out, err := iot("--json", "ledger", "export", "--to", url); err != nil || jsonLines(t, out)[0]["already"] != true {
		t.Errorf("the second move: %v %s", err, out)
	}
	if _, err := iot("ledger", "void", "--product", "ABCDEFGHIJ", "--device", "dev3", "--reason", "x"); !errors.Is(err, ledger.ErrMoved) {
		t.Errorf("a write to the moved file: %v, want ErrMoved", err)
	}
	shared, err := ledger.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	if c, _ := shared.Counts(registry.Tencent, "ABCDEFGHIJ"); c.Total != 3 || c.ByState[ledger.Burned] != 2 || c.Free != 1 {
		t.Errorf("on the shared ledger: %+v", c)
	}

	// Another station's batch, created on another platform account with
	// the same names: other secrets. Refused, and that file stays in service.
	other, iot2 := newBookLine(t, "dev1", "dev9")
	out, err = iot2("ledger", "export", "--to", url)
	if exitCode(err) != exitLedger || !errors.Is(err, ledger.ErrConflict) || !strings.Contains(err.Error(), "tencent/ABCDEFGHIJ/dev1") {
		t.Errorf("a conflicting move: exit %d, %v\n%s", exitCode(err), err, out)
	}
	if c, _ := shared.Counts("", ""); c.Total != 3 {
		t.Errorf("the refused move changed the shared ledger: %+v", c)
	}
	other.batchOnce(t, "farm2", 1)
}

// sharedLine is a product's batch on a shared (PostgreSQL) ledger, with a
// farm of simulated boards per station.
type sharedLine struct {
	url, dir string
	farms    []*sim.Farm
}

// newSharedLine creates names devices on the emulator into the ledger at
// url and starts stations farms of boards boards each.
func newSharedLine(t *testing.T, url string, devices, stations, boards, baud int) *sharedLine {
	t.Helper()
	_, endpoint := startCloud(t, 5*time.Millisecond)
	s := &sharedLine{url: url, dir: t.TempDir()}
	var names strings.Builder
	for i := range devices {
		fmt.Fprintf(&names, "st%04d\n", i)
	}
	if out, err := iotburn("--ledger", url, "create", "--product", "ABCDEFGHIJ", "--names", writeFile(t, s.dir, "names.txt", names.String()),
		"--endpoint", endpoint).CombinedOutput(); err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	g := &globals{ledger: url}
	l, err := g.openExistingLedger()
	if err != nil {
		t.Fatalf("the command layer cannot open the shared ledger: %v", err)
	}
	l.Close()
	for i := range stations {
		farm, err := sim.Start(sim.Options{Dir: filepath.Join(s.dir, fmt.Sprintf("s%d", i+1)), Kind: "tencent-at", Count: boards, Baud: baud})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { farm.Close() })
		s.farms = append(s.farms, farm)
	}
	return s
}

// station is `iotburn batch` for station i (s1, s2, …) on its own farm.
func (s *sharedLine) station(i, baud int, extra ...string) *exec.Cmd {
	args := append([]string{"--ledger", s.url, "--json", "batch", "--product", "ABCDEFGHIJ", "--station", fmt.Sprintf("s%d", i+1),
		"--ports", filepath.Join(s.dir, fmt.Sprintf("s%d", i+1), "tty*"), "--baud", fmt.Sprint(baud)}, extra...)
	return iotburn(args...)
}

// check is the crash harness's outside view, on the shared ledger: every
// board holds exactly what the ledger says it holds and is burned, no
// credential is on two boards, nothing is free that a board holds, free is
// what was left over, and `ledger check` passes.
func (s *sharedLine) check(t *testing.T, free int) {
	t.Helper()
	l, err := ledger.Open(s.url)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	onBoards := map[string]string{}
	n := 0
	for _, farm := range s.farms {
		for _, b := range farm.Boards() {
			n++
			fl := b.Flash()
			u, ok, err := l.UnitByHW(strings.ToLower(b.MAC()))
			if err != nil || !ok {
				t.Fatalf("board %s has no unit: %v", b.Path(), err)
			}
			if u.State != ledger.Burned || u.Cred.DeviceName != fl.DeviceName || u.Cred.DeviceSecret != fl.DeviceSecret {
				t.Errorf("board %s: ledger says %s %s, the board holds %s", b.Path(), u.State, u.Cred.DeviceName, fl.DeviceName)
			}
			if other, dup := onBoards[fl.DeviceName]; dup {
				t.Errorf("credential %s is on two boards: %s and %s", fl.DeviceName, other, b.Path())
			}
			onBoards[fl.DeviceName] = b.Path()
		}
	}
	c, err := l.Counts(registry.Tencent, "ABCDEFGHIJ")
	if err != nil {
		t.Fatal(err)
	}
	if c.ByState[ledger.Burned] != n || c.Free != free || c.Total != n+free {
		t.Errorf("counts %v (%d free), want %d burned and %d free", c.ByState, c.Free, n, free)
	}
	if out, err := iotburn("--ledger", s.url, "ledger", "check").CombinedOutput(); err != nil {
		t.Errorf("ledger check: %v\n%s", err, out)
	}
}

// burnedBy counts the "burned" events of batch --json output by station.
func burnedBy(t *testing.T, out []byte) map[string]int {
	t.Helper()
	got := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var e struct{ Type, Event, Station string }
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Event == "burned" {
			got[e.Station]++
		}
	}
	return got
}

// Four stations, one PostgreSQL ledger, eight boards each, one batch of 32
// devices: every board burned once, every credential on one board, and the
// audit shows the four stations.
func TestStationsShareOneLedger(t *testing.T) {
	if testing.Short() {
		t.Skip("four station processes")
	}
	const stations, boards = 4, 8
	s := newSharedLine(t, pgtest.NewDB(t), stations*boards, stations, boards, 921600)
	outs := make([][]byte, stations)
	errs := make([]error, stations)
	var wg sync.WaitGroup
	for i := range stations {
		wg.Go(func() { outs[i], errs[i] = s.station(i, 921600, "--once").Output() })
	}
	wg.Wait()
	for i := range stations {
		if errs[i] != nil {
			t.Fatalf("station s%d: %v\n%s", i+1, errs[i], outs[i])
		}
		if got := burnedBy(t, outs[i]); got[fmt.Sprintf("s%d", i+1)] != boards || len(got) != 1 {
			t.Errorf("station s%d burned %v, want %d", i+1, got, boards)
		}
	}
	s.check(t, 0)

	// The audit: the four stations, eight boards each, all burned.
	xlsx := filepath.Join(s.dir, "audit.xlsx")
	if out, err := iotburn("--ledger", s.url, "audit", "--out", xlsx).CombinedOutput(); err != nil {
		t.Fatalf("audit: %v\n%s", err, out)
	}
	f, err := excelize.OpenFile(xlsx)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, _ := f.GetRows(audit.SheetSummary)
	var got []string
	for _, r := range rows {
		if len(r) >= 3 && strings.HasPrefix(r[0], "s") && len(r[0]) == 2 {
			got = append(got, strings.Join(r[:3], " "))
		}
	}
	if want := "s1 8 8,s2 8 8,s3 8 8,s4 8 8"; strings.Join(got, ",") != want {
		t.Errorf("the audit's stations: %q, want %q", strings.Join(got, ","), want)
	}
	if v, _ := f.GetCellValue(audit.SheetSummary, "B3"); v != "s1, s2, s3, s4" {
		t.Errorf("the audit's stations line: %q", v)
	}
	// And ledger status, per station.
	out, err := iotburn("--ledger", s.url, "--json", "ledger", "status").Output()
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Stations []struct {
			Station string
			Units   int
			Burned  int
			Yield   float64
			PID     int
		}
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Stations) != 4 {
		t.Fatalf("status shows %d stations: %s", len(st.Stations), out)
	}
	for i, x := range st.Stations {
		if x.Station != fmt.Sprintf("s%d", i+1) || x.Units != 8 || x.Burned != 8 || x.Yield != 1 || x.PID == 0 {
			t.Errorf("status station %d: %+v", i, x)
		}
	}
}

// kill -9 of one station mid-batch: the others finish; what it had begun
// writing stays with its boards, what it claimed and never wrote goes back
// after the lease; started again, it finishes its boards, each with the
// credential it had; the crash harness's checks hold on PostgreSQL.
func TestStationKilledMidBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	const stations, boards, spare = 4, 8, 4
	t.Setenv(ledger.EnvLease, "2s")
	s := newSharedLine(t, pgtest.NewDB(t), stations*boards+spare, stations, boards, 9600)
	l, err := ledger.Open(s.url)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmds := make([]*exec.Cmd, stations)
	errs := make(chan error, stations)
	for i := range stations {
		cmds[i] = s.station(i, 9600, "--once")
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
		if i < stations-1 {
			go func() { errs <- cmds[i].Wait() }()
		}
	}
	// Kill s4 while it writes.
	deadline := time.Now().Add(60 * time.Second)
	for burning(t, l, "s4") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("s4 never began a write")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmds[stations-1].Process.Signal(syscall.SIGKILL)
	cmds[stations-1].Wait()
	held := map[string]string{} // s4's boards begun: hw → device
	l.EachUnit(ledger.Filter{Station: "s4"}, func(u ledger.Unit) error {
		if u.Attempts > 0 {
			held[u.HWID] = u.Cred.DeviceName
		}
		return nil
	})
	for range stations - 1 {
		if err := <-errs; err != nil {
			t.Fatalf("a station after s4's kill: %v", err)
		}
	}
	// The lease runs out: what s4 claimed and never wrote goes back.
	time.Sleep(2100 * time.Millisecond)
	if out, err := iotburn("--ledger", s.url, "ledger", "release", "--expired").CombinedOutput(); err != nil {
		t.Fatalf("release --expired: %v\n%s", err, out)
	}
	for hw, dev := range held {
		if u, ok, _ := l.UnitByHW(hw); !ok || u.Cred.DeviceName != dev {
			t.Errorf("board %s, written with %s, lost it after the lease: %+v", hw, dev, u)
		}
	}
	// s4 again: it finishes its boards.
	if out, err := s.station(stations-1, 9600, "--once").CombinedOutput(); err != nil {
		t.Fatalf("s4 restarted: %v\n%s", err, out)
	}
	for hw, dev := range held {
		if u, _, _ := l.UnitByHW(hw); u.Cred.DeviceName != dev {
			t.Errorf("board %s was given %s after the restart, had %s", hw, u.Cred.DeviceName, dev)
		}
	}
	t.Logf("s4 killed with %d board(s) begun", len(held))
	s.check(t, spare)
}

func burning(t *testing.T, l *ledger.Ledger, station string) int {
	t.Helper()
	n := 0
	if err := l.EachUnit(ledger.Filter{Station: station}, func(u ledger.Unit) error {
		if u.State == ledger.Burning {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// The PostgreSQL server stops mid-batch and starts again: boards in flight
// finish, or fail saying why; nothing is lost; the station carries on with
// the boards (a failed one after a replug) once the server is back.
func TestStationSurvivesLostConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("server restart")
	}
	srv, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		pgtest.Unavailable(t, err)
	}
	defer srv.Close()
	if err := srv.CreateDB("line"); err != nil {
		t.Fatal(err)
	}
	const boards = 8
	s := newSharedLine(t, srv.URL("line"), boards, 1, boards, 9600)
	l, err := ledger.Open(s.url)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := s.station(0, 9600, "--target", fmt.Sprint(boards))
	c.Env = append(c.Env, ledger.EnvWait+"=30s")
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	events := make(chan map[string]any, 64)
	var all bytes.Buffer
	go func() {
		sc := bufio.NewScanner(io.TeeReader(stdout, &all))
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				events <- m
			}
		}
		close(events)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for burning(t, l, "s1") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the station never began a write")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	time.Sleep(1500 * time.Millisecond)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	byMAC := map[string]*sim.Board{}
	for _, b := range s.farms[0].Boards() {
		byMAC[strings.ToLower(b.MAC())] = b
	}
	burned, failed, afterStop := 0, 0, 0
	timeout := time.After(90 * time.Second)
	for burned < boards {
		select {
		case m, ok := <-events:
			if !ok {
				t.Fatalf("the station stopped after %d boards:\n%s", burned, all.String())
			}
			switch m["event"] {
			case "burned":
				burned++
				if at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(m["time"])); at.After(stopped) {
					afterStop++
				}
			case "failed":
				// A failure says why; the board is tried again after a replug.
				failed++
				msg, _ := m["error"].(string)
				if msg == "" {
					t.Errorf("a failure without its reason: %v", m)
				}
				t.Logf("failed across the restart: %s", msg)
				if b := byMAC[fmt.Sprint(m["hw_id"])]; b != nil {
					b.Unplug()
					time.Sleep(300 * time.Millisecond)
					b.Replug()
				}
			}
		case <-timeout:
			t.Fatalf("%d of %d boards burned after the restart:\n%s", burned, boards, all.String())
		}
	}
	if err := c.Wait(); err != nil && failed == 0 {
		t.Errorf("station: %v\n%s", err, all.String())
	}
	// A board was being written when the server stopped: it finished after.
	if afterStop == 0 {
		t.Errorf("no board finished after the server stopped: none was in flight, the test proved nothing\n%s", all.String())
	}
	t.Logf("%d board(s) burned after the stop; %d failed across the restart and were burned after a replug", afterStop, failed)
	s.check(t, 0)
}
