package templates

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotburn/iotburn/registry"
)

func TestTencentAT(t *testing.T) {
	tests := []struct {
		name    string
		cred    registry.Credential
		want    string
		wantErr string
	}{
		{
			// The firmware documentation's own example (espressif/esp-at,
			// Tencent_Cloud_IoT_AT_Command_Set.rst), see shared/reference/tencent.md §6.
			name: "doc example",
			cred: registry.Credential{ProductID: "CTQS08Y5LG", DeviceName: "Dev01", DeviceSecret: "ZHNkIGRzZCA="},
			want: "AT+TCDEVINFOSET=1,\"CTQS08Y5LG\",\"Dev01\",\"ZHNkIGRzZCA=\"\r\n",
		},
		{
			name: "with region",
			cred: registry.Credential{ProductID: "S3EUVBRJLB", DeviceName: "test_device", DeviceSecret: "7WmFA/MEs+Fy+32QwJWtYw==", Region: "ap-guangzhou"},
			want: "AT+TCDEVINFOSET=1,\"S3EUVBRJLB\",\"test_device\",\"7WmFA/MEs+Fy+32QwJWtYw==\",\"ap-guangzhou\"\r\n",
		},
		{
			name: "escapes",
			cred: registry.Credential{ProductID: "P", DeviceName: `a,b"c\d`, DeviceSecret: "s"},
			want: "AT+TCDEVINFOSET=1,\"P\",\"a\\,b\\\"c\\\\d\",\"s\"\r\n",
		},
		{name: "product id too long", cred: registry.Credential{ProductID: "ABCDEFGHIJK", DeviceName: "d", DeviceSecret: "c2VjcmV0LXNlY3JldA=="}, wantErr: "product id is 11 characters"},
		{name: "secret too long", cred: registry.Credential{ProductID: "P", DeviceName: "d", DeviceSecret: strings.Repeat("x", 45)}, wantErr: "at most 44"},
		{name: "no secret", cred: registry.Credential{ProductID: "P", DeviceName: "d"}, wantErr: "device secret is empty"},
		{name: "name too long", cred: registry.Credential{ProductID: "P", DeviceName: strings.Repeat("n", 49), DeviceSecret: "c2VjcmV0LXNlY3JldA=="}, wantErr: "device name is 49"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TencentAT{}.Render(tt.cred)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if tt.cred.DeviceSecret != "" && strings.Contains(err.Error(), tt.cred.DeviceSecret) {
					t.Fatalf("error leaks the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestTencentJSON(t *testing.T) {
	got, err := TencentJSON{}.Render(registry.Credential{ProductID: "S3EUVBRJLB", DeviceName: "device_1234", DeviceSecret: "7WmFA/MEs+Fy+32QwJWtYw=="})
	if err != nil {
		t.Fatal(err)
	}
	// Read it back the way the C SDK's HAL_Device_linux.c does: by these key paths.
	var doc map[string]any
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	checks := map[string]string{
		"auth_mode":  "KEY",
		"productId":  "S3EUVBRJLB",
		"deviceName": "device_1234",
	}
	for k, want := range checks {
		if doc[k] != want {
			t.Errorf("%s = %v, want %q", k, doc[k], want)
		}
	}
	key, _ := doc["key_deviceinfo"].(map[string]any)
	if key["deviceSecret"] != "7WmFA/MEs+Fy+32QwJWtYw==" {
		t.Errorf("key_deviceinfo.deviceSecret = %v", key["deviceSecret"])
	}
}

func TestUserTemplate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dev.cfg.tmpl")
	if err := os.WriteFile(path, []byte(`pid={{.ProductID}} name={{.DeviceName}} fp={{fingerprint .DeviceSecret}} at={{atq .DeviceName}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Lookup("template:" + path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Ext() != ".cfg" {
		t.Errorf("Ext = %q, want .cfg", f.Ext())
	}
	got, err := f.Render(registry.Credential{ProductID: "P1", DeviceName: "a,b", DeviceSecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	// sha256("secret") = 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b
	want := `pid=P1 name=a,b fp=2bb80d53 at="a\,b"`
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestUserTemplateErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.tmpl")
	os.WriteFile(bad, []byte("line1\n{{.ProductID"), 0o600)
	if _, err := Lookup("template:" + bad); err == nil || !strings.Contains(err.Error(), ":2:") {
		t.Errorf("parse error should carry the line number, got %v", err)
	}
	missing := filepath.Join(dir, "field.tmpl")
	os.WriteFile(missing, []byte("{{.NoSuchField}}"), 0o600)
	f, err := Lookup("template:" + missing)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Render(registry.Credential{DeviceName: "d"}); err == nil || !strings.Contains(err.Error(), "NoSuchField") {
		t.Errorf("unknown field should fail naming it, got %v", err)
	}
	if _, err := Lookup("template:" + filepath.Join(dir, "nope")); err == nil {
		t.Error("missing template file should fail")
	}
	if _, err := Lookup("tencent-xml"); err == nil || !strings.Contains(err.Error(), "tencent-at") {
		t.Errorf("unknown format should list the known ones, got %v", err)
	}
}
