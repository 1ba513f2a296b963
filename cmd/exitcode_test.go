package cmd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/sim"
)

// Each kind of failure has its own exit code, so a script can tell "plug
// the boards in" from "create more devices" from "a board failed".
func TestExitCodes(t *testing.T) {
	_, endpoint := startCloud(t, 10*time.Millisecond)
	dir := t.TempDir()
	ledgerPath := filepath.Join(dir, "l.db")
	if _, _, err := run(t, "--ledger", ledgerPath, "create", "--product", "ABCDEFGHIJ", "--names", writeFile(t, dir, "n.txt", "dev1\n"), "--endpoint", endpoint); err != nil {
		t.Fatal(err)
	}
	farm, err := sim.Start(sim.Options{Dir: filepath.Join(dir, "boards"), Kind: "tencent-at", Count: 2, Baud: sim.Unpaced})
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	dead, err := sim.Start(sim.Options{Dir: filepath.Join(dir, "dead"), Kind: "tencent-at", Count: 1, Baud: sim.Unpaced})
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	dead.Boards()[0].SetFault(sim.FaultDrop)
	batch := []string{"--ledger", ledgerPath, "batch", "--product", "ABCDEFGHIJ", "--once"}
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"unknown flag", append(batch, "--bogus"), exitUsage},
		{"unknown command", []string{"bruns"}, exitUsage},
		{"bad flag value", append(batch, "--ports", "x", "--baud", "0"), exitUsage},
		{"unsafe flash map", append(batch, "--ports", "x", "--format", "nvs", "--flash-offset", "0x9800"), exitUsage},
		{"no ledger", []string{"--ledger", filepath.Join(dir, "nope.db"), "batch", "--product", "ABCDEFGHIJ", "--once", "--ports", filepath.Join(dir, "none*")}, exitLedger},
		{"a port that is not there", append(batch, "--ports", filepath.Join(dir, "ttyNONE")), exitNoPorts},
		{"no ports", append(batch, "--ports", filepath.Join(dir, "none*")), exitNoPorts},
		{"a failed board", append(batch, "--ports", filepath.Join(dir, "dead", "tty*")), exitBoardsFailed},
		// Two boards, one credential: one burned, the other finds none left.
		{"no credentials left", append(batch, "--ports", filepath.Join(dir, "boards", "tty*")), exitNoCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := run(t, tc.args...)
			if got := exitCode(err); got != tc.want {
				t.Errorf("exit %d, want %d (%v)\n%s%s", got, tc.want, err, out, errOut)
			}
		})
	}
	t.Run("wrong cloud keys", func(t *testing.T) {
		t.Setenv("TENCENTCLOUD_SECRET_KEY", "wrong")
		_, _, err := run(t, "--ledger", ledgerPath, "create", "--product", "ABCDEFGHIJ", "--names", writeFile(t, dir, "m.txt", "dev2\n"), "--endpoint", endpoint)
		if got := exitCode(err); got != exitPlatformAuth {
			t.Errorf("exit %d, want %d (%v)", got, exitPlatformAuth, err)
		}
	})
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, 0}, {errors.New("x"), exitFailure}, {fmt.Errorf("wrapped: %w", withKind(errInterrupted, errors.New("x"))), exitInterrupted},
	} {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// QA during an outage: the platform unreachable, verify says it could not
// check, exits 5, and every burned board stays burned in the ledger (the
// next verify, with the platform back, is not refused).
func TestVerifyPlatformDown(t *testing.T) {
	a := newATLine(t, 2, "dev1", "dev2")
	endpoint, ledgerPath, ports := a.endpoint, a.ledger, a.ports
	if _, _, err := run(t, "--ledger", ledgerPath, "batch", "--product", "ABCDEFGHIJ", "--ports", ports, "--once"); err != nil {
		t.Fatal(err)
	}
	down := "http://127.0.0.1:1" // nothing listens there
	out, _, err := run(t, "--ledger", ledgerPath, "verify", "--product", "ABCDEFGHIJ", "--ports", ports, "--cloud", "--endpoint", down)
	if got := exitCode(err); got != exitPlatformUnreachable {
		t.Fatalf("verify with the platform down: exit %d (%v), want %d\n%s", got, err, exitPlatformUnreachable, out)
	}
	if !strings.Contains(out, "0 verified, 0 failed, 2 not checked") {
		t.Errorf("verify said %q", out)
	}
	status, _, err := run(t, "--ledger", ledgerPath, "--json", "ledger", "status")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(status, `"burned":2`) {
		t.Errorf("boards demoted during the outage: %s", status)
	}
	// The platform back: the same boards verify.
	out, _, err = run(t, "--ledger", ledgerPath, "verify", "--product", "ABCDEFGHIJ", "--ports", ports, "--cloud", "--endpoint", endpoint)
	if err != nil || !strings.Contains(out, "2 verified") {
		t.Fatalf("verify after the outage: %v\n%s", err, out)
	}
}

// -v logs the wire of an AT line: each command and answer, the secret
// masked by its fingerprint; --log puts it in a file of its own, 0600.
func TestWireLogAT(t *testing.T) {
	a := newATLine(t, 1, "dev1")
	emu, dir, ledgerPath := a.emu, a.dir, a.ledger
	logPath := filepath.Join(dir, "wire.log")
	if _, _, err := run(t, "--ledger", ledgerPath, "-v", "--log", logPath, "batch", "--product", "ABCDEFGHIJ", "--ports", filepath.Join(dir, "boards", "tty*"), "--once"); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	log := string(raw)
	secret, _ := emu.TencentDevice("ABCDEFGHIJ", "dev1")
	for _, want := range []string{`send=AT+TCMODULE`, `send="AT+TCDEVINFOSET=1,\"ABCDEFGHIJ\",\"dev1\",\"[secret `, `recv=OK`} {
		if !strings.Contains(log, want) {
			t.Errorf("the wire log has no %s:\n%s", want, log)
		}
	}
	if strings.Contains(log, secret) {
		t.Error("the wire log shows the device secret")
	}
	if st, _ := os.Stat(logPath); st.Mode().Perm() != 0o600 {
		t.Errorf("log file mode %v, want 0600", st.Mode().Perm())
	}
}
