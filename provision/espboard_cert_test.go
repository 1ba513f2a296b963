package provision

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision/audit"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/devauth"
	"github.com/iotburn/iotburn/templates/nvs"
	"github.com/xuri/excelize/v2"
)

// Certificate devices on ESP32 boards, end to end: created through the
// official SDK, burned (certificate and key in the NVS partition), read
// back, and logged in by verify over mutual TLS with the pair the board
// holds.
func TestLineESP32Cert(t *testing.T) {
	emu, tc, _ := certClouds(t)
	broker, err := emu.StartMQTTS("")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := emu.CACertPEM()
	if err != nil {
		t.Fatal(err)
	}
	l := openLedger(t)
	if res, err := Create(context.Background(), CreateOptions{Platform: tc, Ledger: l, Product: "CERTPROD01", Names: names("ec", 2)}); err != nil || res.Created != 2 {
		t.Fatalf("create: %+v %v", res, err)
	}
	farm, err := sim.Start(sim.Options{Dir: t.TempDir(), Kind: "esp32", Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer farm.Close()
	format := nvs.Format{Size: 0x3000, Version: 2, Keys: nvs.TencentKeys}
	at := CredentialPartition{Offset: 0x9000}
	o := lineOpts(l, farm, 921600)
	o.Product, o.Format = "CERTPROD01", format
	o.Open = openESP(t, ESPOptions{Baud: 921600, Partition: at, Format: format, Compress: true})
	if res, err := RunLine(context.Background(), o); err != nil || res.Burned != 2 {
		t.Fatalf("burn: %+v %v", res, err)
	}
	for _, b := range farm.Boards() {
		u, ok, err := l.UnitByHW(strings.ToLower(b.MAC()))
		if err != nil || !ok {
			t.Fatalf("%s: %v", b.Path(), err)
		}
		issued, _ := emu.TencentDeviceCert("CERTPROD01", u.Cred.DeviceName)
		part, err := b.ReadFlash(0x9000, 0x3000)
		if err != nil {
			t.Fatal(err)
		}
		items, err := nvs.Read(part)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]any{}
		for _, it := range items {
			got[it.Key] = it.Value
		}
		key, _ := got["priv_key"].(string)
		if got["dev_cert"] != issued || got["device_name"] != u.Cred.DeviceName {
			t.Errorf("%s: the partition does not hold %s's certificate", b.Path(), u.Cred.DeviceName)
		}
		if _, err := devauth.CheckCert(issued, key, time.Now()); err != nil {
			t.Errorf("%s: the key in the partition is not the certificate's: %v", b.Path(), err)
		}
	}
	v := VerifyOptions{Ledger: l, Platform: "tencent", Product: "CERTPROD01", Ports: o.Ports,
		Open:  openESP(t, ESPOptions{Baud: 921600, Partition: at, Format: format, ReadBack: true}),
		Login: EitherLogin(MQTTLogin(""), MQTTCertLogin(broker, WithBrokerCA(ca)))}
	if res, err := Verify(context.Background(), v); err != nil || res.Verified != 2 {
		t.Fatalf("verify --mqtt: %+v %v", res, err)
	}

	// The audit shows each certificate's fingerprint (SHA-256 of its DER)
	// and expiry, and nothing of its key.
	path := filepath.Join(t.TempDir(), "audit.xlsx")
	if _, err := audit.Write(l, path, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows(audit.SheetUnits)
	if err != nil || len(rows) != 3 {
		t.Fatalf("%d Units rows, %v", len(rows), err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, r := range rows[1:] {
		name := r[col["device name"]]
		issued, _ := emu.TencentDeviceCert("CERTPROD01", name)
		blk, _ := pem.Decode([]byte(issued))
		leaf, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(blk.Bytes)
		if got := r[col["cert fingerprint (SHA-256)"]]; got != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: cert fingerprint %q", name, got)
		}
		if got, want := r[col["cert expires (UTC)"]], leaf.NotAfter.UTC().Format("2006-01-02 15:04:05"); got != want {
			t.Errorf("%s: cert expires %q, want %q", name, got, want)
		}
		u, _ := l.Credential("tencent", "CERTPROD01", name)
		for _, c := range r {
			for _, line := range strings.Split(u.DevicePrivateKey, "\n") {
				if len(line) > 16 && !strings.HasPrefix(line, "-----") && strings.Contains(c, line) {
					t.Fatalf("%s: the audit holds its private key", name)
				}
			}
		}
	}
}

// A certificate that cannot log in is refused before the board is
// written, and its claim given back: an expired certificate, and a key
// that is another certificate's.
func TestLineRefusesBadCert(t *testing.T) {
	good1, _ := selfSigned(t, "bad1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	_, key2 := selfSigned(t, "bad2", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	expired, keyE := selfSigned(t, "bad3", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	for _, tt := range []struct {
		name, cert, key string
		want            error
	}{
		{"expired", expired, keyE, devauth.ErrCertExpired},
		{"another's key", good1, key2, devauth.ErrCertMismatch},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := openLedger(t)
			r, err := l.Journal("tencent", "CERTPROD01", []string{"bad"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Complete(r.ID, []registry.Credential{{Platform: "tencent", ProductID: "CERTPROD01", DeviceName: "bad",
				DeviceCert: tt.cert, DevicePrivateKey: tt.key}}); err != nil {
				t.Fatal(err)
			}
			farm, err := sim.Start(sim.Options{Dir: t.TempDir(), Kind: "esp32", Count: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer farm.Close()
			format := nvs.Format{Size: 0x3000, Version: 2, Keys: nvs.TencentKeys}
			o := lineOpts(l, farm, 921600)
			o.Product, o.Format = "CERTPROD01", format
			o.Open = openESP(t, ESPOptions{Baud: 921600, Partition: CredentialPartition{Offset: 0x9000}, Format: format})
			var causes []error
			o.Events = func(e Event) {
				if e.Cause != nil {
					causes = append(causes, e.Cause)
				}
			}
			res, err := RunLine(context.Background(), o)
			if err != nil || res.Burned != 0 {
				t.Fatalf("line: %+v %v", res, err)
			}
			found := false
			for _, c := range causes {
				found = found || errors.Is(c, tt.want)
			}
			if !found {
				t.Errorf("causes %v, want one that is %v", causes, tt.want)
			}
			part, err := farm.Boards()[0].ReadFlash(0x9000, 0x3000)
			if err != nil || !bytes.Equal(part, bytes.Repeat([]byte{0xFF}, 0x3000)) {
				t.Errorf("the partition was written (%v)", err)
			}
			if c, err := l.Counts("tencent", "CERTPROD01"); err != nil || c.Free != 1 {
				t.Errorf("counts %+v %v: the credential was not given back", c, err)
			}
			for _, c := range causes {
				if strings.Contains(c.Error(), "PRIVATE KEY") {
					t.Errorf("an error shows the key: %v", c)
				}
			}
		})
	}
}

// selfSigned makes a certificate valid between from and to and its key.
func selfSigned(t *testing.T, cn string, from, to time.Time) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: from, NotAfter: to}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k8}))
}
