package sim

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/iotburn/iotburn/registry/devauth"
)

// aliyunAT plays a Wi-Fi module running Alibaba's IDMAU AT firmware: the
// "直连固件" of helpcdn.aliyun.com/document_detail/158277.html ([DOC]), whose
// public source is the smart_living AT-module application of Alibaba's YoC
// ([APP]: app_at_cmd.c, its at_cmd[] table and handlers idm_au_handler,
// idm_con_handler, idm_cls_handler, idm_sta_handler, at_cmd_dev_info; its
// smartliving client, smartliving_client_control and user_get_iot_info),
// on YoC's AT server ([ATS]: XUANTIE-RV/open-yoc @272373835e
// components/at/atserver.c) and basic commands ([BASIC]: YoC at_cmd
// component, at_basic_cmd.c at_cmd_at, at_cmd_cgmr, at_cmd_fwver,
// at_cmd_model, at_cmd_echo; at_cmd.h's AT_BACK_* macros). The copies read
// are the ones the public code index holds (Alibaba, 2019-2022); no
// repository of them could be named.
//
// The line ([ATS] atserver_get_cmdline, interrupt_cmd_handle):
//   - bytes before "AT" are ignored; a command ends at CR or LF, so "\r\n"
//     is one command and an empty line;
//   - echo is off at boot (g_atserver is zeroed); AT+ECHO=ON turns it on,
//     and then the whole command line comes back before the answer;
//   - an unknown command answers "\r\nERROR\r\n"; a known one in a form its
//     handler does not take (AT+IDMAU=?, AT+IDMSTA, AT+CGMR?) gets no answer;
//   - there is no ATE0/ATE1 (not in at_cmd[]): they answer ERROR.
//   - an over-long line: the server's buffer limit (BUFFER_MAX_SIZE) is
//     not in the source read; here it is the ESP-AT 256 bytes and the line
//     is dropped without an answer, the harsher case. [NOT FROM A SOURCE]
//
// The commands (the subset of at_cmd[] the line can use):
//
//	AT                     \r\nOK\r\n                                    [BASIC] at_cmd_at
//	AT+HELP                \r\n+HELP:<names;>\r\nOK\r\n                 [BASIC] at_cmd_help
//	AT+CGMR, AT+CGMR=?     \r\n+CGMR:<os version>\r\nOK\r\n             [BASIC] AT_BACK_RET_OK(cmd, aos_get_os_version())
//	AT+FWVER               \r\n+FWVER:<os version>\r\nOK\r\n            [BASIC]
//	AT+MODEL?              \r\n+MODEL:<model>\r\nOK\r\n, or ERROR when none was set   [BASIC] at_cmd_model
//	AT+MODEL=<m>           stores 1..63 bytes, OK; else ERROR             [BASIC]
//	AT+ECHO?, AT+ECHO=ON|OFF                                             [BASIC] at_cmd_echo
//	AT+DEVINFO?            \r\n+DEVINFO:<string>\r\nOK\r\n (a string the host stored, "" at first)  [APP] at_cmd_dev_info
//	AT+DEVINFO=<s>         stores s (outer quotes dropped), OK            [APP]
//	AT+DEVINFO=?           +DEVINFO:"str"\r\n, no OK                       [APP] AT_BACK_STR
//	AT+IDMAU="pk","dn","ds","ps"   store, \r\nOK\r\n                     [APP] idm_au_handler
//	AT+IDMAU?              +IDMAU:<pk>,<dn>,<ds>,<ps>\r\nOK\r\n, unquoted [APP]
//	AT+IDMCON (=? OK)      \r\nOK\r\n, then starts the cloud client       [APP] idm_con_handler
//	AT+IDMCLS (=? OK)      \r\nOK\r\n, stops it                           [APP] idm_cls_handler
//	AT+IDMSTA? (=? OK)     \r\n+IDMSTA:<0|2>\r\nOK\r\n                    [APP] idm_sta_handler (connected << 1)
//
// None of them tells the module's MAC, IMEI or serial: AT+CGMR and AT+FWVER
// print the OS version, AT+MODEL? a string the host stored (ERROR until
// then), AT+DEVINFO? likewise. What the version string reads on a shipped
// module is not published: aliyunOSVersion. [NOT FROM A SOURCE]
//
// AT+IDMAU follows idm_au_handler: the argument must start with '"' and be
// at most 20+32+64+64+11 bytes; fields end at the next `","` (no escapes)
// and may be empty; the fourth ends at the next '"' and anything after it is
// ignored (which is how the 5-field "…","PID" variant reaches the same code).
// PK ≤ 20, DN ≤ 32, DS ≤ 64, PS ≤ 64 bytes. Anything else answers
// "\r\n+CME ERROR:50\r\n" and stores nothing ([APP] AT_RESP_CME_ERR). The
// query prints the empty string for what was never set: "+IDMAU:,,,".
//
// AT+IDMCON runs smartliving_client_control(1), whose answer the handler
// ignores: it always says OK. The client starts only if user_get_iot_info
// finds all four values non-empty — ProductKey, DeviceName, DeviceSecret
// and ProductSecret — and it opens the connection with
// IOTX_IOCTL_SET_DYNAMIC_REGISTER 0: it never registers itself. So a module
// given AT+IDMAU="PK","DN","","PS" (one-secret-per-product) answers OK to
// AT+IDMCON and never connects ("missing iot devinfo" in its log), and so
// does one with an empty ProductSecret. Started, it logs in to the platform's
// MQTT broker (Options.MQTT) with the DeviceSecret, retrying every second
// while the login fails ([APP] linkkit_thread: "while (IOT_Linkkit_Connect()
// < 0) HAL_SleepMs(1000)"); once in, AT+IDMSTA? says 2 and the module
// reports it unasked, "+IDMSTA:2" then OK ([DOC]: "连接成功后,模组返回
// +IDMSTA:2 OK"; [APP] user_connected_event_handler → app_at_cmd_sta_report).
// It stays connected until AT+IDMCLS or power-off. The module's Wi-Fi is
// taken as joined: the line does not provision it. [NOT FROM A SOURCE]
//
// Choices where the sources are silent:
//   - The real handler ignores what HAL_Set* return and always says OK.
//     FaultFailWrite plays that worn flash: OK, nothing stored; only the
//     read-back can tell. A failure to write the board's own file (the
//     simulator's disk) answers "+CME ERROR:100", the code this firmware
//     uses for internal failures, and nothing changes.
//   - The connection's end (AT+IDMCLS, a dropped session) is not reported
//     unasked: app_at_cmd_sta_report is called then too, but what it prints
//     is not in the sources read. [NOT FROM A SOURCE]
type aliyunAT struct {
	h    host
	echo bool
	buf  []byte
	inAT bool // "AT" seen: collecting a command
	over bool

	mu        sync.Mutex // guards the cloud client below (it runs on its own goroutine)
	started   bool
	connected bool
	gen       int // the running client's; a stopped one's goroutine must not touch the state
	stop      context.CancelFunc
}

