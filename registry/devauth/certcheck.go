package devauth

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// ErrCertExpired: the device certificate is outside its validity period;
// the broker refuses it in the handshake (the emulator checks it on its
// clock, as a real broker does on its own).
var ErrCertExpired = errors.New("the device certificate is not valid now")

// ErrCertMismatch: the private key is not the certificate's (or either is
// not a usable PEM): no TLS handshake can succeed with the pair.
var ErrCertMismatch = errors.New("the private key does not belong to the certificate")

// CertInfo is what may be shown of a device certificate: nothing in it is
// secret.
type CertInfo struct {
	Fingerprint string // SHA-256 of the DER, hex (registry.CertFingerprint)
	NotBefore   time.Time
	NotAfter    time.Time
	Subject     string
}

// CheckCert proves, before a board is written, that the pair can log in:
// the key belongs to the certificate and the certificate is valid at now.
// Errors name neither the key nor its bytes.
func CheckCert(certPEM, keyPEM string, now time.Time) (CertInfo, error) {
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		// X509KeyPair's messages describe the PEM blocks, never their
		// content; they are kept out anyway: the type says it.
		return CertInfo{}, ErrCertMismatch
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return CertInfo{}, fmt.Errorf("the device certificate does not parse: %v: %w", err, ErrCertMismatch)
	}
	sum := sha256.Sum256(leaf.Raw)
	info := CertInfo{Fingerprint: hex.EncodeToString(sum[:]), NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, Subject: leaf.Subject.String()}
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return info, fmt.Errorf("the device certificate is valid from %s to %s, not at %s: %w",
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), ErrCertExpired)
	}
	return info, nil
}
