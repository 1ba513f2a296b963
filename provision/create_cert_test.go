package provision

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/aliyun"
	"github.com/iotburn/iotburn/registry/emulator"
	"github.com/iotburn/iotburn/registry/tencent"
)

// certClouds starts the emulator with a certificate product on each
// platform and returns a client of each.
func certClouds(t *testing.T) (*emulator.Emulator, *tencent.Client, *aliyun.Client) {
	t.Helper()
	tid, tkey := emulator.NewKeyPair()
	aid, akey := emulator.NewAliyunKeyPair()
	emu, err := emulator.New(emulator.Config{StateDir: filepath.Join(t.TempDir(), "state"), SecretID: tid, SecretKey: tkey,
		AliyunAccessKeyID: aid, AliyunAccessKeySecret: akey,
		CertProducts: []string{"CERTPROD01"}, AliyunCertProducts: []string{"a1X509Prod"}, TaskDelay: -1, CertDelay: -1, RateLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(func() { srv.Close(); emu.Close() })
	tc, err := tencent.New(tencent.Config{SecretID: tid, SecretKey: tkey, Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ac, err := aliyun.New(aliyun.Config{AccessKeyID: aid, AccessKeySecret: akey, Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return emu, tc, ac
}

// checkCertStored: every name is in the ledger with the certificate the
// platform issued for it and a private key that belongs to that
// certificate, and no secret.
func checkCertStored(t *testing.T, emu *emulator.Emulator, l interface {
	Credential(platform, product, name string) (registry.Credential, error)
}, platform, product string, list []string) {
	t.Helper()
	for _, n := range list {
		c, err := l.Credential(platform, product, n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		var issued string
		var ok bool
		if platform == "tencent" {
			issued, ok = emu.TencentDeviceCert(product, n)
		} else {
			issued, _, ok = emu.AliyunDeviceCert(product, n)
		}
		if !ok || issued == "" || c.DeviceCert != issued {
			t.Errorf("%s: ledger certificate differs from the platform's (%v)", n, ok)
		}
		if _, err := tls.X509KeyPair([]byte(c.DeviceCert), []byte(c.DevicePrivateKey)); err != nil {
			t.Errorf("%s: the stored key is not the certificate's: %v", n, err)
		}
		if c.DeviceSecret != "" {
			t.Errorf("%s: a certificate device with a secret", n)
		}
	}
}

// create stores each certificate device's certificate and private key, on
// both platforms.
func TestCreateCertDevices(t *testing.T) {
	emu, tc, ac := certClouds(t)
	for _, p := range []struct {
		c       registry.Platform
		product string
	}{{tc, "CERTPROD01"}, {ac, "a1X509Prod"}} {
		t.Run(p.c.Name(), func(t *testing.T) {
			l := openLedger(t)
			list := names("cd", 3)
			res, err := Create(context.Background(), CreateOptions{Platform: p.c, Ledger: l, Product: p.product, Names: list})
			if err != nil || res.Created != 3 || len(res.Failed) != 0 {
				t.Fatalf("Create = %+v, %v", res, err)
			}
			checkCertStored(t, emu, l, p.c.Name(), p.product, list)
		})
	}
}

// A run killed while its create call was in flight: the certificate
// devices it made are found by lookup, each key fetched from the platform
// (Tencent: DescribeDeviceClientKey, which hands it out once; Aliyun:
// QueryDeviceCert).
func TestCreateHealsCertDevicesWithoutTask(t *testing.T) {
	emu, tc, ac := certClouds(t)
	ctx := context.Background()
	for _, p := range []struct {
		c       registry.Platform
		product string
	}{{tc, "CERTPROD01"}, {ac, "a1X509Prod"}} {
		t.Run(p.c.Name(), func(t *testing.T) {
			l := openLedger(t)
			list := names("hc", 4)
			if _, err := l.Journal(p.c.Name(), p.product, list); err != nil {
				t.Fatal(err)
			}
			task, err := p.c.StartBatch(ctx, p.product, list[:2])
			if err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if done, err := p.c.BatchDone(ctx, p.product, task); err != nil {
					t.Fatal(err)
				} else if done {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the lost task never finished")
				}
			}
			res, err := Create(ctx, CreateOptions{Platform: p.c, Ledger: l, Product: p.product, Names: list})
			if err != nil || res.Healed != 4 {
				t.Fatalf("Create = %+v, %v; want 4 healed", res, err)
			}
			checkCertStored(t, emu, l, p.c.Name(), p.product, list)
		})
	}
}
