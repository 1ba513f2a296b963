package tencent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/devauth"
	"github.com/iotburn/iotburn/registry/emulator"
)

const certProduct = "CERTPROD01"

// certSetup: an emulator with a certificate product beside the key one, its
// state on disk (the CA is read from there, as a device would get it), the
// TLS broker, and a client.
func certSetup(t *testing.T) (*emulator.Emulator, *Client, *x509.CertPool, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	e, c, _ := setup(t, emulator.Config{StateDir: dir, CertProducts: []string{certProduct}, TaskDelay: -1, RateLimit: -1})
	broker, err := e.StartMQTTS("")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA in ca.pem")
	}
	return e, c, roots, broker
}

func waitTask(t *testing.T, c *Client, product, task string) {
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
	t.Fatal("task never finished")
}

// verifyPair checks what a board needs of a certificate credential: the
// certificate chains to the CA, names the device as Tencent does (CN =
// ProductId+DeviceName), and the key (PKCS#8, as Tencent's) is its key.
func verifyPair(t *testing.T, roots *x509.CertPool, product, name, certPEM, keyPEM string) {
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
	if cert.Subject.CommonName != product+name {
		t.Fatalf("CN %q, want %q", cert.Subject.CommonName, product+name)
	}
	if k, _ := pem.Decode([]byte(keyPEM)); k == nil || k.Type != "PRIVATE KEY" {
		t.Fatalf("%s: the key is not a PKCS#8 PEM block", name)
	}
	if _, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// A certificate product through the client: its type, a batch's
// certificates and keys, the certificate on lookup, the key once through
// DevicePrivateKey, and a mutual-TLS login with what the client returned.
func TestCertPlatform(t *testing.T) {
	_, c, roots, broker := certSetup(t)
	ctx := context.Background()

	for _, tt := range []struct {
		product string
		auth    registry.AuthType
		raw     string
	}{{certProduct, registry.AuthCert, "1"}, {testProduct, registry.AuthKey, "2"}} {
		p, err := c.Product(ctx, tt.product)
		if err != nil || p.Auth != tt.auth || p.AuthRaw != tt.raw {
			t.Fatalf("%s: %+v %v, want %s (%s)", tt.product, p.Auth, err, tt.auth, tt.raw)
		}
	}

	task, err := c.StartBatch(ctx, certProduct, []string{"b1", "b2"})
	if err != nil {
		t.Fatal(err)
	}
	waitTask(t, c, certProduct, task)
	res, err := c.BatchResults(ctx, certProduct, task)
	if err != nil || len(res) != 2 {
		t.Fatalf("%d results, %v", len(res), err)
	}
	for _, r := range res {
		if r.Err != "" || r.DeviceSecret != "" {
			t.Fatalf("%s: err %q, secret %d chars", r.DeviceName, r.Err, len(r.DeviceSecret))
		}
		verifyPair(t, roots, certProduct, r.DeviceName, r.DeviceCert, r.DevicePrivateKey)
		d, err := c.Device(ctx, certProduct, r.DeviceName)
		if err != nil || d.DeviceCert != r.DeviceCert || d.DeviceSecret != "" || d.DevicePrivateKey != "" {
			t.Fatalf("Device(%s): %v", r.DeviceName, err)
		}
		cfg, err := devauth.CertTLSConfig(r.DeviceCert, r.DevicePrivateKey, roots, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		cid, user, pass := devauth.TencentMQTTCert(certProduct, r.DeviceName, time.Now())
		if err := devauth.MQTTLogin(ctx, "tencent", broker, cfg, cid, user, pass); err != nil {
			t.Fatalf("%s: %v", r.DeviceName, err)
		}
	}

	// A batch whose answer was never read (a crash): the key once through
	// DescribeDeviceClientKey, then no more.
	lost, err := c.StartBatch(ctx, certProduct, []string{"lost1"})
	if err != nil {
		t.Fatal(err)
	}
	waitTask(t, c, certProduct, lost)
	d, err := c.Device(ctx, certProduct, "lost1")
	if err != nil {
		t.Fatal(err)
	}
	key, err := c.DevicePrivateKey(ctx, certProduct, "lost1")
	if err != nil {
		t.Fatal(err)
	}
	verifyPair(t, roots, certProduct, "lost1", d.DeviceCert, key)

	tests := []struct {
		name, product, device string
		is                    []error
		not                   []error
	}{
		{"second read", certProduct, "lost1", []error{registry.ErrKeyGone, registry.ErrRefused}, nil},
		{"read after the batch answer", certProduct, "b1", []error{registry.ErrKeyGone, registry.ErrRefused}, nil},
		{"no such device", certProduct, "nobody", []error{registry.ErrNotFound, registry.ErrRefused}, []error{registry.ErrKeyGone}},
		{"key product", testProduct, "whatever", []error{registry.ErrRefused}, []error{registry.ErrKeyGone, registry.ErrNotFound}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := c.DevicePrivateKey(ctx, tt.product, tt.device)
			if k != "" || err == nil {
				t.Fatalf("key %d chars, err %v", len(k), err)
			}
			for _, want := range tt.is {
				if !errors.Is(err, want) {
					t.Errorf("%v: not %v", err, want)
				}
			}
			for _, no := range tt.not {
				if errors.Is(err, no) {
					t.Errorf("%v: is %v", err, no)
				}
			}
		})
	}
}

// DescribeDeviceClientKey is never repeated after an ambiguous failure: an
// answer lost on the way used up the one read, and a repeat could only be
// refused. A refusal that says nothing was handed out (InternalError) is
// repeated.
func TestDevicePrivateKeyNotRetried(t *testing.T) {
	e, c, _, _ := certSetup(t)
	ctx := context.Background()
	task, err := c.StartBatch(ctx, certProduct, []string{"nr1", "nr2"})
	if err != nil {
		t.Fatal(err)
	}
	waitTask(t, c, certProduct, task)
	e.InjectFault("DescribeDeviceClientKey", 1, "InternalError")
	if _, err := c.DevicePrivateKey(ctx, certProduct, "nr1"); err != nil {
		t.Fatalf("after an InternalError the retry gets the key: %v", err)
	}

	// The platform answers, and the answer is lost on the way back.
	var tries atomic.Int32
	lossy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, r)
		if r.Header.Get("X-TC-Action") == "DescribeDeviceClientKey" {
			tries.Add(1)
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
	srv := httptest.NewServer(lossy)
	defer srv.Close()
	c2, err := New(Config{SecretID: testID, SecretKey: testKey, Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	c2.retry.base = time.Millisecond
	_, err = c2.DevicePrivateKey(ctx, certProduct, "nr2")
	if err == nil || errors.Is(err, registry.ErrRefused) || errors.Is(err, registry.ErrKeyGone) {
		t.Fatalf("a lost answer is neither a refusal nor known gone: %v", err)
	}
	if n := tries.Load(); n != 1 {
		t.Fatalf("DescribeDeviceClientKey sent %d times after a lost answer, want 1", n)
	}
	if _, err := c.DevicePrivateKey(ctx, certProduct, "nr2"); !errors.Is(err, registry.ErrKeyGone) {
		t.Fatalf("the lost answer used the one read: %v", err)
	}
}
