package emulator

// The emulated clouds' MQTT broker: an embedded mochi-mqtt server whose
// CONNECT check is each vendor's device credential scheme, verified against
// the emulator's own devices (shared/reference/tencent.md §4, aliyun.md
// §3b, §4):
//
//   - Tencent: client id ${productId}${deviceName}; username
//     ${clientId};${sdkappid};${connid};${expiry}, refused once expired;
//     password hex(HMAC-SHA1|SHA256(base64decode(PSK), username));hmacsha1|hmacsha256.
//   - Aliyun: client id "<id>|securemode=..,signmethod=..[,timestamp=..]|",
//     username "<dn>&<pk>", password hex HMAC(DeviceSecret, "clientId..deviceName..productKey..timestamp..");
//     "<ClientID>|authType=connwl,..|" with a DeviceToken as password; and the
//     MQTT-based registrations authType=register|regnwl, answered with one
//     PUBLISH on /ext/register or /ext/regnwl before the broker hangs up.
//
// A refused CONNECT gets CONNACK "bad username or password" (the credential
// is wrong: a signature, a token, a malformed username) or "not authorized"
// (well-formed, but the device, product or registration is not allowed); the
// reason is kept for MQTTRejections so `iotburn verify` can say why. The
// first successful login activates the device (persisted): after it, a
// dynamic registration of that name is refused, as on the clouds.
//
// This listener speaks plain TCP: securemode=2 (TLS) is accepted as declared.
// Devices of certificate products log in on the TLS listener instead
// (mqtt_tls.go, StartMQTTS); here they are refused.

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// MQTT 3.1.1 CONNACK return codes of a refusal.
const (
	mqttBadCredentials byte = 4 // bad username or password
	mqttNotAuthorized  byte = 5
)

// MQTTRejection is one refused CONNECT. It holds no password.
type MQTTRejection struct {
	Time       time.Time
	Platform   string // "tencent" or "aliyun", by the client id's shape
	Product    string // "" when the credentials named none
	DeviceName string
	ClientID   string
	ReturnCode byte // MQTT 3.1.1: 4 bad username or password, 5 not authorized (v5 clients get 0x86 / 0x87)
	Reason     string
}

// maxRejections bounds the in-memory list: a device retrying in a loop
// must not grow it without end.
const maxRejections = 1000

// mqttRegistrationGrace is how long a registration connection stays open
// after its answer: the cloud hangs up, but a moment lets the device read
// the answer and leave first.
const mqttRegistrationGrace = 2 * time.Second

type mqttBroker struct {
	srv  *mqtt.Server
	addr string
}

// StartMQTT starts the broker on addr ("" = 127.0.0.1 on a free port) and
// returns the address it listens on. Close stops it.
func (e *Emulator) StartMQTT(addr string) (listenAddr string, err error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	return e.startBroker(&e.broker, "MQTT broker", false, listeners.NewTCP(listeners.Config{ID: "iotburn", Address: addr}))
}

// startBroker starts a broker with the emulator's hook on l and keeps it in
// *slot (the plain broker or the TLS one): one of each at a time, none
// after Close. what names it in errors and the log.
func (e *Emulator) startBroker(slot **mqttBroker, what string, tls bool, l listeners.Listener) (string, error) {
	e.mqttMu.Lock()
	defer e.mqttMu.Unlock()
	if *slot != nil {
		return "", fmt.Errorf("emulator: the %s already listens on %s", what, (*slot).addr)
	}
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return "", errors.New("emulator: closed")
	}
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), InlineClient: true})
	if err := srv.AddHook(&mqttHook{e: e, srv: srv, tls: tls}, nil); err != nil {
		return "", fmt.Errorf("emulator: MQTT hook: %w", err)
	}
	if err := srv.AddListener(l); err != nil {
		return "", fmt.Errorf("emulator: %s on %s: %w", what, l.Address(), err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return "", fmt.Errorf("emulator: %s: %w", what, err)
	}
	*slot = &mqttBroker{srv: srv, addr: l.Address()}
	e.log.Info("mqtt", "listen", (*slot).addr, "tls", tls)
	return (*slot).addr, nil
}

