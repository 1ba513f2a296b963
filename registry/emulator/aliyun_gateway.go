package emulator

// Alibaba Cloud IoT Platform gateways and sub-devices: product node types,
// the gateway's MQTT topics for its sub-devices, the topology they build and
// the API that reads it. Sources (Alibaba Cloud IoT Platform docs, "Alink
// protocol" chapter, and the SDKs):
//
//   - Node types (CreateProduct doc 69123, ALIYUN::IOT::Product): NodeType 0
//     "设备。设备不能挂载子设备。可以直连物联网平台，也可以作为网关的子设备连接物联网平台。
//     作为网关子设备时，必须同时传入ProtocolType"; 1 "网关。网关可以挂载子设备". A
//     sub-device product is NodeType 0 with a ProtocolType (the emulator
//     reports "customize"); the node type cannot be updated.
//   - Sub-device dynamic registration ("动态注册子设备"):
//     /sys/${productKey}/${deviceName}/thing/sub/register, params
//     [{deviceName, productKey}], answer on …_reply with data [{iotId,
//     productKey, deviceName, deviceSecret}]; codes 460 "request parameter
//     error", 6402 "topo relation cannot add by self", 401 "request auth
//     error". "The sub-device manufacturer must enable the dynamic
//     registration feature in IoT Platform, and upload a DeviceName"
//     ("Gateways and sub-devices"), and "Gateway sub-devices support only
//     the pre-registration method" ("Register devices"): the names must
//     exist in the sub-device's product, whose dynamic registration is on.
//   - Topology ("管理拓扑关系", doc 89299): thing/topo/add with params
//     [{deviceName, productKey, sign, signmethod, timestamp, clientId}],
//     "单次最多可请求添加30个子设备"; sign = SignMethod(DeviceSecret of the
//     sub-device, the other parameters sorted by name, each name then value),
//     signmethod hmacSha1, hmacSha256, hmacMd5 (case-insensitive, as
//     BatchAddThingTopo says); answer data [{deviceName, productKey}].
//     thing/topo/get answers data [{deviceName, productKey}].
//   - "A maximum of 1,500 sub-devices can be registered under a gateway"
//     (issue 14's seed); refused with aliyun/iotkit-embedded's
//     ERROR_TOPO_RELATION_COUNT_EXCEED = -6400 "topo relation count exceed"
//     (infra_defs.h, the device SDK's copy of the cloud's code; the cloud
//     answers without the sign), and by the API with
//     iot.device.TopoRelationCountExceeded "The number of topology
//     relationships exceeds the limit." (IoT Platform API "Error codes").
//   - Sub-device login ("子设备上下线", doc 89300):
//     /ext/session/${gwProductKey}/${gwDeviceName}/combine/login, params
//     {productKey, deviceName, clientId, timestamp, signMethod, sign,
//     cleanSession}, signed as above without cleanSession; answer on
//     …/combine/login_reply {id, code, message, data{productKey,
//     deviceName}}; codes 460, 429, 428 "too many subdevices under gateway"
//     (1,500 online in the English doc of that version, 2,000 in today's:
//     the harsher 1,500 here), 6401 "topo relation not exist", 6100 "device
//     not found", 521 "device deleted", 522 "device forbidden", 6287 "invalid
//     sign". combine/logout: 460, 520 "device no session".
//   - GetThingTopo (doc 69770, GetThingTopoResponse in services/iot):
//     PageNo, PageSize (at most 50), the gateway by IotId or ProductKey and
//     DeviceName; Data{Total, PageSize, PageCount, CurrentPage,
//     List{deviceInfo[{IotId, ProductKey, DeviceName}]}}; 500 QPS.
//
// Where the docs say nothing, the emulator refuses ([NOT FROM A SOURCE]):
// a device that is not a gateway publishing on these topics (460), a
// gateway's device or the gateway itself as a sub-device (460, 6402), a
// sub-device already in another gateway's topology added again over MQTT
// (460: BatchAddThingTopo documents moving it, the MQTT topic does not), a
// request with any refused entry (refused whole: nothing added), a
// sub-device registered again after its first login (6289, as a direct
// device's registration), and the Sha256 sign method (its content is not
// documented). A topic of another device than the one logged in is
// dropped, unanswered.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Node types of an Aliyun product.
const (
	aliNodeDevice    = 0 // directly connected (NodeType 0)
	aliNodeGateway   = 1 // NodeType 1
	aliNodeSubDevice = 2 // NodeType 0 with a ProtocolType: connects through a gateway
)

