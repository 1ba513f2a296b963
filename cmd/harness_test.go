package cmd

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates/nvs"
)

// The crash harness: a whole line under kill -9 and unplugs, checked from
// outside (the boards' flash as the simulator holds it, the ledger read
// back, the platform through the emulator). The suite runs a small one; the
// full one, as the README documents it, is
//
//	IOTBURN_CRASH_BOARDS=200 IOTBURN_CRASH_KILLS=20 go test ./cmd -run CrashHarness -v -timeout 60m
//
// Half the boards are Tencent AT modules, half ESP32s (the credential in the
// fctry partition of a table written in the same pass); both lines run at
// once on one ledger, and each kill hits one of: create, a batch mid-claim
// or mid-write or mid-read-back, the audit. Boards are unplugged mid-write
// and plugged back. Then, from outside: every board holds exactly what the
// ledger says it holds, no credential is on two boards, every device the
// platform has is in the ledger once with the platform's secret, nothing is
// free that a board holds, and `iotburn ledger check` passes.
func TestCrashHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("crash harness")
	}
	boards := envInt(t, "IOTBURN_CRASH_BOARDS", 8)
	kills := envInt(t, "IOTBURN_CRASH_KILLS", 6)
	// The platform's tasks take a second: long enough for a kill of create
	// to land while they run.
	emu, endpoint := startCloud(t, time.Second)
	dir := t.TempDir()
	ledgerPath := filepath.Join(dir, "iotburn.db")
	L := []string{"--ledger", ledgerPath}

	// Devices for every board and a few spare.
	var names strings.Builder
	for i := range boards + 4 {
		fmt.Fprintf(&names, "crash%04d\n", i)
	}
	create := append(L, "create", "--product", "ABCDEFGHIJ", "--names", writeFile(t, dir, "names.txt", names.String()), "--endpoint", endpoint)
	killed := map[string]int{}
	for range max(1, kills/5) {
		if killAfter(t, iotburn(create...), time.Duration(100+rand.IntN(800))*time.Millisecond) {
			killed["create"]++
		}
	}
	if out, err := iotburn(create...).CombinedOutput(); err != nil {
		t.Fatalf("create after %d kills: %v\n%s", killed["create"], err, out)
	}

	// 19200 baud: slow enough that a kill lands mid-command.
	at, err := sim.Start(sim.Options{Dir: filepath.Join(dir, "at"), Kind: "tencent-at", Count: boards - boards/2, Baud: 19200})
	if err != nil {
		t.Fatal(err)
	}
	defer at.Close()
	esp, err := sim.Start(sim.Options{Dir: filepath.Join(dir, "esp"), Kind: "esp32", Count: boards / 2})
	if err != nil {
		t.Fatal(err)
	}
	defer esp.Close()
	app := writeFile(t, dir, "app.bin", strings.Repeat("firmware", 2048)) // 16 KB
	lines := [][]string{
		append(L, "--json", "batch", "--product", "ABCDEFGHIJ", "--ports", filepath.Join(dir, "at", "tty*"), "--once", "--baud", "19200"),
		append(L, "--json", "batch", "--product", "ABCDEFGHIJ", "--ports", filepath.Join(dir, "esp", "tty*"), "--once",
			"--format", "nvs", "--baud", "921600", "--flash", "0x8000="+goldenTable("odd_fctry.bin"), "--flash", "0x10000="+app),
	}
	all := append(at.Boards(), esp.Boards()...)

	// Kill the lines at random moments, pulling boards mid-write as they go,
	// until kills have landed (a line that finished first is no kill).
	lineKills := func() int { mu.Lock(); defer mu.Unlock(); return killed["at batch"] + killed["esp32 batch"] }
	for attempt := 0; lineKills() < kills && attempt < 3*kills; attempt++ {
		var wg sync.WaitGroup
		for i, args := range lines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if killAfter(t, iotburn(args...), time.Duration(100+rand.IntN(800))*time.Millisecond) {
					mu.Lock()
					killed[[]string{"at batch", "esp32 batch"}[i]]++
					mu.Unlock()
				}
			}()
		}
		if rand.IntN(2) == 0 {
			b := all[rand.IntN(len(all))]
			time.Sleep(time.Duration(100+rand.IntN(600)) * time.Millisecond)
			if err := b.Unplug(); err == nil {
				mu.Lock()
				killed["unplug"]++
				mu.Unlock()
			}
			time.Sleep(200 * time.Millisecond)
			if err := b.Replug(); err != nil {
				t.Fatal(err)
			}
		}
		wg.Wait()
	}
	// A kill of the audit, then the line to the end.
	if killAfter(t, iotburn(append(L, "audit", "--out", filepath.Join(dir, "audit.xlsx"))...), time.Duration(20+rand.IntN(100))*time.Millisecond) {
		killed["audit"]++
	}
	for round := 0; ; round++ {
		var outs [2][]byte
		var wg sync.WaitGroup
		for i, args := range lines {
			wg.Add(1)
			go func() { defer wg.Done(); outs[i], _ = iotburn(args...).CombinedOutput() }()
		}
		wg.Wait()
		if done(t, ledgerPath, len(all)) {
			break
		}
		if round == 4 {
			t.Fatalf("boards still not burned after %d kills (%v) and 5 clean rounds:\n%s\n%s", kills, killed, outs[0], outs[1])
		}
	}
	if out, err := iotburn(append(L, "audit", "--out", filepath.Join(dir, "audit.xlsx"))...).CombinedOutput(); err != nil {
		t.Fatalf("audit: %v\n%s", err, out)
	}
	if out, err := iotburn(append(L, "ledger", "check")...).CombinedOutput(); err != nil {
		t.Fatalf("ledger check after the kills: %v\n%s", err, out)
	}

	// From outside: the boards, the ledger, the platform.
	l, err := ledger.Open(ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	onBoards := map[string]string{} // device name → board
	for _, b := range all {
		name, secret := heldBy(t, b)
		u, ok, err := l.UnitByHW(strings.ToLower(b.MAC()))
		if err != nil || !ok {
			t.Fatalf("board %s (%s) has no unit: %v", b.Path(), b.MAC(), err)
		}
		if u.State != ledger.Burned || u.Cred.DeviceName != name || u.Cred.DeviceSecret != secret {
			t.Errorf("board %s: ledger says %s %s, the board holds %s", b.Path(), u.State, u.Cred.DeviceName, name)
		}
		if other, dup := onBoards[name]; dup {
			t.Errorf("credential %s is on two boards: %s and %s", name, other, b.Path())
		}
		onBoards[name] = b.Path()
	}
	stored := map[string]string{}
	if err := l.Credentials(registry.Tencent, "ABCDEFGHIJ", func(c registry.Credential) error {
		if _, dup := stored[c.DeviceName]; dup {
			t.Errorf("%s is in the ledger twice", c.DeviceName)
		}
		stored[c.DeviceName] = c.DeviceSecret
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	platform := emu.TencentDeviceNames("ABCDEFGHIJ")
	if len(platform) != boards+4 || len(stored) != boards+4 {
		t.Errorf("platform has %d devices, ledger %d, want %d", len(platform), len(stored), boards+4)
	}
	for _, n := range platform {
		if s, _ := emu.TencentDevice("ABCDEFGHIJ", n); s != stored[n] {
			t.Errorf("%s: the ledger's secret is not the platform's", n)
		}
	}
	c, _ := l.Counts(registry.Tencent, "ABCDEFGHIJ")
	if c.Free != 4 {
		t.Errorf("%d credentials free, want 4: the kills leaked or lost some", c.Free)
	}
	total := 0
	for _, n := range killed {
		total += n
	}
	t.Logf("%d boards burned once each through %d kills and unplugs: %v", len(all), total, killed)
}

var mu sync.Mutex

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 2 {
		t.Fatalf("%s=%q: want a number of at least 2", name, v)
	}
	return n
}

// done reports whether every board of the harness is burned in the ledger.
func done(t *testing.T, ledgerPath string, boards int) bool {
	t.Helper()
	l, err := ledger.Open(ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := l.Counts(registry.Tencent, "ABCDEFGHIJ")
	if err != nil {
		t.Fatal(err)
	}
	return c.ByState[ledger.Burned] == boards
}

// heldBy is what a board holds, read from the simulator's copy of its
// flash: an AT module's stored device info, an ESP32's fctry partition.
func heldBy(t *testing.T, b *sim.Board) (name, secret string) {
	t.Helper()
	fl := b.Flash()
	if fl.DeviceName != "" {
		return fl.DeviceName, fl.DeviceSecret
	}
	part, err := b.ReadFlash(0x3f0000, 0x6000) // fctry in odd_fctry.csv
	if err != nil {
		return "", ""
	}
	if bytes.Count(part, []byte{0xFF}) == len(part) {
		return "", ""
	}
	items, err := nvs.Read(part)
	if err != nil {
		t.Errorf("board %s: fctry does not parse: %v", b.Path(), err)
		return "", ""
	}
	for _, it := range items {
		switch it.Key {
		case "device_name":
			name, _ = it.Value.(string)
		case "device_secret":
			secret, _ = it.Value.(string)
		}
	}
	return name, secret
}
