package sim

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"
	"time"
)

// tencentCellular plays Tencent's QCloud AT firmware on a cellular module,
// the one kind of Tencent AT module that takes a device certificate. It is
// tencentAT with the certificate commands, its TLS mode 2, and an IMEI where
// the Wi-Fi module prints its MAC. Sources:
//
//   - [CMD] "腾讯云 IoT MQTT AT 指令" V3.1.3 (2019-07-31), the command set
//     for every module family, tencentyun/qcloud-iot-sdk-tencent-at-based
//     @2043039 docs/Tencent_AT_instruction_set_V3.1.3.pdf: §2.2
//     AT+TCDEVINFOSET (tlsmode 2 names the certificate: "方式 2 需前置命令
//     AT+TCCERTADD，该命令校验证书是否存在及合法"), §2.3 AT+TCCERTADD, §2.4
//     AT+TCCERTCHECK, §2.5 AT+TCCERTDEL, §2.8 AT+TCMODULE ("Module Mac
//     addr/Module IMEI"), §6.1/§6.2 the error codes, §7.2 the certificate
//     login sequence;
//   - [CELL] Tencent's test report of the China Mobile M6315 (2G) module,
//     firmware M6315-PTCH0S00, made by its QCloud_IoT_AT_Test_Tool on
//     2019-09-03 (the tool's Test-report-sample.md; the M6315 is in the
//     tool's list of supported modules, qcloud-iot-esp-wifi @2b68689e
//     qcloud-iot-at-esp8266/QCloud_IoT_AT_Test_Tool/README.md): case 9 the
//     certificate commands' real answers, case 11 AT+TCMODULE;
//   - [TOOL] the test tool itself, QCloud_IoT_AT_Test_Tool.py (same commit):
//     certadd_setup sends AT+TCCERTADD="name",len, waits for ">", sends the
//     content, then waits up to 20 command timeouts for +TCCERTADD:OK.
//
// What each answer rests on:
//   - AT+TCCERTADD=? answers `AT+TCCERTADD:"CERT_NAME", CERT_SIZE (1-4096)`
//     ([CELL] case 9 prints it so, "AT" included); AT+TCCERTADD? lists one
//     `+TCCERTADD: "name",size` per stored file ([CELL]).
//   - AT+TCCERTADD="name",size answers OK, then ">", then takes size bytes
//     or fewer ended by Ctrl+Z ([CMD] §2.3 "待收取<cert_size>长度数据或者收
//     取到 Ctr+Z，结束接收"), stores them and reports "+TCCERTADD: OK" or
//     "+TCCERTADD: FAIL,<err>". The prompt is sent as "\r\n>" with no line
//     end after it, as ESP-AT's AT+CIPSEND prompt is: [CMD] shows ">" on its
//     own line but not its bytes, and a reader that waits for a line end
//     there would hang. The content is not echoed ([CMD] §3 says so of
//     AT+TCMQTTPUBL's payload). A size outside 1..4096 or a name that is not
//     quoted answers "+CME ERROR: 204" (§6.2 Parameter invalid).
//   - Harsher choices where no source speaks, marked [NOT FROM A SOURCE]:
//     the name must end ".crt" or ".key" (§2.3: "公私钥对写入的时候文件名需
//     一致，后缀名区分（公钥.crt 私钥.key）") and be at most 128 bytes (the C
//     SDK's MAX_SIZE_OF_DEVICE_CERT_FILE_NAME, qcloud-iot-sdk-embedded-c
//     include/qcloud_iot_export.h); a name already stored is refused with
//     "+CME ERROR: 209" (Command execution error) rather than replaced, so a
//     host must delete before it re-adds; the content stops being taken
//     after certUploadTimeout (20 s, the "20 秒钟左右" [CMD] gives for
//     AT+TCMQTTPUBL's payload) with "+CME ERROR: 202" (command timeout) and
//     nothing stored; AT+TCRESTORE leaves the certificates (§2.5 says it
//     clears the device and product info, and names nothing else).
//   - AT+TCCERTCHECK="name" answers OK, then "+TCCERTCHECK: OK" when the
//     file is stored and parses (a .crt as a PEM X.509 certificate, a .key as
//     a PEM private key), else "+TCCERTCHECK: FAIL,-702" (§6.1
//     QCLOUD_ERR_SSL_CERT; which code the firmware uses is not published).
//   - AT+TCCERTDEL="name" answers OK then "+TCCERTDEL: OK", or
//     "+TCCERTDEL: FAIL,-1001" when no such file is stored (the code is the
//     SDK's generic failure). [NOT FROM A SOURCE]
//   - AT+TCDEVINFOSET=2,"pid","name","cert.crt" answers OK, then
//     "+TCDEVINFOSET:OK" when the certificate and the key of the same name
//     (".key") are stored and valid, else "+TCDEVINFOSET:FAIL,-702". Its
//     query prints the certificate's name in the secret checksum's place and
//     no region (§2.2).
//   - The MQTT login in mode 2 (AT+TCMQTTCONN=2,…, [CMD] §7.2) is not
//     modelled: the simulator answers it "+CME ERROR: 204"; QA's verify
//     --mqtt logs in with the ledger's certificate instead. [NOT MODELLED]
type certUpload struct {
	name string
	size int
	got  []byte

	mu      sync.Mutex
	expired bool // certUploadTimeout passed: the module left the prompt
	done    bool // all bytes (or Ctrl+Z) arrived first
}

