package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testCertPair is a self-signed certificate and its PKCS#8 key, PEM, made by
// the standard library: what AT+TCCERTCHECK must accept.
func testCertPair(t *testing.T, cn string) (crt, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

// The certificate commands answer as the cellular module's test report
// and the command set V3.1.3 show them (tencent_cert.go's type comment).
func TestTencentCellularCerts(t *testing.T) {
	crt, key := testCertPair(t, "P1 dev1")
	n := strconv.Itoa
	add := func(name, content string) string {
		return `AT+TCCERTADD="` + name + `",` + n(len(content)) + "\r\n" + content
	}
	addR := okR + "\r\n>" + "+TCCERTADD: OK\r\n"
	const (
		cme202 = "\r\n+CME ERROR: 202\r\n"
		cme209 = "\r\n+CME ERROR: 209\r\n"
	)
	for _, tc := range []struct {
		name, in, want string
		flt            Fault
		flash          Flash
	}{
		{name: "TCMODULE shows the IMEI", in: "ATE0\r\nAT+TCMODULE\r\n", want: "ATE0\r\n" + okR +
			"Module HW name: M6315_MOD_BOM_R001_20190508@H1\r\nModule FW version: M6315-PTCH0S00\r\nModule IMEI: 860000000000009\r\n" +
			"Module FW compiled time: 20190827_152209\r\nModule Flash size:4MB\r\n" + okR},
		{name: "test forms", in: "ATE0\r\nAT+TCCERTADD=?\r\nAT+TCCERTCHECK=?\r\nAT+TCCERTDEL=?\r\n", want: "ATE0\r\n" + okR +
			`AT+TCCERTADD:"CERT_NAME", CERT_SIZE (1-4096)` + "\r\n" + okR + `+TCCERTCHECK:"Cert_name"` + "\r\n" + okR + `+TCCERTDEL: "Cert_name"` + "\r\n" + okR},
		{name: "add, list, check, device info, query",
			in: "ATE0\r\n" + add("dev1.crt", crt) + "\r\n" + add("dev1.key", key) + "AT+TCCERTADD?\r\n" +
				`AT+TCCERTCHECK="dev1.crt"` + "\r\n" + `AT+TCCERTCHECK="dev1.key"` + "\r\n" +
				`AT+TCDEVINFOSET=2,"P1","dev1","dev1.crt"` + "\r\nAT+TCDEVINFOSET?\r\n",
			want: "ATE0\r\n" + okR + addR + addR +
				`+TCCERTADD: "dev1.crt",` + n(len(crt)) + "\r\n" + `+TCCERTADD: "dev1.key",` + n(len(key)) + "\r\n" + okR +
				okR + "+TCCERTCHECK: OK\r\n" + okR + "+TCCERTCHECK: OK\r\n" +
				okR + "+TCDEVINFOSET:OK\r\n" + `+TCDEVINFOSET:2,"P1","dev1","dev1.crt"` + "\r\n" + okR,
			flash: Flash{TLSMode: 2, ProductID: "P1", DeviceName: "dev1", CertName: "dev1.crt", Cert: crt, Key: key}},
		{name: "Ctrl+Z ends the content early",
			in:   "ATE0\r\n" + `AT+TCCERTADD="a.crt",100` + "\r\nabc\x1aAT+TCCERTADD?\r\n" + `AT+TCCERTCHECK="a.crt"` + "\r\n",
			want: "ATE0\r\n" + okR + addR + `+TCCERTADD: "a.crt",3` + "\r\n" + okR + okR + "+TCCERTCHECK: FAIL,-702\r\n"},
		{name: "bad parameters", in: "ATE0\r\n" + `AT+TCCERTADD="a.crt",0` + "\r\n" + `AT+TCCERTADD="a.crt",4097` + "\r\n" +
			`AT+TCCERTADD="a.pem",10` + "\r\n" + `AT+TCCERTADD=a.crt,10` + "\r\n" + `AT+TCCERTADD="` + strings.Repeat("a", 125) + `.crt",10` + "\r\n" +
			`AT+TCCERTCHECK=a.crt` + "\r\n",
			want: "ATE0\r\n" + okR + strings.Repeat(cme204, 6)},
		{name: "a name stored is refused, deleting frees it",
			in: "ATE0\r\n" + add("a.crt", "x") + add("a.crt", "y") + "\r\n" + `AT+TCCERTDEL="a.crt"` + "\r\n" + `AT+TCCERTDEL="a.crt"` + "\r\n" + add("a.crt", "z") + "AT+TCCERTDEL?\r\n",
			want: "ATE0\r\n" + okR + addR + cme209 + "\r\nERR CODE:0x01090000\r\nERROR\r\n" + // "y" then read as a command
				okR + "+TCCERTDEL: OK\r\n" + okR + "+TCCERTDEL: FAIL,-1001\r\n" + addR + `+TCCERTDEL: "a.crt"` + "\r\n" + okR},
		{name: "device info needs a valid certificate and its key",
			in: "ATE0\r\n" + `AT+TCDEVINFOSET=2,"P1","dev1","dev1.crt"` + "\r\n" + add("dev1.crt", crt) +
				`AT+TCDEVINFOSET=2,"P1","dev1","dev1.crt"` + "\r\n" + add("dev1.key", "not a key") +
				`AT+TCDEVINFOSET=2,"P1","dev1","dev1.crt"` + "\r\n" + `AT+TCDEVINFOSET=2,"P1","dev1","dev1.key"` + "\r\n",
			want: "ATE0\r\n" + okR + okR + "+TCDEVINFOSET:FAIL,-702\r\n" + addR + okR + "+TCDEVINFOSET:FAIL,-702\r\n" + addR +
				okR + "+TCDEVINFOSET:FAIL,-702\r\n" + cme204},
		{name: "fail-write fault", flt: FaultFailWrite, in: "ATE0\r\n" + add("a.crt", "x"),
			want: "ATE0\r\n" + okR + okR + "\r\n>" + "+TCCERTADD: FAIL,-1001\r\n"},
		{name: "mode 2 login is not modelled", in: "ATE0\r\nAT+TCMQTTCONN=2,5000,240,1,1\r\n", want: "ATE0\r\n" + okR + cme204},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{1, 7, len(tc.in)} { // how the wire chunks must not matter
				h := &fakeHost{flt: tc.flt, bf: boardFile{IMEI: "860000000000009"}}
				fw := newTencentCellular(h)
				for i := 0; i < len(tc.in); i += chunk {
					fw.receive([]byte(tc.in[i:min(i+chunk, len(tc.in))]))
				}
				if got := h.sent(); got != tc.want {
					t.Fatalf("chunks of %d: answer\n got %q\nwant %q", chunk, got, tc.want)
				}
				if got := h.bf.flash(); got != tc.flash {
					t.Fatalf("chunks of %d: flash %+v, want %+v", chunk, got, tc.flash)
				}
			}
		})
	}
}

