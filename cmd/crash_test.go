package cmd

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/emulator"
)

// TestMain lets the test binary stand in for the iotburn binary: with
// IOTBURN_AS_MAIN set it runs the CLI, so the crash tests can kill -9 a real
// iotburn process without building one.
func TestMain(m *testing.M) {
	if os.Getenv("IOTBURN_AS_MAIN") == "1" {
		os.Args = append([]string{"iotburn"}, os.Args[1:]...)
		Execute()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// iotburn returns a command running the CLI in a child process.
func iotburn(args ...string) *exec.Cmd {
	c := exec.Command(os.Args[0], args...)
	c.Env = append(os.Environ(), "IOTBURN_AS_MAIN=1")
	return c
}

// killAfter starts c and SIGKILLs it after d (if it is still running).
// It returns true if the process was killed, false if it had finished.
func killAfter(t *testing.T, c *exec.Cmd, d time.Duration) bool {
	t.Helper()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Logf("finished before the kill: %v", err)
		}
		return false
	case <-time.After(d):
		_ = c.Process.Signal(syscall.SIGKILL)
		<-done
		return true
	}
}

// kill -9 of `iotburn create` while the platform's tasks run, then the same
// command again: every device the platform created is in the ledger with its
// secret, none twice. On both platforms.
func TestCreateSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	for _, tc := range []struct {
		platform, product string
		names             int
		taskDelay         time.Duration
		issued            func(*emulator.Emulator, string, string) (string, bool)
		list              func(*emulator.Emulator, string) []string
	}{
		// Tencent: 5 tasks of 100 names, each running 3 s.
		{"tencent", "ABCDEFGHIJ", 500, 3 * time.Second, (*emulator.Emulator).TencentDevice, (*emulator.Emulator).TencentDeviceNames},
		// Aliyun: one application; the name check and the creation each take
		// 1.5 s. Fewer names: a heal looks names up one by one at 50 a second.
		{"aliyun", "a1Xyz", 150, 1500 * time.Millisecond, (*emulator.Emulator).AliyunDevice, (*emulator.Emulator).AliyunDeviceNames},
	} {
		t.Run(tc.platform, func(t *testing.T) {
			emu, endpoint := startCloud(t, tc.taskDelay)
			dir := t.TempDir()
			var b strings.Builder
			for i := 1; i <= tc.names; i++ {
				fmt.Fprintf(&b, "dev%04d\n", i)
			}
			names := writeFile(t, dir, "names.txt", b.String())
			ledgerPath := filepath.Join(dir, "iotburn.db")
			args := []string{"--ledger", ledgerPath, "create", "--platform", tc.platform, "--product", tc.product, "--names", names, "--endpoint", endpoint}

			kills := 0
			for i := 0; i < 5; i++ {
				if killAfter(t, iotburn(args...), time.Duration(50+rand.IntN(450))*time.Millisecond) {
					kills++
				}
			}
			if kills == 0 {
				t.Fatal("create finished before every kill: the test proved nothing")
			}
			if out, err := iotburn(args...).CombinedOutput(); err != nil {
				t.Fatalf("final run: %v\n%s", err, out)
			}

			l, err := ledger.Open(ledgerPath)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			stored := map[string]string{}
			err = l.Credentials(tc.platform, tc.product, func(c registry.Credential) error {
				if _, dup := stored[c.DeviceName]; dup {
					t.Errorf("%s stored twice", c.DeviceName)
				}
				stored[c.DeviceName] = c.DeviceSecret
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			onPlatform := tc.list(emu, tc.product)
			if len(onPlatform) != tc.names || len(stored) != tc.names {
				t.Fatalf("after %d kills: platform has %d devices, ledger %d, want %d", kills, len(onPlatform), len(stored), tc.names)
			}
			for _, n := range onPlatform {
				if secret, _ := tc.issued(emu, tc.product, n); secret != stored[n] {
					t.Errorf("%s: ledger secret is not the platform's", n)
				}
			}
			open, _ := l.OpenRequests(tc.platform, tc.product)
			if len(open) != 0 {
				t.Errorf("%d requests still open", len(open))
			}
			t.Logf("%d kills", kills)
		})
	}
}

// kill -9 of `iotburn batch` mid-burn, then again: every board ends burned
// once and no credential is on two boards.
func TestBatchSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	_, endpoint := startCloud(t, 10*time.Millisecond)
	dir := t.TempDir()
	names := writeFile(t, dir, "names.txt", "d1\nd2\nd3\nd4\nd5\nd6\nd7\nd8\n")
	ledgerPath := filepath.Join(dir, "iotburn.db")
	if out, err := iotburn("--ledger", ledgerPath, "create", "--product", "ABCDEFGHIJ", "--names", names, "--endpoint", endpoint).CombinedOutput(); err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	// Slow boards (9600 baud) so that a kill lands mid-burn.
	farm, err := sim.Start(sim.Options{Dir: filepath.Join(dir, "boards"), Kind: "tencent-at", Count: 4, Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	args := []string{"--ledger", ledgerPath, "--json", "batch", "--product", "ABCDEFGHIJ", "--ports", filepath.Join(dir, "boards", "tty*"), "--once", "--baud", "9600"}
	kills := 0
	for i := 0; i < 4; i++ {
		if killAfter(t, iotburn(args...), time.Duration(50+rand.IntN(250))*time.Millisecond) {
			kills++
		}
	}
	if out, err := iotburn(args...).CombinedOutput(); err != nil {
		t.Fatalf("final run after %d kills: %v\n%s", kills, err, out)
	}
	l, err := ledger.Open(ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seen := map[string]bool{}
	for _, b := range farm.Boards() {
		fl := b.Flash()
		u, ok, err := l.UnitByHW(strings.ToLower(b.MAC()))
		if err != nil || !ok {
			t.Fatalf("board %s has no unit: %v", b.Path(), err)
		}
		if u.State != ledger.Burned || u.Cred.DeviceName != fl.DeviceName || u.Cred.DeviceSecret != fl.DeviceSecret {
			t.Errorf("board %s: ledger %s %s, flash %s", b.Path(), u.State, u.Cred.DeviceName, fl.DeviceName)
		}
		if seen[fl.DeviceName] {
			t.Errorf("credential %s on two boards", fl.DeviceName)
		}
		seen[fl.DeviceName] = true
	}
	counts, _ := l.Counts("tencent", "ABCDEFGHIJ")
	if counts.Free != 4 {
		t.Errorf("after %d kills %d credentials are free, want 4: a killed run must not leak credentials", kills, counts.Free)
	}
	t.Logf("%d kills", kills)
}

// Ctrl-C during `iotburn batch`: the boards in flight are finished, then the
// line stops; none is left half-burned.
func TestBatchCtrlCFinishesBoardsInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("signal test")
	}
	_, endpoint := startCloud(t, 10*time.Millisecond)
	dir := t.TempDir()
	names := writeFile(t, dir, "names.txt", "d1\nd2\nd3\nd4\nd5\nd6\n")
	ledgerPath := filepath.Join(dir, "iotburn.db")
	if out, err := iotburn("--ledger", ledgerPath, "create", "--product", "ABCDEFGHIJ", "--names", names, "--endpoint", endpoint).CombinedOutput(); err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	// 2400 baud: a burn takes long enough for the signal to land mid-burn.
	farm, err := sim.Start(sim.Options{Dir: filepath.Join(dir, "boards"), Kind: "tencent-at", Count: 4, Baud: 2400})
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	c := iotburn("--ledger", ledgerPath, "--json", "batch", "--product", "ABCDEFGHIJ", "--ports", filepath.Join(dir, "boards", "tty*"), "--baud", "2400")
	var out strings.Builder
	c.Stdout = &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	signalled := time.Now()
	if err := c.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.Process.Kill()
		t.Fatal("batch did not stop within 30 s of Ctrl-C")
	}
	l, err := ledger.Open(ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	counts, err := l.Counts("tencent", "ABCDEFGHIJ")
	if err != nil {
		t.Fatal(err)
	}
	if counts.ByState[ledger.Burning] != 0 || counts.ByState[ledger.Reserved] != 0 || counts.ByState[ledger.Failed] != 0 {
		t.Fatalf("after Ctrl-C: %v: boards were left half-done\n%s", counts.ByState, out.String())
	}
	if counts.ByState[ledger.Burned] == 0 {
		t.Fatalf("no board finished: the signal came before any burn started?\n%s", out.String())
	}
	// At least one board finished after the signal: it was in flight and
	// the line completed it rather than cutting it off.
	after := 0
	for _, line := range strings.Split(out.String(), "\n") {
		var e struct {
			Stage string    `json:"event"`
			Time  time.Time `json:"time"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Stage == "burned" && e.Time.After(signalled) {
			after++
		}
	}
	if after == 0 {
		t.Fatalf("no board finished after Ctrl-C, so none was in flight: the test proved nothing\n%s", out.String())
	}
	t.Logf("states after Ctrl-C: %v; %d board(s) finished after the signal", counts.ByState, after)
}
