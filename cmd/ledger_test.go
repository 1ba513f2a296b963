package cmd

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/sim"
)

func TestLedgerCommands(t *testing.T) {
	emu, endpoint := startCloud(t, 10*time.Millisecond)
	dir := t.TempDir()
	ledgerPath := filepath.Join(dir, "l.db")
	names := writeFile(t, dir, "n.txt", "dev1\ndev2\ndev3\n")
	if _, _, err := run(t, "--ledger", ledgerPath, "create", "--product", "ABCDEFGHIJ", "--names", names, "--endpoint", endpoint); err != nil {
		t.Fatal(err)
	}
	secret, _ := emu.TencentDevice("ABCDEFGHIJ", "dev2")

	out, _, err := run(t, "--ledger", ledgerPath, "ledger", "export", "--product", "ABCDEFGHIJ")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "\n") != 4 || strings.Contains(out, secret) {
		t.Fatalf("export without secrets:\n%s", out)
	}
	out, _, _ = run(t, "--ledger", ledgerPath, "ledger", "export", "--product", "ABCDEFGHIJ", "--include-secrets")
	if !strings.Contains(out, "dev2,ap-guangzhou,") || !strings.Contains(out, secret) {
		t.Fatalf("export --include-secrets lacks dev2's secret:\n%s", out)
	}

	if _, _, err := run(t, "--ledger", ledgerPath, "ledger", "void", "--product", "ABCDEFGHIJ", "--device", "dev2", "--reason", "dropped", "--delete", "--endpoint", endpoint); err != nil {
		t.Fatal(err)
	}
	if _, ok := emu.TencentDevice("ABCDEFGHIJ", "dev2"); ok {
		t.Error("--delete left the device on the platform")
	}
	out, _, err = run(t, "--ledger", ledgerPath, "ledger", "status")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "void") || !strings.Contains(out, "free            2") {
		t.Errorf("status after void:\n%s", out)
	}
	out, _, _ = run(t, "--ledger", ledgerPath, "ledger", "export", "--product", "ABCDEFGHIJ")
	if strings.Contains(out, "dev2") {
		t.Errorf("a void credential is still exported as usable:\n%s", out)
	}
}

// The line warns, once, when the product is about to run out of names.
func TestBatchWarnsWhenNamesRunLow(t *testing.T) {
	_, endpoint := startCloud(t, 10*time.Millisecond)
	dir := t.TempDir()
	ledgerPath := filepath.Join(dir, "l.db")
	names := writeFile(t, dir, "n.txt", "a001\na002\na003\na004\n")
	if _, _, err := run(t, "--ledger", ledgerPath, "create", "--product", "ABCDEFGHIJ", "--names", names, "--endpoint", endpoint); err != nil {
		t.Fatal(err)
	}
	farm, err := sim.Start(sim.Options{Dir: filepath.Join(dir, "boards"), Kind: "tencent-at", Count: 2, Baud: 921600})
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	out, _, err := run(t, "--ledger", ledgerPath, "--json", "batch", "--product", "ABCDEFGHIJ", "--ports", filepath.Join(dir, "boards", "tty*"), "--once", "--baud", "921600")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, `"type":"warning"`) != 1 || !strings.Contains(out, "has 2 names left") && !strings.Contains(out, "has 3 names left") {
		t.Fatalf("want one warning about the names left:\n%s", out)
	}
}