// MQTTAddr is the broker's address ("" when it is not running).
func (e *Emulator) MQTTAddr() string {
	e.mqttMu.Lock()
	defer e.mqttMu.Unlock()
	if e.broker == nil {
		return ""
	}
	return e.broker.addr
}

func (e *Emulator) stopMQTT() {
	e.mqttMu.Lock()
	defer e.mqttMu.Unlock()
	for _, b := range []**mqttBroker{&e.broker, &e.tlsBroker} {
		if *b != nil {
			(*b).srv.Close()
			*b = nil
		}
	}
}

// MQTTRejections lists the refused CONNECTs since start, oldest first (at
// most the last 1000).
func (e *Emulator) MQTTRejections() []MQTTRejection {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]MQTTRejection(nil), e.dr.rejections...)
}

// mqttSession is an admitted connection.
type mqttSession struct {
	platform, product, device string
	// A registration's answer, pushed once the session is up; "" for a login.
	topic   string
	payload []byte
	// keep: the push is not a registration's answer but a message to a
	// logged-in device (Aliyun's /ext/auth/identity/response): the session
	// stays, and counts as the device online.
	keep bool
	// gws: a gateway's sub-devices logged in through this connection
	// (aliyun_gateway.go, tencent_gateway.go).
	gws gwSession
}

// gateway is the session's sub-device part.
func (s *mqttSession) gateway() *gwSession {
	s.gws.mu.Lock()
	if s.gws.subs == nil {
		s.gws.subs = map[string]bool{}
	}
	s.gws.mu.Unlock()
	return &s.gws
}

// mqttReject is a refused CONNECT.
type mqttReject struct {
	platform, product, device string
	code                      byte
	reason                    string
}

func (r *mqttReject) Error() string { return r.reason }

type mqttHook struct {
	mqtt.HookBase
	e        *Emulator
	srv      *mqtt.Server
	tls      bool     // the TLS listener's: logins by device certificate
	sessions sync.Map // *mqtt.Client → *mqttSession
}

func (h *mqttHook) ID() string { return "iotburn-cloud-auth" }

func (h *mqttHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSessionEstablished, mqtt.OnDisconnect, mqtt.OnPublish:
		return true
	}
	return false
}

// OnConnect does the whole check. It runs before mochi's own authentication
// step so that it can pick the CONNACK code: mochi's refusal is always "bad
// username or password" in v5 and maps it to v3's "not authorized".
func (h *mqttHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	cid := pk.Connect.ClientIdentifier
	var (
		s   *mqttSession
		rej *mqttReject
	)
	if h.tls {
		s, rej = h.e.mqttAuthenticateCert(cid, string(pk.Connect.Username), peerCertificate(cl))
	} else {
		s, rej = h.e.mqttAuthenticate(cid, string(pk.Connect.Username), string(pk.Connect.Password))
	}
	if rej != nil {
		h.e.mqttRecordRejection(rej, cid)
		code := packets.Code{Code: rej.code}
		if cl.Properties.ProtocolVersion >= 5 {
			code = packets.ErrNotAuthorized
			if rej.code == mqttBadCredentials {
				code = packets.ErrBadUsernameOrPassword
			}
		}
		h.srv.SendConnack(cl, code, false, nil)
		return rej // mochi drops the connection
	}
	h.sessions.Store(cl, s)
	h.e.log.Info("mqtt", "platform", s.platform, "product", s.product, "device", s.device, "client", cid, "code", "OK")
	return nil
}

func (h *mqttHook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	_, ok := h.sessions.Load(cl)
	return ok
}

// OnACLCheck admits every topic: the emulator vouches for who connects,
// which is what `verify` proves; per-topic policy is no part of provisioning.
func (h *mqttHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

func (h *mqttHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	v, ok := h.sessions.Load(cl)
	if !ok {
		return
	}
	s := v.(*mqttSession)
	if s.topic != "" {
		cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: s.topic, Payload: s.payload})
		if !s.keep {
			time.AfterFunc(mqttRegistrationGrace, func() { cl.Stop(errors.New("registration answered")) })
			return
		}
	}
	h.e.mqttOnline(s, 1)
}

func (h *mqttHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	if v, ok := h.sessions.LoadAndDelete(cl); ok {
		if s := v.(*mqttSession); s.topic == "" || s.keep {
			h.e.gatewayGone(s)
			h.e.mqttOnline(s, -1)
		}
	}
}

