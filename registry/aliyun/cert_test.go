package aliyun

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/devauth"
	"github.com/iotburn/iotburn/registry/emulator"
)

const certProduct = "a1X509Prod"

func certSetup(t *testing.T, cfg emulator.Config) (*emulator.Emulator, *Client, *x509.CertPool, string) {
	t.Helper()
	cfg.StateDir = filepath.Join(t.TempDir(), "state")
	cfg.AliyunCertProducts = []string{certProduct}
	e, c, _ := setup(t, cfg)
	c.certPoll = 20 * time.Millisecond
	broker, err := e.StartMQTTS("")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(cfg.StateDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA in ca.pem")
	}
	return e, c, roots, broker
}

func waitApp(t *testing.T, c *Client, product, task string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ok, err := c.BatchDone(context.Background(), product, task)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
	}
	t.Fatal("application never finished")
}

// verifyX509 checks a certificate credential as a board needs it: it
// chains to the CA and the key (PKCS#1, as Alibaba's) is its key.
func verifyX509(t *testing.T, roots *x509.CertPool, name, certPEM, keyPEM string) {
	t.Helper()
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		t.Fatalf("%s: no certificate", name)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if k, _ := pem.Decode([]byte(keyPEM)); k == nil || k.Type != "RSA PRIVATE KEY" {
		t.Fatalf("%s: the key is not a PKCS#1 PEM block", name)
	}
	if _, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// An X.509 product through the client: its type, its batch limit, a batch's
// certificates and keys (polled while the platform is still making them),
// the same on lookup and through DevicePrivateKey, and mutual-TLS logins
// with them, by name and by the platform's identity answer.
func TestX509Platform(t *testing.T) {
	_, c, roots, broker := certSetup(t, emulator.Config{TaskDelay: 50 * time.Millisecond, RateLimit: -1, CertDelay: 300 * time.Millisecond})
	ctx := context.Background()

	for _, tt := range []struct {
		product string
		auth    registry.AuthType
		raw     string
		max     int
	}{{certProduct, registry.AuthCert, "x509", 1000}, {testProduct, registry.AuthKey, "secret", 10000}} {
		p, err := c.Product(ctx, tt.product)
		if err != nil || p.Auth != tt.auth || p.AuthRaw != tt.raw {
			t.Fatalf("%s: %q %v, want %s (%s)", tt.product, p.Auth, err, tt.auth, tt.raw)
		}
		if n, err := c.MaxBatchFor(ctx, tt.product); err != nil || n != tt.max {
			t.Fatalf("%s: MaxBatchFor %d %v, want %d", tt.product, n, err, tt.max)
		}
	}

	task, err := c.StartBatch(ctx, certProduct, names("xd", 3))
	if err != nil {
		t.Fatal(err)
	}
	waitApp(t, c, certProduct, task)
	res, err := c.BatchResults(ctx, certProduct, task)
	if err != nil || len(res) != 3 {
		t.Fatalf("%d results, %v", len(res), err)
	}
	seen := map[string]bool{}
	for _, r := range res {
		if r.Err != "" || r.DeviceSecret != "" {
			t.Fatalf("%s: err %q, secret %d chars", r.DeviceName, r.Err, len(r.DeviceSecret))
		}
		verifyX509(t, roots, r.DeviceName, r.DeviceCert, r.DevicePrivateKey)
		if seen[r.DeviceCert] {
			t.Fatal("two devices share a certificate")
		}
		seen[r.DeviceCert] = true
		d, err := c.Device(ctx, certProduct, r.DeviceName)
		if err != nil || d.DeviceCert != r.DeviceCert || d.DevicePrivateKey != r.DevicePrivateKey {
			t.Fatalf("Device(%s): %v", r.DeviceName, err)
		}
		if k, err := c.DevicePrivateKey(ctx, certProduct, r.DeviceName); err != nil || k != r.DevicePrivateKey {
			t.Fatalf("DevicePrivateKey(%s): %v", r.DeviceName, err)
		}
	}

	first := res[0]
	cfg, err := devauth.CertTLSConfig(first.DeviceCert, first.DevicePrivateKey, roots, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cid, user, pass := devauth.AliyunMQTTCert(certProduct, first.DeviceName, time.Now())
	if err := devauth.MQTTLogin(ctx, "aliyun", broker, cfg, cid, user, pass); err != nil {
		t.Fatal(err)
	}
	if pk, dn, err := devauth.AliyunIdentify(ctx, broker, cfg); err != nil || pk != certProduct || dn != first.DeviceName {
		t.Fatalf("identity %q %q %v", pk, dn, err)
	}
	// Another device's name with this certificate.
	cid, user, pass = devauth.AliyunMQTTCert(certProduct, res[1].DeviceName, time.Now())
	var de *devauth.Error
	if err := devauth.MQTTLogin(ctx, "aliyun", broker, cfg, cid, user, pass); !errors.As(err, &de) || de.Code != "mqtt:4" {
		t.Fatalf("another device's login with this certificate: %v", err)
	}

	tests := []struct {
		name    string
		product string
		n       int
		is      error
	}{
		{"more than an X.509 application takes", certProduct, 1001, registry.ErrRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.StartBatch(ctx, tt.product, names("big", tt.n)); !errors.Is(err, tt.is) {
				t.Fatalf("%v, want %v", err, tt.is)
			}
		})
	}
	if _, err := c.DevicePrivateKey(ctx, certProduct, "nobody-x"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("unknown device: %v", err)
	}
	if _, err := c.DevicePrivateKey(ctx, testProduct, "nobody-x"); !errors.Is(err, registry.ErrRefused) {
		t.Fatalf("a secret product's device: %v", err)
	}
}

// A secret product's batch costs no QueryProduct and no QueryDeviceCert:
// the certificate path is taken only where devices come without secrets.
func TestSecretProductUnchanged(t *testing.T) {
	_, c, _, _ := certSetup(t, emulator.Config{TaskDelay: -1, RateLimit: -1})
	ctx := context.Background()
	task, err := c.StartBatch(ctx, testProduct, names("sd", 3))
	if err != nil {
		t.Fatal(err)
	}
	waitApp(t, c, testProduct, task)
	before := c.Calls()
	res, err := c.BatchResults(ctx, testProduct, task)
	if err != nil {
		t.Fatal(err)
	}
	// One page and one status: QueryPageByApplyId, QueryBatchRegisterDeviceStatus.
	if n := c.Calls() - before; n != 2 {
		t.Fatalf("%d calls for a secret product's results, want 2", n)
	}
	for _, r := range res {
		if r.DeviceSecret == "" || r.DeviceCert != "" || r.DevicePrivateKey != "" {
			t.Fatalf("%s: a secret device must keep its secret and have no certificate", r.DeviceName)
		}
	}
}
