package sim

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/iotburn/iotburn/registry/devauth"
)

// The gateway part of QCloud_AT: the module as a gateway's uplink, which
// logs in to the broker with its own device info and binds, lists and brings
// online the sub-devices a host tells it about. Sources:
//
//   - [GW] the firmware's command reference, "TC 网关子设备命令" (AT+TCGWBIND,
//     AT+TCGWONLINE, AT+TCSUBDEVINFOSET) and its error tables ("CME ERROR
//     列表扩展", "网关子设备命令相关错误类型"), in the copy the public code index
//     holds (no repository named);
//   - [LOG] §11 "网关指令测试": the real module's transcript, AT+TCMQTTCONN,
//     AT+TCGWBIND=0,"S3EUVBRJLB","test_device","…" → OK, +TCGWBIND:OK;
//     AT+TCGWONLINE=0,… → OK, +TCGWONLINE:OK; AT+TCGWONLINE=1 and
//     AT+TCGWBIND=1 likewise;
//   - [SDK] what goes on the wire: the C SDK's gateway (gateway_mqtt.c:
//     $gateway/operation/${pid}/${dn}, its result topic, the bind signature
//     base64(HMAC-SHA1(PSK, "${pid}${dn};${random};${timestamp}")) with
//     "signmethod":"hmacsha1","authtype":"psk", one device a message).
//
// The commands:
//
//	AT+TCMQTTCONN=<tls>,<timeout ms>,<keepalive s>,<clean>,<reconnect>  OK, then +TCMQTTCONN:OK | +TCMQTTCONN:FAIL,<err>
//	AT+TCMQTTSTATE?            +TCMQTTSTATE:<0|1>, OK
//	AT+TCMQTTDISCONN           OK
//	AT+TCSUBDEVINFOSET=<0|1>,"pid","dn","secret"[,"region"]   OK, +TCSUBDEVINFOSET:OK (kept in flash)
//	AT+TCSUBDEVINFOSET?        +TCSUBDEVINFOSET:<pid>,<dn>,<secret BCC>,<region> a line each, OK
//	AT+TCGWBIND=<0|1>,"pid","dn"[,"secret"]   OK, then +TCGWBIND:OK | +TCGWBIND:FAIL,<err>
//	AT+TCGWBIND?               +TCGWBIND: <pid>,<dn> a line each (asked of the cloud), OK
//	AT+TCGWONLINE=<0|1>,"pid","dn"            OK, then +TCGWONLINE:OK | +TCGWONLINE:FAIL,<err>
//	AT+TCGWONLINE?             +TCGWONLINE: <pid>,<dn> a line each, OK
//
// [GW]: "如果模组尚未连接腾讯云 MQTT 服务器，则返回错误" (+CME ERROR: 208, "State
// error or not ready. eg: pub msg when MQTT not connected"); a bad parameter
// is +CME ERROR: 204; "对于绑定操作，重复绑定也返回成功。对于解绑操作，解绑未绑定的
// 设备也返回成功" (809 and -1 then answer OK); a bind without a secret takes
// the stored one ("从已经存储的子设备三元组中读取"). The cloud's result is the
// <err> of a FAIL. [NOT FROM A SOURCE]: a bind with no secret given nor
// stored answers +CME ERROR: 204; no answer within the connection's timeout
// is FAIL,-111 (QCLOUD_ERR_MQTT_REQUEST_TIMEOUT); a refused login is
// FAIL,-116 (bad user data) or -117 (not authorized), one that cannot reach
// the broker FAIL,-103 (QCLOUD_ERR_MQTT_NO_CONN); the secret's BCC is printed
// as AT+TCDEVINFOSET? prints it; at most tencentMaxSubs triples are kept.
type tencentGW struct {
	mu      sync.Mutex
	client  paho.Client
	timeout time.Duration
	answers chan map[string]any
	online  map[string]bool // "pid/dn" brought online through this connection
}

