package emulator

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"
)

// BenchmarkIssueDeviceCert: what the emulator spends on each certificate
// device, per vendor profile: the RSA-2048 key and the CA's signature
// ("issue"), and the signature alone ("sign"). The key is almost all of it.
//
//	go test ./registry/emulator -run XXX -bench IssueDeviceCert -benchtime 50x
func BenchmarkIssueDeviceCert(b *testing.B) {
	ca, _, err := newCA(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	for _, vendor := range []string{"tencent", "aliyun"} {
		b.Run(vendor+"/issue", func(b *testing.B) {
			for range b.N {
				if _, err := ca.issueDevice(vendor, "CERTPROD01", "bench", time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	key, err := rsa.GenerateKey(rand.Reader, deviceKeyBits)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("sign", func(b *testing.B) {
		for range b.N {
			tmpl := tencentDeviceTemplate("CERTPROD01", "bench", time.Now())
			if _, err := x509CreateForBench(tmpl, ca, key); err != nil {
				b.Fatal(err)
			}
		}
	})
}