// AliyunMaxSubDevices is how many sub-devices one gateway's topology holds.
const AliyunMaxSubDevices = 1500

// aliMaxTopoAdd: "单次最多可请求添加30个子设备" (doc 89299).
const aliMaxTopoAdd = 30

// aliMaxSubRegister: "一个网关设备下动态注册子设备时，单次动态注册的子设备数量不能超过
// 30个" (IoT Platform limits, doc 30527).
const aliMaxSubRegister = 30

// aliGwLoginQPS: "一个网关设备代理子设备上线的QPS限制为200" (doc 30527); over it
// combine/login answers 429 "rate limit, too many subDeviceOnline msg in one
// minute" (doc 89300).
const aliGwLoginQPS = 200

// Device-side codes of the gateway topics (see the package comment above).
const (
	aliGwOK             = 200
	aliGwBadParam       = 460
	aliGwAuth           = 401
	aliGwCountExceed    = 6400
	aliGwTopoNotExist   = 6401
	aliGwBySelf         = 6402
	aliGwDeviceNotFound = 6100
	aliGwInvalidSign    = 6287
	aliGwTooManyOnline  = 428
	aliGwRateLimit      = 429
	aliGwNoSession      = 520
	aliGwServerError    = 500
)

func aliNodeName(n int) string {
	switch n {
	case aliNodeGateway:
		return "gateway"
	case aliNodeSubDevice:
		return "sub-device"
	}
	return "directly connected"
}

// aliNodeType is the API's NodeType of a product: 1 for a gateway, 0 for
// the others.
func aliNodeType(n int) int {
	if n == aliNodeGateway {
		return 1
	}
	return 0
}

func aliSplitTopoKey(k string) (pk, dn string) {
	pk, dn, _ = strings.Cut(k, "/")
	return pk, dn
}

func (s *aliyunState) applyTopo(op string, data json.RawMessage) error {
	var r topoRec
	if err := json.Unmarshal(data, &r); err != nil {
		return err
	}
	gpk, gdn := aliSplitTopoKey(r.Gateway)
	if p := s.products[gpk]; p == nil || p.devices[gdn] == nil {
		return fmt.Errorf("topology of unknown gateway %s", r.Gateway)
	}
	if op == "untopo" {
		s.topo.remove(r.Gateway, r.Subs)
		return nil
	}
	for _, sub := range r.Subs {
		spk, sdn := aliSplitTopoKey(sub)
		if p := s.products[spk]; p == nil || p.devices[sdn] == nil {
			return fmt.Errorf("topology of unknown sub-device %s", sub)
		}
	}
	s.topo.add(r.Gateway, r.Subs)
	return nil
}

// AliyunTopology lists a gateway's sub-devices as "ProductKey/DeviceName",
// sorted: the emulator's own view, for tests and the demo; not an API.
func (e *Emulator) AliyunTopology(gwProductKey, gwName string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ali.topo.list(topoKey(gwProductKey, gwName))
}

// gwSession is what a gateway's connection holds of its sub-devices: the
// ones logged in through it (Aliyun combine/login, Tencent online), online
// while it is.
type gwSession struct {
	mu   sync.Mutex
	subs map[string]bool // topoKey
}

// aliGwRequest is an Alink request on a gateway topic.
type aliGwRequest struct {
	ID     string          `json:"id"`
	Params json.RawMessage `json:"params"`
}

// aliGwReply is an Alink answer.
type aliGwReply struct {
	ID      string `json:"id"`
	Code    int    `json:"code"`
	Message string `json:"message,omitempty"`
	Data    any    `json:"data"`
}

type aliGwError struct {
	code int
	msg  string
}

func gwRefuse(code int, format string, args ...any) *aliGwError {
	return &aliGwError{code: code, msg: fmt.Sprintf(format, args...)}
}

