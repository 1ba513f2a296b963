package at_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotburn/iotburn/burner/at"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/registry"
)

func TestBCC(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{secret, 1}, // reference/tencent.md §6
		{"", 0},
		{"A", 65},
		{"AA", 0},
		{"ZHNkIGRzZCA=", at.BCC("ZHNkIGRzZCA=")},
	} {
		if got := at.BCC(tc.in); got != tc.want {
			t.Errorf("BCC(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestHelloIdentify(t *testing.T) {
	f := farm(t, 2, 921600)
	for _, b := range f.Boards() {
		d := open(t, b, 921600)
		if err := d.Hello(ctx(t)); err != nil {
			t.Fatal(err)
		}
		id, err := d.Identify(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if id.MAC != b.MAC() || id.IMEI != b.IMEI() {
			t.Errorf("%s: identity %+v, board has MAC %s IMEI %s", b.Path(), id, b.MAC(), b.IMEI())
		}
		if id.HardwareID() != b.MAC() || id.Firmware != "QCloud_AT_ESP8266_v2.1.0" || id.Module == "" {
			t.Errorf("%s: identity %+v, hardware id %q", b.Path(), id, id.HardwareID())
		}
	}
}

func TestHardwareID(t *testing.T) {
	for _, tc := range []struct {
		id   at.Identity
		want string
	}{
		{at.Identity{MAC: "AA:BB:CC:DD:EE:FF", IMEI: "1"}, "aa:bb:cc:dd:ee:ff"},
		{at.Identity{IMEI: "860000000000001"}, "imei:860000000000001"},
		{at.Identity{}, ""},
	} {
		if got := tc.id.HardwareID(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.id, got, tc.want)
		}
	}
}

// TestBurnVerify is the line's happy path on a paced board: write the
// credential, read it back, and check the flash file holds exactly the secret.
func TestBurnVerify(t *testing.T) {
	f := farm(t, 1, 0) // 115200, paced
	b := f.Boards()[0]
	d := open(t, b, 115200)
	if err := d.Hello(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if info, err := d.TencentDevInfo(ctx(t)); err != nil || info != (at.DevInfo{}) {
		t.Fatalf("fresh board: %+v, %v; want zero DevInfo", info, err)
	}
	script := "# tencent-at image\r\n\r\n" + credLine + "\r\n"
	if err := d.RunScript(ctx(t), []byte(script)); err != nil {
		t.Fatal(err)
	}
	info, err := d.TencentDevInfo(ctx(t))
	want := at.DevInfo{TLSMode: 1, ProductID: "ABCDEFGHIJ", DeviceName: "dev001", SecretBCC: 1, Region: "ap-guangzhou"}
	if err != nil || info != want {
		t.Fatalf("read back %+v, %v; want %+v", info, err, want)
	}
	cred := registry.Credential{Platform: "tencent", ProductID: "ABCDEFGHIJ", DeviceName: "dev001", DeviceSecret: secret, Region: "ap-guangzhou"}
	if err := d.VerifyTencent(ctx(t), cred); err != nil {
		t.Fatal(err)
	}

	// The board's own file, read as raw JSON, not through the simulator.
	path := filepath.Join(f.Dir(), "board-00.json")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("flash file: %v, mode %v; want 0600", err, fi.Mode())
	}
	raw, _ := os.ReadFile(path)
	var file struct {
		Tencent struct {
			Dev struct {
				DeviceSecret string `json:"device_secret"`
			} `json:"dev"`
		} `json:"tencent"`
	}
	if err := json.Unmarshal(raw, &file); err != nil || file.Tencent.Dev.DeviceSecret != secret {
		t.Fatalf("flash file holds secret %q (%v), want %q", file.Tencent.Dev.DeviceSecret, err, secret)
	}
	if fl, err := sim.LoadFlash(f.Dir()); err != nil || fl[b.Path()].DeviceSecret != secret {
		t.Fatalf("LoadFlash: %+v, %v", fl, err)
	}

	if err := d.Restore(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if info, err := d.TencentDevInfo(ctx(t)); err != nil || info != (at.DevInfo{}) {
		t.Fatalf("after restore: %+v, %v; want zero", info, err)
	}
}

func TestVerifyMismatch(t *testing.T) {
	f := farm(t, 1, sim.Unpaced)
	d := open(t, f.Boards()[0], 0)
	if err := d.Hello(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := d.VerifyTencent(ctx(t), registry.Credential{ProductID: "ABCDEFGHIJ", DeviceName: "dev001", DeviceSecret: secret}); !errors.Is(err, at.ErrMismatch) {
		t.Fatalf("empty board verified: %v", err)
	}
	if err := d.RunScript(ctx(t), []byte(credLine+"\n")); err != nil {
		t.Fatal(err)
	}
	good := registry.Credential{ProductID: "ABCDEFGHIJ", DeviceName: "dev001", DeviceSecret: secret}
	for _, tc := range []struct {
		field  string
		change func(*registry.Credential)
	}{
		{"product id", func(c *registry.Credential) { c.ProductID = "ZZZZZZZZZZ" }},
		{"device name", func(c *registry.Credential) { c.DeviceName = "dev002" }},
		{"device secret", func(c *registry.Credential) { c.DeviceSecret = "another-secret-value" }},
		{"region", func(c *registry.Credential) { c.Region = "ap-shanghai" }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			want := good
			tc.change(&want)
			err := d.VerifyTencent(ctx(t), want)
			if !errors.Is(err, at.ErrMismatch) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("got %v, want a mismatch naming %q", err, tc.field)
			}
			for _, s := range []string{secret, want.DeviceSecret} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error shows a secret: %v", err)
				}
			}
		})
	}
}

// TestRefused: the board's ERROR comes back with the command's name only.
func TestRefused(t *testing.T) {
	f := farm(t, 1, sim.Unpaced)
	d := open(t, f.Boards()[0], 0)
	if err := d.Hello(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, line, want string
	}{
		{"unknown", "AT+NOSUCH=1", "AT+NOSUCH"},
		{"secret too long", `AT+TCDEVINFOSET=1,"ABCDEFGHIJ","dev001","` + strings.Repeat("S", 45) + `"`, "AT+TCDEVINFOSET"},
		{"product id too long", `AT+TCDEVINFOSET=1,"ABCDEFGHIJK","dev001","sekrit-value"`, "AT+TCDEVINFOSET"},
		{"tls mode", `AT+TCDEVINFOSET=3,"ABCDEFGHIJ","dev001","sekrit-value"`, "AT+TCDEVINFOSET"},
		{"unterminated quote", `AT+TCDEVINFOSET=1,"ABCDEFGHIJ","dev001","sekrit-value`, "AT+TCDEVINFOSET"},
		{"over 256 bytes", "AT+TCDEVINFOSET=1," + strings.Repeat(`"sekrit-value",`, 20) + `"x"`, "AT+TCDEVINFOSET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := d.RunScript(ctx(t), []byte(tc.line))
			if !errors.Is(err, at.ErrRefused) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "ERROR") {
				t.Fatalf("got %v, want a refusal naming %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "sekrit") || strings.Contains(err.Error(), `"`+"ABCDEFGHIJ") {
				t.Fatalf("error quotes the line: %v", err)
			}
		})
	}
	if fl := f.Boards()[0].Flash(); fl != (sim.Flash{}) {
		t.Fatalf("refused writes stored %+v", fl)
	}
}
