// Package registry defines what iotburn needs from an IoT cloud platform:
// create devices in batches, resume a batch after a crash, and look a device up.
// Vendor adapters live in sub-packages (registry/tencent, registry/aliyun,
// over the vendors' official SDKs); registry/emulator serves both vendors'
// APIs locally for the demo and the tests; registry/devauth is the device
// side (dynamic registration, MQTT credentials, certificate logins).
package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
)

// Credential is what a board needs to authenticate to the platform.
// DeviceSecret and ProductSecret are secrets: never log or print them; use
// Fingerprint.
//
// A device-level credential carries DeviceSecret. A product-level one carries
// ProductSecret and no DeviceSecret: the board registers itself with the
// platform under DeviceName (its own SN/IMEI/MAC) and obtains its device
// secret, or an Aliyun registration-free token, on its own. A certificate
// credential (a product whose Auth is AuthCert) carries DeviceCert and
// DevicePrivateKey instead of DeviceSecret: the board logs in over mutual TLS.
type Credential struct {
	Platform      string // "tencent", "aliyun"
	ProductID     string // Tencent ProductId / Aliyun ProductKey
	DeviceName    string
	DeviceSecret  string // Tencent: base64 PSK; Aliyun: DeviceSecret
	ProductSecret string // product-level credentials only: the product's secret for dynamic registration
	Region        string // e.g. "ap-guangzhou"; empty means the platform default
	// DeviceCert is the device's X.509 certificate, PEM, as the platform
	// issued it (public: it goes to the broker in every TLS handshake).
	DeviceCert string
	// DevicePrivateKey is the certificate's private key, PEM (Tencent:
	// PKCS#8 "PRIVATE KEY"; Aliyun: PKCS#1 "RSA PRIVATE KEY"). A secret like
	// DeviceSecret: never log or print it; use Fingerprint.
	DevicePrivateKey string
	// Kit, on a gateway burned with its kit (batch --kit), is the
	// sub-devices the gateway registers and adds to its topology on its
	// first connect. The ledger's pairing holds it, never the credential's
	// row: the line attaches it before rendering.
	Kit *Kit
	// SubDevice marks a sub-device board's credential (batch
	// --sub-device): its product and name only, no secret; its gateway
	// registers it and obtains its DeviceSecret.
	SubDevice bool
}

// Kit is what a gateway is burned with of its sub-devices: their product
// ("burn the ProductKey of each sub-device on the gateway", the Aliyun
// gateway docs) and the names the factory paired with it. It holds no
// secret: the gateway obtains each sub-device's by registering it.
type Kit struct {
	SubProduct string
	SubDevices []string
}

// IsCert reports whether the credential is a device certificate.
func (c Credential) IsCert() bool { return c.DeviceCert != "" || c.DevicePrivateKey != "" }

// Fingerprint returns the first 8 hex digits of SHA-256 of the secret: enough to
// tell two secrets apart in an audit sheet, useless to an attacker.
func Fingerprint(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:4])
}

// SecretFingerprint is the fingerprint of what the credential keeps secret:
// its DeviceSecret, or a certificate's private key ("" for a product-level
// name, which holds neither).
func (c Credential) SecretFingerprint() string {
	if c.DeviceSecret != "" {
		return Fingerprint(c.DeviceSecret)
	}
	return Fingerprint(c.DevicePrivateKey)
}

// CertFingerprint is the SHA-256 of a PEM certificate's DER bytes, in hex:
// the certificate's usual fingerprint (`openssl x509 -noout -fingerprint
// -sha256` prints the same bytes with colons), so an auditor can match it
// with the platform's console. A certificate is public, so all of it is
// shown. "" when certPEM holds no certificate.
func CertFingerprint(certPEM string) string {
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil || b.Type != "CERTIFICATE" {
		return ""
	}
	sum := sha256.Sum256(b.Bytes)
	return hex.EncodeToString(sum[:])
}

// DeviceResult is one device of a finished batch task. A device of a
// certificate product has DeviceCert and DevicePrivateKey (PEM) and no
// DeviceSecret.
type DeviceResult struct {
	DeviceName       string
	DeviceSecret     string
	DeviceCert       string
	DevicePrivateKey string // a secret
	Err              string // non-empty when the platform did not create this one
}

// Device is the platform's view of one device.
type Device struct {
	DeviceName string
	// DeviceSecret is filled where the platform returns it on lookup (Tencent's
	// DescribeDevice does): it lets a crashed create recover a device whose
	// batch answer was lost.
	DeviceSecret string
	// DeviceCert is a certificate device's certificate (PEM), where the
	// lookup returns it (Tencent DescribeDevice and Aliyun QueryDeviceCert
	// do). DevicePrivateKey is filled only where the lookup hands the key out
	// again and again (Aliyun QueryDeviceCert); Tencent gives it once, through
	// PrivateKeyFetcher.
	DeviceCert       string
	DevicePrivateKey string // a secret
	Enabled          bool
	Online           bool
	CreatedAt        int64 // unix seconds; 0 when unknown
}

