package ledger

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iotburn/iotburn/registry"
)

// The test binary re-executes itself as a child process (TestMain checks
// childEnv): real processes, real file locks, a real SIGKILL.
const (
	childEnv  = "IOTBURN_LEDGER_CHILD" // mode: "claim", "line" or "hold"
	childDB   = "IOTBURN_LEDGER_DB"
	childArg  = "IOTBURN_LEDGER_ARG"  // claim: hw id prefix; line: number of boards
	childLog  = "IOTBURN_LEDGER_LOG"  // line: where to append "hw device" after each claim
	childSeed = "IOTBURN_LEDGER_SEED" // line: which boards fail on purpose
	platform  = "tencent"
	product   = "PRODUCT01"
	batchSize = 8
)

func runChild(mode string) int {
	l, err := Open(os.Getenv(childDB))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer l.Close()
	switch mode {
	case "claim":
		err = childClaim(l, os.Getenv(childArg))
	case "hold":
		err = childHold(l)
	case "line":
		n, _ := strconv.Atoi(os.Getenv(childArg))
		seed, _ := strconv.ParseUint(os.Getenv(childSeed), 10, 64)
		err = childLine(l, n, os.Getenv(childLog), seed)
	default:
		err = fmt.Errorf("unknown child mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// childClaim claims 40 boards and prints "hw device" per claim.
func childClaim(l *Ledger, prefix string) error {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for i := range 40 {
		u, err := l.Claim(platform, product, fmt.Sprintf("%s-%02d", prefix, i), prefix, "p")
		if err != nil {
			return err
		}
		fmt.Fprintln(w, u.HWID, u.Cred.DeviceName)
	}
	return nil
}

// fakePlatform is what the platform answers for names: deterministic, so a
// healing process computes what the killed one would have received.
func fakePlatform(names []string) []registry.Credential {
	out := make([]registry.Credential, len(names))
	for i, n := range names {
		out[i] = cred(platform, product, n)
	}
	return out
}

// childLine is a miniature `iotburn create` + `iotburn batch`: it heals
// interrupted requests, then takes boards hw-0000..hw-(n-1) through the line,
// creating credentials batchSize at a time when they run out. Rerun after a
// kill, it must finish the job without losing or duplicating anything.
func childLine(l *Ledger, n int, logPath string, seed uint64) error {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	open, err := l.OpenRequests(platform, product)
	if err != nil {
		return err
	}
	for _, r := range open {
		if _, err := l.Complete(r.ID, fakePlatform(r.Names)); err != nil {
			return fmt.Errorf("heal request %d: %w", r.ID, err)
		}
		fmt.Fprintf(logf, "healed %d\n", r.ID)
	}
	create := func() error {
		known, err := l.KnownNames(platform, product)
		if err != nil {
			return err
		}
		var names []string
		for i := 0; len(names) < batchSize; i++ {
			if name := fmt.Sprintf("dev-%05d", i); !known[name] {
				names = append(names, name)
			}
		}
		r, err := l.Journal(platform, product, names)
		if err != nil {
			return err
		}
		// The platform call takes a while; a kill now leaves an open request.
		time.Sleep(3 * time.Millisecond)
		if err := l.SetTask(r.ID, fmt.Sprintf("task-%d", r.ID)); err != nil {
			return err
		}
		_, err = l.Complete(r.ID, fakePlatform(names))
		return err
	}
	for i := range n {
		hw := fmt.Sprintf("hw-%04d", i)
		u, err := l.Claim(platform, product, hw, "st", fmt.Sprintf("p%d", i%4))
		if errors.Is(err, ErrNoCredentials) {
			if err := create(); err != nil {
				return err
			}
			u, err = l.Claim(platform, product, hw, "st", fmt.Sprintf("p%d", i%4))
		}
		if err != nil {
			return err
		}
		// One write(2) per line with O_APPEND: a kill cannot tear it, and it
		// is written only after the claim committed.
		if _, err := fmt.Fprintf(logf, "%s %s\n", hw, u.Cred.DeviceName); err != nil {
			return err
		}
		switch u.State {
		case Verified:
			continue
		case Burned: // killed between burn and verify: only QA is left
			if err := l.Verified(u.ID); err != nil {
				return err
			}
			continue
		}
		// Some boards fail once (before or after the burn started) and are retried.
		if u.Attempts == 0 && (uint64(i)+seed)%5 == 0 {
			if err := l.Fail(u.ID, "no answer to AT"); err != nil {
				return err
			}
		}
		if err := l.Begin(u.ID); err != nil {
			return err
		}
		if u.Attempts == 0 && (uint64(i)+seed)%7 == 0 {
			if err := l.Fail(u.ID, "readback mismatch"); err != nil {
				return err
			}
			if err := l.Begin(u.ID); err != nil {
				return err
			}
		}
		if err := l.Burned(u.ID, time.Duration(i)*time.Millisecond); err != nil {
			return err
		}
		if err := l.Verified(u.ID); err != nil {
			return err
		}
	}
	return nil
}

func child(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// TestClaimAcrossProcesses: three processes claim at once from one file; no
// credential goes to two boards.
func TestClaimAcrossProcesses(t *testing.T) { eachEngine(t, testClaimAcrossProcesses) }

func testClaimAcrossProcesses(t *testing.T, e testEngine) {
	path := e.url(t)
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seed(t, l, platform, product, names("dev-", 150)...)
	type result struct {
		out []byte
		err error
	}
	prefixes := []string{"A", "B", "C"}
	results := make([]result, len(prefixes))
	var wg sync.WaitGroup
	for i, p := range prefixes {
		wg.Go(func() {
			cmd := child(t, childEnv+"=claim", childDB+"="+path, childArg+"="+p)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				err = fmt.Errorf("%w: %s", err, stderr.String())
			}
			results[i] = result{out, err}
		})
	}
	// This process claims too, concurrently, through its own handle.
	for i := range 30 {
		if _, err := l.Claim(platform, product, fmt.Sprintf("P-%02d", i), "P", "p"); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	owner := map[string]string{} // device -> hw
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("child %s: %v", prefixes[i], r.err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(r.out)), "\n") {
			hw, dev, _ := strings.Cut(line, " ")
			if prev, dup := owner[dev]; dup {
				t.Fatalf("device %s handed to %s and %s", dev, prev, hw)
			}
			owner[dev] = hw
		}
	}
	if len(owner) != 120 {
		t.Fatalf("%d claims reported by children, want 120", len(owner))
	}
	checkInvariants(t, l)
	if c, _ := l.Counts(platform, product); c.Free != 0 || c.ByState[Reserved] != 150 {
		t.Errorf("counts after 150 claims: %+v", c)
	}
}

// TestClaimConcurrentGoroutines: goroutines on two handles to one file; some
// race for the same boards, which must each end with one credential.
func TestClaimConcurrentGoroutines(t *testing.T) { eachEngine(t, testClaimConcurrentGoroutines) }

func testClaimConcurrentGoroutines(t *testing.T, e testEngine) {
	l1 := e.open(t)
	l2, err := Open(l1.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	seed(t, l1, platform, product, names("dev-", 100)...)
	var mu sync.Mutex
	got := map[string]map[string]bool{} // hw -> devices it was given
	var wg sync.WaitGroup
	for g := range 8 {
		l := []*Ledger{l1, l2}[g%2]
		wg.Go(func() {
			for i := range 25 {
				// Goroutines g and g^1 claim the same 25 boards, via different handles.
				hw := fmt.Sprintf("hw-%d-%02d", g/2, i)
				u, err := l.Claim(platform, product, hw, "st", "p")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if got[hw] == nil {
					got[hw] = map[string]bool{}
				}
				got[hw][u.Cred.DeviceName] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	owner := map[string]string{}
	for hw, devs := range got {
		if len(devs) != 1 {
			t.Errorf("board %s was given %v", hw, devs)
		}
		for d := range devs {
			if prev, dup := owner[d]; dup {
				t.Errorf("device %s given to %s and %s", d, prev, hw)
			}
			owner[d] = hw
		}
	}
	if len(got) != 100 {
		t.Errorf("%d boards, want 100", len(got))
	}
	checkInvariants(t, l1)
}

// TestKill9 kills a child mid-line at random moments, reruns it, and checks
// that nothing was lost or duplicated and every board kept its credential.
func TestKill9(t *testing.T) { eachEngine(t, testKill9) }

func testKill9(t *testing.T, e testEngine) {
	// Fewer boards on PostgreSQL: each transaction is a few round trips to
	// a server, not a file lock, and 400 boards still take every kill
	// mid-line.
	boards := 2000
	if e.pg() {
		boards = 400
	}
	dir := t.TempDir()
	path, logPath := e.url(t), filepath.Join(dir, "claims.log")
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	env := []string{childEnv + "=line", childDB + "=" + path, childArg + "=" + strconv.Itoa(boards),
		childLog + "=" + logPath, childSeed + "=" + strconv.FormatUint(seed%35, 10)}
	killed := 0
	for run := 0; run < 8; run++ {
		cmd := child(t, env...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %d: %v: %s", run, err, stderr.String())
			}
			t.Logf("run %d finished before the kill", run)
		case <-time.After(time.Duration(30+rng.IntN(250)) * time.Millisecond):
			cmd.Process.Signal(syscall.SIGKILL)
			err := <-done
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				killed++
			} else if err != nil {
				t.Fatalf("run %d: %v: %s", run, err, stderr.String())
			}
		}
	}
	// The last run is left to finish: it must heal and complete the line.
	cmd := child(t, env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final run: %v: %s", err, out)
	}
	t.Logf("%d of 8 runs killed mid-line", killed)

	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	checkInvariants(t, l)
	checkHistory(t, l, boards)

	// Every board finished, each with one credential, and no more credentials
	// were created than the boards needed (rounded up to a batch).
	c, err := l.Counts(platform, product)
	if err != nil {
		t.Fatal(err)
	}
	if c.ByState[Verified] != boards || c.Total-boards >= batchSize || c.Free != c.Total-boards {
		t.Errorf("counts: %+v, want %d verified and < %d spare", c, boards, batchSize)
	}
	// Every name was asked of the platform once, every request is done, and
	// every requested name is in the ledger once, from that request.
	rows, err := l.db.Query(`SELECT id, names, state FROM requests ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	asked := map[string]int64{}
	for rows.Next() {
		var id int64
		var js, state string
		rows.Scan(&id, &js, &state)
		if state != "done" {
			t.Errorf("request %d left %s", id, state)
		}
		var ns []string
		json.Unmarshal([]byte(js), &ns)
		for _, n := range ns {
			if prev, dup := asked[n]; dup {
				t.Errorf("name %s asked of the platform twice (requests %d and %d)", n, prev, id)
			}
			asked[n] = id
		}
	}
	rows.Close()
	for n, id := range asked {
		var rid int64
		var secret string
		err := l.db.QueryRow(l.d.bind(`SELECT request_id, secret FROM credentials WHERE platform = ? AND product = ? AND device_name = ?`),
			platform, product, n).Scan(&rid, &secret)
		if err != nil || rid != id || secret != "S3CRET-"+n {
			t.Errorf("credential %s: request %d secret ok %v err %v; want request %d", n, rid, secret == "S3CRET-"+n, err, id)
		}
	}
	if creds := rawInt(t, l, `SELECT count(*) FROM credentials`); creds != len(asked) {
		t.Errorf("%d credentials for %d names asked", creds, len(asked))
	}
	// Every claim any run ever reported still holds: same board, same credential.
	logData, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(logData)), "\n")
	healed := 0
	for _, line := range lines {
		hw, dev, ok := strings.Cut(line, " ")
		if hw == "healed" {
			healed++
			continue
		}
		if !ok {
			t.Errorf("torn log line %q", line)
			continue
		}
		u, found, err := l.UnitByHW(hw)
		if err != nil || !found || u.Cred.DeviceName != dev {
			t.Errorf("board %s was given %s, now holds %q (found %v, %v)", hw, dev, u.Cred.DeviceName, found, err)
		}
	}
	t.Logf("%d claims logged across runs for %d boards; %d interrupted requests healed", len(lines)-healed, boards, healed)
}

// checkInvariants checks the books directly in SQL, not through the API
// under test, on either engine.
func checkInvariants(t *testing.T, l *Ledger) {
	t.Helper()
	queries := []struct{ what, q string }{}
	if l.d.engine == engineSQLite {
		var s string
		if err := l.db.QueryRow(`PRAGMA integrity_check`).Scan(&s); err != nil || s != "ok" {
			t.Errorf("integrity_check: %s %v", s, err)
		}
		queries = append(queries, struct{ what, q string }{"foreign key violations", `SELECT count(*) FROM pragma_foreign_key_check`})
	}
	queries = append(queries, []struct{ what, q string }{
		{"credentials on two units", `SELECT count(*) FROM (SELECT credential_id FROM units GROUP BY credential_id HAVING count(*) > 1) x`},
		{"units without a credential", `SELECT count(*) FROM units u LEFT JOIN credentials c ON c.id = u.credential_id WHERE c.id IS NULL`},
		{"boards on two units", `SELECT count(*) FROM (SELECT hw_id FROM units GROUP BY hw_id HAVING count(*) > 1) x`},
		{"names stored twice", `SELECT count(*) FROM (SELECT 1 FROM credentials GROUP BY platform, product, device_name HAVING count(*) > 1) x`},
		{"taken credentials without a unit", `SELECT count(*) FROM credentials c WHERE state = 'taken' AND NOT EXISTS (SELECT 1 FROM units WHERE credential_id = c.id)`},
		{"free credentials with a unit", `SELECT count(*) FROM credentials c WHERE state = 'free' AND EXISTS (SELECT 1 FROM units WHERE credential_id = c.id)`},
		{"void units with a live credential", `SELECT count(*) FROM units u JOIN credentials c ON c.id = u.credential_id WHERE (u.state = 'void') != (c.state = 'void')`},
		// Each transition writes its event in its own transaction, so the last
		// event of a unit always names the state the unit is in.
		{"units whose state is not their last event's", `SELECT count(*) FROM units u
			WHERE u.state IS DISTINCT FROM (SELECT e.to_state FROM events e WHERE e.unit_id = u.id ORDER BY e.id DESC LIMIT 1)`},
	}...)
	for _, q := range queries {
		var n int
		if err := l.db.QueryRow(q.q).Scan(&n); err != nil {
			t.Errorf("%s: %v", q.what, err)
		} else if n != 0 {
			t.Errorf("%d %s", n, q.what)
		}
	}
}

// checkHistory walks the event history of a ledger built only through the
// API since v2 (no Release, no Refused): every unit's events form one
// unbroken chain, from its claim (created → reserved) to its current state,
// each event starting where the one before ended, with one burning event per
// attempt. A crash that committed a transition without its event, or an
// event without its transition, breaks the chain.
func checkHistory(t *testing.T, l *Ledger, wantUnits int) {
	t.Helper()
	type chain struct {
		last   State
		begins int
	}
	chains := map[int64]*chain{}
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 10 {
			t.Errorf(format, args...)
		}
	}
	err := l.EachEvent(Filter{}, func(e Event) error {
		c := chains[e.UnitID]
		switch {
		case e.UnitID == 0:
			report("event %d has no unit: %+v", e.ID, e)
			return nil
		case c == nil:
			if e.From != Created || e.To != Reserved {
				report("unit %d: first event %d is %q → %q, want created → reserved", e.UnitID, e.ID, e.From, e.To)
			}
			c = &chain{}
			chains[e.UnitID] = c
		case e.From != c.last:
			report("unit %d: event %d goes %s → %s, but the unit was %s", e.UnitID, e.ID, e.From, e.To, c.last)
		}
		c.last = e.To
		if e.To == Burning {
			c.begins++
		}
		if e.Attempt != c.begins {
			report("unit %d: event %d says attempt %d after %d begins", e.UnitID, e.ID, e.Attempt, c.begins)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	units := 0
	err = l.EachUnit(Filter{}, func(u Unit) error {
		units++
		c := chains[u.ID]
		switch {
		case c == nil:
			report("unit %d (%s) has no events", u.ID, u.HWID)
		case c.last != u.State || c.begins != u.Attempts:
			report("unit %d (%s) is %s after %d attempts; its history ends %s after %d", u.ID, u.HWID, u.State, u.Attempts, c.last, c.begins)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if units != wantUnits || len(chains) != wantUnits {
		t.Errorf("%d units, %d with a history; want %d", units, len(chains), wantUnits)
	}
	if bad > 0 {
		t.Errorf("%d history errors", bad)
	}
}
