package at

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Product-level credentials (registry.Credential with a ProductSecret and no
// DeviceSecret): the line burns the product secret and the board's name, and
// the board registers itself with the cloud. Tencent's firmware does it with
// AT+TCDEVREG (reference/tencent.md §6). Alibaba's AT firmware documents no
// registration command (aliyun.md §5), so the Aliyun dialect uses the one the
// simulator defines (burner/sim's aliyun.go): AT+IDMREG (pre-registered
// name, over HTTPS), AT+IDMREG=1 (registration-free, over MQTT) and
// AT+IDMTOKEN? for the registration-free ClientID and DeviceToken. Both
// answer OK at once and report the result in a URC, "+XXX:OK" or
// "+XXX:FAIL,<code>".

// Registration modes for Register.
const (
	// ModeRegister is the default: the board registers under its name and
	// obtains its device secret (a pre-registered name; on Tencent also an
	// auto-created one, which the cloud decides).
	ModeRegister = ""
	// ModeRegistrationFree is Aliyun's registration-free flow: the board
	// obtains a ClientID and DeviceToken instead of a device secret.
	ModeRegistrationFree = "registration-free"
)

// RegisterTimeout bounds the wait for a registration's result URC: the
// module makes a network round trip (the simulator gives up after 10 s).
const RegisterTimeout = 15 * time.Second

// Register makes the board register itself with the product info it holds.
// mode is ModeRegister ("", or the emulator's "pre-registered" and
// "auto-create", which ask the same of the board) or, on Aliyun only,
// ModeRegistrationFree. A refusal by the cloud comes back as an error
// wrapping ErrRefused that carries the vendor's code, never a secret.
func (d *Driver) Register(ctx context.Context, mode string) error {
	var line, urc string
	switch {
	case mode == ModeRegistrationFree && d.Dialect == Aliyun:
		line, urc = "AT+IDMREG=1", "+IDMREG"
	case mode == ModeRegistrationFree:
		return fmt.Errorf("registration-free registration is an Aliyun flow, not one of the %s firmware", d.Dialect)
	case mode != ModeRegister && mode != "pre-registered" && mode != "auto-create":
		return fmt.Errorf("unknown registration mode %q: use %q or %q", mode, ModeRegister, ModeRegistrationFree)
	case d.Dialect == Aliyun:
		line, urc = "AT+IDMREG", "+IDMREG"
	default:
		line, urc = "AT+TCDEVREG", "+TCDEVREG"
	}
	r, err := d.c.command(ctx, line, d.timeout())
	if err != nil {
		return d.fail(line, err)
	}
	if !r.ok() {
		return fmt.Errorf("board on %s refused %s: %s: does it hold product info (a product-level image)?: %w",
			d.port.Name(), commandName(line), boardWords(append(r.lines, r.final), line), ErrRefused)
	}
	res, found := "", false
	for _, l := range r.lines {
		if res, found = urcResult(l, urc); found {
			break
		}
	}
	if !found {
		d.c.mark()
		if res, err = d.c.waitURC(ctx, urc, RegisterTimeout); err != nil {
			return d.fail(line, err)
		}
	}
	if res != "OK" {
		return fmt.Errorf("board on %s failed to register (%s): %s: %w", d.port.Name(), commandName(line), boardWords([]string{res}, line), ErrRefused)
	}
	return nil
}

// ProductInfo is the Tencent product info as AT+TCPRDINFOSET? reports it:
// the product secret only as its BCC.
type ProductInfo struct {
	TLSMode    int
	ProductID  string
	DeviceName string
	SecretBCC  int
	Region     string
}

// TencentProductInfo reads the stored product info (AT+TCPRDINFOSET?). A
// module with none answers a bare OK: the zero ProductInfo, no error.
func (d *Driver) TencentProductInfo(ctx context.Context) (ProductInfo, error) {
	const name = "AT+TCPRDINFOSET?"
	r, err := d.c.command(ctx, name, d.timeout())
	if err != nil {
		return ProductInfo{}, d.fail(name, err)
	}
	if !r.ok() {
		return ProductInfo{}, d.refused(name, r, name)
	}
	for _, l := range r.lines {
		body, ok := cutResponse(l, "+TCPRDINFOSET")
		if !ok {
			continue
		}
		info, ok := parsePrdInfo(body)
		if !ok {
			return ProductInfo{}, fmt.Errorf("board on %s answered %s with a line iotburn cannot read: %w", d.port.Name(), name, ErrGarbage)
		}
		if info.ProductID == "" {
			return ProductInfo{}, nil
		}
		return info, nil
	}
	return ProductInfo{}, nil
}

// parsePrdInfo reads the body of
// "+TCPRDINFOSET:<tls>,<pid>,<secret bcc>,<name>[,<region>]"; the doc prints
// the strings bare, the simulator quoted: both are read.
func parsePrdInfo(body string) (ProductInfo, bool) {
	fs := splitFields(body)
	if len(fs) < 4 || len(fs) > 5 {
		return ProductInfo{}, false
	}
	tls, err1 := strconv.Atoi(fs[0].val)
	sum, err2 := strconv.Atoi(fs[2].val)
	if err1 != nil || err2 != nil || sum < 0 || sum > 255 || fs[2].quoted {
		return ProductInfo{}, false
	}
	p := ProductInfo{TLSMode: tls, ProductID: fs[1].val, SecretBCC: sum, DeviceName: fs[3].val}
	if len(fs) == 5 {
		p.Region = fs[4].val
	}
	return p, true
}

// AliyunToken reads what a registration-free registration obtained
// (AT+IDMTOKEN?): the ClientID and the DeviceToken, a secret; both "" when
// the board has none.
func (d *Driver) AliyunToken(ctx context.Context) (clientID, token string, err error) {
	const name = "AT+IDMTOKEN?"
	r, err := d.c.command(ctx, name, d.timeout())
	if err != nil {
		return "", "", d.fail(name, err)
	}
	if !r.ok() {
		return "", "", d.refused(name, r, name)
	}
	for _, l := range r.lines {
		body, ok := cutResponse(l, "+IDMTOKEN")
		if !ok {
			continue
		}
		cid, tok, ok := strings.Cut(body, ",")
		if !ok || strings.Contains(tok, ",") {
			// Not a word of the line: it holds a secret.
			return "", "", fmt.Errorf("board on %s answered %s with a line iotburn cannot read: %w", d.port.Name(), name, ErrGarbage)
		}
		return cid, tok, nil
	}
	return "", "", fmt.Errorf("board on %s answered %s without its +IDMTOKEN: line: %w", d.port.Name(), name, ErrGarbage)
}
