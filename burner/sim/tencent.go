package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/iotburn/iotburn/registry/devauth"
)

// tencentAT plays Tencent's QCloud_AT firmware on an ESP8266 module
// (reference/tencent.md §6): the device- and product-info commands, their
// queries, TCMODULE, TCRESTORE, plus AT+CGSN so the line can read an IMEI.
//
// Choices where the reference is silent, so the driver can rely on them:
//   - AT+TCDEVINFOSET? (and TCPRDINFOSET?) on a board with nothing stored
//     answers OK with no +TCDEVINFOSET: line.
//   - Malformed or over-long parameters answer ERROR; nothing is stored.
//   - A flash write that fails answers ERROR (the write happens before OK).
//   - Answers use no space after the colon, as the real transcripts do.
//   - AT+TCRESTORE wipes and answers OK without the reboot banner.
//   - AT+TCDEVREG (dynamic registration with the stored product info) answers
//     ERROR when there is no product info, else OK at once, then registers
//     with the cloud (Options.Cloud, through devauth.TencentRegister: the real
//     HTTP exchange), stores the PSK as the device info (durably, before the
//     result) and reports +TCDEVREG:OK. A failure reports
//     +TCDEVREG:FAIL,<code>: the cloud's own code when it refused
//     ("ResourceNotFound.DeviceNotExist"), else -1 for no cloud configured
//     or unreachable, -2 for an answer the board could not use, -3 for a
//     flash write that failed. The board is busy meanwhile: bytes that
//     arrive wait, as its reader is the one running the registration.
type tencentAT struct {
	h  host
	at atLine
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

func (t *tencentAT) receive(p []byte) { t.at.feed(p, t.h.send, t.dispatch) }

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
	if rest != "" && name != "AT+TCDEVINFOSET" && name != "AT+TCPRDINFOSET" {
		t.error() // the others take no parameters and have no query form
		return
	}
	switch name {
	case "AT+TCMODULE":
		t.reply(
			"Module HW name: "+tencentHWName,
			"Module FW version: "+tencentFWVersion,
			"Module Mac addr: "+t.h.file().MAC,
			"Module FW compiled time: Aug 18 2020 11:39:32",
			"Module Flash size: 2MB",
		)
		t.ok()
	case "AT+CGSN":
		t.reply(t.h.file().IMEI)
		t.ok()
	case "AT+TCRESTORE":
		if err := t.h.commit(func(bf *boardFile) { bf.Tencent = tencentFlash{} }); err != nil {
			t.error()
			return
		}
		t.ok()
	case "AT+TCDEVINFOSET":
		t.devInfo(rest)
	case "AT+TCPRDINFOSET":
		t.prdInfo(rest)
	case "AT+TCDEVREG":
		t.devReg()
	default:
		t.error()
	}
}

func (t *tencentAT) devInfo(rest string) {
	switch {
	case rest == "?":
		if d := t.h.file().Tencent.Dev; d != nil {
			t.reply(fmt.Sprintf("+TCDEVINFOSET:%d,%s,%s,%d,%s",
				d.TLSMode, quoteAT(d.ProductID), quoteAT(d.DeviceName), bcc(d.DeviceSecret), quoteAT(d.Region)))
		}
		t.ok()
	case rest == "=?":
		t.reply(`+TCDEVINFO:"TLS_MODE (1)","PRODUCT_ID","DEVICE_NAME","DEVICE_SECRET_BCC","PRODUCT_REGION"`)
		t.ok()
	case strings.HasPrefix(rest, "="):
		d, ok := parseDevInfoSet(rest[1:])
		if !ok {
			t.error()
			return
		}
		if t.h.fault() == FaultFailWrite {
			t.ok()
			t.reply("+TCDEVINFOSET:FAIL,-1")
			return
		}
		if err := t.h.commit(func(bf *boardFile) { bf.Tencent.Dev = &d }); err != nil {
			t.error()
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
			t.error()
			return
		}
		if t.h.fault() == FaultFailWrite {
			t.ok()
			t.reply("+TCPRDINFOSET:FAIL,-1")
			return
		}
		if err := t.h.commit(func(bf *boardFile) { bf.Tencent.Prd = &p }); err != nil {
			t.error()
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

// regTimeout bounds one registration in the simulated firmware; the driver
// waits a little longer for the result (at.RegisterTimeout).
const regTimeout = 10 * time.Second

// Local failure codes of +TCDEVREG:FAIL / +IDMREG:FAIL, where the cloud gave
// none (the firmware's own numbers; the reference documents none).
const (
	regFailNetwork = "-1" // no cloud configured, or it could not be reached
	regFailAnswer  = "-2" // the cloud answered something unusable
	regFailFlash   = "-3" // the result could not be stored
)

// regFailCode is what a board reports for a failed registration: the
// vendor's code for a refusal, never a message (it might echo a secret).
func regFailCode(err error) string {
	if e, ok := devauth.Refused(err); ok && e.Code != "" && !strings.ContainsAny(e.Code, ",\r\n") {
		return e.Code
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return regFailNetwork
	}
	return regFailAnswer
}

func (t *tencentAT) devReg() {
	prd := t.h.file().Tencent.Prd
	if prd == nil {
		t.error() // nothing to register with
		return
	}
	t.ok()
	base, _ := t.h.cloud()
	if base == "" {
		t.reply("+TCDEVREG:FAIL," + regFailNetwork)
		return
	}
	ctx, cancel := context.WithTimeout(t.h.ctx(), regTimeout)
	defer cancel()
	psk, err := devauth.TencentRegister(ctx, base, prd.ProductID, prd.ProductSecret, prd.DeviceName)
	if err != nil {
		// The code only: the error's text is the cloud's and never logged here.
		code := regFailCode(err)
		t.h.logger().Info("sim: dynamic registration failed", "code", code)
		t.reply("+TCDEVREG:FAIL," + code)
		return
	}
	dev := tencentDev{TLSMode: prd.TLSMode, ProductID: prd.ProductID, DeviceName: prd.DeviceName, DeviceSecret: psk, Region: prd.Region}
	if err := t.h.commit(func(bf *boardFile) { bf.Tencent.Dev = &dev }); err != nil {
		t.reply("+TCDEVREG:FAIL," + regFailFlash)
		return
	}
	t.reply("+TCDEVREG:OK")
}
