package at

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Product-level credentials (registry.Credential with a ProductSecret and no
// DeviceSecret): the line burns the product secret and the board's name.
//
// Tencent's firmware registers itself with AT+TCDEVREG (AT command set
// V3.2.1 §2.3): OK at once, then "+TCDEVREG:OK" or "+TCDEVREG:FAIL,<code>"
// with the cloud's code (§8.3) or the C SDK's (§8.1).
//
// Alibaba's IDMAU firmware does not: its only cloud command, AT+IDMCON,
// starts a client that needs the DeviceSecret already stored and logs in
// with dynamic registration switched off (YoC smart_living
// smartliving_client_control / user_get_iot_info / linkkit_thread; see
// burner/sim's aliyun.go). Register refuses it (ErrUnsupported); the
// device secret must reach the module another way, and Connect checks the
// module's login.

// Registration modes for Register.
const (
	// ModeRegister is the default: the board registers under its name and
	// obtains its device secret (a pre-registered name; on Tencent also an
	// auto-created one, which the cloud decides).
	ModeRegister = ""
	// ModeRegistrationFree is Aliyun's registration-free flow, which no AT
	// firmware iotburn knows can do: always refused.
	ModeRegistrationFree = "registration-free"
)

// RegisterTimeout bounds the wait for a registration's result URC: the
// module makes a network round trip (the simulator gives up after 5 s).
const RegisterTimeout = 15 * time.Second

// Register makes the board register itself with the product info it holds
// (Tencent: AT+TCDEVREG). mode is ModeRegister ("", or the emulator's
// "pre-registered" and "auto-create", which ask the same of the board). A
// refusal by the cloud comes back as a *RefusalError (an ErrRefused) with
// the module's code, never a secret.
func (d *Driver) Register(ctx context.Context, mode string) error {
	switch {
	case mode == ModeRegistrationFree:
		return fmt.Errorf("registration-free registration: the %s AT firmware has no command for it: %w", d.Dialect, ErrUnsupported)
	case mode != ModeRegister && mode != "pre-registered" && mode != "auto-create":
		return fmt.Errorf("unknown registration mode %q: use %q", mode, ModeRegister)
	case d.Dialect == Aliyun:
		return fmt.Errorf("the Alibaba IDMAU AT firmware does not register itself (AT+IDMCON logs in with a stored DeviceSecret, dynamic registration off): %w", ErrUnsupported)
	}
	const line, urc = "AT+TCDEVREG", "+TCDEVREG"
	r, err := d.c.command(ctx, line, d.timeout())
	if err != nil {
		return d.fail(line, err)
	}
	if !r.ok() {
		return fmt.Errorf("board on %s refused %s: %s: does it hold product info (a product-level image)?: %w",
			d.port.Name(), line, boardWords(append(r.lines, r.final), line), ErrRefused)
	}
	res, err := d.c.result(ctx, r, urc, RegisterTimeout)
	if err != nil {
		return d.fail(line, err)
	}
	if res != "OK" {
		return &RefusalError{Port: d.port.Name(), Command: line, Code: failCode(res)}
	}
	return nil
}

// failCode is the code of "FAIL,<code>" (or "FAIL<code>", as §2.1 prints
// it, or a "+CME ERROR: n" in place of the URC), kept only if it looks like
// a code: digits, a sign, letters, '.', ':'.
func failCode(res string) string {
	c := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(res, "FAIL"), ","))
	if v, ok := strings.CutPrefix(res, "+CME ERROR"); ok {
		c = strings.TrimSpace(strings.TrimPrefix(v, ":"))
	}
	if c == "" || len(c) > 48 {
		return "?"
	}
	for _, r := range c {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("-.:_", r)) {
			return "?"
		}
	}
	return c
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