// aliyunOSVersion is what AT+CGMR / AT+FWVER print (aos_get_os_version()).
// [NOT FROM A SOURCE]
const aliyunOSVersion = "YoC-7.4.3"

// Field limits of idm_au_handler: PRODUCT_KEY_LEN, DEVICE_NAME_LEN,
// DEVICE_SECRET_LEN, PRODUCT_SECRET_LEN, and its overall length check.
const (
	aliyunMaxPK  = 20
	aliyunMaxDN  = 32
	aliyunMaxDS  = 64
	aliyunMaxPS  = 64
	aliyunMaxArg = aliyunMaxPK + aliyunMaxDN + aliyunMaxDS + aliyunMaxPS + 11
)

// Answers, as the AT_BACK_* / AT_RESP_CME_ERR macros frame them.
const (
	aliyunOK          = "\r\nOK\r\n"
	aliyunError       = "\r\nERROR\r\n"
	aliyunCMEBadArg   = "\r\n+CME ERROR:50\r\n"
	aliyunCMEInternal = "\r\n+CME ERROR:100\r\n"
)

// aliyunRetry is the client's pause between failed logins ([APP] HAL_SleepMs(1000)).
const aliyunRetry = time.Second

func newAliyunAT(h host) firmware { return &aliyunAT{h: h} }

// receive assembles commands the way atserver_get_cmdline does.
func (a *aliyunAT) receive(p []byte) {
	for _, c := range p {
		if !a.inAT {
			a.buf = append(a.buf, c)
			if n := len(a.buf); n >= 2 && a.buf[n-2] == 'A' && a.buf[n-1] == 'T' {
				a.buf, a.inAT, a.over = append(a.buf[:0], 'A', 'T'), true, false
			} else if n >= 2 {
				a.buf = append(a.buf[:0], c)
			}
			continue
		}
		if c == '\r' || c == '\n' {
			line, over := string(a.buf), a.over
			a.buf, a.inAT, a.over = a.buf[:0], false, false
			if !over {
				a.command(line)
			}
			continue
		}
		if len(a.buf) >= maxATLine {
			a.over = true
			continue
		}
		a.buf = append(a.buf, c)
	}
}

