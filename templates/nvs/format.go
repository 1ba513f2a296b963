package nvs

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/iotburn/iotburn/registry"
)

// DefaultSize is the partition size Format uses when Size is 0: 0x6000 is
// ESP-IDF's default "nvs" partition and what `iotburn image` documents.
const DefaultSize = 0x6000

// Keys names the namespace and the keys a credential is stored under. An
// empty key name leaves that field out of the image. ProductSecret is only
// written for a credential that has one (product-level: the firmware
// registers itself with it).
//
// DeviceCert and DevicePrivateKey hold a certificate credential's
// certificate and private key, PEM, as NVS strings (the PEM with its NUL,
// which is what mbedTLS parses). No vendor kit reads a certificate from its
// factory partition: espressif/esp-qcloud's mass-manufacture path reads
// only a device key ("Currently does not support the use of certificates
// for mass manufacture", src/iothub/esp_qcloud_device.c at 0f0fc26; its
// certificate mode links the files into the firmware), and
// espressif/esp-aliyun has no device-certificate path at all. The default
// names are those of Espressif's esp_secure_cert_mgr NVS format
// (esp_secure_cert_config.h: "dev_cert", "priv_key", read with
// nvs_get_str), for firmware that follows it; set them with
// --nvs-key-cert and --nvs-key-private-key for any other.
type Keys struct {
	Namespace, ProductID, DeviceName, DeviceSecret, Region string
	ProductSecret                                          string
	DeviceCert, DevicePrivateKey                           string
	// SubProduct and SubDevice hold a gateway's kit (registry.Kit): its
	// sub-devices' product, and their names, one string each under
	// SubDevice followed by its number from 1 ("SubDevName1"). Empty: the
	// format carries no kit.
	SubProduct, SubDevice string
}

// TencentKeys are the names Espressif's Tencent IoT Explorer kit reads:
// namespace "qcloud-key", keys product_id, device_name, device_secret, from
// espressif/esp-qcloud config/mass_mfg/single_mfg_config.csv (commit
// 336a64d), the CSV its README feeds to nvs_partition_gen.py. That kit takes
// the region from its build configuration; "region" is iotburn's convention
// for firmware that wants it in NVS (it is only written when the credential
// has a region, and other firmware ignores it). product_secret follows the
// kit's snake_case spelling and the C SDK's productSecret; it is iotburn's
// name [NOT FROM A SOURCE: the kit's CSV has no product secret].
var TencentKeys = Keys{Namespace: "qcloud-key", ProductID: "product_id", DeviceName: "device_name", DeviceSecret: "device_secret", Region: "region",
	ProductSecret: "product_secret", DeviceCert: "dev_cert", DevicePrivateKey: "priv_key"}

// AliyunKeys are the names Espressif's Alibaba Cloud kit reads: namespace
// "aliyun-key", keys ProductKey, DeviceName, DeviceSecret, from
// espressif/esp-aliyun config/mass_mfg/single_mfg_config.csv (commit
// 0c984fa). That kit has no region key, so none is written. "ProductSecret"
// for product-level credentials follows the kit's spelling of the other keys
// (the API's field names); it is iotburn's choice [NOT FROM A SOURCE].
//
// A gateway's kit goes under "SubProductKey" and "SubDevName1"…"SubDevNameN"
// in the same namespace: the Aliyun docs say to "burn the ProductKey of each
// sub-device on the gateway", and name no key; these follow the kit's
// spelling and are iotburn's [NOT FROM A SOURCE], read by the simulator's
// gateway app (burner/sim esp32_gateway.go).
var AliyunKeys = Keys{Namespace: "aliyun-key", ProductID: "ProductKey", DeviceName: "DeviceName", DeviceSecret: "DeviceSecret",
	ProductSecret: "ProductSecret", DeviceCert: "dev_cert", DevicePrivateKey: "priv_key",
	SubProduct: "SubProductKey", SubDevice: "SubDevName"}

// DefaultKeys returns the key set for a platform ("tencent", "aliyun").
func DefaultKeys(platform string) (Keys, error) {
	switch platform {
	case registry.Tencent:
		return TencentKeys, nil
	case registry.Aliyun:
		return AliyunKeys, nil
	}
	return Keys{}, fmt.Errorf("nvs: no default NVS key names for platform %q: set the namespace and key names", platform)
}

// Format renders one credential as an NVS partition: one namespace holding
// the product id, device name, device secret (a product-level credential has
// none), product secret (when set) and region (when set) as strings, in that
// order, so the image is byte-identical to what
// nvs_partition_gen.py makes from the equivalent CSV
// (testdata/nvs/cred_tencent.csv).
type Format struct {
	Size    int     // partition size in bytes; 0 means DefaultSize
	Version Version // 0 means V2
	Keys    Keys    // zero value: DefaultKeys(credential's platform)
}

