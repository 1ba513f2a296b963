package emulator

// The emulator's own certificate authority: it signs every device certificate
// of a certificate product (Tencent "证书认证", Aliyun "X.509证书") and the
// server certificate of the MQTT TLS listener, so a device that trusts
// <state>/ca.pem can check the broker and the broker can check the device.
// It is created on first need (a certificate product, the TLS listener),
// kept in the state directory (ca.pem, ca-key.pem, both 0600) and reused
// after a restart: certificates issued before a restart still verify.
//
// What the certificates look like follows what the vendors issue, read from
// certificates they issued that are public (see tencentDeviceTemplate and
// aliyunDeviceTemplate). Both vendors sign RSA-2048 device keys with
// SHA256-RSA, so the CA is RSA 2048 too. The CA's own name is the
// emulator's: it stands in for the vendors' roots, it does not pose as them.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names in the state directory.
const (
	CAFile    = "ca.pem"     // the CA certificate: what devices trust
	caKeyFile = "ca-key.pem" // its private key, 0600
)

// deviceKeyBits: both vendors' device keys are RSA 2048 (the Tencent and
// Aliyun certificates read for tencentDeviceTemplate/aliyunDeviceTemplate
// carry 2048-bit RSA keys; Tencent's Android SDK reads device keys with
// KeyFactory "RSA", tencentyun/qcloud-iot-sdk-android AsymcSslUtils.java;
// Alibaba's X.509 doc 140588 shows the key as "BEGIN RSA PRIVATE KEY").
const deviceKeyBits = 2048

type certAuthority struct {
	cert    *x509.Certificate
	key     *rsa.PrivateKey
	certPEM []byte
	pool    *x509.CertPool
}

// loadOrCreateCA reads dir's CA, or makes one and writes it there (dir ""
// = memory only). A CA certificate without its key, or the other way
// round, is an error rather than a new CA: certificates already issued
// would stop verifying without anyone being told.
func loadOrCreateCA(dir string, now time.Time) (*certAuthority, error) {
	if dir != "" {
		certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, caKeyFile)
		certPEM, cerr := os.ReadFile(certPath)
		keyPEM, kerr := os.ReadFile(keyPath)
		switch {
		case cerr == nil && kerr == nil:
			return parseCA(certPEM, keyPEM)
		case errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist):
		case cerr != nil && !errors.Is(cerr, os.ErrNotExist):
			return nil, cerr
		case kerr != nil && !errors.Is(kerr, os.ErrNotExist):
			return nil, kerr
		default:
			return nil, fmt.Errorf("%s and %s must both exist or both be absent (restore the missing one; "+
				"a new CA would make every certificate already issued unverifiable)", certPath, keyPath)
		}
	}
	ca, keyPEM, err := newCA(now)
	if err != nil {
		return nil, err
	}
	if dir != "" {
		// The key first: a crash between the two leaves a key without a
		// certificate, which the check above reports instead of replacing.
		if err := writeFileAtomic(filepath.Join(dir, caKeyFile), keyPEM); err != nil {
			return nil, err
		}
		if err := writeFileAtomic(filepath.Join(dir, CAFile), ca.certPEM); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

func newCA(now time.Time) (*certAuthority, []byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(16),
		Subject:      pkix.Name{CommonName: "iotburn emulator IoT CA", Organization: []string{"iotburn emulator"}},
		NotBefore:    now.Add(-time.Hour).UTC(),
		NotAfter:     now.AddDate(30, 0, 0).UTC(),
		KeyUsage:     x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		IsCA:         true, BasicConstraintsValid: true,
		SignatureAlgorithm: x509.SHA256WithRSA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	ca, err := parseCA(certPEM, keyPEM)
	return ca, keyPEM, err
}

func parseCA(certPEM, keyPEM []byte) (*certAuthority, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s is not a PEM certificate", CAFile)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CAFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", CAFile)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, fmt.Errorf("%s is not PEM", caKeyFile) // never the key's bytes in an error
	}
	key, err := x509.ParsePKCS1PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s is not an RSA private key", caKeyFile)
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("%s is not the key of %s", caKeyFile, CAFile)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &certAuthority{cert: cert, key: key, certPEM: certPEM, pool: pool}, nil
}

// writeFileAtomic writes data as path (0600) through a temporary file, fsync
// and rename, and fsyncs the directory.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// randomSerial is a positive serial of n random bytes.
func randomSerial(n int) *big.Int {
	b := make([]byte, n)
	for {
		if _, err := rand.Read(b); err != nil {
			panic("crypto/rand failed: " + err.Error())
		}
		b[0] &= 0x7f
		if s := new(big.Int).SetBytes(b); s.Sign() > 0 && b[0] != 0 {
			return s
		}
	}
}

// issuedCert is a device's certificate and private key, PEM, and the
// certificate's id where the vendor has one (Aliyun CertSN).
type issuedCert struct {
	Cert string `json:"c"`
	Key  string `json:"k"`
	SN   string `json:"sn,omitempty"`
}