// OnPublish answers what the cloud itself answers: a gateway's requests for
// its sub-devices (aliyun_gateway.go, tencent_gateway.go). Those are the
// cloud's, so they are acknowledged and not passed to subscribers; the
// answer goes to whoever subscribed to its topic, as the cloud's does.
func (h *mqttHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	v, ok := h.sessions.Load(cl)
	if !ok {
		return pk, nil
	}
	s := v.(*mqttSession)
	var (
		topic   string
		payload []byte
		handled bool
	)
	switch s.platform {
	case "aliyun":
		topic, payload, handled = h.e.aliGatewayPublish(s, pk.TopicName, pk.Payload)
	case "tencent":
		topic, payload, handled = h.e.tcGatewayPublish(s, pk.TopicName, pk.Payload)
	}
	if !handled {
		return pk, nil
	}
	if topic != "" {
		if err := h.srv.Publish(topic, payload, false, 0); err != nil {
			h.e.log.Warn("mqtt gateway: answering", "topic", topic, "err", err)
		}
	}
	return pk, packets.CodeSuccessIgnore
}

func (e *Emulator) mqttOnline(s *mqttSession, delta int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := drKey(s.platform, s.product, s.device)
	if e.dr.online[k] += delta; e.dr.online[k] <= 0 {
		delete(e.dr.online, k)
	}
}

func (e *Emulator) mqttRecordRejection(r *mqttReject, cid string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rj := MQTTRejection{Time: e.now(), Platform: r.platform, Product: clip(r.product), DeviceName: clip(r.device),
		ClientID: clip(cid), ReturnCode: r.code, Reason: r.reason}
	if len(e.dr.rejections) >= maxRejections {
		e.dr.rejections = append(e.dr.rejections[:0:0], e.dr.rejections[1:]...)
	}
	e.dr.rejections = append(e.dr.rejections, rj)
	e.log.Info("mqtt", "platform", r.platform, "product", rj.Product, "device", rj.DeviceName, "client", rj.ClientID,
		"code", r.code, "reason", r.reason)
}

// mqttAuthenticate tells the vendors apart by the client id: Aliyun's carry
// "|k=v,...|" parameters, Tencent's are ${productId}${deviceName}.
func (e *Emulator) mqttAuthenticate(cid, user, pass string) (*mqttSession, *mqttReject) {
	if strings.Contains(cid, "|") {
		return e.mqttAliyun(cid, user, pass)
	}
	return e.mqttTencent(cid, user, pass)
}

func rejectf(platform, product, device string, code byte, format string, args ...any) *mqttReject {
	return &mqttReject{platform: platform, product: product, device: device, code: code, reason: fmt.Sprintf(format, args...)}
}

