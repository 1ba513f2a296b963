package nvs

import (
	"errors"
	"fmt"

	"github.com/iotburn/iotburn/registry"
)

// DefaultSize is the partition size Format uses when Size is 0: 0x6000 is
// ESP-IDF's default "nvs" partition and what `iotburn image` documents.
const DefaultSize = 0x6000

// Keys names the namespace and the keys a credential is stored under. An
// empty key name leaves that field out of the image. ProductSecret is only
// written for a credential that has one (product-level: the firmware
// registers itself with it).
type Keys struct {
	Namespace, ProductID, DeviceName, DeviceSecret, Region string
	ProductSecret                                          string
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
	ProductSecret: "product_secret"}

// AliyunKeys are the names Espressif's Alibaba Cloud kit reads: namespace
// "aliyun-key", keys ProductKey, DeviceName, DeviceSecret, from
// espressif/esp-aliyun config/mass_mfg/single_mfg_config.csv (commit
// 0c984fa). That kit has no region key, so none is written. "ProductSecret"
// for product-level credentials follows the kit's spelling of the other keys
// (the API's field names); it is iotburn's choice [NOT FROM A SOURCE].
var AliyunKeys = Keys{Namespace: "aliyun-key", ProductID: "ProductKey", DeviceName: "DeviceName", DeviceSecret: "DeviceSecret",
	ProductSecret: "ProductSecret"}

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
	for _, fv := range []struct{ what, key, v string }{
		{"product id", keys.ProductID, c.ProductID},
		{"device name", keys.DeviceName, c.DeviceName},
		{"device secret", keys.DeviceSecret, c.DeviceSecret},
	} {
		// A per-product partition (one image for every board of a product)
		// has no name either: the firmware names itself, from its MAC.
		if fv.key != "" && fv.v == "" && !(productLevel && fv.what != "product id") {
			return nil, fmt.Errorf("nvs: %s of %q is empty", fv.what, c.DeviceName)
		}
	}
	entries := make([]Entry, 0, 6)
	entries = append(entries, Entry{Namespace: keys.Namespace, Key: keys.Namespace, Kind: Namespace})
	for _, kv := range [...]struct{ key, v string }{
		{keys.ProductID, c.ProductID},
		{keys.DeviceName, c.DeviceName},
		{keys.DeviceSecret, c.DeviceSecret},
		{keys.ProductSecret, c.ProductSecret},
		{keys.Region, c.Region},
	} {
		if kv.key != "" && kv.v != "" {
			entries = append(entries, Entry{Namespace: keys.Namespace, Key: kv.key, Kind: String, Str: kv.v})
		}
	}
	size := f.Size
	if size == 0 {
		size = DefaultSize
	}
	img, err := Generate(entries, size, f.Version)
	if err != nil {
		return nil, fmt.Errorf("%w (device %s)", err, c.DeviceName)
	}
	return img, nil
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
	for _, kv := range [...]struct{ key, want string }{
		{keys.ProductID, c.ProductID},
		{keys.DeviceName, c.DeviceName},
		{keys.DeviceSecret, c.DeviceSecret},
		{keys.ProductSecret, c.ProductSecret},
		{keys.Region, c.Region},
	} {
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
