package templates

import (
	"encoding/json"
	"fmt"

	"github.com/iotburn/iotburn/registry"
)

// Field limits of the Alibaba IoT device SDKs (iotkit-embedded
// src/infra/infra_defs.h: PRODUCT_KEY_LEN 20, DEVICE_NAME_LEN 32,
// DEVICE_SECRET_LEN 64; shared/reference/aliyun.md §6). The AT firmware
// length-checks each field against the same constants and answers
// +CME ERROR:50, so refuse longer values before a board is touched.
const (
	aliMaxProductKey = 20
	aliMaxName       = 32
	aliMaxSecret     = 64
	aliMaxPrdSecret  = 64 // PRODUCT_SECRET_LEN
)

// aliField checks one value for the AT command and the JSON file: present,
// short enough, and free of what the firmware's parser cannot carry. Its
// write handler splits the argument on `","` with no escape, so a '"' or ','
// inside a value would shift the fields; platform values never hold them
// (ProductKey and DeviceSecret are alphanumeric, names [A-Za-z0-9_@.:-]).
func aliField(format, what, v string, max int) error {
	if v == "" {
		return fmt.Errorf("%s: %s is empty", format, what)
	}
	if len(v) > max {
		return fmt.Errorf("%s: %s is %d characters, the device SDK takes at most %d", format, what, len(v), max)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '"' || c == ',' || c < 0x20 || c == 0x7f {
			return fmt.Errorf("%s: %s holds %q, which the AT firmware cannot carry", format, what, c)
		}
	}
	return nil
}

func aliCheck(format string, c registry.Credential) error {
	if err := aliField(format, "product key", c.ProductID, aliMaxProductKey); err != nil {
		return err
	}
	if err := aliField(format, "device name", c.DeviceName, aliMaxName); err != nil {
		return err
	}
	// Never the value itself in the error: it is the secret.
	if c.ProductSecret != "" {
		if err := aliField(format, "product secret", c.ProductSecret, aliMaxPrdSecret); err != nil {
			return fmt.Errorf("%s: product secret for %s is unusable (over %d characters, or holding '\"', ',' or a control character)",
				format, c.DeviceName, aliMaxPrdSecret)
		}
	}
	if productLevel(c) {
		return nil // the board gets its DeviceSecret by registering
	}
	if err := aliField(format, "device secret", c.DeviceSecret, aliMaxSecret); err != nil {
		return fmt.Errorf("%s: device secret of %s is unusable (empty, over %d characters, or holding '\"', ',' or a control character)",
			format, c.DeviceName, aliMaxSecret)
	}
	return nil
}

// AliyunAT renders the command Alibaba's IoT AT module firmware ("直连固件",
// AliOS Things based, helpcdn.aliyun.com/document_detail/158277.html) takes
// to store the device triple:
//
//	AT+IDMAU="PRODUCT_KEY","DEVICE_NAME","DEVICE_SECRET","PRODUCT_SECRET"
//
// one line, CRLF-terminated, answered with OK (or +CME ERROR:50 for a
// malformed or too long field). Every field is double-quoted. With a
// device-level secret ("unique certificate per device") there is no
// ProductSecret to give, so the fourth field is the empty string "": the
// handler still sees four fields, and stores an empty ProductSecret.
//
// Read-back: AT+IDMAU? answers with the stored values themselves, unquoted,
//
//	+IDMAU:<pk>,<dn>,<ds>,<ps>
//	OK
//
// so the burner compares the secret itself (unlike Tencent's checksum).
//
// A product-level credential ("one-type-one-secret": ProductSecret, no
// DeviceSecret) leaves the third field empty and fills the fourth, the form
// the LinkSDK's AT header lists for one-type-one-secret (aliyun.md §5):
//
//	AT+IDMAU="PRODUCT_KEY","DEVICE_NAME","","PRODUCT_SECRET"
//
// and the board obtains its DeviceSecret (or a registration-free token) by
// registering itself. A credential holding both secrets writes both.
type AliyunAT struct{}

func (AliyunAT) Name() string { return "aliyun-at" }
func (AliyunAT) Ext() string  { return ".at" }

func (AliyunAT) Render(c registry.Credential) ([]byte, error) {
	if err := refuseCert("aliyun-at", c); err != nil {
		return nil, err
	}
	if err := aliCheck("aliyun-at", c); err != nil {
		return nil, err
	}
	return []byte(fmt.Sprintf("AT+IDMAU=\"%s\",\"%s\",\"%s\",\"%s\"\r\n", c.ProductID, c.DeviceName, c.DeviceSecret, c.ProductSecret)), nil
}

// AliyunJSON renders the device triple as a JSON object with the platform's
// own key spelling, ProductKey / DeviceName / DeviceSecret: the field names
// of the IoT API (RegisterDevice, QueryDeviceDetail) and of the device
// certificate JSON the IoT Platform console copies out. An application or a
// Link SDK example adapted to read its triple from a file reads these three
// keys. (The LinkSDK C demos, e.g. demos/mqtt_basic_demo.c, hard-code
// product_key/device_name/device_secret strings instead of reading a file;
// no official example file reading this exact JSON was found, so the
// spelling follows the API.)
//
//	{
//	    "ProductKey": "a1X2bEnP82z",
//	    "DeviceName": "example1",
//	    "DeviceSecret": "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe"
//	}
//
// A product-level credential has "ProductSecret" (the API's spelling, as in
// QueryProduct) in place of "DeviceSecret": the absent DeviceSecret is what
// tells the application to register first.
type AliyunJSON struct{}

func (AliyunJSON) Name() string { return "aliyun-json" }
func (AliyunJSON) Ext() string  { return ".json" }

type aliyunTriple struct {
	ProductKey    string `json:"ProductKey"`
	DeviceName    string `json:"DeviceName"`
	DeviceSecret  string `json:"DeviceSecret,omitempty"`
	ProductSecret string `json:"ProductSecret,omitempty"`
}

func (AliyunJSON) Render(c registry.Credential) ([]byte, error) {
	if err := refuseCert("aliyun-json", c); err != nil {
		return nil, err
	}
	if err := aliCheck("aliyun-json", c); err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(aliyunTriple{ProductKey: c.ProductID, DeviceName: c.DeviceName,
		DeviceSecret: c.DeviceSecret, ProductSecret: c.ProductSecret}, "", "    ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
