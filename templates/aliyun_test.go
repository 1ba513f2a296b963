package templates

import (
	"strings"
	"testing"

	"github.com/iotburn/iotburn/registry"
)

// The iotkit-embedded example triple (src/dev_sign/examples/dev_sign_example.c,
// shared/reference/aliyun.md §4), written out by hand in the firmware's
// command form (§5) and in the JSON form.
var iotkitTriple = registry.Credential{Platform: "aliyun", ProductID: "a1X2bEnP82z", DeviceName: "example1",
	DeviceSecret: "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe", Region: "cn-shanghai"}

func TestAliyunFormats(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name    string
		format  Format
		cred    registry.Credential
		want    string
		wantErr string
	}{
		{name: "at: iotkit example", format: AliyunAT{}, cred: iotkitTriple,
			want: "AT+IDMAU=\"a1X2bEnP82z\",\"example1\",\"ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe\",\"\"\r\n"},
		{name: "at: every name character", format: AliyunAT{},
			cred: registry.Credential{ProductID: "a1Aeb21CMq5", DeviceName: "sn-01_a@b.c:d", DeviceSecret: "34nReP7DWHw8wNLHhNXxOnu3o5U8GXif"},
			want: "AT+IDMAU=\"a1Aeb21CMq5\",\"sn-01_a@b.c:d\",\"34nReP7DWHw8wNLHhNXxOnu3o5U8GXif\",\"\"\r\n"},
		{name: "json: iotkit example", format: AliyunJSON{}, cred: iotkitTriple,
			want: "{\n    \"ProductKey\": \"a1X2bEnP82z\",\n    \"DeviceName\": \"example1\",\n    \"DeviceSecret\": \"ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe\"\n}\n"},
		{name: "at: product key too long", format: AliyunAT{}, cred: registry.Credential{ProductID: long(21), DeviceName: "abcd", DeviceSecret: "s3cr3t"}, wantErr: "product key is 21 characters"},
		{name: "at: name too long", format: AliyunAT{}, cred: registry.Credential{ProductID: "pk", DeviceName: long(33), DeviceSecret: "s3cr3t"}, wantErr: "device name is 33"},
		{name: "at: secret too long", format: AliyunAT{}, cred: registry.Credential{ProductID: "pk", DeviceName: "abcd", DeviceSecret: long(65)}, wantErr: "device secret of abcd"},
		{name: "at: quote in secret", format: AliyunAT{}, cred: registry.Credential{ProductID: "pk", DeviceName: "abcd", DeviceSecret: `ab"cd`}, wantErr: "device secret of abcd"},
		{name: "at: comma in name", format: AliyunAT{}, cred: registry.Credential{ProductID: "pk", DeviceName: "ab,cd", DeviceSecret: "s3cr3t"}, wantErr: "device name holds ','"},
		{name: "json: no secret", format: AliyunJSON{}, cred: registry.Credential{ProductID: "pk", DeviceName: "abcd"}, wantErr: "device secret"},
		{name: "json: no product", format: AliyunJSON{}, cred: registry.Credential{DeviceName: "abcd", DeviceSecret: "s3cr3t"}, wantErr: "product key is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.format.Render(tt.cred)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if len(tt.cred.DeviceSecret) > 3 && strings.Contains(err.Error(), tt.cred.DeviceSecret) {
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
	for _, name := range []string{"aliyun-at", "aliyun-json"} {
		f, err := Lookup(name)
		if err != nil || f.Name() != name {
			t.Fatalf("Lookup(%s): %v", name, err)
		}
	}
	if (AliyunAT{}).Ext() != ".at" || (AliyunJSON{}).Ext() != ".json" {
		t.Fatal("extensions")
	}
}
