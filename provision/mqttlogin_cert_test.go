package provision

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/aliyun"
	"github.com/iotburn/iotburn/registry/emulator"
	"github.com/iotburn/iotburn/registry/tencent"
)

// certCreds creates n certificate devices on each platform through the
// clients and returns them as credentials, with the emulator's TLS broker
// and the CA as a device would get it (<state>/ca.pem).
func certCreds(t *testing.T, n int) (map[string][]registry.Credential, string, []byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	tid, tkey := emulator.NewKeyPair()
	aid, akey := emulator.NewAliyunKeyPair()
	emu, err := emulator.New(emulator.Config{StateDir: dir, SecretID: tid, SecretKey: tkey, AliyunAccessKeyID: aid, AliyunAccessKeySecret: akey,
		CertProducts: []string{"CERTPROD01"}, AliyunCertProducts: []string{"a1X509Prod"}, TaskDelay: -1, CertDelay: -1, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(func() { srv.Close(); emu.Close() })
	broker, err := emu.StartMQTTS("")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tencent.New(tencent.Config{SecretID: tid, SecretKey: tkey, Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ac, err := aliyun.New(aliyun.Config{AccessKeyID: aid, AccessKeySecret: akey, Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]registry.Credential{}
	ctx := context.Background()
	for _, p := range []struct {
		c       registry.Platform
		product string
		names   []string
	}{{tc, "CERTPROD01", []string{"pc1", "pc2"}}, {ac, "a1X509Prod", []string{"apc1", "apc2"}}} {
		task, err := p.c.StartBatch(ctx, p.product, p.names[:n])
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if ok, err := p.c.BatchDone(ctx, p.product, task); err != nil {
				t.Fatal(err)
			} else if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("batch never finished")
			}
		}
		res, err := p.c.BatchResults(ctx, p.product, task)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			out[p.c.Name()] = append(out[p.c.Name()], registry.Credential{Platform: p.c.Name(), ProductID: p.product, DeviceName: r.DeviceName,
				DeviceCert: r.DeviceCert, DevicePrivateKey: r.DevicePrivateKey})
		}
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return out, broker, caPEM
}

// MQTTCertLogin logs a certificate credential in over mutual TLS; a
// credential holding another device's certificate is refused
// (ErrLoginRefused), a broker whose certificate is not trusted is not a
// refusal of the board (registry.ErrUnreachable), and neither the key nor
// the certificate is ever in an error.
func TestMQTTCertLogin(t *testing.T) {
	creds, broker, caPEM := certCreds(t, 2)
	login := MQTTCertLogin(broker, WithBrokerCA(caPEM))
	swap := func(c registry.Credential, other registry.Credential) registry.Credential {
		c.DeviceCert, c.DevicePrivateKey = other.DeviceCert, other.DevicePrivateKey
		return c
	}
	for _, platform := range []string{registry.Tencent, registry.Aliyun} {
		a, b := creds[platform][0], creds[platform][1]
		tests := []struct {
			name  string
			login func(context.Context, registry.Credential) error
			cred  registry.Credential
			is    error // nil = logged in
			isnt  error
		}{
			{"own certificate", login, a, nil, nil},
			{"another device's certificate", login, swap(a, b), ErrLoginRefused, registry.ErrUnreachable},
			{"broker CA not given", MQTTCertLogin(broker), a, registry.ErrUnreachable, ErrLoginRefused},
		}
		for _, tt := range tests {
			t.Run(platform+" "+tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				err := tt.login(ctx, tt.cred)
				if tt.is == nil {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				if !errors.Is(err, tt.is) || errors.Is(err, tt.isnt) {
					t.Fatalf("%v: want %v and not %v", err, tt.is, tt.isnt)
				}
				if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "BEGIN CERTIFICATE") {
					t.Fatal("the error shows key or certificate material")
				}
			})
		}
	}

	bad := []struct {
		name string
		cred registry.Credential
	}{
		{"no certificate", registry.Credential{Platform: registry.Tencent, ProductID: "CERTPROD01", DeviceName: "pc1", DeviceSecret: "a2V5"}},
		{"key of another device", func() registry.Credential {
			c := creds[registry.Tencent][0]
			c.DevicePrivateKey = creds[registry.Tencent][1].DevicePrivateKey
			return c
		}()},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := login(context.Background(), tt.cred)
			if err == nil || errors.Is(err, ErrLoginRefused) || errors.Is(err, registry.ErrUnreachable) {
				t.Fatalf("%v: a credential unfit for a certificate login is neither refused by the broker nor unreachable", err)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatal("the error shows key material")
			}
		})
	}
}
