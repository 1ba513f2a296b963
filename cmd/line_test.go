package cmd

import (
	"bytes"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/registry/emulator"
)

// The by-hand acceptance, automated: a cloud and 8 boards, then
// create 100 names from a file, batch burns the 8 boards, audit shows them,
// and the platform lists the 100 devices.
func TestByHandLine(t *testing.T) {
	emu, endpoint := startCloud(t, 50*time.Millisecond)
	dir := t.TempDir()
	farm, err := sim.Start(sim.Options{Dir: filepath.Join(dir, "boards"), Kind: "tencent-at", Count: 8, Baud: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	var names strings.Builder
	names.WriteString("sn,DeviceName\n")
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&names, "SN%05d,dev%04d\n", i, i)
	}
	namesFile := writeFile(t, dir, "names.csv", names.String())
	ledgerPath := filepath.Join(dir, "iotburn.db")

	out, _, err := run(t, "--ledger", ledgerPath, "create", "--product", "ABCDEFGHIJ", "--names", namesFile, "--endpoint", endpoint)
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	if !strings.Contains(out, "100 created") {
		t.Errorf("create said %q", out)
	}

	out, _, err = run(t, "--ledger", ledgerPath, "--json", "batch", "--product", "ABCDEFGHIJ", "--ports", filepath.Join(dir, "boards", "tty*"), "--once")
	if err != nil {
		t.Fatalf("batch: %v\n%s", err, out)
	}
	if got := strings.Count(out, `"event":"burned"`); got != 8 {
		t.Fatalf("batch burned %d boards, want 8:\n%s", got, out)
	}
	if strings.Contains(out, `"type":"warning"`) {
		t.Errorf("92 names left is not low:\n%s", out)
	}
	// The secrets never reach the JSON output.
	for _, b := range farm.Boards() {
		fl := b.Flash()
		if psk, ok := emu.TencentDevice("ABCDEFGHIJ", fl.DeviceName); !ok || psk != fl.DeviceSecret {
			t.Errorf("%s holds %s with a secret that is not the platform's", b.Path(), fl.DeviceName)
		}
		if strings.Contains(out, fl.DeviceSecret) {
			t.Errorf("batch --json output shows the secret of %s", fl.DeviceName)
		}
	}

	auditPath := filepath.Join(dir, "audit.xlsx")
	if _, _, err := run(t, "--ledger", ledgerPath, "audit", "--out", auditPath); err != nil {
		t.Fatal(err)
	}
	wb, err := excelize.OpenFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := wb.GetRows("Units")
	if err != nil {
		t.Fatal(err)
	}
	burned := 0
	for _, r := range rows[1:] {
		if strings.Contains(strings.Join(r, "|"), "|burned|") {
			burned++
		}
	}
	if len(rows) != 9 || burned != 8 {
		t.Errorf("audit has %d rows (%d burned), want a header and 8 burned boards", len(rows), burned)
	}

	out, _, err = run(t, "devices", "--product", "ABCDEFGHIJ", "--endpoint", endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "100 devices") || !strings.Contains(out, "dev0100") {
		t.Errorf("devices listed:\n%s", out)
	}
}

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	out, _, err := run(t, "demo", "--dir", dir)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	wb, err := excelize.OpenFile(filepath.Join(dir, "audit.xlsx"))
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := wb.GetRows("Units")
	if len(rows) != 5 {
		t.Fatalf("audit has %d rows, want a header and 4 boards", len(rows))
	}
	flashes, err := sim.LoadFlash(filepath.Join(dir, "boards"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for port, f := range flashes {
		if f.DeviceName == "" || seen[f.DeviceSecret] {
			t.Errorf("%s: empty or shared credential", port)
		}
		seen[f.DeviceSecret] = true
	}
	if len(seen) != 4 {
		t.Errorf("%d boards hold a credential, want 4", len(seen))
	}
}

// ESP32 boards by the CLI: partition from the board's partition table CSV,
// the shared firmware from --flash, one pass; bad --flash specs refused.
func TestBatchESP32(t *testing.T) {
	_, endpoint := startCloud(t, 10*time.Millisecond)
	dir := t.TempDir()
	ledgerPath := filepath.Join(dir, "l.db")
	names := writeFile(t, dir, "n.txt", "esp1\nesp2\n")
	if _, _, err := run(t, "--ledger", ledgerPath, "create", "--product", "ABCDEFGHIJ", "--names", names, "--endpoint", endpoint); err != nil {
		t.Fatal(err)
	}
	farm, err := sim.Start(sim.Options{Dir: filepath.Join(dir, "boards"), Kind: "esp32", Count: 2, Baud: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	table := writeFile(t, dir, "partitions.csv", "# Name, Type, SubType, Offset, Size\nnvs, data, nvs, , 0x4000,\ncreds, data, nvs, 0xd000, 0x3000,\nfactory, app, factory, , 1M,\n")
	app := writeFile(t, dir, "app.bin", strings.Repeat("app!", 5000))
	ports := filepath.Join(dir, "boards", "tty*")
	base := []string{"--ledger", ledgerPath, "--json", "batch", "--product", "ABCDEFGHIJ", "--ports", ports, "--once", "--format", "nvs"}

	_, _, err = run(t, append(base, "--flash", "0x10001="+app)...)
	if err == nil || !strings.Contains(err.Error(), "not on a 4 KB sector boundary") {
		t.Fatalf("unaligned --flash accepted: %v", err)
	}
	out, _, err := run(t, append(base, "--partition-table", table, "--partition-name", "creds", "--flash", "0x10000="+app, "--baud", "921600")...)
	if err != nil {
		t.Fatalf("batch: %v\n%s", err, out)
	}
	if strings.Count(out, `"event":"burned"`) != 2 {
		t.Fatalf("want 2 burned:\n%s", out)
	}
	for _, b := range farm.Boards() {
		part, err := b.ReadFlash(0xd000, 0x3000)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(part, []byte("qcloud-key")) || !bytes.Contains(part, []byte("ABCDEFGHIJ")) {
			t.Errorf("%s: no credential partition at 0xd000", b.Path())
		}
		a, _ := b.ReadFlash(0x10000, 20000)
		if string(a) != strings.Repeat("app!", 5000) {
			t.Errorf("%s: app region differs", b.Path())
		}
	}
}

func TestDemoAliyun(t *testing.T) {
	dir := t.TempDir()
	out, _, err := run(t, "demo", "--platform", "aliyun", "--dir", dir)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	wb, err := excelize.OpenFile(filepath.Join(dir, "audit.xlsx"))
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := wb.GetRows("Units")
	if len(rows) != 5 {
		t.Fatalf("audit has %d rows, want a header and 4 boards", len(rows))
	}
	for _, r := range rows[1:] {
		line := strings.Join(r, "|")
		if !strings.Contains(line, "|aliyun|a1Xyz|cn-shanghai|") {
			t.Errorf("audit row does not say platform, product and region: %q", line)
		}
	}
}

// `iotburn demo --mode product-preregistered` on both platforms: every
// board registers (a Tencent module itself, an Aliyun IDMAU module through
// the station, as its firmware cannot) and logs in over MQTT; the audit has
// them. Registration-free runs on ESP32 boards, which register themselves
// when reset into their application, as do esp-aliyun boards on
// pre-registered names; it cannot run on IDMAU modules: refused with why.
func TestDemoProductModes(t *testing.T) {
	for _, args := range [][]string{
		{"--mode", "product-preregistered"},
		{"--platform", "aliyun", "--mode", "product-preregistered"},
		{"--platform", "aliyun", "--mode", "registration-free"},
		{"--platform", "aliyun", "--mode", "product-preregistered", "--kind", "esp32"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := t.TempDir()
			out, _, err := run(t, append([]string{"--json", "demo", "--dir", dir}, args...)...)
			if err != nil {
				t.Fatalf("demo: %v\n%s", err, out)
			}
			if !strings.Contains(out, `"verified":4`) {
				t.Fatalf("want 4 boards verified:\n%s", out)
			}
			wb, err := excelize.OpenFile(filepath.Join(dir, "audit.xlsx"))
			if err != nil {
				t.Fatal(err)
			}
			rows, _ := wb.GetRows("Units")
			verified := 0
			for _, r := range rows[1:] {
				if strings.Contains(strings.Join(r, "|"), "|verified|") {
					verified++
				}
			}
			if verified != 4 {
				t.Errorf("audit: %d verified rows, want 4", verified)
			}
		})
	}
	if _, _, err := run(t, "demo", "--mode", "registration-free", "--dir", t.TempDir()); err == nil || !strings.Contains(err.Error(), "aliyun") {
		t.Errorf("registration-free on Tencent: %v, want advice to use aliyun", err)
	}
	if _, _, err := run(t, "demo", "--platform", "aliyun", "--mode", "registration-free", "--kind", "aliyun-at", "--dir", t.TempDir()); err == nil || !strings.Contains(err.Error(), "IDMAU") {
		t.Errorf("registration-free on Aliyun AT boards: %v, want it refused because of the IDMAU firmware", err)
	}
	if _, _, err := run(t, "demo", "--mode", "product-autocreate", "--kind", "esp32", "--dir", t.TempDir()); err == nil || !strings.Contains(err.Error(), "esp-qcloud") {
		t.Errorf("product-autocreate on Tencent ESP32 boards: %v, want it refused because esp-qcloud has no dynamic registration", err)
	}
}

// An Aliyun AT line by the CLI: the IDMAU firmware tells no id, so each
// board's comes from its label (here the files sim device writes beside each
// port, as a scanner would type them); without a scanner the line refuses
// before it starts.
func TestAliyunLineByLabels(t *testing.T) {
	_, endpoint := startCloud(t, 10*time.Millisecond)
	dir := t.TempDir()
	ledgerPath := filepath.Join(dir, "l.db")
	if _, _, err := run(t, "--ledger", ledgerPath, "create", "--platform", "aliyun", "--product", "a1Xyz", "--names", writeFile(t, dir, "n.txt", "ali01\nali02\n"), "--endpoint", endpoint); err != nil {
		t.Fatal(err)
	}
	farm, err := sim.Start(sim.Options{Dir: filepath.Join(dir, "boards"), Kind: "aliyun-at", Count: 2, Baud: sim.Unpaced})
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	base := []string{"--ledger", ledgerPath, "--json", "batch", "--platform", "aliyun", "--product", "a1Xyz", "--ports", filepath.Join(dir, "boards", "tty*"), "--once"}
	if _, _, err := run(t, base...); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--hw-id-from scan") {
		t.Fatalf("without a scanner: %v, want a usage error naming --hw-id-from scan", err)
	}
	out, _, err := run(t, append(base, "--hw-id-from", "scan", "--scanner", "sim")...)
	if err != nil || strings.Count(out, `"event":"burned"`) != 2 {
		t.Fatalf("batch: %v\n%s", err, out)
	}
	for _, b := range farm.Boards() {
		if !strings.Contains(out, `"hw_id":"`+strings.ToLower(b.MAC())+`"`) {
			t.Errorf("board %s not burned under its label's MAC %s:\n%s", b.Path(), b.MAC(), out)
		}
	}
}

// `iotburn demo --mode gateway`: Tencent gateways burned and their
// sub-devices brought in; `sim cloud --state D/cloud` then serves the same
// platform again (it starts on the demo's products, the kinds kept); on
// Aliyun's AT modules, which have no gateway commands, a usage error that
// says why.
func TestDemoGateway(t *testing.T) {
	dir := t.TempDir()
	out, _, err := run(t, "demo", "--mode", "gateway", "--dir", dir)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	if !strings.Contains(out, "2 gateways burned and verified, 6 sub-devices bound and online") {
		t.Fatalf("demo said:\n%s", out)
	}
	// The demo's cloud served again: every gateway with its sub-devices, through the API.
	cfg := emulator.Config{StateDir: filepath.Join(dir, "cloud"), GatewayProducts: []string{"DEMOGATEWY"}, SubDeviceProducts: []string{"DEMOSUBDEV"}}
	cfg.SecretID, cfg.SecretKey = emulator.NewKeyPair()
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Setenv("TENCENTCLOUD_SECRET_ID", cfg.SecretID)
	t.Setenv("TENCENTCLOUD_SECRET_KEY", cfg.SecretKey)
	out, _, err = run(t, "devices", "--product", "DEMOGATEWY", "--sub-devices", "DEMOSUBDEV", "--endpoint", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"demo-gw-0001", "sub-device DEMOSUBDEV/demo-sub-0003", "demo-gw-0002", "sub-device DEMOSUBDEV/demo-sub-0006", "2 devices"} {
		if !strings.Contains(out, want) {
			t.Fatalf("devices --sub-devices does not show %q:\n%s", want, out)
		}
	}
	srv.Close()
	emu.Close()
	if _, _, err := run(t, "sim", "cloud", "--state", filepath.Join(dir, "cloud"), "--product", "tencent:DEMOGATEWY"); err == nil ||
		!strings.Contains(err.Error(), "gateway product") {
		t.Fatalf("sim cloud with the gateway product as an ordinary one: %v, want refused", err)
	}
	if _, _, err := run(t, "demo", "--mode", "gateway", "--platform", "aliyun", "--kind", "aliyun-at", "--dir", t.TempDir()); !errors.Is(err, errUsage) {
		t.Fatalf("aliyun gateway demo on aliyun-at modules: %v, want a usage error", err)
	}
}

// `iotburn demo --mode gateway --platform aliyun`: ESP32 gateways burned
// with their kits register their sub-devices; the demo's cloud, served
// again, lists every gateway with its sub-devices through the API.
func TestDemoGatewayAliyun(t *testing.T) {
	dir := t.TempDir()
	out, _, err := run(t, "demo", "--mode", "gateway", "--platform", "aliyun", "--dir", dir)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	if !strings.Contains(out, "2 gateways burned and verified, 6 sub-devices bound and online") || !strings.Contains(out, "--product aliyun:a1DemoGatew:gateway") {
		t.Fatalf("demo said:\n%s", out)
	}
	cfg := emulator.Config{StateDir: filepath.Join(dir, "cloud"), AliyunGatewayProducts: []string{"a1DemoGatew"}, AliyunSubDeviceProducts: []string{"a1DemoSubDv"}}
	cfg.SecretID, cfg.SecretKey = emulator.NewKeyPair()
	cfg.AliyunAccessKeyID, cfg.AliyunAccessKeySecret = emulator.NewAliyunKeyPair()
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	srv := httptest.NewServer(emu)
	defer srv.Close()
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", cfg.AliyunAccessKeyID)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", cfg.AliyunAccessKeySecret)
	out, _, err = run(t, "devices", "--platform", "aliyun", "--product", "a1DemoGatew", "--sub-devices", "a1DemoSubDv", "--endpoint", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"demo-gw-0001", "sub-device a1DemoSubDv/demo-sub-0003", "demo-gw-0002", "sub-device a1DemoSubDv/demo-sub-0006", "2 devices"} {
		if !strings.Contains(out, want) {
			t.Fatalf("devices --sub-devices does not show %q:\n%s", want, out)
		}
	}
}
