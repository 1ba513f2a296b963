package templates

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/iotburn/iotburn/registry"
)

// Field limits of the Tencent IoT AT firmware (AT+TCDEVINFOSET, see
// shared/reference/tencent.md §6): longer values are refused by the module,
// so refuse them here, before a board is touched.
const (
	tcMaxProductID  = 10
	tcMaxName       = 48
	tcMaxSecret     = 44
	tcMaxPrdSecret  = 32 // AT+TCPRDINFOSET; MAX_SIZE_OF_PRODUCT_SECRET in the C SDK
	tcMaxRegion     = 24
	tcMaxCommand    = 256
	tcDefaultTLS    = 1 // TLS with key: the only mode every module supports
	tcDefaultRegion = "ap-guangzhou"
)

// TencentAT renders the Tencent IoT AT firmware's device-info command:
//
//	AT+TCDEVINFOSET=1,"PRODUCTID","NAME","SECRET","ap-guangzhou"
//
// one line, CRLF-terminated. The burner sends it and reads it back with
// AT+TCDEVINFOSET?, which returns the secret's XOR checksum, not the secret.
//
// A product-level credential (ProductSecret, no DeviceSecret) renders the
// product-info command instead, which the module keeps for AT+TCDEVREG
// (dynamic registration, tencent.md §6):
//
//	AT+TCPRDINFOSET=1,"PRODUCTID","PRODUCTSECRET","NAME","ap-guangzhou"
//
// read back with AT+TCPRDINFOSET?, again as the secret's checksum.
//
// A certificate device renders the certificate sequence of the firmware's
// command set ("腾讯云 IoT MQTT AT 指令" V3.1.3 §7.2; only the cellular
// modules' firmware has these commands, the ESP8266's does not):
//
//	AT+TCCERTADD="NAME.crt",<size>
//	<the certificate, size bytes>
//	AT+TCCERTADD="NAME.key",<size>
//	<the private key, size bytes>
//	AT+TCDEVINFOSET=2,"PRODUCTID","NAME","NAME.crt"
//
// Each file's bytes follow its line in the image; the burner sends them
// after the module's ">" prompt (burner/at RunScript). The two files share
// their name, ".crt" and ".key" (§2.3 asks for that), and the name is the
// device's, as in Tencent's test report of the M6315 module
// ("test_VM_1.crt" for device test_VM_1). The image holds the private key:
// it is written 0600 like every image.
type TencentAT struct{}

func (TencentAT) Name() string { return "tencent-at" }
func (TencentAT) Ext() string  { return ".at" }

// CarriesCert: the certificate sequence above.
func (TencentAT) CarriesCert() bool { return true }

// tcMaxCertFile is the most a file of AT+TCCERTADD holds (the M6315's
// AT+TCCERTADD=? "CERT_SIZE (1-4096)"); its name is held to the C SDK's
// tcMaxCertFileName (below).
const tcMaxCertFile = 4096

func (TencentAT) Render(c registry.Credential) ([]byte, error) {
	if c.IsCert() {
		return tencentCertAT(c)
	}
	region := c.Region
	// The secret's field and command differ between the two levels; the
	// message names the field, never its value.
	secret := struct {
		what, v string
		max     int
	}{"device secret", c.DeviceSecret, tcMaxSecret}
	if productLevel(c) {
		secret.what, secret.v, secret.max = "product secret", c.ProductSecret, tcMaxPrdSecret
	}
	for _, f := range []struct {
		what, v string
		max     int
	}{
		{"product id", c.ProductID, tcMaxProductID},
		{"device name", c.DeviceName, tcMaxName},
		secret,
		{"region", region, tcMaxRegion},
	} {
		if f.v == "" && f.what != "region" {
			return nil, fmt.Errorf("tencent-at: %s is empty", f.what)
		}
		if len(f.v) > f.max {
			return nil, fmt.Errorf("tencent-at: %s is %d characters, the AT firmware takes at most %d", f.what, len(f.v), f.max)
		}
	}
	line := fmt.Sprintf("AT+TCDEVINFOSET=%d,%s,%s,%s", tcDefaultTLS,
		atQuote(c.ProductID), atQuote(c.DeviceName), atQuote(c.DeviceSecret))
	if productLevel(c) { // the product secret comes before the name here
		line = fmt.Sprintf("AT+TCPRDINFOSET=%d,%s,%s,%s", tcDefaultTLS,
			atQuote(c.ProductID), atQuote(c.ProductSecret), atQuote(c.DeviceName))
	}
	if region != "" { // the firmware defaults to ap-guangzhou
		line += "," + atQuote(region)
	}
	line += "\r\n"
	if len(line)-2 > tcMaxCommand {
		return nil, fmt.Errorf("tencent-at: command for %s is %d bytes, the AT firmware takes at most %d", c.DeviceName, len(line)-2, tcMaxCommand)
	}
	return []byte(line), nil
}