// aliGatewayPublish answers a logged-in Aliyun device's PUBLISH on a gateway
// topic: the reply's topic and payload, or ok false when the topic is none
// of them (the message then goes its way as any other).
func (e *Emulator) aliGatewayPublish(s *mqttSession, topic string, payload []byte) (replyTopic string, reply []byte, ok bool) {
	var pk, dn, what string
	if rest, found := strings.CutPrefix(topic, "/sys/"); found {
		f := strings.SplitN(rest, "/", 3)
		if len(f) != 3 {
			return "", nil, false
		}
		pk, dn, what = f[0], f[1], f[2]
		switch what {
		case "thing/sub/register", "thing/topo/add", "thing/topo/get", "thing/topo/delete":
		default:
			return "", nil, false
		}
	} else if rest, found := strings.CutPrefix(topic, "/ext/session/"); found {
		f := strings.SplitN(rest, "/", 3)
		if len(f) != 3 || (f[2] != "combine/login" && f[2] != "combine/logout") {
			return "", nil, false
		}
		pk, dn, what = f[0], f[1], f[2]
	} else {
		return "", nil, false
	}
	if pk != s.product || dn != s.device {
		// A device publishes on its own topics only; another's are dropped.
		return "", nil, true
	}
	replyTopic = topic + "_reply"
	var req aliGwRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return replyTopic, aliGwAnswer("", nil, gwRefuse(aliGwBadParam, "request parameter error: the payload is not Alink JSON")), true
	}
	var (
		data any
		gerr *aliGwError
	)
	switch what {
	case "thing/sub/register":
		data, gerr = e.aliSubRegister(s, req.Params)
	case "thing/topo/add":
		data, gerr = e.aliTopoAdd(s, req.Params)
	case "thing/topo/delete":
		data, gerr = e.aliTopoDelete(s, req.Params)
	case "thing/topo/get":
		data, gerr = e.aliTopoGet(s)
	case "combine/login":
		data, gerr = e.aliCombineLogin(s, req.Params)
	case "combine/logout":
		data, gerr = e.aliCombineLogout(s, req.Params)
	}
	e.log.Info("mqtt gateway", "platform", "aliyun", "product", s.product, "device", s.device, "topic", what, "code", aliGwCode(gerr))
	return replyTopic, aliGwAnswer(req.ID, data, gerr), true
}

func aliGwCode(g *aliGwError) int {
	if g == nil {
		return aliGwOK
	}
	return g.code
}

func aliGwAnswer(id string, data any, g *aliGwError) []byte {
	r := aliGwReply{ID: id, Code: aliGwOK, Message: "success", Data: data}
	if g != nil {
		r.Code, r.Message = g.code, g.msg
	}
	if r.Data == nil {
		r.Data = map[string]any{}
	}
	b, _ := json.Marshal(r)
	return b
}

// aliGateway checks that the session is a gateway's. Called with e.mu held.
func (e *Emulator) aliGateway(s *mqttSession) (*aliProduct, *aliGwError) {
	if e.closed {
		return nil, gwRefuse(aliGwServerError, "server error: the emulator is shut down")
	}
	if err := e.aliAdvance(); err != nil {
		return nil, gwRefuse(aliGwServerError, "server error: persisting state: %v", err)
	}
	p := e.ali.products[s.product]
	if p == nil || p.devices[s.device] == nil {
		return nil, gwRefuse(aliGwDeviceNotFound, "device not found: the gateway %s/%s no longer exists", s.product, s.device)
	}
	if p.Node != aliNodeGateway {
		return nil, gwRefuse(aliGwBadParam, "request parameter error: %s is a %s product, not a gateway (NodeType 1): only a gateway manages sub-devices",
			p.Key, aliNodeName(p.Node))
	}
	return p, nil
}

type aliSubID struct {
	ProductKey string `json:"productKey"`
	DeviceName string `json:"deviceName"`
}

// aliSubDevice finds a sub-device a gateway names. Called with e.mu held.
func (e *Emulator) aliSubDevice(s *mqttSession, pk, dn string) (*aliProduct, *aliDevice, *aliGwError) {
	if pk == "" || dn == "" {
		return nil, nil, gwRefuse(aliGwBadParam, "request parameter error: productKey and deviceName are required")
	}
	if pk == s.product && dn == s.device {
		return nil, nil, gwRefuse(aliGwBySelf, "topo relation cannot add by self")
	}
	p := e.ali.products[pk]
	if p == nil {
		return nil, nil, gwRefuse(aliGwDeviceNotFound, "device not found: the product %s does not exist", clip(pk))
	}
	if p.Node == aliNodeGateway {
		return nil, nil, gwRefuse(aliGwBadParam, "request parameter error: %s is a gateway product: a gateway's device cannot be a sub-device", pk)
	}
	if p.X509 {
		return nil, nil, gwRefuse(aliGwBadParam, "request parameter error: %s authenticates its devices with X.509 certificates, not a DeviceSecret", pk)
	}
	d := p.devices[dn]
	if d == nil {
		return nil, nil, gwRefuse(aliGwDeviceNotFound, "device not found: %s does not exist in product %s (a sub-device's name is created first)", clip(dn), pk)
	}
	return p, d, nil
}