// tencentMaxSubs is how many sub-device triples the module keeps. Not
// published for the ESP8266 firmware; the cloud's 1,500 a gateway. [NOT FROM A SOURCE]
const tencentMaxSubs = 1500

// MQTT failure codes the firmware reports (the SDK's, [PDF] §8.1).
const (
	mqttFailNoConn    = "-103"
	mqttFailTimeout   = "-111"
	mqttFailBadUser   = "-116"
	mqttFailNotAuthed = "-117"
)

// gatewayCommands are the gateway commands this board has.
var gatewayCommands = map[string]bool{"AT+TCMQTTCONN": true, "AT+TCMQTTSTATE": true, "AT+TCMQTTDISCONN": true,
	"AT+TCSUBDEVINFOSET": true, "AT+TCGWBIND": true, "AT+TCGWONLINE": true}

func (t *tencentAT) gateway(name, rest string) {
	switch name {
	case "AT+TCMQTTCONN":
		t.mqttConn(rest)
	case "AT+TCMQTTSTATE":
		if rest != "?" {
			t.error()
			return
		}
		state := 0
		if t.gw.connected() {
			state = 1
		}
		t.reply(fmt.Sprintf("+TCMQTTSTATE:%d", state))
		t.ok()
	case "AT+TCMQTTDISCONN":
		if rest != "" {
			t.error()
			return
		}
		t.gw.disconnect()
		t.ok()
	case "AT+TCSUBDEVINFOSET":
		t.subDevInfo(rest)
	case "AT+TCGWBIND":
		t.gwBind(rest)
	case "AT+TCGWONLINE":
		t.gwOnline(rest)
	}
}

func (g *tencentGW) connected() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.client != nil && g.client.IsConnectionOpen()
}

func (g *tencentGW) disconnect() {
	g.mu.Lock()
	c := g.client
	g.client, g.online = nil, nil
	g.mu.Unlock()
	if c != nil {
		c.Disconnect(0)
	}
}

func (t *tencentAT) mqttConn(rest string) {
	if rest == "=?" {
		t.reply(`+TCMQTTCONN:<TLSMODE(0/1)>,<CMDTIMEOUT(1000-10000)>,<KEEPALIVE(60-690)>,<CLEAN_SESSION(0/1)>,<RECONNECT(0/1)>`)
		t.ok()
		return
	}
	args, err := parseATArgs(strings.TrimPrefix(rest, "="))
	if !strings.HasPrefix(rest, "=") || err != nil || len(args) != 5 {
		t.cme(cmeBadParam)
		return
	}
	var ok [5]bool
	_, ok[0] = num(args, 0, 0, 1)
	timeout, tok := num(args, 1, 1000, 10000)
	ok[1] = tok
	_, ok[2] = num(args, 2, 60, 690)
	_, ok[3] = num(args, 3, 0, 1)
	_, ok[4] = num(args, 4, 0, 1)
	if ok != [5]bool{true, true, true, true, true} {
		t.cme(cmeBadParam)
		return
	}
	dev := t.h.file().Tencent.Dev
	if dev == nil || t.gw.connected() {
		t.cme(cmeState)
		return
	}
	t.ok()
	_, addr := t.h.cloud()
	if addr == "" {
		t.reply("+TCMQTTCONN:FAIL," + mqttFailNoConn)
		return
	}
	cid, user, pass, err := devauth.TencentMQTT(dev.ProductID, dev.DeviceName, dev.DeviceSecret, time.Now())
	if err != nil {
		t.reply("+TCMQTTCONN:FAIL," + mqttFailBadUser)
		return
	}
	g := &t.gw
	answers := make(chan map[string]any, 8)
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(cid).SetUsername(user).SetPassword(pass).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(time.Duration(timeout) * time.Millisecond))
	tok2 := c.Connect()
	if !tok2.WaitTimeout(time.Duration(timeout)*time.Millisecond) || tok2.Error() != nil {
		code := mqttFailNoConn
		if ct, ok := tok2.(*paho.ConnectToken); ok {
			switch ct.ReturnCode() {
			case 4:
				code = mqttFailBadUser
			case 5:
				code = mqttFailNotAuthed
			}
		}
		t.reply("+TCMQTTCONN:FAIL," + code)
		return
	}
	result := "$gateway/operation/result/" + dev.ProductID + "/" + dev.DeviceName
	if st := c.Subscribe(result, 0, func(_ paho.Client, m paho.Message) {
		var r map[string]any
		if json.Unmarshal(m.Payload(), &r) == nil {
			select {
			case answers <- r:
			default: // nobody asked: dropped, as the firmware's callback drops it
			}
		}
	}); !st.WaitTimeout(time.Duration(timeout)*time.Millisecond) || st.Error() != nil {
		c.Disconnect(0)
		t.reply("+TCMQTTCONN:FAIL," + mqttFailTimeout)
		return
	}
	g.mu.Lock()
	g.client, g.timeout, g.answers, g.online = c, time.Duration(timeout)*time.Millisecond, answers, map[string]bool{}
	g.mu.Unlock()
	ctx := t.h.ctx()
	go func() { // power off ends the connection
		<-ctx.Done()
		g.disconnect()
	}()
	t.reply("+TCMQTTCONN:OK")
}