// The Wi-Fi module has none of it: its real transcript answers
// AT+TCCERTADD=? as an unknown command.
func TestTencentWiFiHasNoCertCommands(t *testing.T) {
	h := &fakeHost{}
	fw := newTencentAT(h)
	fw.receive([]byte("ATE0\r\nAT+TCCERTADD=?\r\nAT+TCCERTCHECK=\"a.crt\"\r\n"))
	if want := "ATE0\r\n" + okR + unknownR + unknownR; h.sent() != want {
		t.Fatalf("got %q\nwant %q", h.sent(), want)
	}
}

// A module left waiting for a certificate's bytes gives up and stores
// nothing; what comes after is a command again.
func TestTencentCertUploadTimesOut(t *testing.T) {
	h := &fakeHost{}
	fw := newTencentCellular(h).(*tencentAT)
	fw.receive([]byte("ATE0\r\n" + `AT+TCCERTADD="a.crt",10` + "\r\nabc"))
	u := fw.upload
	if u == nil {
		t.Fatal("no upload under way")
	}
	u.mu.Lock()
	u.expired = true // what certUploadTimeout's timer does
	u.mu.Unlock()
	fw.receive([]byte("AT\r\n"))
	if want := "ATE0\r\n" + okR + okR + "\r\n>" + okR; h.sent() != want {
		t.Fatalf("got %q\nwant %q", h.sent(), want)
	}
	if len(h.bf.Tencent.Certs) != 0 {
		t.Fatalf("stored %+v", h.bf.Tencent.Certs)
	}
}
