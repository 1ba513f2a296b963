package sim

import (
	"context"
	"fmt"
	"strings"

	"github.com/iotburn/iotburn/registry/devauth"
)

// aliyunAT plays a Wi-Fi module running Alibaba's IoT AT firmware ("直连固件",
// reference/aliyun.md §5) on an ESP32: Espressif's AT core underneath, with
// the Alibaba device-identity command on top. The subset the line needs:
//
//	AT, ATE0, ATE1         shared AT core (atline.go)
//	AT+GMR                 version block, ESP-AT Basic AT Commands:
//	                       "AT version:…", "SDK version:…", "compile time…:…",
//	                       "Bin version:…", then OK
//	AT+CIPSTAMAC?          +CIPSTAMAC:"<station MAC>" then OK, ESP-AT Wi-Fi AT
//	                       Commands (docs.espressif.com/projects/esp-at)
//	AT+RESTORE             ESP-AT's factory reset: wipes what is stored, OK
//	AT+IDMAU="pk","dn","ds","ps"   store the triple and product secret
//	AT+IDMAU?              +IDMAU:<pk>,<dn>,<ds>,<ps> then OK, unquoted
//	AT+IDMREG[=0]          dynamic registration, pre-registered name (iotburn's)
//	AT+IDMREG=1            registration-free registration (iotburn's)
//	AT+IDMTOKEN?           +IDMTOKEN:<clientid>,<token> then OK (iotburn's)
//
// The reference names no AT command for dynamic registration (aliyun.md §5
// lists only the commands that store the triple), so AT+IDMREG and
// AT+IDMTOKEN are defined here, in the IDM family's style and with
// Tencent's AT+TCDEVREG's shape, since the registration takes a network
// round trip: OK at once, then a result URC.
//   - AT+IDMREG / AT+IDMREG=0: with a ProductKey, DeviceName and
//     ProductSecret stored and no DeviceSecret, pre-registers over HTTPS
//     (POST /auth/register/device at Options.Cloud, devauth.AliyunRegister)
//     and stores the DeviceSecret it gets, so AT+IDMAU? shows it.
//   - AT+IDMREG=1: registration-free over MQTT (authType=regnwl at
//     Options.MQTT, devauth.AliyunRegisterFree); stores the ClientID and
//     DeviceToken, read with AT+IDMTOKEN?. A DeviceSecret may be stored: this
//     flow does not use it.
//   - Nothing to register with (no PK, DN or PS; or, for =0, a DeviceSecret
//     already stored) or another parameter: +CME ERROR:50, nothing sent.
//   - Success: OK, the result stored durably, then +IDMREG:OK. Failure: OK,
//     then +IDMREG:FAIL,<code>: the cloud's code (the HTTPS answer's number,
//     "mqtt:5" for a refused CONNECT), or -1 (no cloud / unreachable), -2
//     (unusable answer), -3 (flash write failed), as for AT+TCDEVREG.
//   - AT+IDMTOKEN? on a board without a token answers "+IDMTOKEN:,".
//
// AT+IDMAU follows the handler idm_au_handler in the smart_living AT module
// firmware's app_at_cmd.c (Alibaba YoC, copies for BL602/TG7100C and W800):
//   - the argument must start with '"' and be at most 20+32+64+64+11 bytes;
//     fields end at the next `","` (no escapes) and may be empty; the fourth
//     ends at the next '"' and anything after it is ignored (which is how the
//     5-field "…","PID" variant reaches the same code). PK ≤ 20, DN ≤ 32,
//     DS ≤ 64, PS ≤ 64 bytes (iotkit infra_defs.h). Anything else answers
//     "+CME ERROR:50" and stores nothing. All four fields are required: with
//     three, the search for the `","` after DS fails.
//   - success answers "\r\nOK\r\n" and nothing after it: no result URC.
//   - the query prints "+IDMAU:%s,%s,%s,%s\r\nOK\r\n" (no blank line before
//     OK), the empty string for what was never set, so a fresh board says
//     "+IDMAU:,,,".
//   - the handler has no test or execute form: "AT+IDMAU=?" and "AT+IDMAU"
//     get no answer at all, as on the real module.
//
// Choices where the sources are silent, so the driver can rely on them:
//   - The real handler ignores what HAL_Set* return and always says OK.
//     FaultFailWrite plays that worn flash: OK, nothing stored; only the
//     read-back can tell. A failure to write the board's own file (the
//     simulator's disk) answers "+CME ERROR:100", the code this firmware
//     uses for internal failures, and nothing changes.
//   - AT+GMR and AT+CIPSTAMAC? take no parameters; AT+CIPSTAMAC=… (setting
//     the MAC) is not offered. Unknown commands answer ERROR.
//   - This is a Wi-Fi module: AT+CGSN (IMEI) answers ERROR, although the
//     board file carries an IMEI like every simulated board.
//   - AT+RESTORE wipes and answers OK without the reboot banner.
type aliyunAT struct {
	h  host
	at atLine
}