// command runs one line as interrupt_cmd_handle and cmd_process do.
func (a *aliyunAT) command(line string) {
	if a.echo {
		a.h.send([]byte(line + "\r\n"))
	}
	name, rest := splitCommand(line)
	// Only the command's name is logged: its parameters may hold a secret.
	a.h.logger().Debug("sim: command", "cmd", name)
	kind := cmdType(rest)
	switch name {
	case "AT":
		if kind == execCmd {
			a.h.send([]byte(aliyunOK))
		}
	case "AT+HELP":
		if kind == execCmd {
			a.h.send([]byte("\r\n+HELP:AT;HELP;CGMR;FWVER;ECHO;MODEL;IDMAU;DEVINFO;IDMCON;IDMCLS;IDMSTA;\r\nOK\r\n"))
		}
	case "AT+CGMR":
		if kind == execCmd || kind == testCmd {
			a.h.send([]byte("\r\n+CGMR:" + aliyunOSVersion + aliyunOK))
		}
	case "AT+FWVER":
		if kind == execCmd {
			a.h.send([]byte("\r\n+FWVER:" + aliyunOSVersion + aliyunOK))
		}
	case "AT+ECHO":
		a.echoCmd(kind, rest)
	case "AT+MODEL":
		a.model(kind, rest)
	case "AT+DEVINFO":
		a.devInfo(kind, rest)
	case "AT+IDMAU":
		a.idmau(kind, rest)
	case "AT+IDMCON":
		switch kind {
		case testCmd:
			a.h.send([]byte(aliyunOK))
		case execCmd:
			a.connect()
			a.h.send([]byte(aliyunOK))
		}
	case "AT+IDMCLS":
		switch kind {
		case testCmd:
			a.h.send([]byte(aliyunOK))
		case execCmd:
			a.disconnect()
			a.h.send([]byte(aliyunOK))
		}
	case "AT+IDMSTA":
		switch kind {
		case testCmd:
			a.h.send([]byte(aliyunOK))
		case readCmd:
			a.mu.Lock()
			st := 0
			if a.connected {
				st = 2
			}
			a.mu.Unlock()
			a.h.send([]byte(fmt.Sprintf("\r\n+IDMSTA:%d\r\nOK\r\n", st)))
		}
	default:
		a.h.send([]byte(aliyunError))
	}
}

// The four forms atserver tells apart (get_cmd_len).
const (
	execCmd = iota
	readCmd
	writeCmd
	testCmd
)

func cmdType(rest string) int {
	switch {
	case rest == "":
		return execCmd
	case strings.HasPrefix(rest, "=?"):
		return testCmd
	case strings.HasPrefix(rest, "="):
		return writeCmd
	}
	return readCmd
}

func (a *aliyunAT) echoCmd(kind int, rest string) {
	switch kind {
	case readCmd:
		v := "OFF"
		if a.echo {
			v = "ON"
		}
		a.h.send([]byte("\r\n+ECHO:" + v + aliyunOK))
	case writeCmd:
		switch arg := rest[1:]; {
		case strings.HasPrefix(arg, "ON"):
			a.echo = true
		case strings.HasPrefix(arg, "OFF"):
			a.echo = false
		default:
			a.h.send([]byte(aliyunError))
			return
		}
		a.h.send([]byte(aliyunOK))
	}
}

func (a *aliyunAT) model(kind int, rest string) {
	switch kind {
	case readCmd:
		if m := a.h.file().Aliyun.Model; m != "" {
			a.h.send([]byte("\r\n+MODEL:" + m + aliyunOK))
			return
		}
		a.h.send([]byte(aliyunError))
	case writeCmd:
		m := rest[1:]
		if len(m) == 0 || len(m) >= 64 || a.h.commit(func(bf *boardFile) { bf.Aliyun.Model = m }) != nil {
			a.h.send([]byte(aliyunError))
			return
		}
		a.h.send([]byte(aliyunOK))
	}
}