// Limits of AT+TCCERTADD ([CELL] case 9 "CERT_SIZE (1-4096)"; the name's
// is the C SDK's, see above).
const (
	certMaxSize = 4096
	certMaxName = 128
	ctrlZ       = 0x1a
)

// certUploadTimeout is how long the module waits for a certificate's bytes.
const certUploadTimeout = 20 * time.Second

// Module facts of the cellular module ([CELL] case 11).
const (
	cellHWName    = "M6315_MOD_BOM_R001_20190508@H1"
	cellFWVersion = "M6315-PTCH0S00"
)

func newTencentCellular(h host) firmware {
	return &tencentAT{h: h, at: atLine{echo: true}, cellular: true}
}

// certCommands are the cellular firmware's certificate commands.
var certCommands = map[string]bool{"AT+TCCERTADD": true, "AT+TCCERTCHECK": true, "AT+TCCERTDEL": true}

// tencentCert is one stored certificate or private key file.
type tencentCert struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

func (t *tencentAT) moduleInfo() {
	if !t.cellular {
		t.reply(
			"Module HW name: "+tencentHWName,
			"Module FW version: "+tencentFWVersion,
			"Module Mac addr: "+t.h.file().MAC,
			"Module FW compiled time: Aug 18 2020 11:39:32",
			"Module Flash size: 2MB",
		)
		t.ok()
		return
	}
	t.reply( // [CELL] case 11, "Flash size:4MB" without its space as printed
		"Module HW name: "+cellHWName,
		"Module FW version: "+cellFWVersion,
		"Module IMEI: "+t.h.file().IMEI,
		"Module FW compiled time: 20190827_152209",
		"Module Flash size:4MB",
	)
	t.ok()
}

func (t *tencentAT) certCommand(name, rest string) {
	switch name {
	case "AT+TCCERTADD":
		t.certAdd(rest)
	case "AT+TCCERTCHECK":
		t.certNamed(rest, "+TCCERTCHECK", `+TCCERTCHECK:"Cert_name"`, func(c *tencentCert) string {
			if c == nil || !certParses(c.Name, c.Content) {
				return "FAIL," + certFailInvalid
			}
			return "OK"
		})
	case "AT+TCCERTDEL":
		t.certNamed(rest, "+TCCERTDEL", `+TCCERTDEL: "Cert_name"`, func(c *tencentCert) string {
			if c == nil {
				return "FAIL," + regFailGeneric
			}
			err := t.h.commit(func(bf *boardFile) {
				certs := bf.Tencent.Certs[:0:0]
				for _, s := range bf.Tencent.Certs {
					if s.Name != c.Name {
						certs = append(certs, s)
					}
				}
				bf.Tencent.Certs = certs
			})
			if err != nil {
				return "FAIL," + regFailGeneric
			}
			return "OK"
		})
	}
}

// certFailInvalid is QCLOUD_ERR_SSL_CERT ([CMD] §6.1 -702).
const certFailInvalid = "-702"

// certNamed runs AT+TCCERTCHECK / AT+TCCERTDEL: the test form, the list, or
// the set form on one stored file, whose result do decides.
func (t *tencentAT) certNamed(rest, urc, test string, do func(*tencentCert) string) {
	switch {
	case rest == "=?":
		t.reply(test)
		t.ok()
	case rest == "?":
		var lines []string
		for _, c := range t.h.file().Tencent.Certs {
			lines = append(lines, urc+": "+quoteAT(c.Name))
		}
		t.reply(lines...)
		t.ok()
	case strings.HasPrefix(rest, "="):
		args, err := parseATArgs(rest[1:])
		if err != nil || len(args) != 1 {
			t.cme(cmeBadParam)
			return
		}
		name, ok := str(args, 0, certMaxName)
		if !ok {
			t.cme(cmeBadParam)
			return
		}
		t.ok()
		t.reply(urc + ": " + do(t.h.file().Tencent.cert(name)))
	default:
		t.error()
	}
}