func (f Format) Name() string { return "nvs" }
func (f Format) Ext() string  { return ".bin" }

// CarriesCert: a certificate device's certificate and key go under
// Keys.DeviceCert and Keys.DevicePrivateKey.
func (f Format) CarriesCert() bool { return true }

// CarriesSubDevice: an NVS partition holds a sub-device's product and name
// alone (templates.CarriesSubDevice).
func (f Format) CarriesSubDevice() bool { return true }

// CarriesKit reports whether the format has key names for a gateway's kit
// (templates.CarriesKit): the Aliyun defaults do, the Tencent ones do not
// (Tencent's AT gateway is told its sub-devices by its host instead).
func (f Format) CarriesKit(platform string) bool {
	keys := f.Keys
	if keys == (Keys{}) {
		keys, _ = DefaultKeys(platform)
	}
	return keys.SubProduct != "" && keys.SubDevice != ""
}

// ErrNoKitKeys: a gateway's kit given to a format with no key names for it.
var ErrNoKitKeys = errors.New("no NVS key names for a gateway's kit")

// kitEntries are the kit's NVS strings.
func kitEntries(keys Keys, c registry.Credential) ([]Entry, error) {
	k := c.Kit
	if k == nil {
		return nil, nil
	}
	if keys.SubProduct == "" || keys.SubDevice == "" {
		return nil, fmt.Errorf("nvs: gateway %q: %w", c.DeviceName, ErrNoKitKeys)
	}
	if k.SubProduct == "" || len(k.SubDevices) == 0 {
		return nil, fmt.Errorf("nvs: gateway %q: its kit has no sub-device product or no sub-devices", c.DeviceName)
	}
	out := make([]Entry, 0, 1+len(k.SubDevices))
	out = append(out, Entry{Namespace: keys.Namespace, Key: keys.SubProduct, Kind: String, Str: k.SubProduct})
	for i, name := range k.SubDevices {
		if name == "" {
			return nil, fmt.Errorf("nvs: gateway %q: sub-device %d of its kit has no name", c.DeviceName, i+1)
		}
		out = append(out, Entry{Namespace: keys.Namespace, Key: keys.SubDevice + strconv.Itoa(i+1), Kind: String, Str: name})
	}
	return out, nil
}

// Render returns the partition image. It holds the secret: callers write it
// 0600 and never log it.
func (f Format) Render(c registry.Credential) ([]byte, error) {
	keys := f.Keys
	if keys == (Keys{}) {
		var err error
		if keys, err = DefaultKeys(c.Platform); err != nil {
			return nil, err
		}
	}
	if keys.Namespace == "" {
		return nil, fmt.Errorf("nvs: no namespace name for the credential")
	}
	// A product-level credential has no device secret: the firmware
	// registers with the product secret, which must then have a key.
	productLevel := c.ProductSecret != "" && c.DeviceSecret == ""
	if productLevel && keys.ProductSecret == "" {
		return nil, fmt.Errorf("nvs: %q is a product-level credential but no key name is set for the product secret", c.DeviceName)
	}
	cert := c.IsCert()
	if c.SubDevice && (cert || c.DeviceSecret != "" || c.ProductSecret != "" || c.Kit != nil) {
		return nil, fmt.Errorf("nvs: sub-device %q carries a secret or a kit: a sub-device board holds its product and name only", c.DeviceName)
	}
	if cert {
		if err := f.checkCert(keys, c); err != nil {
			return nil, err
		}
	}
	for _, fv := range []struct{ what, key, v string }{
		{"product id", keys.ProductID, c.ProductID},
		{"device name", keys.DeviceName, c.DeviceName},
		{"device secret", keys.DeviceSecret, c.DeviceSecret},
	} {
		// A per-product partition (one image for every board of a product)
		// has no name either: the firmware names itself, from its MAC.
		if fv.key != "" && fv.v == "" && !(productLevel && fv.what != "product id") && !((cert || c.SubDevice) && fv.what == "device secret") {
			return nil, fmt.Errorf("nvs: %s of %q is empty", fv.what, c.DeviceName)
		}
	}
	entries := make([]Entry, 0, 8)
	entries = append(entries, Entry{Namespace: keys.Namespace, Key: keys.Namespace, Kind: Namespace})
	for _, kv := range [...]struct{ key, v string }{
		{keys.ProductID, c.ProductID},
		{keys.DeviceName, c.DeviceName},
		{keys.DeviceSecret, c.DeviceSecret},
		{keys.ProductSecret, c.ProductSecret},
		{keys.Region, c.Region},
		{keys.DeviceCert, c.DeviceCert},
		{keys.DevicePrivateKey, c.DevicePrivateKey},
	} {
		if kv.key != "" && kv.v != "" {
			entries = append(entries, Entry{Namespace: keys.Namespace, Key: kv.key, Kind: String, Str: kv.v})
		}
	}
	kit, err := kitEntries(keys, c)
	if err != nil {
		return nil, err
	}
	entries = append(entries, kit...)
	size := f.Size
	if size == 0 {
		size = DefaultSize
	}
	img, err := Generate(entries, size, f.Version)
	if err != nil {
		if c.Kit != nil {
			return nil, fmt.Errorf("%w (gateway %s with a kit of %d sub-devices: a %d-byte partition may hold fewer)", err, c.DeviceName, len(c.Kit.SubDevices), size)
		}
		return nil, fmt.Errorf("%w (device %s)", err, c.DeviceName)
	}
	return img, nil
}

