package at

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/iotburn/iotburn/registry"
)

// Identity is what a module says about itself, or what its label says
// (Serial only comes from a label).
type Identity struct {
	Module, Firmware, MAC, IMEI, Serial string
	// complete: every identity command answered (AT+TCMODULE said OK), so
	// no id is missing for a glitch.
	complete bool
}

// HardwareID is the key the ledger binds a credential to: the MAC
// ("aa:bb:cc:dd:ee:ff") when the module has one, else "imei:<n>", else
// "sn:<serial>", else "".
func (id Identity) HardwareID() string {
	switch {
	case id.MAC != "":
		return strings.ToLower(id.MAC)
	case id.IMEI != "":
		return "imei:" + id.IMEI
	case id.Serial != "":
		return "sn:" + id.Serial
	}
	return ""
}

// ParseLabel reads what a barcode scanner typed from a board's label: a MAC
// in any common spelling, an IMEI (15 digits, Luhn-valid), or else a serial
// number of 4 to 64 letters, digits and "-_.:/". Anything else is refused.
func ParseLabel(s string) (Identity, error) {
	s = strings.TrimSpace(s)
	if mac := normalizeMAC(s); mac != "" {
		return Identity{MAC: mac}, nil
	}
	if len(s) == 15 && strings.Trim(s, "0123456789") == "" {
		if !luhnOK(s) {
			return Identity{}, fmt.Errorf("label %q is 15 digits but not a valid IMEI (check digit): scan it again", s)
		}
		return Identity{IMEI: s}, nil
	}
	if len(s) < 4 || len(s) > 64 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/") != "" {
		return Identity{}, fmt.Errorf("label %q is neither a MAC, an IMEI nor a serial number (4-64 letters, digits, -_.:/): scan it again", clipLabel(s))
	}
	return Identity{Serial: s}, nil
}