func (t *tencentAT) certAdd(rest string) {
	switch {
	case rest == "=?":
		t.reply(`AT+TCCERTADD:"CERT_NAME", CERT_SIZE (1-4096)`)
		t.ok()
	case rest == "?":
		var lines []string
		for _, c := range t.h.file().Tencent.Certs {
			lines = append(lines, fmt.Sprintf("+TCCERTADD: %s,%d", quoteAT(c.Name), len(c.Content)))
		}
		t.reply(lines...)
		t.ok()
	case strings.HasPrefix(rest, "="):
		args, err := parseATArgs(rest[1:])
		if err != nil || len(args) != 2 {
			t.cme(cmeBadParam)
			return
		}
		name, nok := str(args, 0, certMaxName)
		size, sok := num(args, 1, 1, certMaxSize)
		if !nok || !sok || !(strings.HasSuffix(name, ".crt") || strings.HasSuffix(name, ".key")) {
			t.cme(cmeBadParam)
			return
		}
		if t.h.file().Tencent.cert(name) != nil {
			t.cme(cmeExec)
			return
		}
		u := &certUpload{name: name, size: size}
		t.upload = u
		t.h.send([]byte(atOK + "\r\n>"))
		time.AfterFunc(certUploadTimeout, func() {
			u.mu.Lock()
			defer u.mu.Unlock()
			if !u.done && t.h.ctx().Err() == nil {
				u.expired = true
				t.cme(cmeTimeout)
			}
		})
	default:
		t.error()
	}
}

// cmeExec: "209 Command execution error" ([CMD] §6.2); cmeTimeout is
// tencent_gateway.go's.
const cmeExec = 209

// takeUpload feeds received bytes to a certificate upload under way and
// returns what is left for the command line; t.upload is nil again once the
// upload ended (stored, failed or timed out).
func (t *tencentAT) takeUpload(p []byte) []byte {
	u := t.upload
	u.mu.Lock()
	if u.expired {
		u.mu.Unlock()
		t.upload = nil
		return p // the module is back at its command line
	}
	n := min(len(p), u.size-len(u.got))
	if i := bytes.IndexByte(p[:n], ctrlZ); i >= 0 {
		u.got = append(u.got, p[:i]...)
		n, u.done = i+1, true
	} else {
		u.got = append(u.got, p[:n]...)
		u.done = len(u.got) == u.size
	}
	done := u.done
	u.mu.Unlock()
	if !done {
		return nil
	}
	t.upload = nil
	t.storeCert(u.name, string(u.got))
	return p[n:]
}

func (t *tencentAT) storeCert(name, content string) {
	if t.h.fault() == FaultFailWrite {
		t.reply("+TCCERTADD: FAIL," + regFailGeneric)
		return
	}
	err := t.h.commit(func(bf *boardFile) {
		bf.Tencent.Certs = append(bf.Tencent.Certs, tencentCert{Name: name, Content: content})
	})
	if err != nil {
		t.reply("+TCCERTADD: FAIL," + regFailGeneric)
		return
	}
	t.reply("+TCCERTADD: OK")
}

// keyFileOf is the key that goes with certificate file name: the same name
// ending ".key" ([CMD] §2.3).
func keyFileOf(name string) string { return strings.TrimSuffix(name, ".crt") + ".key" }

// cert returns the stored file of that name, or nil.
func (t tencentFlash) cert(name string) *tencentCert {
	for i := range t.Certs {
		if t.Certs[i].Name == name {
			return &t.Certs[i]
		}
	}
	return nil
}

// certParses is what AT+TCCERTCHECK checks of a file: a .crt holds a PEM
// X.509 certificate, a .key a PEM private key (PKCS#1, PKCS#8 or SEC 1).
func certParses(name, content string) bool {
	b, _ := pem.Decode([]byte(content))
	if b == nil {
		return false
	}
	if strings.HasSuffix(name, ".crt") {
		_, err := x509.ParseCertificate(b.Bytes)
		return b.Type == "CERTIFICATE" && err == nil
	}
	if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		return true
	}
	if _, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return true
	}
	_, err := x509.ParseECPrivateKey(b.Bytes)
	return err == nil
}

// certDevInfo stores AT+TCDEVINFOSET=2,"pid","name","cert.crt": the
// certificate and its key (same name, ".key") must be stored and parse.
func (t *tencentAT) certDevInfo(args []atArg) {
	var d tencentDev
	var ok [3]bool
	d.TLSMode = 2
	d.ProductID, ok[0] = str(args, 1, 10)
	d.DeviceName, ok[1] = str(args, 2, 48)
	d.CertName, ok[2] = str(args, 3, certMaxName)
	if len(args) != 4 || ok != [3]bool{true, true, true} || !strings.HasSuffix(d.CertName, ".crt") {
		t.cme(cmeBadParam)
		return
	}
	t.ok()
	fl := t.h.file().Tencent
	crt, key := fl.cert(d.CertName), fl.cert(keyFileOf(d.CertName))
	if crt == nil || key == nil || !certParses(crt.Name, crt.Content) || !certParses(key.Name, key.Content) {
		t.reply("+TCDEVINFOSET:FAIL," + certFailInvalid)
		return
	}
	if t.h.fault() == FaultFailWrite {
		t.reply("+TCDEVINFOSET:FAIL," + regFailGeneric)
		return
	}
	if err := t.h.commit(func(bf *boardFile) { bf.Tencent.Dev = &d }); err != nil {
		t.reply("+TCDEVINFOSET:FAIL," + regFailGeneric)
		return
	}
	t.reply("+TCDEVINFOSET:OK")
}