func (e *Emulator) mqttTencent(cid, user, pass string) (*mqttSession, *mqttReject) {
	f := strings.Split(user, ";")
	if len(f) != 4 {
		return nil, rejectf("tencent", "", "", mqttBadCredentials, "the username is not ${clientId};${sdkappid};${connid};${expiry}")
	}
	if f[0] != cid {
		return nil, rejectf("tencent", "", "", mqttBadCredentials, "the username's client id %q is not the MQTT client id %q", clip(f[0]), clip(cid))
	}
	expiry, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return nil, rejectf("tencent", "", "", mqttBadCredentials, "the username's expiry %q is not unix seconds", clip(f[3]))
	}
	sig, alg, _ := strings.Cut(pass, ";")
	var newHash func() hash.Hash
	switch alg {
	case "hmacsha1":
		newHash = sha1.New
	case "hmacsha256":
		newHash = sha256.New
	default:
		return nil, rejectf("tencent", "", "", mqttBadCredentials, "the password is not <hex>;hmacsha1 or <hex>;hmacsha256")
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, rejectf("tencent", "", "", mqttNotAuthorized, "the emulator is shut down")
	}
	if err := e.tcAdvance(); err != nil {
		return nil, rejectf("tencent", "", "", mqttNotAuthorized, "persisting state: %v", err)
	}
	prod, d := e.tcFindClient(cid)
	if d == nil {
		return nil, rejectf("tencent", "", "", mqttNotAuthorized, "no device has the client id %q (${productId}${deviceName})", clip(cid))
	}
	if prod.Cert {
		// "证书认证 ... 端口：8883; 密钥认证 ... 端口：1883" (doc 1105/41824): a
		// certificate device has no key to sign a password with.
		return nil, rejectf("tencent", prod.ID, d.Name, mqttNotAuthorized,
			"the device authenticates with its certificate: log in over TLS with it (the certificate port), not with a key")
	}
	if now := e.now().Unix(); expiry < now {
		return nil, rejectf("tencent", prod.ID, d.Name, mqttNotAuthorized, "the credentials expired at %d (now %d)", expiry, now)
	}
	key, err := base64.StdEncoding.DecodeString(d.PSK)
	if err != nil {
		return nil, rejectf("tencent", prod.ID, d.Name, mqttNotAuthorized, "the device has no key (PSK)")
	}
	m := hmac.New(newHash, key)
	m.Write([]byte(user))
	if !subtleEqual(strings.ToLower(sig), hex.EncodeToString(m.Sum(nil))) {
		return nil, rejectf("tencent", prod.ID, d.Name, mqttBadCredentials, "the password does not match the device's PSK (%s)", alg)
	}
	if d.Activated == 0 {
		if err := e.commit(drRecord("activate", drActivateRec{Platform: "tencent", Product: prod.ID, DeviceName: d.Name, At: e.now().UnixMilli()})); err != nil {
			return nil, rejectf("tencent", prod.ID, d.Name, mqttNotAuthorized, "persisting the activation: %v", err)
		}
	}
	return &mqttSession{platform: "tencent", product: prod.ID, device: d.Name}, nil
}

// tcFindClient splits ${productId}${deviceName}: the product is whichever
// known ProductId prefixes the client id and holds the rest as a device.
// Called with e.mu held.
func (e *Emulator) tcFindClient(cid string) (*tcProduct, *tcDevice) {
	for _, id := range sortedKeys(e.tc.products) {
		if name, ok := strings.CutPrefix(cid, id); ok {
			if d := e.tc.products[id].devices[name]; d != nil {
				return e.tc.products[id], d
			}
		}
	}
	return nil, nil
}

// aliRegCode is the CONNACK code of a refused MQTT registration.
func aliRegCode(r *aliRegError) byte {
	switch r.code {
	case aliRegSignFailed, aliRegBadParam:
		return mqttBadCredentials
	}
	return mqttNotAuthorized
}

func (e *Emulator) mqttAliyun(cid, user, pass string) (*mqttSession, *mqttReject) {
	base, rest, _ := strings.Cut(cid, "|")
	if !strings.HasSuffix(rest, "|") {
		return nil, rejectf("aliyun", "", "", mqttBadCredentials, "the client id is not <clientId>|key=value,...|")
	}
	params := map[string]string{}
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "|"), ",") {
		k, v, _ := strings.Cut(kv, "=")
		params[k] = v
	}
	dn, pk, ok := strings.Cut(user, "&")
	if !ok {
		return nil, rejectf("aliyun", "", "", mqttBadCredentials, "the username is not <deviceName>&<productKey>")
	}
	switch params["securemode"] {
	case "2", "-2", "3":
	default:
		return nil, rejectf("aliyun", pk, dn, mqttBadCredentials, "securemode must be 2, -2 or 3 (got %q)", clip(params["securemode"]))
	}
	switch at := params["authType"]; at {
	case "register":
		secret, rerr := e.aliDynRegister(pk, dn, params["random"], params["signmethod"], pass, "mqtt register")
		if rerr != nil {
			return nil, rejectf("aliyun", pk, dn, aliRegCode(rerr), "registration refused: %d: %s", rerr.code, rerr.msg)
		}
		payload, _ := json.Marshal(map[string]string{"productKey": pk, "deviceName": dn, "deviceSecret": secret})
		return &mqttSession{platform: "aliyun", product: pk, device: dn, topic: "/ext/register", payload: payload}, nil
	case "regnwl":
		clientID, token, rerr := e.aliRegisterFree(pk, dn, params["random"], params["signmethod"], pass, "mqtt regnwl")
		if rerr != nil {
			return nil, rejectf("aliyun", pk, dn, aliRegCode(rerr), "registration refused: %d: %s", rerr.code, rerr.msg)
		}
		payload, _ := json.Marshal(map[string]string{"productKey": pk, "deviceName": dn, "clientId": clientID, "deviceToken": token})
		return &mqttSession{platform: "aliyun", product: pk, device: dn, topic: "/ext/regnwl", payload: payload}, nil
	case "", "connwl":
		return e.mqttAliyunLogin(base, pk, dn, params, pass, at == "connwl")
	default:
		return nil, rejectf("aliyun", pk, dn, mqttBadCredentials, "unknown authType %q", clip(at))
	}
}

