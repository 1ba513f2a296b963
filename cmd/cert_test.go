package cmd

import (
	"archive/zip"
	"bufio"
	"crypto/tls"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry/emulator"
)

// startCertCloud serves the emulator with a certificate product on each
// platform (Tencent CERTPROD01, Aliyun a1X509Prod), keys in the
// environment as startCloud puts them.
func startCertCloud(t *testing.T) (*emulator.Emulator, string) {
	t.Helper()
	return serveCloud(t, emulator.Config{StateDir: t.TempDir(), CertProducts: []string{"CERTPROD01"}, AliyunCertProducts: []string{"a1X509Prod"},
		TaskDelay: 10 * time.Millisecond, CertDelay: -1, RateLimit: -1})
}

// pemBody is the base64 lines of a PEM block, without its armour: what
// would give a key away in any output, however it was framed.
func pemBody(p string) []string {
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(p), "\n") {
		if !strings.HasPrefix(line, "-----") && len(line) > 16 {
			out = append(out, line)
		}
	}
	return out
}

// create on certificate products stores each device's certificate and
// key; ledger export shows fingerprints only, unless --include-secrets,
// which carries both PEMs (CSV and --json).
func TestCreateAndExportCertDevices(t *testing.T) {
	emu, endpoint := startCertCloud(t)
	for _, p := range []struct{ platform, product string }{{"tencent", "CERTPROD01"}, {"aliyun", "a1X509Prod"}} {
		t.Run(p.platform, func(t *testing.T) {
			dir := t.TempDir()
			ledgerPath := filepath.Join(dir, "l.db")
			names := writeFile(t, dir, "n.txt", "cdev1\ncdev2\n")
			pf := []string{"--platform", p.platform, "--product", p.product}
			if out, errOut, err := run(t, append([]string{"--ledger", ledgerPath, "create", "--names", names, "--endpoint", endpoint}, pf...)...); err != nil {
				t.Fatalf("create: %v\n%s%s", err, out, errOut)
			}
			var issued string
			if p.platform == "tencent" {
				issued, _ = emu.TencentDeviceCert(p.product, "cdev2")
			} else {
				issued, _, _ = emu.AliyunDeviceCert(p.product, "cdev2")
			}
			if issued == "" {
				t.Fatal("the emulator has no certificate for cdev2")
			}

			// Without --include-secrets: no PEM at all, a fingerprint of each.
			for _, js := range []bool{false, true} {
				args := append([]string{"--ledger", ledgerPath, "ledger", "export"}, pf...)
				if js {
					args = append([]string{"--json"}, args...)
				}
				out, _, err := run(t, args...)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(out, "BEGIN") || strings.Contains(out, pemBody(issued)[0]) {
					t.Errorf("export (json %v) without --include-secrets shows a PEM:\n%s", js, out)
				}
				if !strings.Contains(out, "cdev2") {
					t.Errorf("export (json %v) lacks cdev2:\n%s", js, out)
				}
			}

			out, _, err := run(t, append([]string{"--json", "--ledger", ledgerPath, "ledger", "export", "--include-secrets"}, pf...)...)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]map[string]any{}
			sc := bufio.NewScanner(strings.NewReader(out))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var line map[string]any
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Fatalf("%v: %s", err, sc.Text())
				}
				if name, ok := line["device_name"].(string); ok {
					got[name] = line
				}
			}
			d := got["cdev2"]
			if d == nil || d["type"] != "event" || d["event"] != "credential" || d["device_cert"] != issued {
				t.Fatalf("export --json --include-secrets, cdev2: %v", d)
			}
			key, _ := d["device_private_key"].(string)
			if _, err := tls.X509KeyPair([]byte(issued), []byte(key)); err != nil {
				t.Errorf("device_private_key is not the certificate's: %v", err)
			}
			if fp, _ := d["cert_fingerprint"].(string); d["secret_fingerprint"] == "" || len(fp) != 64 {
				t.Errorf("fingerprints: %v", d)
			}

			out, _, err = run(t, append([]string{"--ledger", ledgerPath, "ledger", "export", "--include-secrets"}, pf...)...)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil || len(rows) != 3 {
				t.Fatalf("CSV: %d rows, %v", len(rows), err)
			}
			col := map[string]int{}
			for i, h := range rows[0] {
				col[h] = i
			}
			for _, r := range rows[1:] {
				if r[col["device_name"]] == "cdev2" && (r[col["device_cert"]] != issued || r[col["device_private_key"]] != key) {
					t.Errorf("CSV cdev2: %q", r)
				}
			}
		})
	}
}

