package templates

import (
	"strings"
	"testing"

	"github.com/iotburn/iotburn/registry"
)

// Product-level credentials: a ProductSecret and the board's own name, no
// DeviceSecret. Expected images are written out by hand from the reference's
// command forms (tencent.md §5, §6; aliyun.md §5).
func TestProductLevelFormats(t *testing.T) {
	const ps = "8XzjN8rfgFVGDTNTUGau4snA" // tencent.md §3.1's ProductSecret
	tc := registry.Credential{Platform: "tencent", ProductID: "S3EUVBRJLB", DeviceName: "device_1234", ProductSecret: ps}
	tcRegion := tc
	tcRegion.Region = "ap-guangzhou"
	ali := registry.Credential{Platform: "aliyun", ProductID: "a1X2bEnP82z", DeviceName: "example1", ProductSecret: "7jluWm1zql7bt8qK"}
	both := ali
	both.DeviceSecret = "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe"
	long := func(n int) string { return strings.Repeat("p", n) }
	with := func(c registry.Credential, f func(*registry.Credential)) registry.Credential { f(&c); return c }

	tests := []struct {
		name    string
		format  Format
		cred    registry.Credential
		want    string
		wantErr string
	}{
		{name: "tencent-at: doc example form", format: TencentAT{},
			cred: registry.Credential{ProductID: "CTQS08Y5LG", DeviceName: "Dev01", ProductSecret: "ZHNkIGRzZCA="},
			want: "AT+TCPRDINFOSET=1,\"CTQS08Y5LG\",\"ZHNkIGRzZCA=\",\"Dev01\"\r\n"},
		{name: "tencent-at: region", format: TencentAT{}, cred: tcRegion,
			want: "AT+TCPRDINFOSET=1,\"S3EUVBRJLB\",\"8XzjN8rfgFVGDTNTUGau4snA\",\"device_1234\",\"ap-guangzhou\"\r\n"},
		{name: "tencent-at: escapes", format: TencentAT{},
			cred: registry.Credential{ProductID: "P", DeviceName: `a,b`, ProductSecret: `s"\`},
			want: "AT+TCPRDINFOSET=1,\"P\",\"s\\\"\\\\\",\"a\\,b\"\r\n"},
		{name: "tencent-at: product secret 32 is fine", format: TencentAT{}, cred: with(tc, func(c *registry.Credential) { c.ProductSecret = long(32) }),
			want: "AT+TCPRDINFOSET=1,\"S3EUVBRJLB\",\"" + long(32) + "\",\"device_1234\"\r\n"},
		{name: "tencent-at: product secret 33 is not", format: TencentAT{}, cred: with(tc, func(c *registry.Credential) { c.ProductSecret = long(33) }),
			wantErr: "product secret is 33 characters, the AT firmware takes at most 32"},
		{name: "tencent-at: no name", format: TencentAT{}, cred: with(tc, func(c *registry.Credential) { c.DeviceName = "" }),
			wantErr: "device name is empty"},
		{name: "tencent-at: device secret wins", format: TencentAT{}, cred: with(tc, func(c *registry.Credential) { c.DeviceSecret = "ZHNkIGRzZCA=" }),
			want: "AT+TCDEVINFOSET=1,\"S3EUVBRJLB\",\"device_1234\",\"ZHNkIGRzZCA=\"\r\n"},

		{name: "tencent-json: sentinel", format: TencentJSON{}, cred: tcRegion, want: `{
    "auth_mode": "KEY",
    "productId": "S3EUVBRJLB",
    "productSecret": "8XzjN8rfgFVGDTNTUGau4snA",
    "deviceName": "device_1234",
    "key_deviceinfo": {
        "deviceSecret": "YOUR_IOT_PSK"
    },
    "region": "ap-guangzhou"
}
`},
		{name: "tencent-json: device-level keeps the placeholder", format: TencentJSON{},
			cred: registry.Credential{ProductID: "S3EUVBRJLB", DeviceName: "d1", DeviceSecret: "ZHNkIGRzZCA="}, want: `{
    "auth_mode": "KEY",
    "productId": "S3EUVBRJLB",
    "productSecret": "YOUR_PRODUCT_SECRET",
    "deviceName": "d1",
    "key_deviceinfo": {
        "deviceSecret": "ZHNkIGRzZCA="
    }
}
`},
		{name: "tencent-json: product secret too long", format: TencentJSON{}, cred: with(tc, func(c *registry.Credential) { c.ProductSecret = long(33) }),
			wantErr: "at most 32"},

		{name: "aliyun-at: one-type-one-secret", format: AliyunAT{}, cred: ali,
			want: "AT+IDMAU=\"a1X2bEnP82z\",\"example1\",\"\",\"7jluWm1zql7bt8qK\"\r\n"},
		{name: "aliyun-at: both secrets", format: AliyunAT{}, cred: both,
			want: "AT+IDMAU=\"a1X2bEnP82z\",\"example1\",\"ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe\",\"7jluWm1zql7bt8qK\"\r\n"},
		{name: "aliyun-at: product secret 65", format: AliyunAT{}, cred: with(ali, func(c *registry.Credential) { c.ProductSecret = long(65) }),
			wantErr: "product secret for example1 is unusable"},
		{name: "aliyun-at: comma in product secret", format: AliyunAT{}, cred: with(ali, func(c *registry.Credential) { c.ProductSecret = "ab,cdef" }),
			wantErr: "product secret for example1 is unusable"},
		{name: "aliyun-json: product secret, no device secret", format: AliyunJSON{}, cred: ali, want: `{
    "ProductKey": "a1X2bEnP82z",
    "DeviceName": "example1",
    "ProductSecret": "7jluWm1zql7bt8qK"
}
`},
		{name: "aliyun-json: both", format: AliyunJSON{}, cred: both, want: `{
    "ProductKey": "a1X2bEnP82z",
    "DeviceName": "example1",
    "DeviceSecret": "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe",
    "ProductSecret": "7jluWm1zql7bt8qK"
}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.format.Render(tt.cred)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				for _, s := range []string{tt.cred.ProductSecret, tt.cred.DeviceSecret} {
					if len(s) >= 4 && strings.Contains(err.Error(), s) {
						t.Fatalf("error leaks a secret: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
