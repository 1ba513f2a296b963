package cmd

import (
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision/ledger"
)

// jsonLines parses --json output: one object a line.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var res []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not one JSON object a line: %q", l)
		}
		res = append(res, m)
	}
	return res
}

// line is a product with devices on the emulator and boards on ptys.
type bookLine struct {
	dir, ledger, endpoint string
}

func newBookLine(t *testing.T, names ...string) (*bookLine, func(args ...string) (string, error)) {
	t.Helper()
	_, endpoint := startCloud(t, 5*time.Millisecond)
	dir := t.TempDir()
	b := &bookLine{dir: dir, ledger: filepath.Join(dir, "l.db"), endpoint: endpoint}
	f := writeFile(t, dir, "names.txt", strings.Join(names, "\n")+"\n")
	if _, _, err := run(t, "--ledger", b.ledger, "create", "--product", "ABCDEFGHIJ", "--names", f, "--endpoint", endpoint); err != nil {
		t.Fatal(err)
	}
	iot := func(args ...string) (string, error) {
		out, _, err := run(t, append([]string{"--ledger", b.ledger}, args...)...)
		return out, err
	}
	return b, iot
}

// batchOnce burns the boards of a fresh farm of n simulated boards and
// returns the device each board (by hw id) got.
func (b *bookLine) batchOnce(t *testing.T, farmDir string, n int) map[string]string {
	t.Helper()
	farm, err := sim.Start(sim.Options{Dir: filepath.Join(b.dir, farmDir), Kind: "tencent-at", Count: n, Baud: 921600})
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	out, _, err := run(t, "--ledger", b.ledger, "--json", "batch", "--product", "ABCDEFGHIJ",
		"--ports", filepath.Join(b.dir, farmDir, "tty*"), "--once", "--baud", "921600")
	if err != nil {
		t.Fatalf("batch: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, m := range jsonLines(t, out) {
		if m["event"] == "burned" {
			got[m["hw_id"].(string)] = m["device_name"].(string)
		}
	}
	if len(got) != n {
		t.Fatalf("%d boards burned, want %d:\n%s", len(got), n, out)
	}
	return got
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// `image` for a product hands out free credentials only and records each as
// exported, so the line never gives one to a board; --bound writes the
// boards' own, each for its board; a credential on a board is never written
// for another.
func TestImageExports(t *testing.T) {
	b, iot := newBookLine(t, "dev1", "dev2", "dev3", "dev4", "dev5", "dev6")
	first := b.batchOnce(t, "farmA", 2)
	if got := values(first); !slices.Equal(got, []string{"dev1", "dev2"}) {
		t.Fatalf("first boards got %v", got)
	}

	out, err := iot("--json", "image", "--format", "tencent-json", "--product", "ABCDEFGHIJ", "--count", "2", "--out", filepath.Join(b.dir, "A"))
	if err != nil {
		t.Fatal(err)
	}
	var exported []string
	for _, m := range jsonLines(t, out) {
		if m["exported"] != true || m["state_before"] != "created" {
			t.Errorf("export line %v", m)
		}
		exported = append(exported, m["device_name"].(string))
	}
	if !slices.Equal(exported, []string{"dev3", "dev4"}) || !slices.Equal(dirNames(t, filepath.Join(b.dir, "A")), []string{"dev3.json", "dev4.json"}) {
		t.Fatalf("exported %v, files %v; want dev3 and dev4 only", exported, dirNames(t, filepath.Join(b.dir, "A")))
	}
	l, err := ledger.OpenReadOnly(b.ledger)
	if err != nil {
		t.Fatal(err)
	}
	c3, _ := l.Credential("tencent", "ABCDEFGHIJ", "dev3")
	l.Close()
	img, _ := os.ReadFile(filepath.Join(b.dir, "A", "dev3.json"))
	if !strings.Contains(string(img), c3.DeviceSecret) || c3.DeviceSecret == "" {
		t.Error("dev3.json does not hold dev3's secret")
	}

	// A board's credential is never written for anything but that board.
	_, err = iot("image", "--format", "tencent-json", "--product", "ABCDEFGHIJ", "--device", "dev1", "--out", filepath.Join(b.dir, "B"))
	if err == nil || exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--bound") {
		t.Errorf("image of a board's device: %v (exit %d)", err, exitCode(err))
	}
	if files := dirNames(t, filepath.Join(b.dir, "B")); len(files) != 0 {
		t.Errorf("files written for a board's device: %v", files)
	}
	out, err = iot("--json", "image", "--format", "tencent-json", "--product", "ABCDEFGHIJ", "--bound", "--out", filepath.Join(b.dir, "C"))
	if err != nil {
		t.Fatal(err)
	}
	bound := map[string]string{}
	for _, m := range jsonLines(t, out) {
		bound[m["hw_id"].(string)] = m["device_name"].(string)
		if m["exported"] != false || m["state_before"] != "burned" {
			t.Errorf("bound line %v", m)
		}
	}
	if len(bound) != 2 || bound[firstKey(first, "dev1")] != "dev1" || bound[firstKey(first, "dev2")] != "dev2" {
		t.Errorf("--bound wrote %v, want each board's own %v", bound, first)
	}

	// The line never gives an exported credential to a board.
	second := b.batchOnce(t, "farmB", 2)
	if got := values(second); !slices.Equal(got, []string{"dev5", "dev6"}) {
		t.Fatalf("boards after the export got %v, want dev5 and dev6 (dev3 and dev4 are exported)", got)
	}
	_, err = iot("image", "--format", "tencent-json", "--product", "ABCDEFGHIJ", "--out", filepath.Join(b.dir, "D"))
	if !errors.Is(err, ledger.ErrNoCredentials) || exitCode(err) != exitNoCredentials {
		t.Errorf("export with nothing free: %v (exit %d)", err, exitCode(err))
	}
	out, err = iot("image", "--format", "tencent-json", "--product", "ABCDEFGHIJ", "--exported", "--out", filepath.Join(b.dir, "E"))
	if err != nil || !slices.Equal(dirNames(t, filepath.Join(b.dir, "E")), []string{"dev3.json", "dev4.json"}) {
		t.Errorf("--exported: %v %v\n%s", err, dirNames(t, filepath.Join(b.dir, "E")), out)
	}
	out, err = iot("ledger", "status", "--product", "ABCDEFGHIJ")
	if err != nil || !strings.Contains(out, "exported        2") {
		t.Errorf("status after exports: %v\n%s", err, out)
	}
	if out, err := iot("ledger", "check"); err != nil {
		t.Errorf("check after exports: %v\n%s", err, out)
	}
}

func firstKey(m map[string]string, v string) string {
	for k, x := range m {
		if x == v {
			return k
		}
	}
	return ""
}

// Export flags that contradict each other are refused before the ledger is
// opened (there is none here) or a directory made.
func TestImageExportFlags(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--bound", "--exported"},
		{"--count", "-1"},
		{"--count", "2", "--bound"},
		{"--count", "2", "--device", "dev1"},
		{"--per-product", "--bound"},
	} {
		out := filepath.Join(dir, "out")
		a := append([]string{"--ledger", filepath.Join(dir, "none.db"), "image", "--format", "tencent-json", "--product", "ABCDEFGHIJ", "--out", out}, args...)
		_, _, err := run(t, a...)
		if err == nil || exitCode(err) != exitUsage {
			t.Errorf("%v: %v (exit %d), want a usage error", args, err, exitCode(err))
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: --out was made", args)
		}
	}
}

