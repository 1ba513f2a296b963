package at

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Gateway commands of Tencent's QCloud_AT firmware, for a module that is a
// gateway's uplink (the firmware's command reference, "TC 网关子设备命令";
// the real module's transcript, Test-report-sample-WiFi.md §11): each
// answers OK when its parameters are valid, then a result URC
// "+NAME:OK" or "+NAME:FAIL,<err>" (the cloud's 801–810 or -1 for a
// binding, the C SDK's codes for the connection). A failure is a
// *RefusalError with that code; none of them is sent or returned with a
// secret.

// GatewayTimeout bounds one gateway operation: the module's own command
// timeout (AT+TCMQTTCONN's, 5 s as the driver sets it) and the URC.
const GatewayTimeout = 8 * time.Second

// urcCommand sends line, expects OK, then the result URC of name.
func (d *Driver) urcCommand(ctx context.Context, line, name, shown string) error {
	if d.Dialect == Aliyun {
		return fmt.Errorf("%s: the Alibaba IDMAU AT firmware has no gateway commands: %w", commandName(shown), ErrUnsupported)
	}
	r, err := d.c.command(ctx, line, d.timeout())
	if err != nil {
		return d.fail(shown, err)
	}
	if !r.ok() {
		return &RefusalError{Port: d.port.Name(), Command: commandName(shown), Code: failCode(r.final)}
	}
	res, err := d.c.result(ctx, r, name, GatewayTimeout)
	if err != nil {
		return d.fail(shown, err)
	}
	return d.urcOutcome(shown, res)
}

func (d *Driver) urcOutcome(shown, res string) error {
	if res == "OK" {
		return nil
	}
	return &RefusalError{Port: d.port.Name(), Command: commandName(shown), Code: failCode(res)}
}

// SetSubDevice stores a sub-device's triple on the gateway module
// (AT+TCSUBDEVINFOSET=0,…): what the gateway binds it with.
func (d *Driver) SetSubDevice(ctx context.Context, productID, name, secret string) error {
	line := fmt.Sprintf(`AT+TCSUBDEVINFOSET=0,"%s","%s","%s"`, productID, name, secret)
	return d.urcCommand(ctx, line, "+TCSUBDEVINFOSET", "AT+TCSUBDEVINFOSET=0,…")
}

// MQTTConnect logs the module in to its broker with the device info it
// holds (AT+TCMQTTCONN=1,5000,240,1,1: TLS, 5 s command timeout, 240 s
// keepalive, clean session, reconnect).
func (d *Driver) MQTTConnect(ctx context.Context) error {
	const line = "AT+TCMQTTCONN=1,5000,240,1,1"
	return d.urcCommand(ctx, line, "+TCMQTTCONN", line)
}

// GatewayBind binds a stored sub-device to the gateway (AT+TCGWBIND=0,…,
// signed by the module with the stored secret).
func (d *Driver) GatewayBind(ctx context.Context, productID, name string) error {
	line := fmt.Sprintf(`AT+TCGWBIND=0,"%s","%s"`, productID, name)
	return d.urcCommand(ctx, line, "+TCGWBIND", line)
}

// GatewayOnline brings a bound sub-device online through the gateway
// (AT+TCGWONLINE=0,…).
func (d *Driver) GatewayOnline(ctx context.Context, productID, name string) error {
	line := fmt.Sprintf(`AT+TCGWONLINE=0,"%s","%s"`, productID, name)
	return d.urcCommand(ctx, line, "+TCGWONLINE", line)
}

// GatewayBound lists the sub-devices the platform has bound to the gateway
// (AT+TCGWBIND?, which the module asks of the cloud), as "ProductId/DeviceName".
func (d *Driver) GatewayBound(ctx context.Context) ([]string, error) {
	const line = "AT+TCGWBIND?"
	r, err := d.c.command(ctx, line, GatewayTimeout)
	if err != nil {
		return nil, d.fail(line, err)
	}
	if !r.ok() {
		return nil, &RefusalError{Port: d.port.Name(), Command: line, Code: failCode(r.final)}
	}
	var out []string
	for _, l := range r.lines {
		rest, ok := strings.CutPrefix(l, "+TCGWBIND:")
		if !ok {
			continue
		}
		pid, dn, ok := strings.Cut(strings.TrimSpace(rest), ",")
		if ok {
			out = append(out, pid+"/"+dn)
		}
	}
	return out, nil
}