// createCerts creates certificate devices in a fresh ledger and returns it.
func createCerts(t *testing.T, endpoint, platform, product string, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	ledgerPath := filepath.Join(dir, "l.db")
	list := writeFile(t, dir, "n.txt", strings.Join(names, "\n")+"\n")
	if out, errOut, err := run(t, "--ledger", ledgerPath, "create", "--platform", platform, "--product", product, "--names", list, "--endpoint", endpoint); err != nil {
		t.Fatalf("create: %v\n%s%s", err, out, errOut)
	}
	return ledgerPath
}

// A certificate product on a line whose format has no place for a
// certificate is refused before the line starts (a usage error, no board
// claimed), with the reason: Alibaba's IDMAU firmware has no certificate
// command.
func TestLineRefusesCertOnKeyOnlyFormat(t *testing.T) {
	_, endpoint := startCertCloud(t)
	ledgerPath := createCerts(t, endpoint, "aliyun", "a1X509Prod", "adev1")
	ports := filepath.Join(t.TempDir(), "tty*") // no board: without the check the line would fail for want of ports
	_, _, err := run(t, "--ledger", ledgerPath, "batch", "--platform", "aliyun", "--product", "a1X509Prod", "--format", "aliyun-at",
		"--hw-id-from", "scan", "--scanner", "sim", "--ports", ports, "--once")
	if err == nil || !strings.Contains(err.Error(), "IDMAU") || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("batch: %v, want a refusal naming the IDMAU firmware", err)
	}
	if got := exitCode(err); got != exitUsage {
		t.Errorf("exit %d, want %d (usage)", got, exitUsage)
	}
	out, _, err := run(t, "--json", "--ledger", ledgerPath, "ledger", "status")
	if err != nil || strings.Contains(out, `"reserved":1`) || strings.Contains(out, "adev1") {
		t.Errorf("status after the refusal: %v\n%s", err, out)
	}
}

// A certificate product burned onto Wi-Fi modules with Tencent's AT
// firmware (the ESP8266's QCloud_AT has no certificate command): each board
// is refused before a credential is claimed for it, with the reason and
// the fix, and the boards hold nothing.
func TestLineRefusesCertOnWiFiModule(t *testing.T) {
	_, endpoint := startCertCloud(t)
	ledgerPath := createCerts(t, endpoint, "tencent", "CERTPROD01", "wdev1", "wdev2")
	dir := t.TempDir()
	farm, err := sim.Start(sim.Options{Dir: filepath.Join(dir, "boards"), Kind: "tencent-at", Count: 2, Baud: sim.Unpaced})
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	out, errOut, err := run(t, "--ledger", ledgerPath, "batch", "--platform", "tencent", "--product", "CERTPROD01", "--format", "tencent-at",
		"--ports", filepath.Join(dir, "boards", "tty*"), "--once")
	if got := exitCode(err); got != exitBoardsFailed {
		t.Fatalf("batch: exit %d (%v), want %d (boards failed)\n%s%s", got, err, exitBoardsFailed, out, errOut)
	}
	if all := out + errOut; !strings.Contains(all, "ESP8266") || !strings.Contains(all, "cellular module") {
		t.Errorf("the refusal does not say why and what to do:\n%s", all)
	}
	for _, b := range farm.Boards() {
		if fl := b.Flash(); fl != (sim.Flash{}) {
			t.Errorf("board %s holds %+v", b.Path(), fl)
		}
	}
	js, _, err := run(t, "--json", "--ledger", ledgerPath, "ledger", "status")
	if err != nil || !strings.Contains(js, `"free":2`) {
		t.Errorf("status after the refusals (want both devices free): %v\n%s", err, js)
	}
}