// After an interrupted run `ledger status` names the board left burning
// and says what the next run does with it; the next run does just that.
func TestLedgerStatusAfterInterruptedRun(t *testing.T) {
	b, iot := newBookLine(t, "dev1", "dev2", "dev3")
	first := b.batchOnce(t, "farm", 1)
	var hw string
	for k := range first {
		hw = k
	}
	// The run that was killed mid-write on that board: Begin, then nothing.
	l, err := ledger.Open(b.ledger)
	if err != nil {
		t.Fatal(err)
	}
	u, _, _ := l.UnitByHW(hw)
	if err := l.Begin(u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Journal("tencent", "ABCDEFGHIJ", []string{"dev9"}); err != nil { // and a create killed mid-call
		t.Fatal(err)
	}
	l.Close()

	out, err := iot("ledger", "status")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"1 board(s) left half-done", hw, "burning", "device dev1", "same device dev1", "attempt 3",
		"no new credential", "iotburn ledger void --platform tencent --product ABCDEFGHIJ --device dev1",
		"1 create request(s) left open", "asks the platform what became of these 1 names"} {
		if !strings.Contains(out, w) {
			t.Errorf("status does not say %q:\n%s", w, out)
		}
	}
	out, err = iot("--json", "ledger", "status")
	if err != nil {
		t.Fatal(err)
	}
	m := jsonLines(t, out)
	if len(m) != 1 {
		t.Fatalf("status --json: %d lines", len(m))
	}
	left := m[0]["interrupted"].([]any)
	if len(left) != 1 || left[0].(map[string]any)["hw_id"] != hw || left[0].(map[string]any)["state"] != "burning" {
		t.Errorf("interrupted in --json: %v", left)
	}
	if reqs := m[0]["open_requests"].([]any); len(reqs) != 1 {
		t.Errorf("open requests in --json: %v", reqs)
	}

	// What status promised: plugged in again, the board gets dev1 again, on
	// attempt 3, and no other credential is used.
	again := b.batchOnce(t, "farm", 1)
	if again[hw] != "dev1" {
		t.Fatalf("the board came back with %v, want dev1", again)
	}
	l, err = ledger.OpenReadOnly(b.ledger)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	u, _, _ = l.UnitByHW(hw)
	c, _ := l.Counts("tencent", "ABCDEFGHIJ")
	if u.State != ledger.Burned || u.Attempts != 3 || c.Free != 2 {
		t.Errorf("after the next run: unit %s attempt %d, %d free; want burned, 3, 2 free", u.State, u.Attempts, c.Free)
	}
}

