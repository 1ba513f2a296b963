package cmd

import (
	"bufio"
	"crypto/tls"
	"encoding/csv"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/registry/emulator"
)

// startCertCloud serves the emulator with a certificate product on each
// platform (Tencent CERTPROD01, Aliyun a1X509Prod), keys in the
// environment as startCloud puts them.
func startCertCloud(t *testing.T) (*emulator.Emulator, string) {
	t.Helper()
	cfg := emulator.Config{StateDir: t.TempDir(), CertProducts: []string{"CERTPROD01"}, AliyunCertProducts: []string{"a1X509Prod"},
		TaskDelay: 10 * time.Millisecond, CertDelay: -1, RateLimit: -1}
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
