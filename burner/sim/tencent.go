package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/iotburn/iotburn/registry/devauth"
)

// tencentAT plays Tencent's QCloud_AT firmware on an ESP8266 module: the
// device- and product-info commands, their queries, TCMODULE, TCDEVREG,
// TCRESTORE, plus AT+CGSN so the line can read an IMEI. Sources:
//
//   - [PDF] "腾讯云 IoT AT 指令集 WiFi 模组（ESP8266）" V3.2.1 (2020-08-03),
//     tencentyun/qcloud-iot-esp-wifi @2b68689e,
//     qcloud-iot-at-esp8266/腾讯云IoT-AT指令集-WiFi-ESP8266-V3.2.1.pdf;
//   - [LOG] the real module's transcript beside it,
//     qcloud-iot-at-esp8266/QCloud_IoT_AT_Test_Tool/Test-report-sample-WiFi.md
//     (firmware QCloud_AT_ESP8266_v2.1.0, 2020-08-21);
//   - [SDK] the C SDK the firmware is built on, tencentyun/qcloud-iot-sdk-embedded-c
//     @df06a4b6 (sdk_src/services/dynreg/dynreg.c,
//     include/exports/qcloud_iot_export_error.h).
//
// What each answer rests on:
//   - URCs have no space after the colon ("+TCDEVINFOSET:OK", [LOG]), although
//     [PDF] §1.2 rule 4 puts one there; the driver reads both.
//   - A malformed or over-long parameter answers "+CME ERROR: 204" ([PDF]
//     §8.2 "204 Parameter invalid"; the space after the colon per §1.2 rule
//     4) and stores nothing. A flash write that fails answers
//     "+CME ERROR: 207" ("Flash access error").
//   - An unknown command answers "ERR CODE:0x01090000" then ERROR ([LOG]
//     §9, §10: AT+TCCERTADD=? and AT+TCREGNET=? on this firmware). A known
//     command in a form it lacks (AT+TCMODULE=1, AT+TCRESTORE?) answers
//     ERROR: the firmware's words for it are not published. [NOT FROM A SOURCE]
//   - AT+TCDEVREG=? and AT+TCRESTORE=? answer OK ([PDF] §2.3, §2.5; [LOG] §8
//     for TCDEVREG=?).
//   - AT+TCDEVINFOSET? (and TCPRDINFOSET?) on a board with nothing stored
//     answers OK with no +TCDEVINFOSET: line. [NOT FROM A SOURCE]
//   - AT+TCRESTORE answers OK, wipes the device and product info, then
//     reboots the module ([PDF] §2.5 "返回 OK，然后清除 ... 并重启模组"): the
//     bytes it receives while booting are lost, it prints the ESP8266 ROM's
//     boot log (at 74880 baud, so noise on a 115200 line), then "\r\nready\r\n"
//     (Espressif's AT core, espressif/esp-at main/interface/uart/at_uart_task.c
//     at_custom_init), with echo on again. How long the boot takes is not
//     published: bootTime. [NOT FROM A SOURCE]
//   - AT+TCDEVREG with no product info stored answers "+CME ERROR: 208"
//     ("State error or not ready": [PDF] §2.3 only says "+CME ERROR: <err>"
//     when the state does not allow it; which code is the nearest in §8.2's
//     list). Otherwise OK at once, then it registers with the cloud
//     (Options.Cloud) through the legacy POST /register/dev the C SDK calls
//     ([SDK] dynreg.c url_format "%s://%s/register/dev"; devauth.TencentLegacyRegister),
//     stores the PSK as the device info (durably, before the result) and
//     reports +TCDEVREG:OK. A failure reports +TCDEVREG:FAIL,<code> with a
//     number ([PDF] §2.3; the firmware reports what the SDK's
//     IOT_DynReg_Device returns): the cloud's own code unchanged when it
//     refused ([PDF] §8.3: 1000 … 1031; [SDK] _parse_devinfo), and the SDK's
//     own codes ([SDK] qcloud_iot_export_error.h, listed in [PDF] §8.1) for
//     the rest: -8 QCLOUD_ERR_HTTP_CONN when there is no cloud or it cannot be
//     reached, -11 QCLOUD_ERR_HTTP_TIMEOUT when the answer does not come in
//     time (DYN_REG_RES_HTTP_TIMEOUT_MS 2000 in dynreg.c), -1001
//     QCLOUD_ERR_FAILURE for an answer it cannot use. A flash write that fails
//     after a successful registration reports -1001 too. [NOT FROM A SOURCE]
//     The board is busy meanwhile: bytes that arrive wait, as its reader is
//     the one running the registration.
type tencentAT struct {
	h         host
	at        atLine
	bootUntil time.Time // rebooting after AT+TCRESTORE: deaf until then
	gw        tencentGW // the MQTT connection and gateway commands (tencent_gateway.go)
	// cellular: the cellular module's firmware, with the certificate
	// commands (tencent_cert.go).
	cellular bool
	upload   *certUpload // an AT+TCCERTADD taking its content, or nil
}