// mqttAliyunLogin checks a device's login: its DeviceSecret signature, or
// (connwl) a DeviceToken issued to this ClientID.
func (e *Emulator) mqttAliyunLogin(base, pk, dn string, params map[string]string, pass string, token bool) (*mqttSession, *mqttReject) {
	method := params["signmethod"]
	if !token && aliSignHash(method) == nil {
		return nil, rejectf("aliyun", pk, dn, mqttBadCredentials, "signmethod must be hmacsha256, hmacsha1 or hmacmd5 (got %q)", clip(method))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, rejectf("aliyun", pk, dn, mqttNotAuthorized, "the emulator is shut down")
	}
	if err := e.aliAdvance(); err != nil {
		return nil, rejectf("aliyun", pk, dn, mqttNotAuthorized, "persisting state: %v", err)
	}
	prod := e.ali.products[pk]
	if prod == nil {
		return nil, rejectf("aliyun", pk, dn, mqttNotAuthorized, "the product %s does not exist", clip(pk))
	}
	d := prod.devices[dn]
	if d == nil {
		return nil, rejectf("aliyun", pk, dn, mqttNotAuthorized, "the device %s does not exist in product %s", clip(dn), pk)
	}
	if prod.X509 {
		// "X.509证书的设备认证方式与常用的共享密钥互斥，不支持使用证书与deviceSecret字符串
		// 同时认证连接" (doc 163769): it has no secret to sign with.
		return nil, rejectf("aliyun", pk, dn, mqttNotAuthorized,
			"the device authenticates with its X.509 certificate: log in over TLS with it (x509.itls.cn-shanghai.aliyuncs.com:1883 on the cloud)")
	}
	if token {
		found := false
		for _, t := range e.dr.tokens[drKey(pk, dn)] {
			// Every token compared, so the time does not tell which matched.
			if subtleEqual(base, t.ClientID) && subtleEqual(pass, t.Token) {
				found = true
			}
		}
		if !found {
			return nil, rejectf("aliyun", pk, dn, mqttBadCredentials, "the DeviceToken is not one issued to ClientID %q", clip(base))
		}
	} else if !aliLoginSignatureOK(method, d.Secret, base, pk, dn, params["timestamp"], pass) {
		return nil, rejectf("aliyun", pk, dn, mqttBadCredentials, "the password does not match the device's DeviceSecret (%s)", method)
	}
	if d.Activated == 0 {
		if err := e.commit(drRecord("activate", drActivateRec{Platform: "aliyun", Product: pk, DeviceName: dn, At: e.now().UnixMilli()})); err != nil {
			return nil, rejectf("aliyun", pk, dn, mqttNotAuthorized, "persisting the activation: %v", err)
		}
	}
	return &mqttSession{platform: "aliyun", product: pk, device: dn}, nil
}

// aliLoginSignatureOK: the content is the parameters sorted by name, each
// name then value; clientId and timestamp "are optional, but if they are sent
// they must equal the values in mqttClientId", so a signature over the content
// with or without each of them is accepted.
func aliLoginSignatureOK(method, secret, clientID, pk, dn, ts, pass string) bool {
	for _, withID := range []bool{true, false} {
		for _, withTS := range []bool{true, false} {
			if withTS && ts == "" {
				continue
			}
			var c strings.Builder
			if withID {
				c.WriteString("clientId" + clientID)
			}
			c.WriteString("deviceName" + dn + "productKey" + pk)
			if withTS {
				c.WriteString("timestamp" + ts)
			}
			if aliHexHMACEqual(method, secret, c.String(), pass) {
				return true
			}
		}
	}
	return false
}