// `ledger check` passes a sound ledger, names each problem of a broken one
// with its fix and exits non-zero, and changes nothing.
func TestLedgerCheck(t *testing.T) {
	b, iot := newBookLine(t, "dev1", "dev2", "dev3")
	b.batchOnce(t, "farm", 2)
	out, err := iot("ledger", "check")
	if err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("sound ledger: %v\n%s", err, out)
	}

	// Break it by hand, as a careless sqlite3 session would.
	db, err := sql.Open("sqlite", b.ledger+"?_foreign_keys=0")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE credentials SET state = 'free' WHERE device_name = 'dev1'`,
		`DELETE FROM units WHERE credential_id = (SELECT id FROM credentials WHERE device_name = 'dev2')`,
		`INSERT INTO requests (platform, product, names, created_at) VALUES ('tencent', 'ABCDEFGHIJ', '["dev7"]', 0)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	before := fileSum(t, b.ledger)
	out, err = iot("ledger", "check")
	if err == nil || exitCode(err) != exitLedger {
		t.Fatalf("check of a broken ledger: %v (exit %d)\n%s", err, exitCode(err), out)
	}
	for _, w := range []string{"PROBLEM free_on_unit", "dev1 on board", "PROBLEM taken_without_unit", "tencent/ABCDEFGHIJ/dev2",
		"PROBLEM open_request", "fix: "} {
		if !strings.Contains(out, w) {
			t.Errorf("check does not say %q:\n%s", w, out)
		}
	}
	out, err = iot("--json", "ledger", "check")
	if err == nil {
		t.Fatal("--json check passed a broken ledger")
	}
	var codes []string
	lines := jsonLines(t, out)
	for _, m := range lines[:len(lines)-1] {
		codes = append(codes, m["code"].(string))
	}
	slices.Sort(codes)
	if !slices.Equal(codes, []string{ledger.ProblemFreeOnUnit, ledger.ProblemOpenRequest, ledger.ProblemTakenNoUnit}) {
		t.Errorf("codes %v", codes)
	}
	if s := lines[len(lines)-1]; s["type"] != "summary" || s["problems"] != 3.0 || s["ok"] != false {
		t.Errorf("summary %v", s)
	}
	if fileSum(t, b.ledger) != before {
		t.Error("check changed the ledger")
	}
	if _, err := iot("ledger", "check", "--ledger", filepath.Join(b.dir, "none.db")); exitCode(err) != exitLedger {
		t.Errorf("check of no ledger: %v", err)
	}
}