// Module facts printed by AT+TCMODULE; the MAC is the board's own.
const (
	tencentHWName    = "ESP-WROOM-02D"
	tencentFWVersion = "QCloud_AT_ESP8266_v2.1.0"
	tencentRegion    = "ap-guangzhou" // the firmware's default region
)

func newTencentAT(h host) firmware {
	return &tencentAT{h: h, at: atLine{echo: true}}
}

func (t *tencentAT) receive(p []byte) {
	if t.upload != nil {
		if p = t.takeUpload(p); len(p) == 0 {
			return
		}
	}
	// The common case in one go: no reboot under way or in what arrived
	// (the line so far and p together, as a command may be split anywhere).
	// A cellular module goes byte by byte too: an AT+TCCERTADD takes the
	// bytes that follow it.
	if !t.cellular && !time.Now().Before(t.bootUntil) && !restoreIn(t.at.buf, p) {
		t.at.feed(p, t.h.send, t.dispatch)
		return
	}
	// Byte by byte: AT+TCRESTORE may start a reboot midway through p, and
	// what follows it is lost too; an AT+TCCERTADD takes what follows it.
	for i := 0; i < len(p); i++ {
		if time.Now().Before(t.bootUntil) {
			return // booting: the UART is not listening yet
		}
		if t.upload != nil {
			rest := t.takeUpload(p[i:])
			p, i = rest, -1
			continue
		}
		t.at.feed(p[i:i+1], t.h.send, t.dispatch)
	}
}

func (t *tencentAT) reply(lines ...string) { atReply(t.h.send, lines...) }
func (t *tencentAT) ok()                   { t.h.send([]byte(atOK)) }
func (t *tencentAT) error()                { t.h.send([]byte(atError)) }

func (t *tencentAT) dispatch(line string) {
	if t.at.basic(line, t.h.send) {
		return
	}
	name, rest := splitCommand(line)
	// Only the command's name is logged: its parameters may hold a secret.
	t.h.logger().Debug("sim: command", "cmd", name)
	if gatewayCommands[name] {
		t.gateway(name, rest)
		return
	}
	if t.cellular && certCommands[name] {
		t.certCommand(name, rest)
		return
	}
	if !tencentCommands[name] {
		t.unknown()
		return
	}
	if (name == "AT+TCDEVREG" || name == "AT+TCRESTORE") && rest == "=?" {
		t.ok() // [PDF] §2.3, §2.5 test commands
		return
	}
	if rest != "" && name != "AT+TCDEVINFOSET" && name != "AT+TCPRDINFOSET" {
		t.error() // the others take no parameters and have no query form
		return
	}
	switch name {
	case "AT+TCMODULE":
		t.moduleInfo()
	case "AT+CGSN":
		// Not in [PDF]: an ESP8266 has no IMEI. The board answers with one
		// as a cellular module with the Tencent firmware would (3GPP TS
		// 27.007 §5.4 +CGSN, which every cellular module has), so the
		// line's --name-from imei has a board to run on. [NOT FROM A SOURCE]
		t.reply(t.h.file().IMEI)
		t.ok()
	case "AT+TCRESTORE":
		if err := t.h.commit(func(bf *boardFile) { bf.Tencent = tencentFlash{} }); err != nil {
			t.cme(cmeFlash)
			return
		}
		t.ok()
		t.gw.disconnect()
		t.reboot()
	case "AT+TCDEVINFOSET":
		t.devInfo(rest)
	case "AT+TCPRDINFOSET":
		t.prdInfo(rest)
	case "AT+TCDEVREG":
		t.devReg()
	}
}

// tencentCommands are the commands this board has (the subset of [PDF] the
// line uses, and AT+CGSN).
var tencentCommands = map[string]bool{"AT+TCMODULE": true, "AT+CGSN": true, "AT+TCRESTORE": true,
	"AT+TCDEVINFOSET": true, "AT+TCPRDINFOSET": true, "AT+TCDEVREG": true}

// Error answers of the firmware ([PDF] §8.2 "CME ERROR 列表扩展"; [LOG] §9).
const (
	cmeBadParam = 204 // Parameter invalid
	cmeFlash    = 207 // Flash access error
	cmeState    = 208 // State error or not ready
)

func (t *tencentAT) cme(code int) { t.h.send([]byte(fmt.Sprintf("\r\n+CME ERROR: %d\r\n", code))) }

// unknown is ESP-AT's answer to a command it does not have, as the real
// module prints it ([LOG] §9, §10).
func (t *tencentAT) unknown() { t.h.send([]byte("\r\nERR CODE:0x01090000\r\n" + atError[2:])) }

