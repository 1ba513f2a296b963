package at

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/iotburn/iotburn/registry"
)

// The certificate commands of Tencent's QCloud AT firmware on the modules
// that have them (cellular ones; the ESP8266's has none): command set
// "腾讯云 IoT MQTT AT 指令" V3.1.3 §2.3-2.5, with the answers of Tencent's
// test report of the M6315 module (see the simulator's tencent_cert.go):
//
//	AT+TCCERTADD="dev.crt",1212   OK, ">", then 1212 bytes, then +TCCERTADD: OK | FAIL,<err>
//	AT+TCCERTADD?                 +TCCERTADD: "dev.crt",1212 per stored file, OK
//	AT+TCCERTCHECK="dev.crt"      OK, then +TCCERTCHECK: OK | FAIL,<err>
//	AT+TCCERTDEL="dev.crt"        OK, then +TCCERTDEL: OK | FAIL,<err>
//	AT+TCDEVINFOSET=2,"PID","dev","dev.crt"   TLS with that certificate and dev.key

// CertFile is one certificate or key file a module lists (AT+TCCERTADD?).
type CertFile struct {
	Name string
	Size int
}

// TakesCerts reports whether the module's firmware has the certificate
// commands: AT+TCCERTADD=? answers OK. A module without them (the ESP8266's
// QCloud_AT, Alibaba's IDMAU firmware) is refused with ErrNoCertCommands.
func (d *Driver) TakesCerts(ctx context.Context) error {
	const name = "AT+TCCERTADD=?"
	if d.Dialect == Aliyun {
		return fmt.Errorf("board on %s runs Alibaba's IDMAU AT firmware, which has no certificate command: %w", d.port.Name(), ErrNoCertCommands)
	}
	r, err := d.c.command(ctx, name, d.timeout())
	if err != nil {
		return d.fail("AT+TCCERTADD", err)
	}
	if !r.ok() {
		// The ESP8266's QCloud_AT: its command set (V3.2.1 §2.1) allows TLS
		// mode 1 alone, and Tencent's test report of QCloud_AT_ESP8266_v2.1.0
		// (Test-report-sample-WiFi.md, case 9) answers AT+TCCERTADD=? with
		// ERR CODE:0x01090000, ERROR.
		return fmt.Errorf("board on %s answers %s with %s: its Tencent AT firmware has no certificate commands "+
			"(the ESP8266's takes a device secret only, TLS mode 1): burn certificate devices onto a cellular module with Tencent's AT firmware, "+
			"or onto ESP32 boards (--format nvs): %w",
			d.port.Name(), name, boardWords(append(r.lines, r.final), name), ErrNoCertCommands)
	}
	return nil
}

// CertFiles lists the certificate and key files the module holds.
func (d *Driver) CertFiles(ctx context.Context) ([]CertFile, error) {
	const name = "AT+TCCERTADD?"
	r, err := d.c.command(ctx, name, d.timeout())
	if err != nil {
		return nil, d.fail(name, err)
	}
	if !r.ok() {
		return nil, d.refused(name, r, name)
	}
	var out []CertFile
	for _, l := range r.lines {
		body, ok := cutResponse(l, "+TCCERTADD")
		if !ok {
			continue
		}
		file, size, ok := fileAndSize(splitFields(body))
		if !ok {
			return nil, fmt.Errorf("board on %s answered %s with a line iotburn cannot read: %w", d.port.Name(), name, ErrGarbage)
		}
		out = append(out, CertFile{Name: file, Size: size})
	}
	return out, nil
}

// DeleteCert deletes one stored file (AT+TCCERTDEL).
func (d *Driver) DeleteCert(ctx context.Context, file string) error {
	return d.certResult(ctx, "AT+TCCERTDEL", file)
}

// CheckCert has the module check one stored file (AT+TCCERTCHECK): a
// certificate or key it can use.
func (d *Driver) CheckCert(ctx context.Context, file string) error {
	return d.certResult(ctx, "AT+TCCERTCHECK", file)
}

// certResult runs AT+TCCERTCHECK / AT+TCCERTDEL on one file: OK, then the
// result URC.
func (d *Driver) certResult(ctx context.Context, cmd, file string) error {
	line := cmd + "=" + quoteParam(file)
	r, err := d.c.command(ctx, line, d.timeout())
	if err != nil {
		return d.fail(cmd, err)
	}
	if !r.ok() {
		return d.refused(cmd, r, line)
	}
	res, err := d.c.result(ctx, r, "+"+strings.TrimPrefix(cmd, "AT+"), d.timeout())
	if err != nil {
		return d.fail(cmd, err)
	}
	if res != "OK" {
		return fmt.Errorf("board on %s failed %s of %s: %s: %w", d.port.Name(), cmd, file, boardWords([]string{res}, line), ErrRefused)
	}
	return nil
}