// Version block printed by AT+GMR, in ESP-AT's layout.
const (
	aliyunATVersion  = "2.2.0.0(aliyun-idm - ESP32 - Jul  2 2021 06:44:05)"
	aliyunSDKVersion = "v4.2.2"
	aliyunBinVersion = "2.2.0(WROOM-32)"
)

// Field limits of idm_au_handler: PRODUCT_KEY_LEN, DEVICE_NAME_LEN,
// DEVICE_SECRET_LEN, PRODUCT_SECRET_LEN, and its overall length check.
const (
	aliyunMaxPK  = 20
	aliyunMaxDN  = 32
	aliyunMaxDS  = 64
	aliyunMaxPS  = 64
	aliyunMaxArg = aliyunMaxPK + aliyunMaxDN + aliyunMaxDS + aliyunMaxPS + 11
)

const aliyunCMEBadArg, aliyunCMEInternal = "+CME ERROR:50", "+CME ERROR:100"

func newAliyunAT(h host) firmware {
	return &aliyunAT{h: h, at: atLine{echo: true}}
}

func (a *aliyunAT) receive(p []byte) { a.at.feed(p, a.h.send, a.dispatch) }

func (a *aliyunAT) dispatch(line string) {
	if a.at.basic(line, a.h.send) {
		return
	}
	name, rest := splitCommand(line)
	// Only the command's name is logged: its parameters may hold a secret.
	a.h.logger().Debug("sim: command", "cmd", name)
	switch {
	case name == "AT+GMR" && rest == "":
		atReply(a.h.send,
			"AT version:"+aliyunATVersion,
			"SDK version:"+aliyunSDKVersion,
			"compile time:Jul  2 2021 11:54:43",
			"Bin version:"+aliyunBinVersion,
		)
		a.h.send([]byte(atOK))
	case name == "AT+CIPSTAMAC" && rest == "?":
		atReply(a.h.send, `+CIPSTAMAC:"`+a.h.file().MAC+`"`)
		a.h.send([]byte(atOK))
	case name == "AT+RESTORE" && rest == "":
		if err := a.h.commit(func(bf *boardFile) { bf.Aliyun = aliyunFlash{} }); err != nil {
			a.h.send([]byte(atError))
			return
		}
		a.h.send([]byte(atOK))
	case name == "AT+IDMAU" && rest == "?":
		f := a.h.file().Aliyun
		a.h.send([]byte(fmt.Sprintf("+IDMAU:%s,%s,%s,%s\r\nOK\r\n", f.ProductKey, f.DeviceName, f.DeviceSecret, f.ProductSecret)))
	case name == "AT+IDMAU" && strings.HasPrefix(rest, "=") && rest != "=?":
		a.idmauSet(rest[1:])
	case name == "AT+IDMAU":
		// No test or execute form in the handler: silence.
	case name == "AT+IDMREG" && (rest == "" || rest == "=0" || rest == "=1"):
		a.register(rest == "=1")
	case name == "AT+IDMREG":
		atReply(a.h.send, "", aliyunCMEBadArg)
	case name == "AT+IDMTOKEN" && rest == "?":
		f := a.h.file().Aliyun
		a.h.send([]byte(fmt.Sprintf("+IDMTOKEN:%s,%s\r\nOK\r\n", f.ClientID, f.DeviceToken)))
	default:
		a.h.send([]byte(atError))
	}
}