// restoreIn reports whether the pending line and p hold "AT+TCRESTORE".
func restoreIn(pending, p []byte) bool {
	const cmd = "TCRESTORE"
	if bytes.Contains(p, []byte(cmd)) {
		return true
	}
	// Split between the two: the pending tail and p's head (a line is at
	// most maxATLine bytes, so this stays small).
	head := p[:min(len(p), len(cmd))]
	tail := pending[max(0, len(pending)-len(cmd)):]
	return bytes.Contains(append(append([]byte(nil), tail...), head...), []byte(cmd))
}

// bootTime is how long the module takes from AT+TCRESTORE's OK to "ready";
// not published. [NOT FROM A SOURCE]
const bootTime = 500 * time.Millisecond

// reboot restarts the module after AT+TCRESTORE: a fresh AT core (echo on),
// deaf until booted, the ROM's boot log (noise at this baud rate), then
// "ready". The banner goes out from a timer: send is safe from any
// goroutine, and a board unplugged meanwhile says nothing.
func (t *tencentAT) reboot() {
	t.at = atLine{echo: true}
	t.bootUntil = time.Now().Add(bootTime)
	t.h.send(noise())
	ctx := t.h.ctx()
	time.AfterFunc(bootTime, func() {
		if ctx.Err() == nil {
			t.h.send([]byte(atReady))
		}
	})
}

// atReady is what Espressif's AT core prints once it is up (esp-at
// at_uart_task.c at_custom_init).
const atReady = "\r\nready\r\n"

func (t *tencentAT) devInfo(rest string) {
	switch {
	case rest == "?":
		switch d := t.h.file().Tencent.Dev; {
		case d != nil && d.CertName != "": // [CMD] §2.2: the certificate's name, no region
			t.reply(fmt.Sprintf("+TCDEVINFOSET:%d,%s,%s,%s", d.TLSMode, quoteAT(d.ProductID), quoteAT(d.DeviceName), quoteAT(d.CertName)))
		case d != nil:
			t.reply(fmt.Sprintf("+TCDEVINFOSET:%d,%s,%s,%d,%s",
				d.TLSMode, quoteAT(d.ProductID), quoteAT(d.DeviceName), bcc(d.DeviceSecret), quoteAT(d.Region)))
		}
		t.ok()
	case rest == "=?" && t.cellular: // [CMD] §2.2
		t.reply(`+TCDEVINFO:"TLSMODE (0/1/2)","PRODUCTID","DEVICENAME"[,"DEVICESECRET"(TLSMODE=0/1)] or[,"CERTNAME"(TLSMODE=2)]`)
		t.ok()
	case rest == "=?":
		t.reply(`+TCDEVINFO:"TLS_MODE (1)","PRODUCT_ID","DEVICE_NAME","DEVICE_SECRET_BCC","PRODUCT_REGION"`)
		t.ok()
	case strings.HasPrefix(rest, "="):
		if args, err := parseATArgs(rest[1:]); t.cellular && err == nil && len(args) > 0 && !args[0].quoted && args[0].val == "2" {
			t.certDevInfo(args)
			return
		}
		d, ok := parseDevInfoSet(rest[1:])
		if !ok || d.TLSMode != 1 && !t.cellular {
			// [PDF] §2.1 "ESP8266 模组仅支持模式 1": TLS with a key.
			t.cme(cmeBadParam)
			return
		}
		if t.h.fault() == FaultFailWrite {
			// [PDF] §2.1 "+TCDEVINFOSET:FAIL<err_code>"; which code a worn
			// flash gives is not published: the SDK's generic failure.
			t.ok()
			t.reply("+TCDEVINFOSET:FAIL," + regFailGeneric)
			return
		}
		if err := t.h.commit(func(bf *boardFile) { bf.Tencent.Dev = &d }); err != nil {
			t.cme(cmeFlash)
			return
		}
		t.ok()
		t.reply("+TCDEVINFOSET:OK")
	default:
		t.error()
	}
}

// parseDevInfoSet reads <tls_mode>,"pid","name","secret"[,"region"] within
// the firmware's limits: product id 10, name 48, secret 44, region 24.
func parseDevInfoSet(s string) (tencentDev, bool) {
	args, err := parseATArgs(s)
	if err != nil || len(args) < 4 || len(args) > 5 {
		return tencentDev{}, false
	}
	var d tencentDev
	var ok [5]bool
	d.TLSMode, ok[0] = num(args, 0, 0, 2)
	d.ProductID, ok[1] = str(args, 1, 10)
	d.DeviceName, ok[2] = str(args, 2, 48)
	d.DeviceSecret, ok[3] = str(args, 3, 44)
	d.Region, ok[4] = tencentRegion, true
	if len(args) == 5 {
		d.Region, ok[4] = str(args, 4, 24)
	}
	return d, ok == [5]bool{true, true, true, true, true}
}

