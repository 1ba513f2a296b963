package at_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/at"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/registry"
)

// certCred is a certificate device with a fresh self-signed certificate and
// PKCS#8 key (the standard library's, not the code under test's).
func certCred(t *testing.T, name string) registry.Credential {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "P1CERTDEV1 " + name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(k)
	return registry.Credential{Platform: "tencent", ProductID: "P1CERTDEV1", DeviceName: name,
		DeviceCert:       string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		DevicePrivateKey: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))}
}

// certImage is the tencent-at image of a certificate device, written out by
// hand from the command set's §7.2 sequence.
func certImage(c registry.Credential) []byte {
	return []byte(fmt.Sprintf("AT+TCCERTADD=\"%s.crt\",%d\r\n%s\r\nAT+TCCERTADD=\"%s.key\",%d\r\n%s\r\nAT+TCDEVINFOSET=2,\"%s\",\"%s\",\"%s.crt\"\r\n",
		c.DeviceName, len(c.DeviceCert), c.DeviceCert, c.DeviceName, len(c.DevicePrivateKey), c.DevicePrivateKey,
		c.ProductID, c.DeviceName, c.DeviceName))
}

func cellular(t *testing.T) *sim.Board {
	t.Helper()
	f, err := sim.Start(sim.Options{Dir: t.TempDir(), Count: 1, Kind: "tencent-at-cellular", Baud: sim.Unpaced})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f.Boards()[0]
}

func TestCertBurnAndReadBack(t *testing.T) {
	b := cellular(t)
	d := open(t, b, 0)
	var wire bytes.Buffer
	d.SetLog(slog.New(slog.NewTextHandler(&wire, &slog.HandlerOptions{Level: slog.LevelDebug})))
	c := ctx(t)
	if err := d.Hello(c); err != nil {
		t.Fatal(err)
	}
	id, err := d.Identify(c)
	if err != nil || id.IMEI != b.IMEI() || id.HardwareID() != "imei:"+b.IMEI() {
		t.Fatalf("identify: %+v %v (board's IMEI %s)", id, err, b.IMEI())
	}
	if err := d.TakesCerts(c); err != nil {
		t.Fatal(err)
	}
	first := certCred(t, "dev1")
	if err := d.RunScript(c, certImage(first)); err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(c, first); err != nil {
		t.Fatal(err)
	}
	// Burned again with another device: the board holds that one only.
	second := certCred(t, "dev2")
	if err := d.RunScript(c, certImage(second)); err != nil {
		t.Fatal(err)
	}
	fl := b.Flash()
	if fl.TLSMode != 2 || fl.CertName != "dev2.crt" || fl.Cert != second.DeviceCert || fl.Key != second.DevicePrivateKey {
		t.Fatalf("board holds %+v", fl)
	}
	files, err := d.CertFiles(c)
	want := []at.CertFile{{Name: "dev2.crt", Size: len(second.DeviceCert)}, {Name: "dev2.key", Size: len(second.DevicePrivateKey)}}
	if err != nil || fmt.Sprint(files) != fmt.Sprint(want) {
		t.Fatalf("files %v %v, want %v", files, err, want)
	}
	if err := d.Verify(c, second); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{first.DevicePrivateKey, second.DevicePrivateKey, "BEGIN PRIVATE KEY"} {
		if strings.Contains(wire.String(), strings.TrimSpace(secret)) {
			t.Fatalf("the wire log holds a private key:\n%s", wire.String())
		}
	}
	if !strings.Contains(wire.String(), "AT+TCCERTADD") {
		t.Fatalf("the wire log shows no AT+TCCERTADD:\n%s", wire.String())
	}
}

// What the read-back catches: another device, another key, a key device.
func TestCertVerifyMismatch(t *testing.T) {
	b := cellular(t)
	d := open(t, b, 0)
	c := ctx(t)
	if err := d.Hello(c); err != nil {
		t.Fatal(err)
	}
	burned := certCred(t, "dev1")
	if err := d.RunScript(c, certImage(burned)); err != nil {
		t.Fatal(err)
	}
	otherKey := burned
	otherKey.DevicePrivateKey += "\n"
	otherName := certCred(t, "dev9")
	keyDevice := registry.Credential{Platform: "tencent", ProductID: burned.ProductID, DeviceName: "dev1", DeviceSecret: secret}
	for name, want := range map[string]registry.Credential{"key size": otherKey, "device": otherName, "key device": keyDevice} {
		err := d.Verify(c, want)
		if !errors.Is(err, at.ErrMismatch) {
			t.Errorf("%s: %v, want a mismatch", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: the error holds the key: %v", name, err)
		}
	}
}

// The Wi-Fi module's firmware has no certificate commands: refused before
// anything is written.
func TestCertRefusedByWiFiModule(t *testing.T) {
	b := farm(t, 1, sim.Unpaced).Boards()[0]
	d := open(t, b, 0)
	c := ctx(t)
	if err := d.Hello(c); err != nil {
		t.Fatal(err)
	}
	err := d.TakesCerts(c)
	if !errors.Is(err, at.ErrNoCertCommands) || !strings.Contains(err.Error(), "ESP8266") {
		t.Fatalf("got %v, want ErrNoCertCommands naming the ESP8266", err)
	}
	if fl := b.Flash(); fl != (sim.Flash{}) {
		t.Fatalf("board holds %+v", fl)
	}
}

// An image whose file is cut short is refused before a byte goes out.
func TestCertImageCutShort(t *testing.T) {
	b := cellular(t)
	d := open(t, b, 0)
	c := ctx(t)
	if err := d.Hello(c); err != nil {
		t.Fatal(err)
	}
	img := certImage(certCred(t, "dev1"))
	cut := img[:bytes.Index(img, []byte("-----END CERTIFICATE"))]
	if err := d.RunScript(c, cut); !errors.Is(err, at.ErrBadImage) {
		t.Fatalf("got %v, want ErrBadImage", err)
	}
	if files, err := d.CertFiles(c); err != nil || len(files) != 0 {
		t.Fatalf("files %v %v", files, err)
	}
}
