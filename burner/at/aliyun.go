package at

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/iotburn/iotburn/registry"
)

// Alibaba's IDMAU AT firmware (the "直连固件" of
// helpcdn.aliyun.com/document_detail/158277.html; its public source is YoC's
// smart_living AT-module app, app_at_cmd.c, on YoC's AT server: see
// burner/sim's aliyun.go for every answer and where it comes from). The
// device triple is written with AT+IDMAU="PK","DN","DS","PS", answered by
// OK alone, and AT+IDMAU? reads back the stored values themselves, unquoted:
//
//	+IDMAU:<pk>,<dn>,<ds>,<ps>
//	OK
//
// The firmware has no ATE0 (it answers ERROR; echo is off at boot anyway)
// and no command that tells the module's MAC, IMEI or serial: AT+CGMR
// prints the OS version ("+CGMR:<v>"), AT+MODEL? a model string the host
// stored (ERROR until then). What either prints on a shipped module is not
// published, so both are read tolerantly and neither is an identity: the
// board's id has to come from its label (ErrNoHardwareID).

// identifyAliyun reads the version (AT+CGMR) and the model string
// (AT+MODEL?), each optional. The firmware has nothing more to tell:
// Identify then fails with ErrNoHardwareID, returning what it read.
func (d *Driver) identifyAliyun(ctx context.Context) (Identity, error) {
	var id Identity
	r, err := d.c.command(ctx, "AT+CGMR", d.timeout())
	if err != nil {
		return id, d.fail("AT+CGMR", err)
	}
	if r.ok() {
		id.Firmware = firstValue(r.lines, "+CGMR")
	}
	r, err = d.c.command(ctx, "AT+MODEL?", d.timeout())
	if err != nil {
		return id, d.fail("AT+MODEL?", err)
	}
	if r.ok() {
		id.Module = firstValue(r.lines, "+MODEL")
	}
	return id, fmt.Errorf("board on %s runs Alibaba's IDMAU AT firmware, which tells no MAC, IMEI or serial (AT+CGMR and AT+MODEL? print a version and a stored string): give each board's id from its label (a barcode scanner on the port): %w",
		d.port.Name(), ErrNoHardwareID)
}

// firstValue is the value of the first "+NAME:<v>" line, printable only and
// at most 64 bytes (the firmware's buffers are smaller); "" if none.
func firstValue(lines []string, name string) string {
	for _, l := range lines {
		if v, ok := cutResponse(l, name); ok {
			if len(v) > 64 || strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
				return ""
			}
			return v
		}
	}
	return ""
}

// AliyunInfo is what AT+IDMAU? reports: the stored values, secrets included.
// Never log it.
type AliyunInfo struct {
	ProductKey, DeviceName, DeviceSecret, ProductSecret string
}

// AliyunDevInfo reads the stored triple and product secret. A module with
// nothing stored answers "+IDMAU:,,," (the handler prints empty strings):
// the zero AliyunInfo and no error. An unasked "+IDMSTA:n" report (the
// firmware prints one, with its own OK, when its cloud connection comes or
// goes) is passed over.
func (d *Driver) AliyunDevInfo(ctx context.Context) (AliyunInfo, error) {
	const name = "AT+IDMAU?"
	r, err := d.commandFor(ctx, name, "+IDMAU")
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

// commandFor is command for a query whose answer carries a "+WANT:" line:
// an answer made only of unasked +IDMSTA reports (and their OK) is one of
// those reports, and the query's own answer follows.
func (d *Driver) commandFor(ctx context.Context, line, want string) (reply, error) {
	r, err := d.c.command(ctx, line, d.timeout())
	for range 4 {
		if err != nil || !r.ok() || len(r.lines) == 0 || !onlyStatusReports(r.lines) || want == "+IDMSTA" {
			return r, err
		}
		r, err = d.c.next(ctx, d.timeout())
	}
	return r, err
}

func onlyStatusReports(lines []string) bool {
	for _, l := range lines {
		if _, ok := cutResponse(l, "+IDMSTA"); !ok {
			return false
		}
	}
	return true
}

// ConnectTimeout bounds the wait for the module to report its cloud
// connection after AT+IDMCON: a TLS login over Wi-Fi, and the firmware
// retries a failed one every second.
const ConnectTimeout = 20 * time.Second

// Connect starts the module's cloud client (AT+IDMCON, always answered OK)
// and waits for the module to report the login unasked, "+IDMSTA:2" then
// OK (helpcdn.aliyun.com/document_detail/158277.html: "连接成功后,模组返回
// +IDMSTA:2 OK"; YoC smart_living user_connected_event_handler →
// app_at_cmd_sta_report). Waiting for the report, rather than asking
// AT+IDMSTA? meanwhile, keeps its OK from being taken for another
// command's. A module that says nothing within ConnectWait is asked once;
// one that is not connected then — the firmware does not start without a
// DeviceSecret and ProductSecret stored, and keeps retrying a refused
// login — is ErrNotConnected.
func (d *Driver) Connect(ctx context.Context) error {
	const line = "AT+IDMCON"
	r, err := d.c.command(ctx, line, d.timeout())
	if err != nil {
		return d.fail(line, err)
	}
	if !r.ok() {
		return d.refused(line, r, line)
	}
	wait := d.ConnectWait
	if wait <= 0 {
		wait = ConnectTimeout
	}
	deadline := time.Now().Add(wait)
	for {
		l, err := d.c.readLine(ctx, deadline)
		if errors.Is(err, errTimeout) {
			break
		}
		if err != nil {
			return d.fail(line, err)
		}
		if v, ok := cutResponse(l, "+IDMSTA"); ok && v == "2" {
			if _, err := d.c.next(ctx, d.timeout()); err != nil { // the report's OK
				return d.fail(line, err)
			}
			return nil
		}
	}
	st, err := d.AliyunStatus(ctx)
	if err != nil {
		return err
	}
	if st != 2 {
		return fmt.Errorf("board on %s: AT+IDMSTA? says %d %v after AT+IDMCON: the module did not log in (does it hold a DeviceSecret and a ProductSecret? is the device enabled on the platform?): %w",
			d.port.Name(), st, wait, ErrNotConnected)
	}
	return nil
}

// AliyunStatus is AT+IDMSTA?: 2 when the module is connected to the cloud,
// 0 when not ("+IDMSTA:<n>", the handler's connected << 1).
func (d *Driver) AliyunStatus(ctx context.Context) (int, error) {
	const name = "AT+IDMSTA?"
	r, err := d.c.command(ctx, name, d.timeout())
	if err != nil {
		return 0, d.fail(name, err)
	}
	if !r.ok() {
		return 0, d.refused(name, r, name)
	}
	// The last report wins: an unasked one may come before the answer.
	st := -1
	for _, l := range r.lines {
		if v, ok := cutResponse(l, "+IDMSTA"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				st = n
			}
		}
	}
	if st < 0 {
		return 0, fmt.Errorf("board on %s answered %s without a +IDMSTA: line: %w", d.port.Name(), name, ErrGarbage)
	}
	return st, nil
}

// Disconnect stops the module's cloud client (AT+IDMCLS).
func (d *Driver) Disconnect(ctx context.Context) error {
	const line = "AT+IDMCLS"
	r, err := d.c.command(ctx, line, d.timeout())
	if err != nil {
		return d.fail(line, err)
	}
	if !r.ok() {
		return d.refused(line, r, line)
	}
	return nil
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
// accepts empty values and stores them, and it is the one wipe the
// firmware has (its at_cmd[] table has no AT+RESTORE).
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
