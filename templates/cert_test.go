package templates

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotburn/iotburn/registry"
)

func certDevice() registry.Credential {
	return registry.Credential{Platform: "tencent", ProductID: "CERTPROD01", DeviceName: "dev0001", Region: "ap-guangzhou",
		DeviceCert:       "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n",
		DevicePrivateKey: "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"}
}

// tencent-json writes the SDK's certificate form (device_info.json with
// auth_mode CERT and cert_deviceinfo, qcloud-iot-sdk-embedded-c
// device_info.json and HAL_Device_linux.c) and the two files it names,
// under certs/ where the SDK's samples open them.
func TestTencentJSONCert(t *testing.T) {
	c := certDevice()
	files, err := Files(TencentJSON{}, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 || files[0].Name != "dev0001.json" || files[1].Name != "certs/dev0001_cert.crt" || files[2].Name != "certs/dev0001_private.key" {
		t.Fatalf("files: %v", names(files))
	}
	if string(files[1].Data) != c.DeviceCert || string(files[2].Data) != c.DevicePrivateKey {
		t.Error("the certificate or key file does not hold the credential's")
	}
	var info map[string]any
	if err := json.Unmarshal(files[0].Data, &info); err != nil {
		t.Fatal(err)
	}
	cd, _ := info["cert_deviceinfo"].(map[string]any)
	if info["auth_mode"] != "CERT" || info["productId"] != "CERTPROD01" || info["deviceName"] != "dev0001" ||
		cd["devCertFile"] != "dev0001_cert.crt" || cd["devPrivateKeyFile"] != "dev0001_private.key" {
		t.Errorf("device_info.json: %s", files[0].Data)
	}
	if _, ok := info["key_deviceinfo"]; ok || strings.Contains(string(files[0].Data), "PRIVATE") {
		t.Errorf("device_info.json of a certificate device holds a key form or the key: %s", files[0].Data)
	}
	// A key device keeps its one file and its key form.
	key := registry.Credential{Platform: "tencent", ProductID: "ABCDEFGHIJ", DeviceName: "dev0002", DeviceSecret: "c2VjcmV0"}
	files, err = Files(TencentJSON{}, key)
	if err != nil || len(files) != 1 || !strings.Contains(string(files[0].Data), `"deviceSecret": "c2VjcmV0"`) {
		t.Fatalf("key device: %v %v", names(files), err)
	}
	if strings.Contains(string(files[0].Data), "cert_deviceinfo") {
		t.Errorf("a key device's file has a certificate form: %s", files[0].Data)
	}
}

// The formats with no place for a certificate refuse a certificate
// device, whatever else it holds, and say so by type.
func TestKeyOnlyFormatsRefuseCert(t *testing.T) {
	c := certDevice()
	path := filepath.Join(t.TempDir(), "dev.txt.tmpl")
	if err := os.WriteFile(path, []byte("{{.DeviceName}} {{.DeviceSecret}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := LoadUserTemplate(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []Format{AliyunAT{}, AliyunJSON{}, u} {
		if CarriesCert(f) {
			t.Errorf("%s says it carries certificates", f.Name())
		}
		if img, err := f.Render(c); !errors.Is(err, ErrNoCertForm) || img != nil {
			t.Errorf("%s: %v", f.Name(), err)
		}
	}
	for _, f := range []Format{TencentJSON{}, TencentAT{}} {
		if !CarriesCert(f) {
			t.Errorf("%s does not say it carries certificates", f.Name())
		}
	}
}

// tencent-at writes the certificate sequence of the command set V3.1.3
// §7.2, each file's bytes after its AT+TCCERTADD line; written out here by
// hand from the document (each PEM above is 28+5+26 = 59 bytes).
func TestTencentATCert(t *testing.T) {
	c := certDevice()
	img, err := TencentAT{}.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	want := "AT+TCCERTADD=\"dev0001.crt\",59\r\n" + c.DeviceCert + "\r\n" +
		"AT+TCCERTADD=\"dev0001.key\",59\r\n" + c.DevicePrivateKey + "\r\n" +
		`AT+TCDEVINFOSET=2,"CERTPROD01","dev0001","dev0001.crt"` + "\r\n"
	if string(img) != want {
		t.Fatalf("image\n%q\nwant\n%q", img, want)
	}
	for name, tc := range map[string]struct {
		change func(*registry.Credential)
		want   string
	}{
		"certificate over 4096 bytes": {func(c *registry.Credential) { c.DeviceCert = strings.Repeat("x", 4097) }, "certificate is 4097 bytes"},
		"no key":                      {func(c *registry.Credential) { c.DevicePrivateKey = "" }, "private key is 0 bytes"},
		"long product id":             {func(c *registry.Credential) { c.ProductID = "CERTPROD012" }, "product id is 11 characters"},
		"long device name":            {func(c *registry.Credential) { c.DeviceName = strings.Repeat("n", 49) }, "device name is 49 characters"},
	} {
		c := certDevice()
		tc.change(&c)
		img, err := TencentAT{}.Render(c)
		if err == nil || img != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: the error holds the key", name)
		}
	}
}

func names(files []File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Name)
	}
	return out
}