func (t *tencentAT) prdInfo(rest string) {
	switch {
	case rest == "?":
		if p := t.h.file().Tencent.Prd; p != nil {
			t.reply(fmt.Sprintf("+TCPRDINFOSET:%d,%s,%d,%s,%s",
				p.TLSMode, quoteAT(p.ProductID), bcc(p.ProductSecret), quoteAT(p.DeviceName), quoteAT(p.Region)))
		}
		t.ok()
	case rest == "=?":
		t.reply(`+TCPRDINFOSET:"TLS_MODE(1)","PRODUCT_ID","PRODUCT_SECRET_BCC","DEVICE_NAME","PRODUCT_REGION"`)
		t.ok()
	case strings.HasPrefix(rest, "="):
		p, ok := parsePrdInfoSet(rest[1:])
		if !ok {
			t.cme(cmeBadParam)
			return
		}
		if t.h.fault() == FaultFailWrite {
			t.ok()
			t.reply("+TCPRDINFOSET:FAIL," + regFailGeneric)
			return
		}
		if err := t.h.commit(func(bf *boardFile) { bf.Tencent.Prd = &p }); err != nil {
			t.cme(cmeFlash)
			return
		}
		t.ok()
		t.reply("+TCPRDINFOSET:OK")
	default:
		t.error()
	}
}

// parsePrdInfoSet reads <tls_mode>,"pid","product_secret","name"[,"region"];
// the product secret is at most 32 bytes.
func parsePrdInfoSet(s string) (tencentPrd, bool) {
	args, err := parseATArgs(s)
	if err != nil || len(args) < 4 || len(args) > 5 {
		return tencentPrd{}, false
	}
	var p tencentPrd
	var ok [5]bool
	p.TLSMode, ok[0] = num(args, 0, 0, 2)
	p.ProductID, ok[1] = str(args, 1, 10)
	p.ProductSecret, ok[2] = str(args, 2, 32)
	p.DeviceName, ok[3] = str(args, 3, 48)
	p.Region, ok[4] = tencentRegion, true
	if len(args) == 5 {
		p.Region, ok[4] = str(args, 4, 24)
	}
	return p, ok == [5]bool{true, true, true, true, true}
}

// regTimeout bounds one registration: connecting, then the SDK's 2 s for
// the answer (dynreg.c DYN_REG_RES_HTTP_TIMEOUT_MS); the driver waits a
// little longer for the result (at.RegisterTimeout).
const regTimeout = 5 * time.Second

// The C SDK's own failure codes ([SDK] qcloud_iot_export_error.h; [PDF] §8.1).
const (
	regFailConnect = "-8"    // QCLOUD_ERR_HTTP_CONN: no cloud configured, or it cannot be reached
	regFailTimeout = "-11"   // QCLOUD_ERR_HTTP_TIMEOUT
	regFailGeneric = "-1001" // QCLOUD_ERR_FAILURE: an answer it cannot use
)

// regFailCode is what the board reports for a failed registration: the
// cloud's number for a refusal, never a message (it might echo a secret).
func regFailCode(err error) string {
	if e, ok := devauth.Refused(err); ok {
		if _, nerr := strconv.Atoi(e.Code); nerr == nil {
			return e.Code
		}
		return regFailGeneric
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return regFailTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return regFailTimeout
		}
		return regFailConnect
	}
	return regFailGeneric
}

func (t *tencentAT) devReg() {
	prd := t.h.file().Tencent.Prd
	if prd == nil {
		t.cme(cmeState) // nothing to register with
		return
	}
	t.ok()
	base, _ := t.h.cloud()
	if base == "" {
		t.reply("+TCDEVREG:FAIL," + regFailConnect)
		return
	}
	ctx, cancel := context.WithTimeout(t.h.ctx(), regTimeout)
	defer cancel()
	psk, err := devauth.TencentLegacyRegister(ctx, base, prd.ProductID, prd.ProductSecret, prd.DeviceName)
	if err != nil {
		// The code only: the error's text is the cloud's and never logged here.
		code := regFailCode(err)
		t.h.logger().Info("sim: dynamic registration failed", "code", code)
		t.reply("+TCDEVREG:FAIL," + code)
		return
	}
	dev := tencentDev{TLSMode: prd.TLSMode, ProductID: prd.ProductID, DeviceName: prd.DeviceName, DeviceSecret: psk, Region: prd.Region}
	if err := t.h.commit(func(bf *boardFile) { bf.Tencent.Dev = &dev }); err != nil {
		t.reply("+TCDEVREG:FAIL," + regFailGeneric)
		return
	}
	t.reply("+TCDEVREG:OK")
}