// AddCert stores one certificate or key file (AT+TCCERTADD): the command,
// the module's ">" prompt, exactly len(content) bytes, then its result.
// The content is never logged: the wire log says how many bytes went.
func (d *Driver) AddCert(ctx context.Context, file string, content []byte) error {
	const cmd = "AT+TCCERTADD"
	line := fmt.Sprintf("%s=%s,%d", cmd, quoteParam(file), len(content))
	r, err := d.c.command(ctx, line, d.timeout())
	if err != nil {
		return d.fail(cmd, err)
	}
	if !r.ok() {
		return d.refused(cmd, r, line)
	}
	if err := d.c.prompt(ctx, time.Now().Add(d.timeout())); err != nil {
		return d.fail(cmd, err)
	}
	if err := d.c.writeRaw(ctx, content); err != nil {
		return err
	}
	// The bytes take their time on the wire before the module can answer:
	// ~1 ms a byte covers 9600 baud and up.
	d.c.mark()
	res, err := d.c.waitURC(ctx, "+TCCERTADD", d.timeout()+time.Duration(len(content))*time.Millisecond)
	if err != nil {
		return d.fail(cmd, err)
	}
	if res != "OK" {
		return fmt.Errorf("board on %s failed %s of %s: %s: %w", d.port.Name(), cmd, file, boardWords([]string{res}, line), ErrRefused)
	}
	return nil
}

// clearCerts deletes every file the module lists, so that it holds only
// the certificate about to be burned: another device's key must not stay
// on a board, and the firmware may refuse a name it already has.
func (d *Driver) clearCerts(ctx context.Context) error {
	files, err := d.CertFiles(ctx)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := d.DeleteCert(ctx, f.Name); err != nil {
			return err
		}
	}
	return nil
}

// keyFileOf is the key file that goes with a certificate file: the same
// name ending ".key" (command set V3.1.3 §2.3: "公私钥对写入的时候文件名需
// 一致，后缀名区分（公钥.crt 私钥.key）").
func keyFileOf(certFile string) string { return strings.TrimSuffix(certFile, ".crt") + ".key" }

// verifyTencentCert reads a certificate device back: the device info in
// TLS mode 2 naming a certificate, that certificate and its key stored at
// the sizes burned, and both accepted by the module's own check. The
// firmware never gives the files back, so their sizes and its check are
// what can be compared; the login (verify --mqtt) proves the rest.
func (d *Driver) verifyTencentCert(ctx context.Context, want registry.Credential) error {
	port := d.port.Name()
	got, err := d.TencentDevInfo(ctx)
	if err != nil {
		return err
	}
	if got == (DevInfo{}) {
		return fmt.Errorf("board on %s holds no Tencent device info (want certificate device %s/%s): burn it again: %w",
			port, want.ProductID, want.DeviceName, ErrMismatch)
	}
	var bad []string
	if got.TLSMode != 2 || got.CertName == "" {
		bad = append(bad, fmt.Sprintf("TLS mode is %d, want 2 (certificate)", got.TLSMode))
	}
	if got.ProductID != want.ProductID {
		bad = append(bad, fmt.Sprintf("product id is %q, want %q", got.ProductID, want.ProductID))
	}
	if got.DeviceName != want.DeviceName {
		bad = append(bad, fmt.Sprintf("device name is %q, want %q", got.DeviceName, want.DeviceName))
	}
	if len(bad) == 0 {
		files, err := d.CertFiles(ctx)
		if err != nil {
			return err
		}
		sizes := map[string]int{}
		for _, f := range files {
			sizes[f.Name] = f.Size
		}
		for _, f := range []struct {
			what, name string
			size       int
		}{{"certificate", got.CertName, len(want.DeviceCert)}, {"private key", keyFileOf(got.CertName), len(want.DevicePrivateKey)}} {
			switch n, ok := sizes[f.name]; {
			case !ok:
				bad = append(bad, fmt.Sprintf("its %s file %s is missing", f.what, f.name))
			case n != f.size:
				bad = append(bad, fmt.Sprintf("its %s file %s is %d bytes, want %d", f.what, f.name, n, f.size))
			default:
				if err := d.CheckCert(ctx, f.name); err != nil {
					if !errors.Is(err, ErrRefused) {
						return err
					}
					bad = append(bad, fmt.Sprintf("the module rejects its %s file %s (AT+TCCERTCHECK)", f.what, f.name))
				}
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("board on %s does not hold what was burned: %s: %w", port, strings.Join(bad, "; "), ErrMismatch)
	}
	return nil
}

// quoteParam quotes an AT string parameter, escaping '"', ',' and '\'.
func quoteParam(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == ',' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// prompt waits for the module's ">" (its data prompt, with or without a
// line end after it). An ERROR or +CME ERROR in its place is a refusal.
func (c *conn) prompt(ctx context.Context, deadline time.Time) error {
	for {
		c.pending = bytes.TrimLeft(c.pending, "\r\n ")
		if len(c.pending) > 0 && c.pending[0] == '>' {
			c.pending = c.pending[1:]
			return nil
		}
		if i := bytes.IndexAny(c.pending, "\r\n"); i >= 0 {
			l := strings.TrimSpace(string(c.pending[:i]))
			c.pending = c.pending[i+1:]
			if l == "ERROR" || strings.HasPrefix(l, "+CME ERROR") {
				return fmt.Errorf("the module answered %q instead of its > prompt: %w", l, ErrRefused)
			}
			continue // an echo or a stray line
		}
		if err := c.fill(ctx, deadline); err != nil {
			return err
		}
	}
}

// writeRaw sends data bytes as they are (a certificate's content after the
// prompt): no line end, and never in the wire log.
func (c *conn) writeRaw(ctx context.Context, p []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.log != nil {
		c.log.Debug("at", "port", c.port.Name(), "send", fmt.Sprintf("[%d bytes of data, %s]", len(p), registry.Fingerprint(string(p))))
	}
	if _, err := c.port.Write(p); err != nil {
		return c.vanished(err)
	}
	return nil
}