func (a *aliyunAT) idmauSet(arg string) {
	f, ok := parseIDMAUSet(arg)
	if !ok {
		atReply(a.h.send, "", aliyunCMEBadArg)
		return
	}
	if a.h.fault() == FaultFailWrite {
		a.h.send([]byte(atOK)) // worn flash: the handler does not look
		return
	}
	if err := a.h.commit(func(bf *boardFile) { bf.Aliyun = f }); err != nil {
		atReply(a.h.send, "", aliyunCMEInternal)
		return
	}
	a.h.send([]byte(atOK))
}

// parseIDMAUSet reads the argument of AT+IDMAU= the way idm_au_handler
// does: see the type's comment.
func parseIDMAUSet(arg string) (aliyunFlash, bool) {
	if !strings.HasPrefix(arg, `"`) || len(arg) > aliyunMaxArg {
		return aliyunFlash{}, false
	}
	rest := arg[1:]
	var vals [4]string
	for i, max := range [4]int{aliyunMaxPK, aliyunMaxDN, aliyunMaxDS, aliyunMaxPS} {
		sep := `","`
		if i == 3 {
			sep = `"`
		}
		j := strings.Index(rest, sep)
		if j < 0 || j > max {
			return aliyunFlash{}, false
		}
		vals[i], rest = rest[:j], rest[j+len(sep):]
	}
	return aliyunFlash{ProductKey: vals[0], DeviceName: vals[1], DeviceSecret: vals[2], ProductSecret: vals[3]}, true
}

// register runs AT+IDMREG: see the type's comment.
func (a *aliyunAT) register(free bool) {
	f := a.h.file().Aliyun
	if f.ProductKey == "" || f.DeviceName == "" || f.ProductSecret == "" || (!free && f.DeviceSecret != "") {
		atReply(a.h.send, "", aliyunCMEBadArg)
		return
	}
	a.h.send([]byte(atOK))
	base, broker := a.h.cloud()
	if (!free && base == "") || (free && broker == "") {
		atReply(a.h.send, "+IDMREG:FAIL,"+regFailNetwork)
		return
	}
	ctx, cancel := context.WithTimeout(a.h.ctx(), regTimeout)
	defer cancel()
	var change func(*boardFile)
	if free {
		cid, token, err := devauth.AliyunRegisterFree(ctx, broker, nil, f.ProductKey, f.ProductSecret, f.DeviceName)
		if err != nil {
			a.fail(err)
			return
		}
		change = func(bf *boardFile) { bf.Aliyun.ClientID, bf.Aliyun.DeviceToken = cid, token }
	} else {
		ds, err := devauth.AliyunRegister(ctx, base, f.ProductKey, f.ProductSecret, f.DeviceName)
		if err != nil {
			a.fail(err)
			return
		}
		change = func(bf *boardFile) { bf.Aliyun.DeviceSecret = ds }
	}
	if err := a.h.commit(change); err != nil {
		atReply(a.h.send, "+IDMREG:FAIL,"+regFailFlash)
		return
	}
	atReply(a.h.send, "+IDMREG:OK")
}

func (a *aliyunAT) fail(err error) {
	code := regFailCode(err)
	a.h.logger().Info("sim: dynamic registration failed", "code", code)
	atReply(a.h.send, "+IDMREG:FAIL,"+code)
}