// call publishes one gateway message and waits for its answer of the same
// type; code is the one device's result ("" = none came).
func (g *tencentGW) call(ctx context.Context, pid, dn string, msg map[string]any) (answer map[string]any, ok bool) {
	g.mu.Lock()
	c, timeout, answers := g.client, g.timeout, g.answers
	g.mu.Unlock()
	if c == nil {
		return nil, false
	}
	for len(answers) > 0 { // answers nobody waited for
		<-answers
	}
	body, _ := json.Marshal(msg)
	if tok := c.Publish("$gateway/operation/"+pid+"/"+dn, 0, false, body); !tok.WaitTimeout(timeout) || tok.Error() != nil {
		return nil, false
	}
	deadline := time.After(timeout)
	for {
		select {
		case r := <-answers:
			if r["type"] == msg["type"] {
				return r, true
			}
		case <-deadline:
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
	}
}

// result is the one device's result in an answer.
func result(answer map[string]any) (int, bool) {
	p, _ := answer["payload"].(map[string]any)
	list, _ := p["devices"].([]any)
	if len(list) != 1 {
		return 0, false
	}
	d, _ := list[0].(map[string]any)
	r, ok := d["result"].(float64)
	return int(r), ok
}

// gwArgs reads <mode>,"pid","dn"[,"secret"] within the firmware's limits:
// product id 10, name 48, secret 44.
func gwArgs(rest string, withSecret bool) (mode int, pid, dn, secret string, ok bool) {
	if !strings.HasPrefix(rest, "=") {
		return 0, "", "", "", false
	}
	args, err := parseATArgs(rest[1:])
	max := 3
	if withSecret {
		max = 4
	}
	if err != nil || len(args) < 3 || len(args) > max {
		return 0, "", "", "", false
	}
	var oks [4]bool
	mode, oks[0] = num(args, 0, 0, 1)
	pid, oks[1] = str(args, 1, 10)
	dn, oks[2] = str(args, 2, 48)
	oks[3] = true
	if len(args) == 4 {
		secret, oks[3] = str(args, 3, 44)
	}
	return mode, pid, dn, secret, oks == [4]bool{true, true, true, true} && pid != "" && dn != ""
}

func (t *tencentAT) gwBind(rest string) {
	switch rest {
	case "=?":
		t.reply(`+TCGWBIND:"MODE","PRODUCT_ID","DEVICE_NAME","DEVICE_SECRET"`)
		t.ok()
		return
	case "?":
		t.gwList()
		return
	}
	mode, pid, dn, secret, ok := gwArgs(rest, true)
	if !ok {
		t.cme(cmeBadParam)
		return
	}
	if !t.gw.connected() {
		t.cme(cmeState)
		return
	}
	dev := t.h.file().Tencent.Dev
	msg := map[string]any{"type": "unbind", "payload": map[string]any{"devices": []map[string]any{{"product_id": pid, "device_name": dn}}}}
	if mode == 0 {
		if secret == "" {
			secret = t.h.file().Tencent.sub(pid, dn)
		}
		if secret == "" {
			t.cme(cmeBadParam)
			return
		}
		random, ts := rand.IntN(1<<31), time.Now().Unix()
		m := hmac.New(sha1.New, []byte(secret))
		m.Write([]byte(pid + dn + ";" + strconv.Itoa(random) + ";" + strconv.FormatInt(ts, 10)))
		msg = map[string]any{"type": "bind", "payload": map[string]any{"devices": []map[string]any{{
			"product_id": pid, "device_name": dn, "signature": base64.StdEncoding.EncodeToString(m.Sum(nil)),
			"random": random, "timestamp": ts, "signmethod": "hmacsha1", "authtype": "psk"}}}}
	}
	t.ok()
	answer, ok := t.gw.call(t.h.ctx(), dev.ProductID, dev.DeviceName, msg)
	code, has := result(answer)
	switch {
	case !ok || !has:
		t.reply("+TCGWBIND:FAIL," + mqttFailTimeout)
	case code == 0, mode == 0 && code == 809, mode == 1 && code == -1:
		t.reply("+TCGWBIND:OK")
	default:
		t.h.logger().Info("sim: gateway bind refused", "result", code)
		t.reply("+TCGWBIND:FAIL," + strconv.Itoa(code))
	}
}

func (t *tencentAT) gwList() {
	if !t.gw.connected() {
		t.cme(cmeState)
		return
	}
	dev := t.h.file().Tencent.Dev
	answer, ok := t.gw.call(t.h.ctx(), dev.ProductID, dev.DeviceName, map[string]any{"type": "describe_sub_devices"})
	if !ok {
		t.cme(cmeTimeout)
		return
	}
	p, _ := answer["payload"].(map[string]any)
	list, _ := p["devices"].([]any)
	var lines []string
	for _, x := range list {
		d, _ := x.(map[string]any)
		lines = append(lines, fmt.Sprintf("+TCGWBIND: %v,%v", d["product_id"], d["device_name"]))
	}
	if len(lines) > 0 {
		t.reply(lines...)
	}
	t.ok()
}

// cmeTimeout: "202 command timeout" ([GW] CME ERROR 列表扩展).
const cmeTimeout = 202

func (t *tencentAT) gwOnline(rest string) {
	switch rest {
	case "=?":
		t.reply(`+TCGWONLINE:"MODE","PRODUCT_ID","DEVICE_NAME"`)
		t.ok()
		return
	case "?":
		t.gw.mu.Lock()
		var lines []string
		for k := range t.gw.online {
			pid, dn, _ := strings.Cut(k, "/")
			lines = append(lines, "+TCGWONLINE: "+pid+","+dn)
		}
		t.gw.mu.Unlock()
		if len(lines) > 0 {
			slices.Sort(lines)
			t.reply(lines...)
		}
		t.ok()
		return
	}
	mode, pid, dn, _, ok := gwArgs(rest, false)
	if !ok {
		t.cme(cmeBadParam)
		return
	}
	if !t.gw.connected() {
		t.cme(cmeState)
		return
	}
	dev := t.h.file().Tencent.Dev
	typ := "online"
	if mode == 1 {
		typ = "offline"
	}
	t.ok()
	answer, ok := t.gw.call(t.h.ctx(), dev.ProductID, dev.DeviceName,
		map[string]any{"type": typ, "payload": map[string]any{"devices": []map[string]any{{"product_id": pid, "device_name": dn}}}})
	code, has := result(answer)
	switch {
	case !ok || !has:
		t.reply("+TCGWONLINE:FAIL," + mqttFailTimeout)
	case code == 0:
		t.gw.mu.Lock()
		if t.gw.online != nil {
			if mode == 0 {
				t.gw.online[pid+"/"+dn] = true
			} else {
				delete(t.gw.online, pid+"/"+dn)
			}
		}
		t.gw.mu.Unlock()
		t.reply("+TCGWONLINE:OK")
	default:
		t.reply("+TCGWONLINE:FAIL," + strconv.Itoa(code))
	}
}

func (t *tencentAT) subDevInfo(rest string) {
	switch {
	case rest == "=?":
		t.reply(`+TCSUBDEVINFOSET:"MODE","PRODUCT_ID","DEVICE_NAME","DEVICE_SECRET_BCC","PRODUCT_REGION"`)
		t.ok()
	case rest == "?":
		var lines []string
		for _, s := range t.h.file().Tencent.Subs {
			lines = append(lines, fmt.Sprintf("+TCSUBDEVINFOSET:%s,%s,%d,%s", quoteAT(s.ProductID), quoteAT(s.DeviceName), bcc(s.DeviceSecret), quoteAT(s.Region)))
		}
		if len(lines) > 0 {
			t.reply(lines...)
		}
		t.ok()
	case strings.HasPrefix(rest, "="):
		args, err := parseATArgs(rest[1:])
		if err != nil || len(args) < 4 || len(args) > 5 {
			t.cme(cmeBadParam)
			return
		}
		var ok [5]bool
		var d tencentDev
		mode, m := num(args, 0, 0, 1)
		ok[0] = m
		d.ProductID, ok[1] = str(args, 1, 10)
		d.DeviceName, ok[2] = str(args, 2, 48)
		d.DeviceSecret, ok[3] = str(args, 3, 44)
		d.Region, ok[4] = tencentRegion, true
		if len(args) == 5 {
			d.Region, ok[4] = str(args, 4, 24)
		}
		if ok != [5]bool{true, true, true, true, true} || d.ProductID == "" || d.DeviceName == "" {
			t.cme(cmeBadParam)
			return
		}
		subs := t.h.file().Tencent.Subs
		if mode == 0 && t.h.file().Tencent.sub(d.ProductID, d.DeviceName) == "" && len(subs) >= tencentMaxSubs {
			t.ok()
			t.reply("+TCSUBDEVINFOSET:FAIL," + regFailGeneric)
			return
		}
		if t.h.fault() == FaultFailWrite {
			t.ok()
			t.reply("+TCSUBDEVINFOSET:FAIL," + regFailGeneric)
			return
		}
		if err := t.h.commit(func(bf *boardFile) { bf.Tencent.setSub(d, mode == 1) }); err != nil {
			t.cme(cmeFlash)
			return
		}
		t.ok()
		t.reply("+TCSUBDEVINFOSET:OK")
	default:
		t.error()
	}
}

// sub is the stored secret of a sub-device ("" = none).
func (f tencentFlash) sub(pid, dn string) string {
	for _, s := range f.Subs {
		if s.ProductID == pid && s.DeviceName == dn {
			return s.DeviceSecret
		}
	}
	return ""
}

// setSub stores (or, del, removes) a sub-device's triple.
func (f *tencentFlash) setSub(d tencentDev, del bool) {
	for i, s := range f.Subs {
		if s.ProductID == d.ProductID && s.DeviceName == d.DeviceName {
			if del {
				f.Subs = append(f.Subs[:i:i], f.Subs[i+1:]...)
			} else {
				f.Subs[i] = d
			}
			return
		}
	}
	if !del {
		f.Subs = append(f.Subs, d)
	}
}