// A ledger of the previous schema: check says it is not current and how
// to fix it, without upgrading it; migrate upgrades it.
func TestLedgerCheckOldSchemaAndMigrate(t *testing.T) {
	b, iot := newBookLine(t, "dev1")
	db, err := sql.Open("sqlite", b.ledger)
	if err != nil {
		t.Fatal(err)
	}
	// Make it look like schema v2: the v3 guards gone, the version back.
	for _, q := range []string{`DROP TRIGGER credentials_exported_forever`, `DROP TRIGGER credentials_export_free`, `PRAGMA user_version = 2`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	out, err := iot("ledger", "check")
	if err == nil || !strings.Contains(out, "PROBLEM schema_not_current") || !strings.Contains(out, "iotburn ledger migrate") {
		t.Fatalf("check of an old schema: %v\n%s", err, out)
	}
	if _, err := iot("ledger", "check"); err == nil {
		t.Fatal("check upgraded the schema")
	}
	out, err = iot("--json", "ledger", "migrate")
	if err != nil {
		t.Fatal(err)
	}
	if m := jsonLines(t, out)[0]; m["from"] != 2.0 || m["to"] != float64(ledger.Version) {
		t.Errorf("migrate: %v", m)
	}
}

// `ledger backup` copies the books at one instant while a batch writes,
// 0600, never over a file.
func TestLedgerBackupWhileBatchWrites(t *testing.T) {
	names := make([]string, 200)
	for i := range names {
		names[i] = "dev" + string(rune('a'+i/26)) + string(rune('a'+i%26))
	}
	b, iot := newBookLine(t, names...)
	l, err := ledger.Open(b.ledger)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// The line's transactions, from another goroutine, as fast as they go.
	var wg sync.WaitGroup
	var stop atomic.Bool
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < len(names) && !stop.Load(); i++ {
			u, err := l.Claim("tencent", "ABCDEFGHIJ", "HW"+names[i], "st1", "p0")
			if err == nil {
				err = l.Begin(u.ID)
			}
			if err == nil {
				err = l.Burned(u.ID, time.Millisecond)
			}
			if err != nil {
				werr = err
				return
			}
		}
	}()
	var backups []string
	for i := range 3 {
		p := filepath.Join(b.dir, "backup"+string(rune('0'+i))+".db")
		out, err := iot("--json", "ledger", "backup", p)
		if err != nil {
			t.Fatal(err)
		}
		m := jsonLines(t, out)[0]
		if m["credentials"] != 200.0 || m["backup"] != p {
			t.Errorf("backup %v", m)
		}
		backups = append(backups, p)
	}
	stop.Store(true)
	wg.Wait()
	if werr != nil {
		t.Fatalf("the writer failed during backups: %v", werr)
	}
	for _, p := range backups {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", p, st.Mode(), err)
		}
		if out, err := iot("--ledger", p, "ledger", "check"); err != nil {
			t.Errorf("check of %s: %v\n%s", p, err, out)
		}
	}
	before := fileSum(t, backups[0])
	if _, err := iot("ledger", "backup", backups[0]); err == nil || exitCode(err) != exitUsage || !strings.Contains(err.Error(), "never overwrites") {
		t.Errorf("backup over a file: %v", err)
	}
	if fileSum(t, backups[0]) != before {
		t.Error("backup changed an existing file")
	}
	if _, err := iot("ledger", "backup"); exitCode(err) != exitUsage {
		t.Errorf("backup with no file: %v", err)
	}
}