// gwList decodes a gateway request's params: a non-empty list of what, of
// at most max entries in one call (0: no limit; per is the call's name in
// the refusal).
func gwList[T any](raw json.RawMessage, what string, max int, per string) ([]T, *aliGwError) {
	var list []T
	if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
		return nil, gwRefuse(aliGwBadParam, "request parameter error: params is a list of %s", what)
	}
	if max > 0 && len(list) > max {
		return nil, gwRefuse(aliGwBadParam, "request parameter error: at most %d sub-devices a %s (%d sent)", max, per, len(list))
	}
	return list, nil
}

func (e *Emulator) aliSubRegister(s *mqttSession, raw json.RawMessage) (any, *aliGwError) {
	ids, gerr := gwList[aliSubID](raw, "{productKey, deviceName}", aliMaxSubRegister, "registration")
	if gerr != nil {
		return nil, gerr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	gw, gerr := e.aliGateway(s)
	if gerr != nil {
		return nil, gerr
	}
	gk := topoKey(gw.Key, s.device)
	recs := make([]record, 0, 2*len(ids))
	out := make([]map[string]string, 0, len(ids))
	seen := map[string]bool{}
	fresh := 0
	for _, id := range ids {
		p, d, gerr := e.aliSubDevice(s, id.ProductKey, id.DeviceName)
		if gerr != nil {
			return nil, gerr
		}
		k := topoKey(p.Key, d.Name)
		if seen[k] {
			return nil, gwRefuse(aliGwBadParam, "request parameter error: %s is listed twice", k)
		}
		seen[k] = true
		if st := e.dr.products[drKey("aliyun", p.Key)]; st == nil || !st.DynamicRegistration {
			return nil, gwRefuse(aliRegDisabled, "Dynamic registration is not enabled for product %s.", p.Key)
		}
		if d.Activated != 0 {
			return nil, gwRefuse(aliRegAlreadyActivated, "device is already active: %s", k)
		}
		if !e.ali.topo.has(gk, k) {
			fresh++
		}
		nd := *d
		nd.Secret = newDeviceSecret()
		recs = append(recs, aliRecord("device", aliDeviceRec{Product: p.Key, aliDevice: nd}),
			drRecord("reg", regRec(Registration{Platform: "aliyun", Product: p.Key, DeviceName: d.Name, Mode: ModePreRegistered,
				Transport: "mqtt thing/sub/register via " + gk, Time: e.now(), Result: "OK"})))
		out = append(out, map[string]string{"iotId": d.IotID, "productKey": p.Key, "deviceName": d.Name, "deviceSecret": nd.Secret})
	}
	if have := e.ali.topo.count(gk); have+fresh > AliyunMaxSubDevices {
		return nil, gwRefuse(aliGwCountExceed, "topo relation count exceed: gateway %s has %d of %d sub-devices, %d more asked", gk, have, AliyunMaxSubDevices, fresh)
	}
	if err := e.commit(recs...); err != nil {
		return nil, gwRefuse(aliGwServerError, "server error: persisting the registration: %v", err)
	}
	return out, nil
}

// aliSubSign is a sub-device's signed entry (topo/add, combine/login).
type aliSubSign struct {
	ProductKey string `json:"productKey"`
	DeviceName string `json:"deviceName"`
	ClientID   string `json:"clientId"`
	Timestamp  string `json:"timestamp"`
	SignMethod string `json:"signmethod"`
	SignMethd2 string `json:"signMethod"` // combine/login spells it signMethod
	Sign       string `json:"sign"`
}

// signOK checks the entry's sign with the sub-device's DeviceSecret.
func (a aliSubSign) signOK(secret string) bool {
	method := strings.ToLower(a.SignMethod)
	if method == "" {
		method = strings.ToLower(a.SignMethd2)
	}
	var c strings.Builder
	if a.ClientID != "" {
		c.WriteString("clientId" + a.ClientID)
	}
	c.WriteString("deviceName" + a.DeviceName + "productKey" + a.ProductKey)
	if a.Timestamp != "" {
		c.WriteString("timestamp" + a.Timestamp)
	}
	return secret != "" && aliHexHMACEqual(method, secret, c.String(), a.Sign)
}

func (e *Emulator) aliTopoAdd(s *mqttSession, raw json.RawMessage) (any, *aliGwError) {
	entries, gerr := gwList[aliSubSign](raw, "signed sub-devices", aliMaxTopoAdd, "request")
	if gerr != nil {
		return nil, gerr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	gw, gerr := e.aliGateway(s)
	if gerr != nil {
		return nil, gerr
	}
	gk := topoKey(gw.Key, s.device)
	var subs []string
	out := make([]aliSubID, 0, len(entries))
	seen := map[string]bool{}
	for _, a := range entries {
		p, d, gerr := e.aliSubDevice(s, a.ProductKey, a.DeviceName)
		if gerr != nil {
			return nil, gerr
		}
		k := topoKey(p.Key, d.Name)
		if aliSignHash(strings.ToLower(a.SignMethod+a.SignMethd2)) == nil {
			return nil, gwRefuse(aliGwBadParam, "request parameter error: signmethod must be hmacSha1, hmacSha256 or hmacMd5 (%s)", k)
		}
		if !a.signOK(d.Secret) {
			return nil, gwRefuse(aliGwAuth, "request auth error: the sign of %s does not match its DeviceSecret", k)
		}
		if g, ok := e.ali.topo.gatewayOf(k); ok && g != gk {
			return nil, gwRefuse(aliGwBadParam, "request parameter error: %s is a sub-device of gateway %s: remove it there first", k, g)
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, aliSubID{ProductKey: p.Key, DeviceName: d.Name})
		if !e.ali.topo.has(gk, k) {
			subs = append(subs, k)
		}
	}
	if have := e.ali.topo.count(gk); have+len(subs) > AliyunMaxSubDevices {
		return nil, gwRefuse(aliGwCountExceed, "topo relation count exceed: gateway %s has %d of %d sub-devices, %d more asked", gk, have, AliyunMaxSubDevices, len(subs))
	}
	if len(subs) > 0 {
		if err := e.commit(aliRecord("topo", topoRec{Gateway: gk, Subs: subs})); err != nil {
			return nil, gwRefuse(aliGwServerError, "server error: persisting the topology: %v", err)
		}
	}
	return out, nil
}

func (e *Emulator) aliTopoDelete(s *mqttSession, raw json.RawMessage) (any, *aliGwError) {
	ids, gerr := gwList[aliSubID](raw, "{productKey, deviceName}", 0, "")
	if gerr != nil {
		return nil, gerr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	gw, gerr := e.aliGateway(s)
	if gerr != nil {
		return nil, gerr
	}
	gk := topoKey(gw.Key, s.device)
	var subs []string
	for _, id := range ids {
		k := topoKey(id.ProductKey, id.DeviceName)
		if !e.ali.topo.has(gk, k) {
			return nil, gwRefuse(aliGwTopoNotExist, "topo relation not exist: %s", clip(k))
		}
		subs = append(subs, k)
	}
	if err := e.commit(aliRecord("untopo", topoRec{Gateway: gk, Subs: subs})); err != nil {
		return nil, gwRefuse(aliGwServerError, "server error: persisting the topology: %v", err)
	}
	return ids, nil
}

func (e *Emulator) aliTopoGet(s *mqttSession) (any, *aliGwError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	gw, gerr := e.aliGateway(s)
	if gerr != nil {
		return nil, gerr
	}
	subs := e.ali.topo.list(topoKey(gw.Key, s.device))
	out := make([]aliSubID, len(subs))
	for i, k := range subs {
		out[i].ProductKey, out[i].DeviceName = aliSplitTopoKey(k)
	}
	return out, nil
}

func (e *Emulator) aliCombineLogin(s *mqttSession, raw json.RawMessage) (any, *aliGwError) {
	var a aliSubSign
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, gwRefuse(aliGwBadParam, "request parameter error: params is an object")
	}
	if aliSignHash(strings.ToLower(a.SignMethod+a.SignMethd2)) == nil {
		return nil, gwRefuse(aliGwBadParam, "request parameter error: signMethod must be hmacSha1, hmacSha256 or hmacMd5")
	}
	if !e.ali.front.gwLogin.allow(topoKey(s.product, s.device)) {
		return nil, gwRefuse(aliGwRateLimit, "rate limit, too many subDeviceOnline msg in one minute")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	gw, gerr := e.aliGateway(s)
	if gerr != nil {
		return nil, gerr
	}
	gk := topoKey(gw.Key, s.device)
	p, d, gerr := e.aliSubDevice(s, a.ProductKey, a.DeviceName)
	if gerr != nil {
		return nil, gerr
	}
	k := topoKey(p.Key, d.Name)
	if !e.ali.topo.has(gk, k) {
		return nil, gwRefuse(aliGwTopoNotExist, "topo relation not exist: %s is not a sub-device of %s", k, gk)
	}
	if !a.signOK(d.Secret) {
		return nil, gwRefuse(aliGwInvalidSign, "invalid sign: the sign of %s does not match its DeviceSecret", k)
	}
	gs := s.gateway()
	gs.mu.Lock()
	already, online := gs.subs[k], len(gs.subs)
	gs.mu.Unlock()
	if !already && online >= AliyunMaxSubDevices {
		return nil, gwRefuse(aliGwTooManyOnline, "too many subdevices under gateway: %d online", online)
	}
	if d.Activated == 0 {
		if err := e.commit(drRecord("activate", drActivateRec{Platform: "aliyun", Product: p.Key, DeviceName: d.Name, At: e.now().UnixMilli()})); err != nil {
			return nil, gwRefuse(aliGwServerError, "server error: persisting the activation: %v", err)
		}
	}
	if !already {
		gs.mu.Lock()
		gs.subs[k] = true
		gs.mu.Unlock()
		e.dr.online[drKey("aliyun", p.Key, d.Name)]++
	}
	return aliSubID{ProductKey: p.Key, DeviceName: d.Name}, nil
}

func (e *Emulator) aliCombineLogout(s *mqttSession, raw json.RawMessage) (any, *aliGwError) {
	var id aliSubID
	if err := json.Unmarshal(raw, &id); err != nil {
		return nil, gwRefuse(aliGwBadParam, "request parameter error: params is an object")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, gerr := e.aliGateway(s); gerr != nil {
		return nil, gerr
	}
	k := topoKey(id.ProductKey, id.DeviceName)
	gs := s.gateway()
	gs.mu.Lock()
	had := gs.subs[k]
	delete(gs.subs, k)
	gs.mu.Unlock()
	if !had {
		return nil, gwRefuse(aliGwNoSession, "device no session: %s", clip(k))
	}
	e.dropOnline(drKey("aliyun", id.ProductKey, id.DeviceName))
	return id, nil
}

// dropOnline counts one connection of a device less. Called with e.mu held.
func (e *Emulator) dropOnline(k string) {
	if e.dr.online[k]--; e.dr.online[k] <= 0 {
		delete(e.dr.online, k)
	}
}

// gatewayGone takes a gateway's sub-devices offline with it.
func (e *Emulator) gatewayGone(s *mqttSession) {
	gs := s.gateway()
	gs.mu.Lock()
	subs := gs.subs
	gs.subs = map[string]bool{}
	gs.mu.Unlock()
	if len(subs) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range subs {
		pk, dn, _ := strings.Cut(k, "/")
		e.dropOnline(drKey(s.platform, pk, dn))
	}
}

// aliGetThingTopo pages a gateway's sub-devices (doc 69770).
func (e *Emulator) aliGetThingTopo(p rpcParams) (map[string]any, *apiError) {
	no, err1 := strconv.Atoi(p["PageNo"])
	size, err2 := strconv.Atoi(p["PageSize"])
	if err1 != nil || err2 != nil || no < 1 || size < 1 || size > 50 {
		return nil, errf("iot.common.InvalidPageParams", "The specified page size or page number is invalid: PageNo ≥ 1, PageSize 1 to 50.")
	}
	prod, d, aerr := e.aliDevice(p)
	if aerr != nil {
		return nil, aerr
	}
	subs := e.ali.topo.list(topoKey(prod.Key, d.Name))
	infos := []map[string]any{}
	for i := (no - 1) * size; i < len(subs) && i < no*size; i++ {
		spk, sdn := aliSplitTopoKey(subs[i])
		sd := e.ali.products[spk].devices[sdn]
		infos = append(infos, map[string]any{"IotId": sd.IotID, "ProductKey": spk, "DeviceName": sdn})
	}
	return map[string]any{"Data": map[string]any{
		"Total": len(subs), "PageSize": size, "PageCount": (len(subs) + size - 1) / size, "CurrentPage": no,
		"List": map[string]any{"deviceInfo": infos},
	}}, nil
}

// aliProtocolType is QueryProduct's ProtocolType: a sub-device product's
// protocol to its gateway ("customize", CreateProduct's 自定义协议), "" for
// the others.
func aliProtocolType(n int) string {
	if n == aliNodeSubDevice {
		return "customize"
	}
	return ""
}