// tencentCertAT is TencentAT's certificate form.
func tencentCertAT(c registry.Credential) ([]byte, error) {
	switch {
	case c.ProductID == "" || c.DeviceName == "":
		return nil, fmt.Errorf("tencent-at: product id and device name are both needed (certificate device %q)", c.DeviceName)
	case len(c.ProductID) > tcMaxProductID:
		return nil, fmt.Errorf("tencent-at: product id is %d characters, the AT firmware takes at most %d", len(c.ProductID), tcMaxProductID)
	case len(c.DeviceName) > tcMaxName:
		return nil, fmt.Errorf("tencent-at: device name is %d characters, the AT firmware takes at most %d", len(c.DeviceName), tcMaxName)
	case len(c.DeviceName)+len(".crt") > tcMaxCertFileName:
		return nil, fmt.Errorf("tencent-at: certificate file name for %s is over %d characters", c.DeviceName, tcMaxCertFileName)
	}
	crt, key := c.DeviceName+".crt", c.DeviceName+".key"
	var b strings.Builder
	for _, f := range []struct{ what, name, data string }{
		{"certificate", crt, c.DeviceCert},
		{"private key", key, c.DevicePrivateKey},
	} {
		if len(f.data) == 0 || len(f.data) > tcMaxCertFile {
			return nil, fmt.Errorf("tencent-at: device %s's %s is %d bytes, the AT firmware takes 1 to %d", c.DeviceName, f.what, len(f.data), tcMaxCertFile)
		}
		fmt.Fprintf(&b, "AT+TCCERTADD=%s,%d\r\n%s\r\n", atQuote(f.name), len(f.data), f.data)
	}
	line := fmt.Sprintf("AT+TCDEVINFOSET=2,%s,%s,%s", atQuote(c.ProductID), atQuote(c.DeviceName), atQuote(crt))
	if len(line) > tcMaxCommand {
		return nil, fmt.Errorf("tencent-at: command for %s is %d bytes, the AT firmware takes at most %d", c.DeviceName, len(line), tcMaxCommand)
	}
	b.WriteString(line + "\r\n")
	return []byte(b.String()), nil
}

// atQuote quotes an AT string parameter. The firmware wants '"', ',' and '\'
// inside a parameter escaped with a backslash.
func atQuote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"', ',', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// TencentJSON renders the device_info.json that Tencent's C device SDK reads
// (qcloud-iot-sdk-embedded-c, HAL_Device_linux.c), in key mode; for a
// certificate device, in certificate mode (below). For a
// product-level credential it fills productSecret and leaves the device
// secret at the SDK's "YOUR_IOT_PSK" sentinel, which makes the SDK register
// dynamically on first start and rewrite the file with the PSK it obtained
// (tencent.md §5).
type TencentJSON struct{}

func (TencentJSON) Name() string { return "tencent-json" }
func (TencentJSON) Ext() string  { return ".json" }

type tencentDeviceInfo struct {
	AuthMode      string `json:"auth_mode"`
	ProductID     string `json:"productId"`
	ProductSecret string `json:"productSecret"`
	DeviceName    string `json:"deviceName"`
	KeyDeviceInfo *struct {
		DeviceSecret string `json:"deviceSecret"`
	} `json:"key_deviceinfo,omitempty"`
	CertDeviceInfo *tencentCertInfo `json:"cert_deviceinfo,omitempty"`
	Region         string           `json:"region,omitempty"`
}

// tencentCertInfo is the SDK's certificate form: the names of the
// certificate and key files, which its samples open under ./certs/
// (samples/mqtt/mqtt_sample.c: current_path/certs/dev_cert_file_name),
// each at most MAX_SIZE_OF_DEVICE_CERT_FILE_NAME (128) characters
// (include/qcloud_iot_export.h). The names iotburn gives them are the
// SDK's own defaults with the device's name in (HAL_Device_linux.c:
// "YOUR_DEVICE_NAME_cert.crt", "YOUR_DEVICE_NAME_private.key").
type tencentCertInfo struct {
	DevCertFile       string `json:"devCertFile"`
	DevPrivateKeyFile string `json:"devPrivateKeyFile"`
}