// ErrCertTooLong marks a certificate or key longer than an NVS string can
// hold.
var ErrCertTooLong = errors.New("too long for an NVS string")

// maxString is the longest string (bytes, without its NUL) the generator
// writes: v2 3967, since a string takes one page and an item that would
// fill a page exactly moves to the next (3968 with the NUL,
// shared/reference/espressif.md §1.8); v1 1983 (1984 with the NUL, §1.9).
func maxString(v Version) int {
	if v == V1 {
		return 1983
	}
	return 3967
}

// checkCert refuses, before anything is written, a certificate credential
// the partition cannot carry: no key names for its two halves, one half
// missing, or a PEM longer than an NVS string (a firmware reading it with
// nvs_get_str could not take a blob; a longer chain needs another
// partition layout). The error names the part, never the key's content.
func (f Format) checkCert(keys Keys, c registry.Credential) error {
	if keys.DeviceCert == "" || keys.DevicePrivateKey == "" {
		return fmt.Errorf("nvs: %q is a certificate device but no key name is set for its certificate or private key (--nvs-key-cert, --nvs-key-private-key)", c.DeviceName)
	}
	if c.DeviceCert == "" || c.DevicePrivateKey == "" {
		return fmt.Errorf("nvs: certificate device %q lacks its certificate or its private key in the ledger", c.DeviceName)
	}
	for _, p := range []struct{ what, v string }{{"certificate", c.DeviceCert}, {"private key", c.DevicePrivateKey}} {
		if n, max := len(p.v), maxString(f.Version); n > max {
			return fmt.Errorf("nvs: the %s of %q is %d bytes, an NVS v%d string holds at most %d: %w", p.what, c.DeviceName, n, f.version(), max, ErrCertTooLong)
		}
	}
	return nil
}

func (f Format) version() int {
	if f.Version == V1 {
		return 1
	}
	return 2
}

// ErrMismatch: a partition read back does not hold the credential.
var ErrMismatch = errors.New("partition does not hold the credential")

// Check parses a partition read back from a board and compares every
// credential key with c; a difference names the key, never a secret value.
func (f Format) Check(img []byte, c registry.Credential) error {
	keys := f.Keys
	if keys == (Keys{}) {
		var err error
		if keys, err = DefaultKeys(c.Platform); err != nil {
			return err
		}
	}
	items, err := Read(img)
	if err != nil {
		return err
	}
	got := make(map[string]any, len(items))
	for _, it := range items {
		if it.Namespace == keys.Namespace {
			got[it.Key] = it.Value
		}
	}
	wants := []struct{ key, want string }{
		{keys.ProductID, c.ProductID},
		{keys.DeviceName, c.DeviceName},
		{keys.DeviceSecret, c.DeviceSecret},
		{keys.ProductSecret, c.ProductSecret},
		{keys.Region, c.Region},
		{keys.DeviceCert, c.DeviceCert},
		{keys.DevicePrivateKey, c.DevicePrivateKey},
	}
	kit, err := kitEntries(keys, c)
	if err != nil {
		return err
	}
	for _, e := range kit {
		wants = append(wants, struct{ key, want string }{e.Key, e.Str})
	}
	for _, kv := range wants {
		if kv.key == "" || kv.want == "" {
			continue
		}
		v, ok := got[kv.key]
		switch {
		case !ok:
			return fmt.Errorf("nvs: key %s/%s is missing: %w", keys.Namespace, kv.key, ErrMismatch)
		case v != kv.want:
			return fmt.Errorf("nvs: key %s/%s holds another value than the ledger's: %w", keys.Namespace, kv.key, ErrMismatch)
		}
	}
	return nil
}
