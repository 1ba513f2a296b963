package provision

import (
	"errors"
	"fmt"
	"strings"

	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates"
)

// Mode is how a batch's boards get their identity (DESIGN §2).
type Mode string

const (
	// ModeDevice: a device-level key per board, created beforehand.
	ModeDevice Mode = "device"
	// ModePreregistered: the product's key in every board; the board's own
	// name (SN/IMEI/MAC) was created beforehand; the board fetches its
	// secret by dynamic registration.
	ModePreregistered Mode = "product-preregistered"
	// ModeAutocreate (Tencent): like pre-registered, but the platform
	// creates the name when the board registers, within a quota.
	ModeAutocreate Mode = "product-autocreate"
	// ModeRegistrationFree (Aliyun): the product's key; the board gets a
	// ClientID + DeviceToken on its first connection.
	ModeRegistrationFree Mode = "registration-free"
)

// Modes lists the modes, for --help and errors.
var Modes = []Mode{ModeDevice, ModePreregistered, ModeAutocreate, ModeRegistrationFree}

// ParseMode reads --mode.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if string(m) == s {
			return m, nil
		}
	}
	names := make([]string, len(Modes))
	for i, m := range Modes {
		names[i] = string(m)
	}
	return "", fmt.Errorf("unknown --mode %q: use one of %s", s, strings.Join(names, ", "))
}

// ProductLevel reports whether every board gets the product's key.
func (m Mode) ProductLevel() bool { return m != ModeDevice && m != "" }

// NamesOnTheFly reports whether the line adds the board's name to the ledger
// itself (the platform creates the device when the board registers).
func (m Mode) NamesOnTheFly() bool { return m == ModeAutocreate || m == ModeRegistrationFree }

// CheckMode refuses a mode that does not fit the platform, or, where the
// platform says how the product is set up (p.Known), the product.
func CheckMode(m Mode, platform string, p *registry.Product) error {
	switch {
	case m == ModeRegistrationFree && platform != registry.Aliyun:
		return fmt.Errorf("--mode registration-free is Alibaba Cloud's (ClientID + DeviceToken): use --platform aliyun, or --mode product-autocreate on Tencent")
	case m == ModeAutocreate && platform != registry.Tencent:
		return fmt.Errorf("--mode product-autocreate is Tencent's (dynamic registration creates the device): on Aliyun use --mode registration-free")
	}
	if p == nil || !m.ProductLevel() {
		return nil
	}
	if p.Secret == "" {
		return fmt.Errorf("%s product %s has no ProductSecret the API shows: switch dynamic registration on for it in the console", platform, p.ID)
	}
	if !p.Known {
		return nil
	}
	switch {
	case !p.DynamicRegister:
		return fmt.Errorf("%s product %s has dynamic registration switched off: switch it on in the console, or use --mode device", platform, p.ID)
	case m == ModeAutocreate && !p.AutoCreate:
		return fmt.Errorf("%s product %s does not create devices on registration: switch auto-create on in the console, or create the names and use --mode product-preregistered", platform, p.ID)
	}
	return nil
}

// ErrModeBoard marks a mode the boards' firmware cannot run.
var ErrModeBoard = errors.New("the boards cannot run this mode")

// CheckBoardMode refuses, before the line starts, a mode the boards'
// firmware cannot run; board is the image format or board kind the line
// writes ("tencent-at", "aliyun-at", "nvs", …). Alibaba's IDMAU AT
// firmware keeps no registration-free ClientID/DeviceToken
// (atboard_register.go), so registration-free on aliyun-at boards is
// refused with the reason; product-preregistered runs there with the
// station registering each board's name.
func CheckBoardMode(m Mode, board string) error {
	if m == ModeRegistrationFree && board == "aliyun-at" {
		return fmt.Errorf("--mode registration-free on aliyun-at boards: %w: %s", ErrModeBoard, aliyunATNoFree)
	}
	return nil
}

// CheckNVSMode refuses, before the line starts, a product-level mode on
// ESP32 boards (--format nvs) of a platform whose kit cannot register
// itself: Espressif's Tencent kit (espressif/esp-qcloud) reads only a
// device key from fctry (esp_qcloud_device.c: product_id, device_name,
// device_secret) and has no dynamic registration, so a product-level
// partition makes it abort at boot.
func CheckNVSMode(m Mode, platform string) error {
	if m.ProductLevel() && platform == registry.Tencent {
		return fmt.Errorf("--mode %s on ESP32 boards of Tencent IoT Hub: %w: Espressif's Tencent kit (espressif/esp-qcloud) reads only a device key from fctry (product_id, device_name, device_secret) and has no dynamic registration; use tencent-at boards, or --mode device", m, ErrModeBoard)
	}
	return nil
}

// BoardName makes a product-level board's device name from its own id:
// "mac" gives the MAC as 12 upper-case hex digits, "imei" the IMEI; prefix
// goes in front.
func BoardName(from, prefix, mac, imei string) (string, error) {
	switch from {
	case "mac", "":
		if mac == "" {
			return "", fmt.Errorf("the board has no MAC: use --name-from imei")
		}
		return prefix + strings.ToUpper(strings.NewReplacer(":", "", "-", "").Replace(mac)), nil
	case "imei":
		if imei == "" {
			return "", fmt.Errorf("the board has no IMEI: use --name-from mac")
		}
		return prefix + imei, nil
	default:
		return "", fmt.Errorf("unknown --name-from %q: use mac or imei", from)
	}
}

// CheckCertFormat refuses, before the line starts, a line for a product
// whose devices have certificates (the ledger holds their keys) with a
// format that has no place for one: the boards would get nothing to log in
// with. Each refusal says why the boards cannot take a certificate.
func CheckCertFormat(l *ledger.Ledger, platform, product string, f templates.Format) error {
	if templates.CarriesCert(f) {
		return nil
	}
	cert, err := l.HasCertificates(platform, product)
	if err != nil || !cert {
		return err
	}
	why := "it has no place for a certificate and its private key"
	switch f.Name() {
	case "aliyun-at":
		// aliyun.md §5: AT+IDMAU takes ProductKey, DeviceName,
		// DeviceSecret and ProductSecret, and the firmware's cloud client
		// logs in only with a DeviceSecret; no command of it takes a
		// certificate.
		why = aliyunATNoCert
	}
	return fmt.Errorf("%s product %s has certificate devices, and --format %s cannot burn them: %w: %s: %w",
		platform, product, f.Name(), ErrModeBoard, why, templates.ErrNoCertForm)
}

const aliyunATNoCert = "Alibaba's IDMAU AT firmware has no certificate command: AT+IDMAU takes ProductKey, DeviceName, DeviceSecret and ProductSecret only " +
	"(YoC smart_living app_at_cmd.c), and its cloud client logs in with a DeviceSecret; burn X.509 devices onto ESP32 boards (--format nvs), or use a key product"