// tcMaxCertFileName is MAX_SIZE_OF_DEVICE_CERT_FILE_NAME (and
// MAX_SIZE_OF_DEVICE_SECRET_FILE_NAME for the key's).
const tcMaxCertFileName = 128

// tencentCertFiles are a certificate device's file names, in certs/.
func tencentCertFiles(name string) (cert, key string) {
	return name + "_cert.crt", name + "_private.key"
}

func (TencentJSON) CarriesCert() bool { return true }

// Files is the device_info.json (named after the device) and, for a
// certificate device, certs/NAME_cert.crt and certs/NAME_private.key: lay
// them out beside the SDK's binary as device_info.json and certs/.
func (t TencentJSON) Files(c registry.Credential) ([]File, error) {
	js, err := t.Render(c)
	if err != nil {
		return nil, err
	}
	files := []File{{Name: c.DeviceName + t.Ext(), Data: js}}
	if c.IsCert() {
		cert, key := tencentCertFiles(c.DeviceName)
		files = append(files, File{Name: "certs/" + cert, Data: []byte(c.DeviceCert)}, File{Name: "certs/" + key, Data: []byte(c.DevicePrivateKey)})
	}
	return files, nil
}

// Placeholders of the SDK's sample device_info.json: the SDK treats them as
// "not set" (tencent.md §5).
const (
	tcNoProductSecret = "YOUR_PRODUCT_SECRET"
	tcNoDeviceSecret  = "YOUR_IOT_PSK" // "register first"
)

func (TencentJSON) Render(c registry.Credential) ([]byte, error) {
	if c.IsCert() {
		return tencentCertJSON(c)
	}
	if c.ProductID == "" || c.DeviceName == "" || (c.DeviceSecret == "" && c.ProductSecret == "") {
		return nil, fmt.Errorf("tencent-json: product id, device name and secret are all needed (device %q)", c.DeviceName)
	}
	if len(c.ProductSecret) > tcMaxPrdSecret {
		return nil, fmt.Errorf("tencent-json: product secret is %d characters, the device SDK takes at most %d", len(c.ProductSecret), tcMaxPrdSecret)
	}
	info := tencentDeviceInfo{AuthMode: "KEY", ProductID: c.ProductID, DeviceName: c.DeviceName, Region: c.Region}
	info.KeyDeviceInfo = &struct {
		DeviceSecret string `json:"deviceSecret"`
	}{}
	info.ProductSecret, info.KeyDeviceInfo.DeviceSecret = tcNoProductSecret, c.DeviceSecret
	if c.ProductSecret != "" {
		info.ProductSecret = c.ProductSecret
	}
	if productLevel(c) {
		info.KeyDeviceInfo.DeviceSecret = tcNoDeviceSecret
	}
	out, err := json.MarshalIndent(info, "", "    ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// tencentCertJSON is device_info.json in certificate mode: auth_mode
// "CERT" and cert_deviceinfo naming the two files (HAL_Device_linux.c
// reads KEY_DEV_CERT "cert_deviceinfo.devCertFile" and KEY_DEV_PRIVATE_KEY
// "cert_deviceinfo.devPrivateKeyFile" when built with AUTH_MODE_CERT). The
// file itself holds no secret; the key file does.
func tencentCertJSON(c registry.Credential) ([]byte, error) {
	if c.ProductID == "" || c.DeviceName == "" || c.DeviceCert == "" || c.DevicePrivateKey == "" {
		return nil, fmt.Errorf("tencent-json: product id, device name, certificate and private key are all needed (certificate device %q)", c.DeviceName)
	}
	cert, key := tencentCertFiles(c.DeviceName)
	if len(key) > tcMaxCertFileName {
		return nil, fmt.Errorf("tencent-json: the key file name of %s is %d characters, the device SDK takes at most %d", c.DeviceName, len(key), tcMaxCertFileName)
	}
	info := tencentDeviceInfo{AuthMode: "CERT", ProductID: c.ProductID, DeviceName: c.DeviceName, Region: c.Region,
		ProductSecret: tcNoProductSecret, CertDeviceInfo: &tencentCertInfo{DevCertFile: cert, DevPrivateKeyFile: key}}
	out, err := json.MarshalIndent(info, "", "    ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