// image --format tencent-json of a certificate product writes the SDK's
// certificate form and the two files, 0600; tencent-at writes the AT
// firmware's certificate sequence, 0600 (it holds the key); a key-only
// format (a user template) is refused and exports nothing.
func TestImageCertFiles(t *testing.T) {
	emu, endpoint := startCertCloud(t)
	ledgerPath := createCerts(t, endpoint, "tencent", "CERTPROD01", "tdev1")
	out := t.TempDir()
	tmpl := filepath.Join(t.TempDir(), "key.tmpl")
	if err := os.WriteFile(tmpl, []byte("{{.DeviceName}} {{.DeviceSecret}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(t, "--ledger", ledgerPath, "image", "--format", "template:"+tmpl, "--platform", "tencent", "--product", "CERTPROD01", "--out", out)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("image --format template: %v, want a refusal", err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("the refused export wrote %d file(s)", len(entries))
	}
	atOut := t.TempDir()
	if _, _, err := run(t, "--ledger", ledgerPath, "image", "--format", "tencent-at", "--platform", "tencent", "--product", "CERTPROD01", "--out", atOut); err != nil {
		t.Fatalf("image --format tencent-at: %v", err)
	}
	script, err := os.ReadFile(filepath.Join(atOut, "tdev1.at"))
	if fi, serr := os.Stat(filepath.Join(atOut, "tdev1.at")); err != nil || serr != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("tdev1.at: %v %v", err, serr)
	}
	if !strings.HasPrefix(string(script), `AT+TCCERTADD="tdev1.crt",`) || !strings.HasSuffix(string(script), `AT+TCDEVINFOSET=2,"CERTPROD01","tdev1","tdev1.crt"`+"\r\n") {
		t.Errorf("tdev1.at is not the certificate sequence:\n%.80s…", script)
	}
	if _, _, err := run(t, "--ledger", ledgerPath, "image", "--exported", "--format", "tencent-json", "--platform", "tencent", "--product", "CERTPROD01", "--out", out); err != nil {
		t.Fatalf("image --format tencent-json: %v", err)
	}
	issued, _ := emu.TencentDeviceCert("CERTPROD01", "tdev1")
	cert, err := os.ReadFile(filepath.Join(out, "certs", "tdev1_cert.crt"))
	if err != nil || string(cert) != issued {
		t.Fatalf("certs/tdev1_cert.crt: %v", err)
	}
	key, err := os.ReadFile(filepath.Join(out, "certs", "tdev1_private.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		t.Errorf("the key file is not the certificate's: %v", err)
	}
	for _, name := range []string{"tdev1.json", "certs/tdev1_cert.crt", "certs/tdev1_private.key"} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want 0600", name, fi.Mode(), err)
		}
	}
	js, _ := os.ReadFile(filepath.Join(out, "tdev1.json"))
	if !strings.Contains(string(js), `"auth_mode": "CERT"`) || !strings.Contains(string(js), `"devPrivateKeyFile": "tdev1_private.key"`) {
		t.Errorf("tdev1.json:\n%s", js)
	}
}

// Everything a certificate run produces, read back whole: stdout and
// stderr of every command (text and --json), the -v log file, the audit
// workbook's XML, and the argv given: none holds a line of any device's
// private key.
func TestCertRunLeaksNoKey(t *testing.T) {
	emu, endpoint := startCertCloud(t)
	broker, err := emu.StartMQTTS("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, kind, prefix string }{
		{"esp32", "esp32", "kdev"},
		// Tencent's AT firmware on a cellular module: AT+TCCERTADD.
		{"tencent-at", "tencent-at-cellular", "cdev"},
	} {
		t.Run(tc.name, func(t *testing.T) { certRunLeaksNoKey(t, emu, endpoint, broker, tc.kind, tc.prefix) })
	}
}