// tencentDeviceTemplate is a Tencent IoT Hub device certificate as Tencent
// issues them. Three certificates issued by Tencent's "Tencent Iothub" CA,
// published in public device code (embedded as tencent_client_cert and
// CLIENT_CA), all read the same way: subject CN = ProductId + DeviceName
// ("9X3HAXY2VCtestliu", "WU2QVOGUV4test1", "YC4ATU86X1IoT_TLS"), nothing
// else in the subject; serial number 0 (every one of them); valid 3650
// days; SHA256-RSA; critical basicConstraints CA:FALSE, critical keyUsage
// digitalSignature, a subjectKeyIdentifier; the key RSA 2048 in PKCS#8
// ("BEGIN PRIVATE KEY"). They are signed by the root directly. Go adds an
// authorityKeyIdentifier, which Tencent's omit.
func tencentDeviceTemplate(productID, deviceName string, now time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          big.NewInt(0),
		Subject:               pkix.Name{CommonName: productID + deviceName},
		NotBefore:             now.UTC(),
		NotAfter:              now.Add(3650 * 24 * time.Hour).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		SignatureAlgorithm:    x509.SHA256WithRSA,
	}
}

// aliyunDeviceTemplate is an Alibaba Cloud IoT X.509 device certificate as
// Alibaba issues them, read from the one in aliyun/iotkit-embedded's docs
// (the X.509 section's g_cli_crt, "设备的证书可私钥可在LP控制台设备详情页获取"):
// subject "CN=Alibaba Cloud IoT Certificate, O=Alibaba Cloud IoT, C=CN", the
// same for every device (the subject does not name the device: the platform
// knows the device by its certificate, and tells a device that connects
// without naming itself who it is, doc 140588); a 7-byte random serial;
// valid 100 years; SHA256-RSA; critical keyUsage digitalSignature,
// nonRepudiation, keyEncipherment, dataEncipherment, keyAgreement; critical
// basicConstraints CA:FALSE; authority and subject key identifiers; the key
// RSA 2048 in PKCS#1 ("BEGIN RSA PRIVATE KEY", as doc 140588 shows it).
// Alibaba's is issued by an intermediate ("Alibaba Cloud IoT Operation
// CA1"); the emulator's by its one CA.
func aliyunDeviceTemplate(now time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: randomSerial(7),
		Subject: pkix.Name{CommonName: "Alibaba Cloud IoT Certificate", Organization: []string{"Alibaba Cloud IoT"},
			Country: []string{"CN"}},
		NotBefore: now.UTC(),
		NotAfter:  now.AddDate(100, 0, 0).UTC(),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment |
			x509.KeyUsageDataEncipherment | x509.KeyUsageKeyAgreement,
		BasicConstraintsValid: true,
		SignatureAlgorithm:    x509.SHA256WithRSA,
	}
}

// issueDevice makes a device's key and certificate. vendor is "tencent" or
// "aliyun". The key generation (RSA 2048) is almost all of the cost.
func (ca *certAuthority) issueDevice(vendor, product, name string, now time.Time) (issuedCert, error) {
	key, err := rsa.GenerateKey(rand.Reader, deviceKeyBits)
	if err != nil {
		return issuedCert{}, err
	}
	var tmpl *x509.Certificate
	switch vendor {
	case "tencent":
		tmpl = tencentDeviceTemplate(product, name, now)
	case "aliyun":
		tmpl = aliyunDeviceTemplate(now)
	default:
		return issuedCert{}, fmt.Errorf("no certificate profile for %q", vendor)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return issuedCert{}, err
	}
	tmpl.SubjectKeyId = subjectKeyID(pubDER)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return issuedCert{}, err
	}
	out := issuedCert{Cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
	if vendor == "tencent" {
		k8, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return issuedCert{}, err
		}
		out.Key = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k8}))
	} else {
		out.Key = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
		// CertSN: QueryDeviceCert's "X.509证书ID" (doc api-omdh29, example
		// "636217374433****"). That it is the serial in decimal is the
		// emulator's reading. [NOT FROM A SOURCE]
		out.SN = tmpl.SerialNumber.String()
	}
	return out, nil
}

// subjectKeyID is RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey
// BIT STRING's value.
func subjectKeyID(spkiDER []byte) []byte {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spkiDER, &spki); err != nil {
		sum := sha1.Sum(spkiDER)
		return sum[:]
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:]
}

// serverCert is the TLS listener's certificate, signed by the CA for the
// names devices dial: localhost, 127.0.0.1, ::1 and host (an IP or a name,
// "" for none). Its key is ECDSA P-256 (made at every start, cheap); the
// vendors' brokers are not what this stands in for, only their trust.
func (ca *certAuthority) serverCert(host string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(16),
		Subject:      pkix.Name{CommonName: "iotburn emulator MQTT broker", Organization: []string{"iotburn emulator"}},
		NotBefore:    now.Add(-time.Hour).UTC(),
		NotAfter:     now.AddDate(1, 0, 0).UTC(),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if host != "" {
		if ip := net.ParseIP(host); ip != nil {
			if !ip.IsUnspecified() && !ip.IsLoopback() {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if host != "localhost" {
			tmpl.DNSNames = append(tmpl.DNSNames, host)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// certFingerprint identifies a certificate by the SHA-256 of its DER.
func certFingerprint(der []byte) [32]byte { return sha256.Sum256(der) }

// pemFingerprint is certFingerprint of a PEM certificate (zero if it is not one).
func pemFingerprint(certPEM string) [32]byte {
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		return [32]byte{}
	}
	return certFingerprint(b.Bytes)
}
