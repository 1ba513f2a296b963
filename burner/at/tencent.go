package at

import (
	"context"
	"fmt"
	"strings"

	"github.com/iotburn/iotburn/registry"
)

// Identity is what a module says about itself.
type Identity struct {
	Module, Firmware, MAC, IMEI string
}

// HardwareID is the key the ledger binds a credential to: the MAC
// ("aa:bb:cc:dd:ee:ff") when the module has one, else "imei:<n>", else "".
func (id Identity) HardwareID() string {
	switch {
	case id.MAC != "":
		return strings.ToLower(id.MAC)
	case id.IMEI != "":
		return "imei:" + id.IMEI
	}
	return ""
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
	}
	if id.IMEI, err = d.imei(ctx); err != nil {
		return id, err
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
	what, secret := "device", want.DeviceSecret
	var got DevInfo
	var err error
	if productLevel(want) {
		var pi ProductInfo
		pi, err = d.TencentProductInfo(ctx)
		got, what, secret = DevInfo(pi), "product", want.ProductSecret
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
	if want.Region != "" && got.Region != want.Region {
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
// A real module reboots after its OK, turning echo back on: call Hello
// before the next command.
func (d *Driver) restoreTencent(ctx context.Context) error {
	const name = "AT+TCRESTORE"
	r, err := d.c.command(ctx, name, d.timeout())
	if err != nil {
		return d.fail(name, err)
	}
	if !r.ok() {
		return d.refused(name, r, name)
	}
	return nil
}

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