func clipLabel(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// luhnOK is the IMEI check digit test.
func luhnOK(s string) bool {
	sum := 0
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if (len(s)-1-i)%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// identifyTencent reads the module's name, firmware and MAC (AT+TCMODULE)
// and its IMEI (AT+CGSN). Either may be missing (a Wi-Fi module has no IMEI,
// a cellular one may lack TCMODULE); having neither is an error.
func (d *Driver) identifyTencent(ctx context.Context) (Identity, error) {
	var id Identity
	r, err := d.c.command(ctx, "AT+TCMODULE", d.timeout())
	if err != nil {
		return id, d.fail("AT+TCMODULE", err)
	}
	if r.ok() {
		id = parseModule(r.lines)
		id.complete = true
	}
	imei, err := d.imei(ctx)
	if err != nil {
		return id, err
	}
	if imei != "" { // else the IMEI AT+TCMODULE printed, if any
		id.IMEI = imei
	}
	if id.HardwareID() == "" {
		return id, fmt.Errorf("board on %s reports neither a MAC (AT+TCMODULE) nor an IMEI (AT+CGSN): is it running the Tencent AT firmware?: %w",
			d.port.Name(), ErrRefused)
	}
	return id, nil
}

// DevInfo is the Tencent device info as AT+TCDEVINFOSET? reports it: the
// secret only as its BCC.
type DevInfo struct {
	TLSMode    int
	ProductID  string
	DeviceName string
	SecretBCC  int
	Region     string
	// CertName is the certificate file of TLS mode 2 (a cellular module's
	// certificate device), in place of SecretBCC and Region.
	CertName string
}

// TencentDevInfo reads the stored device info. A module with nothing stored
// answers a bare OK (the simulator does so; see sim's tencent.go) or a line
// with an empty product id: both give the zero DevInfo and no error.
func (d *Driver) TencentDevInfo(ctx context.Context) (DevInfo, error) {
	const name = "AT+TCDEVINFOSET?"
	r, err := d.c.command(ctx, name, d.timeout())
	if err != nil {
		return DevInfo{}, d.fail(name, err)
	}
	if !r.ok() {
		return DevInfo{}, d.refused(name, r, name)
	}
	for _, l := range r.lines {
		body, ok := cutResponse(l, "+TCDEVINFOSET")
		if !ok {
			continue
		}
		info, ok := parseDevInfo(body)
		if !ok {
			return DevInfo{}, fmt.Errorf("board on %s answered %s with a line iotburn cannot read: %w", d.port.Name(), name, ErrGarbage)
		}
		if info.ProductID == "" {
			return DevInfo{}, nil
		}
		return info, nil
	}
	return DevInfo{}, nil
}

// VerifyTencent reads the device info back and compares it with want: product
// id, device name, the secret's BCC, and the region when want names one. A
// mismatch names every field that differs, never the secret. A product-level
// want (ProductSecret, no DeviceSecret) is compared with the product info
// instead (AT+TCPRDINFOSET?), which stays as burned after registration.
func (d *Driver) VerifyTencent(ctx context.Context, want registry.Credential) error {
	if want.IsCert() {
		return d.verifyTencentCert(ctx, want)
	}
	what, secret := "device", want.DeviceSecret
	var got DevInfo
	var err error
	if productLevel(want) {
		var pi ProductInfo
		pi, err = d.TencentProductInfo(ctx)
		got, what, secret = DevInfo{TLSMode: pi.TLSMode, ProductID: pi.ProductID, DeviceName: pi.DeviceName, SecretBCC: pi.SecretBCC, Region: pi.Region}, "product", want.ProductSecret
	} else {
		got, err = d.TencentDevInfo(ctx)
	}
	if err != nil {
		return err
	}
	port := d.port.Name()
	if got == (DevInfo{}) {
		return fmt.Errorf("board on %s holds no Tencent %s info (want %s/%s): burn it again: %w",
			port, what, want.ProductID, want.DeviceName, ErrMismatch)
	}
	var bad []string
	if got.ProductID != want.ProductID {
		bad = append(bad, fmt.Sprintf("product id is %q, want %q", got.ProductID, want.ProductID))
	}
	if got.DeviceName != want.DeviceName {
		bad = append(bad, fmt.Sprintf("device name is %q, want %q", got.DeviceName, want.DeviceName))
	}
	if got.SecretBCC != BCC(secret) {
		bad = append(bad, what+" secret differs (its checksum does not match)")
	}
	if got.CertName != "" {
		bad = append(bad, fmt.Sprintf("it holds certificate %s (TLS mode %d), want a %s secret", got.CertName, got.TLSMode, what))
	}
	if want.Region != "" && got.Region != "" && got.Region != want.Region { // "": a firmware that reports none
		bad = append(bad, fmt.Sprintf("region is %q, want %q", got.Region, want.Region))
	}
	if len(bad) > 0 {
		return fmt.Errorf("board on %s does not hold what was burned: %s: %w", port, strings.Join(bad, "; "), ErrMismatch)
	}
	return nil
}

// imei asks AT+CGSN, which every dialect shares; a module without one
// (Wi-Fi) refuses it, which is "" and no error.
func (d *Driver) imei(ctx context.Context) (string, error) {
	r, err := d.c.command(ctx, "AT+CGSN", d.timeout())
	if err != nil {
		return "", d.fail("AT+CGSN", err)
	}
	if !r.ok() {
		return "", nil
	}
	return parseIMEI(r.lines), nil
}

// restoreTencent wipes the Tencent device and product info (AT+TCRESTORE).
// The module answers OK, wipes, then reboots (AT command set V3.2.1 §2.5):
// it is deaf while it boots, prints the ROM's boot log and then "ready"
// (Espressif's AT core), echo on again. Restore waits for "ready" (up to
// BootTimeout; a module that never says it is left to the next Hello, which
// the caller must send anyway to turn echo off).
func (d *Driver) restoreTencent(ctx context.Context) error {
	const name = "AT+TCRESTORE"
	r, err := d.c.command(ctx, name, d.timeout())
	if err != nil {
		return d.fail(name, err)
	}
	if !r.ok() {
		return d.refused(name, r, name)
	}
	deadline := time.Now().Add(BootTimeout)
	for {
		l, err := d.c.readLine(ctx, deadline)
		switch {
		case err == nil && l == "ready":
			return nil
		case errors.Is(err, errTimeout):
			return nil // no banner seen: Hello will find out
		case err != nil:
			return d.fail(name, err)
		}
	}
}

// BootTimeout bounds the wait for "ready" after a module reboots.
const BootTimeout = 5 * time.Second

// BCC is the Tencent firmware's checksum of a secret: the XOR of all its
// bytes, which AT+TCDEVINFOSET? reports in decimal in place of the secret.
func BCC(s string) int {
	var x byte
	for i := 0; i < len(s); i++ {
		x ^= s[i]
	}
	return int(x)
}

// productLevel reports a product-level credential: a ProductSecret and no
// DeviceSecret (registry.Credential).
func productLevel(c registry.Credential) bool { return c.ProductSecret != "" && c.DeviceSecret == "" }