func certRunLeaksNoKey(t *testing.T, emu *emulator.Emulator, endpoint, broker, kind, prefix string) {
	caPEM, err := emu.CACertPEM()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := writeFile(t, dir, "ca.pem", string(caPEM))
	ledgerPath := filepath.Join(dir, "l.db")
	logPath := filepath.Join(dir, "wire.log")
	names := writeFile(t, dir, "n.txt", prefix+"1\n"+prefix+"2\n")
	farm, err := sim.Start(sim.Options{Dir: filepath.Join(dir, "boards"), Kind: kind, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	ports := filepath.Join(dir, "boards", "tty*")
	pf := []string{"--platform", "tencent", "--product", "CERTPROD01"}
	esp := []string{"--ports", ports, "--format", "nvs", "--flash-offset", "0x9000", "--partition-size", "0x3000", "--baud", "921600"}
	if kind != "esp32" {
		esp = []string{"--ports", ports, "--format", "tencent-at"}
	}
	var runs [][]string
	for _, json := range []bool{false, true} {
		g := []string{"--ledger", ledgerPath, "-v", "--log", logPath}
		if json {
			g = append(g, "--json")
		}
		runs = append(runs,
			append(append(append([]string{}, g...), "create", "--names", names, "--endpoint", endpoint), pf...),
			append(append(append(append([]string{}, g...), "batch", "--once"), pf...), esp...),
			append(append(append(append([]string{}, g...), "verify", "--mqtt", "--mqtts-broker", broker, "--broker-ca", ca, "--cloud", "--endpoint", endpoint), pf...), esp...),
			append(append(append([]string{}, g...), "ledger", "export"), pf...),
			append(append([]string{}, g...), "ledger", "status"),
			append(append([]string{}, g...), "audit", "--out", filepath.Join(dir, fmt.Sprintf("audit-%v.xlsx", json))),
		)
	}
	var produced strings.Builder
	for _, args := range runs {
		out, errOut, err := run(t, args...)
		if err != nil {
			t.Fatalf("%s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		produced.WriteString(strings.Join(args, " ") + "\n" + out + errOut)
	}
	if !strings.Contains(produced.String(), prefix+"2") {
		t.Fatalf("the runs say nothing of %s2: the test would prove nothing", prefix)
	}
	log, err := os.ReadFile(logPath)
	if err != nil || len(log) == 0 {
		t.Fatalf("the -v log is empty (%v): the test would prove nothing", err)
	}
	produced.Write(log)
	for _, js := range []bool{false, true} {
		zr, err := zip.OpenReader(filepath.Join(dir, fmt.Sprintf("audit-%v.xlsx", js)))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			produced.Write(b)
		}
		zr.Close()
	}
	// The boards were burned: their flash holds the key (as it must).
	l, err := ledger.Open(ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	all := produced.String()
	if c, err := l.Counts("tencent", "CERTPROD01"); err != nil || c.ByState[ledger.Verified] != 2 {
		t.Fatalf("counts %+v %v: want both boards verified", c, err)
	}
	for _, name := range []string{prefix + "1", prefix + "2"} {
		c, err := l.Credential("tencent", "CERTPROD01", name)
		if err != nil || c.DevicePrivateKey == "" {
			t.Fatalf("%s: %v", name, err)
		}
		body := pemBody(c.DevicePrivateKey)
		if len(body) < 10 {
			t.Fatalf("%s: the key has %d body lines", name, len(body))
		}
		for _, line := range body {
			if strings.Contains(all, line) {
				t.Fatalf("%s: a line of its private key is in what the run produced", name)
			}
		}
	}
}
