package at

import (
	"context"
	"fmt"
	"strings"

	"github.com/iotburn/iotburn/registry"
)

// The Alibaba IoT AT firmware (reference/aliyun.md §5): the device triple is
// written with AT+IDMAU="PK","DN","DS","PS", answered by OK alone, and
// AT+IDMAU? reads back the stored values themselves, unquoted:
//
//	+IDMAU:<pk>,<dn>,<ds>,<ps>
//	OK
//
// Identification uses the ESP-AT core the firmware runs on: AT+GMR for the
// version block and AT+CIPSTAMAC? for the station MAC; AT+CGSN for the IMEI
// of a cellular module.

// identifyAliyun reads the firmware (AT+GMR), the station MAC
// (AT+CIPSTAMAC?) and the IMEI (AT+CGSN). Any of them may be refused; having
// neither a MAC nor an IMEI is an error.
func (d *Driver) identifyAliyun(ctx context.Context) (Identity, error) {
	var id Identity
	r, err := d.c.command(ctx, "AT+GMR", d.timeout())
	if err != nil {
		return id, d.fail("AT+GMR", err)
	}
	if r.ok() {
		id.Module, id.Firmware = parseGMR(r.lines)
	}
	const mac = "AT+CIPSTAMAC?"
	r, err = d.c.command(ctx, mac, d.timeout())
	if err != nil {
		return id, d.fail(mac, err)
	}
	if r.ok() {
		id.MAC = parseStaMAC(r.lines)
	}
	if id.IMEI, err = d.imei(ctx); err != nil {
		return id, err
	}
	if id.HardwareID() == "" {
		return id, fmt.Errorf("board on %s reports neither a MAC (AT+CIPSTAMAC?) nor an IMEI (AT+CGSN): is it running the Alibaba IoT AT firmware?: %w",
			d.port.Name(), ErrRefused)
	}
	return id, nil
}

// AliyunInfo is what AT+IDMAU? reports: the stored values, secrets included.
// Never log it.
type AliyunInfo struct {
	ProductKey, DeviceName, DeviceSecret, ProductSecret string
}

// AliyunDevInfo reads the stored triple and product secret. A module with
// nothing stored answers "+IDMAU:,,," (the handler prints empty strings):
// the zero AliyunInfo and no error.
func (d *Driver) AliyunDevInfo(ctx context.Context) (AliyunInfo, error) {
	const name = "AT+IDMAU?"
	r, err := d.c.command(ctx, name, d.timeout())
	if err != nil {
		return AliyunInfo{}, d.fail(name, err)
	}
	if !r.ok() {
		return AliyunInfo{}, d.refused(name, r, name)
	}
	for _, l := range r.lines {
		body, ok := cutResponse(l, "+IDMAU")
		if !ok {
			continue
		}
		info, ok := parseIDMAU(body)
		if !ok {
			// Not a word of the line: it may hold a secret.
			return AliyunInfo{}, fmt.Errorf("board on %s answered %s with a line iotburn cannot read: %w", d.port.Name(), name, ErrGarbage)
		}
		return info, nil
	}
	// OK without the +IDMAU: line is not what the handler does; treat it as
	// an answer we cannot read rather than as an empty board.
	return AliyunInfo{}, fmt.Errorf("board on %s answered %s without its +IDMAU: line: is it running the Alibaba IoT AT firmware?: %w",
		d.port.Name(), name, ErrGarbage)
}

// VerifyAliyun reads the triple back and compares it with want: product key
// (want.ProductID), device name and device secret. The product secret is not
// compared: a device-level credential burns it empty. A product-level want
// (ProductSecret, no DeviceSecret) is compared on product key, device name
// and product secret instead; the device secret is not, as the board may
// have registered and stored one since. A mismatch names every field that
// differs, never a secret.
func (d *Driver) VerifyAliyun(ctx context.Context, want registry.Credential) error {
	got, err := d.AliyunDevInfo(ctx)
	if err != nil {
		return err
	}
	port := d.port.Name()
	pl := productLevel(want)
	if got.ProductKey == "" && got.DeviceName == "" && got.DeviceSecret == "" && (!pl || got.ProductSecret == "") {
		return fmt.Errorf("board on %s holds no Alibaba device triple (want %s/%s): burn it again: %w",
			port, want.ProductID, want.DeviceName, ErrMismatch)
	}
	var bad []string
	if got.ProductKey != want.ProductID {
		bad = append(bad, fmt.Sprintf("product key is %q, want %q", got.ProductKey, want.ProductID))
	}
	if got.DeviceName != want.DeviceName {
		bad = append(bad, fmt.Sprintf("device name is %q, want %q", got.DeviceName, want.DeviceName))
	}
	switch {
	case pl && got.ProductSecret != want.ProductSecret:
		bad = append(bad, "product secret differs")
	case !pl && got.DeviceSecret != want.DeviceSecret:
		bad = append(bad, "device secret differs")
	}
	if len(bad) > 0 {
		return fmt.Errorf("board on %s does not hold what was burned: %s: %w", port, strings.Join(bad, "; "), ErrMismatch)
	}
	return nil
}

// restoreAliyun wipes the triple by writing four empty fields: the handler
// accepts empty values and stores them, and it is the one wipe every
// firmware with AT+IDMAU has (AT+RESTORE's reach differs between builds).
func (d *Driver) restoreAliyun(ctx context.Context) error {
	const line = `AT+IDMAU="","","",""`
	r, err := d.c.command(ctx, line, d.timeout())
	if err != nil {
		return d.fail("AT+IDMAU", err)
	}
	if !r.ok() {
		return d.refused("AT+IDMAU", r, line)
	}
	return nil
}