func (a *aliyunAT) devInfo(kind int, rest string) {
	switch kind {
	case testCmd:
		a.h.send([]byte(`+DEVINFO:"str"` + "\r\n"))
	case readCmd:
		a.h.send([]byte("\r\n+DEVINFO:" + a.h.file().Aliyun.DevInfo + aliyunOK))
	case writeCmd:
		v := strings.TrimSuffix(strings.TrimPrefix(rest[1:], `"`), `"`) // remove_double_quote
		if len(v) > 255 {
			v = v[:255] // its KV buffer is 256 bytes
		}
		if a.h.commit(func(bf *boardFile) { bf.Aliyun.DevInfo = v }) != nil {
			a.h.send([]byte(aliyunCMEInternal))
			return
		}
		a.h.send([]byte(aliyunOK))
	}
}

func (a *aliyunAT) idmau(kind int, rest string) {
	switch kind {
	case readCmd:
		f := a.h.file().Aliyun
		a.h.send([]byte(fmt.Sprintf("+IDMAU:%s,%s,%s,%s\r\nOK\r\n", f.ProductKey, f.DeviceName, f.DeviceSecret, f.ProductSecret)))
	case writeCmd:
		f, ok := parseIDMAUSet(rest[1:])
		if !ok {
			a.h.send([]byte(aliyunCMEBadArg))
			return
		}
		if a.h.fault() == FaultFailWrite {
			a.h.send([]byte(aliyunOK)) // worn flash: the handler does not look
			return
		}
		if err := a.h.commit(func(bf *boardFile) {
			bf.Aliyun.ProductKey, bf.Aliyun.DeviceName, bf.Aliyun.DeviceSecret, bf.Aliyun.ProductSecret =
				f.ProductKey, f.DeviceName, f.DeviceSecret, f.ProductSecret
		}); err != nil {
			a.h.send([]byte(aliyunCMEInternal))
			return
		}
		a.h.send([]byte(aliyunOK))
	}
	// No test or execute form in the handler: silence.
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

// connect is smartliving_client_control(1): see the type's comment.
func (a *aliyunAT) connect() {
	f := a.h.file().Aliyun
	if f.ProductKey == "" || f.DeviceName == "" || f.DeviceSecret == "" || f.ProductSecret == "" {
		a.h.logger().Info("sim: IDMCON: missing iot devinfo")
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started {
		return // "smartliving client already started"
	}
	_, broker := a.h.cloud()
	ctx, cancel := context.WithCancel(a.h.ctx())
	a.gen++
	a.started, a.stop = true, cancel
	go a.client(ctx, a.gen, broker, f)
}

// client is linkkit_thread: log in until it works, stay connected.
func (a *aliyunAT) client(ctx context.Context, gen int, broker string, f aliyunFlash) {
	defer func() {
		a.mu.Lock()
		if a.gen == gen {
			a.started, a.connected = false, false
		}
		a.mu.Unlock()
	}()
	for ctx.Err() == nil {
		var s *devauth.Session
		err := fmt.Errorf("no broker configured")
		if broker != "" {
			cid, user, pass := devauth.AliyunMQTT(f.ProductKey, f.DeviceName, f.DeviceSecret, time.Now())
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			s, err = devauth.MQTTSession(c, "aliyun", broker, nil, cid, user, pass)
			cancel()
		}
		if err != nil {
			a.h.logger().Info("sim: IDMCON: login failed, retrying", "err", loginCode(err))
			select {
			case <-time.After(aliyunRetry):
			case <-ctx.Done():
			}
			continue
		}
		a.setConnected(gen, true)
		select {
		case <-s.Done():
		case <-ctx.Done():
		}
		s.Close()
		a.setConnected(gen, false)
	}
}

// loginCode is a refusal's code only: its words are the broker's.
func loginCode(err error) string {
	if e, ok := devauth.Refused(err); ok {
		return e.Code
	}
	return "network"
}

// setConnected records the client's login; a login reports itself unasked
// ("+IDMSTA:2", OK: see the type's comment). The end of one is not
// reported: the report's text is not in the sources read.
func (a *aliyunAT) setConnected(gen int, on bool) {
	a.mu.Lock()
	if a.gen != gen {
		a.mu.Unlock()
		return // a stopped client's
	}
	changed := a.connected != on
	a.connected = on
	a.mu.Unlock()
	if changed && on {
		a.h.send([]byte("\r\n+IDMSTA:2\r\nOK\r\n"))
	}
}

// disconnect is smartliving_client_control(0).
func (a *aliyunAT) disconnect() {
	a.mu.Lock()
	stop := a.stop
	// started = 0 at once, as smartliving_client_control(0) does: the next
	// AT+IDMCON starts a new client.
	a.gen++
	a.stop, a.started, a.connected = nil, false, false
	a.mu.Unlock()
	if stop != nil {
		stop()
	}
}