// ErrNotFound is returned (wrapped) by Platform.Device for a device that does not exist.
var ErrNotFound = errors.New("device not found on the platform")

// ErrRefused marks an error the platform itself answered with (bad name, quota,
// auth): the call certainly changed nothing. Any other error from StartBatch
// (a timeout, a dropped connection) leaves it unknown whether the devices were
// created, and the caller must look before it tries again.
var ErrRefused = errors.New("refused by the platform")

// ErrExists marks a refusal because a named device already exists (or is being
// created by a task in flight). It always comes wrapped with ErrRefused.
var ErrExists = errors.New("device already exists")

// ErrKeyGone marks a refusal to hand out a certificate device's private key
// because the platform no longer has it to give (Tencent hands it out once
// after creation: UnsupportedOperation.ClientCertAlreadyGot). It always comes
// wrapped with ErrRefused.
var ErrKeyGone = errors.New("the platform no longer hands out this device's private key")

// ErrUnreachable: the platform could not be asked (network down, DNS,
// timeout, a 5xx): nothing is known about the device, so nothing may be
// concluded about it.
var ErrUnreachable = errors.New("platform unreachable")

// Platform is a cloud IoT platform seen through its batch-creation API.
// Implementations must be safe for concurrent use.
type Platform interface {
	// Name is the platform's short name ("tencent").
	Name() string
	// Region the client talks to; written into credentials.
	Region() string
	// MaxBatch is the most names one StartBatch call accepts.
	MaxBatch() int
	// ValidateName checks a device name against the platform's rules.
	ValidateName(name string) error
	// StartBatch asks the platform to create the named devices and returns the
	// vendor's task id. The task may run asynchronously.
	StartBatch(ctx context.Context, product string, names []string) (taskID string, err error)
	// BatchDone reports whether the task has finished.
	BatchDone(ctx context.Context, product, taskID string) (bool, error)
	// BatchResults lists every device of a finished task, all pages.
	BatchResults(ctx context.Context, product, taskID string) ([]DeviceResult, error)
	// Device looks one device up; a missing one gives an error wrapping ErrNotFound.
	Device(ctx context.Context, product, name string) (Device, error)
	// Devices lists every device of the product, all pages.
	Devices(ctx context.Context, product string) ([]Device, error)
	// DeleteDevice removes a device (a scrapped board's credential).
	DeleteDevice(ctx context.Context, product, name string) error
}

// AuthType is how a product's devices authenticate.
type AuthType string

// The authentication types.
const (
	AuthKey  AuthType = "key"  // a device secret (Tencent "密钥认证", EncryptionType "2"; Aliyun AuthType "secret")
	AuthCert AuthType = "cert" // an X.509 device certificate (Tencent "证书认证", EncryptionType "1"; Aliyun AuthType "x509")
)

// Product is what the line needs of a product for the product-level modes
// and the certificate mode.
type Product struct {
	ID string
	// Auth is how its devices authenticate, as the platform says
	// ("" when its answer names a type iotburn does not speak, e.g. Aliyun
	// "id2"; AuthRaw then has the platform's own word).
	Auth    AuthType
	AuthRaw string // the platform's value: Tencent EncryptionType "1"/"2", Aliyun AuthType "secret"/"x509"/"id2"
	// Secret is the ProductSecret, burned into every board of a product-level
	// batch. A secret: never log or print it.
	Secret string
	// What the platform says of its registration switches, where its API
	// says it (Tencent does; Aliyun's QueryProduct does not, and Known is
	// false there).
	Known           bool
	DynamicRegister bool // devices may fetch their own secret
	AutoCreate      bool // Tencent: unknown names are created on registration
	AutoCreateLimit int  // Tencent: how many may be created that way
}

// ProductInfo is implemented by platforms that can tell a product's secret
// and registration settings (for the product-level modes) and its
// authentication type.
type ProductInfo interface {
	Product(ctx context.Context, id string) (Product, error)
}

// PrivateKeyFetcher is implemented by platforms that can hand out a
// certificate device's private key after its creation (Tencent
// DescribeDeviceClientKey, once; Aliyun QueryDeviceCert, on every call): a
// crashed create whose batch answer was lost gets the key back this way. A
// key the platform will not give again is an error wrapping ErrKeyGone.
type PrivateKeyFetcher interface {
	DevicePrivateKey(ctx context.Context, product, name string) (string, error)
}

// SubDevice is one device in a gateway's topology.
type SubDevice struct {
	Product, DeviceName string
}

// Topology is implemented by platforms that can list a gateway's
// sub-devices (Aliyun GetThingTopo, Tencent DescribeGatewayBindDevices).
// subProduct narrows the list to one product; Tencent's API needs it.
type Topology interface {
	SubDevices(ctx context.Context, gatewayProduct, gatewayName, subProduct string) ([]SubDevice, error)
}
