package cmd

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/registry/emulator"
)

// run executes iotburn in-process with args and returns stdout, stderr and the error.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	g := &globals{out: &out, errOut: &errOut}
	root := newRoot(g)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := execute(ctx, root, args)
	return out.String(), errOut.String(), err
}

// startCloud serves the emulator (Tencent product ABCDEFGHIJ, Aliyun product
// a1Xyz) on loopback with both key pairs put in the environment,
// the way a user runs `iotburn sim cloud` and pastes its export line.
func startCloud(t *testing.T, taskDelay time.Duration) (*emulator.Emulator, string) {
	t.Helper()
	return serveCloud(t, emulator.Config{StateDir: t.TempDir(), Products: []string{"ABCDEFGHIJ"}, AliyunProducts: []string{"a1Xyz"}, TaskDelay: taskDelay})
}

// serveCloud serves an emulator of cfg on loopback with fresh key pairs put
// in the environment.
func serveCloud(t *testing.T, cfg emulator.Config) (*emulator.Emulator, string) {
	t.Helper()
	cfg.SecretID, cfg.SecretKey = emulator.NewKeyPair()
	cfg.AliyunAccessKeyID, cfg.AliyunAccessKeySecret = emulator.NewAliyunKeyPair()
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(func() { srv.Close(); emu.Close() })
	t.Setenv("TENCENTCLOUD_SECRET_ID", cfg.SecretID)
	t.Setenv("TENCENTCLOUD_SECRET_KEY", cfg.SecretKey)
	t.Setenv("TENCENTCLOUD_REGION", "ap-guangzhou")
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", cfg.AliyunAccessKeyID)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", cfg.AliyunAccessKeySecret)
	t.Setenv("ALIBABA_CLOUD_REGION_ID", "cn-shanghai")
	return emu, srv.URL
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Bad input gets an error that names the problem and the fix, and changes nothing.
func TestCreateBadInput(t *testing.T) {
	emu, endpoint := startCloud(t, 10*time.Millisecond)
	dir := t.TempDir()
	ledgerPath := filepath.Join(dir, "l.db")
	tests := []struct {
		name  string
		names string
		want  []string
	}{
		{"duplicate", "dev1\ndev2\ndev1\n", []string{"line 3", "duplicate of line 1"}},
		{"empty", "dev1\n\ndev2\n", []string{"line 2", "empty name"}},
		{"too long", "dev1\n" + strings.Repeat("x", 49) + "\n", []string{"line 2"}},
		{"bad character", "dev1\ndev 2\n", []string{"line 2", "dev 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile(t, dir, "names.txt", tt.names)
			_, _, err := run(t, "--ledger", ledgerPath, "create", "--product", "ABCDEFGHIJ", "--names", f, "--endpoint", endpoint)
			if err == nil {
				t.Fatal("bad names accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if n := len(emu.TencentDeviceNames("ABCDEFGHIJ")); n != 0 {
				t.Fatalf("the platform has %d devices after a refused names file", n)
			}
		})
	}
}

func TestCreateMissingAndWrongKeys(t *testing.T) {
	emu, endpoint := startCloud(t, 10*time.Millisecond)
	dir := t.TempDir()
	names := writeFile(t, dir, "names.txt", "dev1\ndev2\n")
	ledgerPath := filepath.Join(dir, "l.db")

	t.Setenv("TENCENTCLOUD_SECRET_KEY", "")
	_, _, err := run(t, "--ledger", ledgerPath, "create", "--product", "ABCDEFGHIJ", "--names", names, "--endpoint", endpoint)
	if err == nil || !strings.Contains(err.Error(), "TENCENTCLOUD_SECRET_KEY") {
		t.Fatalf("missing key: err = %v, want it to name TENCENTCLOUD_SECRET_KEY", err)
	}
	t.Setenv("TENCENTCLOUD_SECRET_KEY", "not-the-key")
	_, _, err = run(t, "--ledger", ledgerPath, "create", "--product", "ABCDEFGHIJ", "--names", names, "--endpoint", endpoint)
	if err == nil || !strings.Contains(err.Error(), "TENCENTCLOUD_SECRET") {
		t.Fatalf("wrong key: err = %v, want it to name the key variables", err)
	}
	if strings.Contains(err.Error(), "not-the-key") {
		t.Fatalf("error shows the key: %v", err)
	}
	if n := len(emu.TencentDeviceNames("ABCDEFGHIJ")); n != 0 {
		t.Fatalf("platform has %d devices after a refused key", n)
	}
}

func TestBurnMissingPortAndLedger(t *testing.T) {
	dir := t.TempDir()
	_, _, err := run(t, "--ledger", filepath.Join(dir, "none.db"), "batch", "--product", "ABCDEFGHIJ", "--ports", filepath.Join(dir, "tty*"), "--once")
	if err == nil || !strings.Contains(err.Error(), "iotburn create") {
		t.Fatalf("missing ledger: err = %v, want advice to run create", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "none.db")); err == nil {
		t.Fatal("a missing ledger was created by batch")
	}
	_, _, err = run(t, "--ledger", filepath.Join(dir, "none.db"), "burn", "--product", "ABCDEFGHIJ", "--port", "/dev/ttyNOPE9")
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "iotburn ports") {
		t.Fatalf("missing port: err = %v", err)
	}
}

func TestHelpHasExamples(t *testing.T) {
	g := &globals{out: &bytes.Buffer{}, errOut: &bytes.Buffer{}}
	for _, c := range allCommands(newRoot(g)) {
		if c.Runnable() && c.Example == "" {
			t.Errorf("%q has no example in its --help", c.CommandPath())
		}
	}
}

func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}

// atLine is a Tencent line to test against: the emulator, a ledger holding
// the devices names (created through the CLI), and boards unpaced
// tencent-at boards under dir/boards.
type atLine struct {
	emu                *emulator.Emulator
	endpoint           string
	dir, ledger, ports string
	farm               *sim.Farm
}

func newATLine(t *testing.T, boards int, names ...string) *atLine {
	t.Helper()
	a := &atLine{dir: t.TempDir()}
	a.emu, a.endpoint = startCloud(t, 10*time.Millisecond)
	a.ledger = filepath.Join(a.dir, "l.db")
	if _, _, err := run(t, "--ledger", a.ledger, "create", "--product", "ABCDEFGHIJ", "--names", writeFile(t, a.dir, "n.txt", strings.Join(names, "\n")+"\n"), "--endpoint", a.endpoint); err != nil {
		t.Fatal(err)
	}
	farm, err := sim.Start(sim.Options{Dir: filepath.Join(a.dir, "boards"), Kind: "tencent-at", Count: boards, Baud: sim.Unpaced})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { farm.Close() })
	a.farm, a.ports = farm, filepath.Join(a.dir, "boards", "tty*")
	return a
}
