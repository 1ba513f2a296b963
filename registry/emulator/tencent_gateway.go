package emulator

// Tencent Cloud IoT Hub gateways and sub-devices: gateway products, the
// gateway's $gateway/operation topics and the API actions that bind and list
// sub-devices. Sources:
//
//   - ProductType "5 普通网关产品" (ProductProperties, tencentcloud-sdk-go
//     iotcloud/v20180614 models.go). IoT Hub has no sub-device product type:
//     a sub-device's product is an ordinary one (ProductType 0) that the
//     console binds to gateway products ("动态绑定的前提是对应的网关产品和子设备
//     产品已经完成产品级关联", IoT Explorer doc 1081/138021); a product
//     written :subdevice is one bound so to every gateway product.
//   - Topics ("拓扑关系管理", doc 1105/41828; "代理子设备上下线", 1105/41829):
//     the gateway publishes on $gateway/operation/${productid}/${devicename}
//     and reads the answers on $gateway/operation/result/${productid}/${devicename};
//     {"type":"bind"|"unbind"|"online"|"offline","payload":{"devices":[{
//     "product_id","device_name",…}]}}, each device answered with its
//     "result"; {"type":"describe_sub_devices"} answered with the devices.
//   - A bind entry carries "signature","random","timestamp","signmethod"
//     (hmacsha1, hmacsha256), "authtype" (psk, certificate): the signature is
//     base64(HMAC(the sub-device's PSK as it is written, not decoded,
//     "${product_id}${device_name};${random};${timestamp}")), as the C SDK
//     computes it (qcloud-iot-sdk-embedded-c gateway_mqtt.c,
//     _subdev_bind_hmac_sha1_cal) and the doc describes it.
//   - Results (the AT firmware's table of gateway codes, ESP-AT Tencent
//     command doc, the same as the cloud's): 0 成功, -1 网关设备未绑定该子设备,
//     -2 系统错误, 801 请求参数错误, 802 设备名非法或者设备不存在, 803 签名校验失败,
//     804 签名方法不支持, 805 签名请求已过期, 806 该设备已被绑定, 807 非普通设备不能被
//     绑定, 808 不允许的操作, 809 重复绑定, 810 不支持的子设备.
//   - "Maximum number of subdevices that can be added under a single gateway:
//     1,500" (IoT Hub "Use Limits", doc 1105/41464).
//   - API: BindDevices and UnbindDevices (v20180614: GatewayProductId,
//     GatewayDeviceName, ProductId, DeviceNames); the errors
//     FailedOperation.BindDeviceOverLimit "绑定设备超过限制",
//     FailedOperation.BindDevicePerOnceOverLimit "单次绑定的设备数量超过限制",
//     InvalidParameterValue.DeviceIsNotGateway "设备不是网关类型",
//     FailedOperation.ProductNotBind "产品未绑定",
//     UnauthorizedOperation.DeviceHasAlreadyBindGateway "该设备绑定了网关设备，
//     无法删除" and UnauthorizedOperation.GatewayHasBindedDevices "该设备下仍有
//     绑定的设备" (DeleteDevice) are iotcloud v20210408's errors.go.
//     DescribeGatewayBindDevices (GatewayProductId, GatewayDeviceName,
//     ProductId, Offset, Limit → TotalCount, Devices, ProductName) is a
//     later SDK's: v1.0.162's v20180614 client lacks it, so the emulator
//     serves it under 2018-06-14 for the tools that read a topology.
//
// [NOT FROM A SOURCE], the harsher reading: a gateway's code for the
// 1,501st sub-device (808 over MQTT), the signature's validity (805 beyond
// 5 minutes either side of the emulator's clock), a device that is not a
// gateway publishing on these topics (808 for each device), the certificate
// authtype (804: the emulator checks PSK signatures only), BindDevices' 100
// names a call, a name already bound elsewhere given to BindDevices
// (refused, InvalidParameterValue), and DescribeGatewayBindDevices' Limit
// (1 to 100).

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"hash"
	"strconv"
	"strings"
	"time"
)

// Product kinds.
const (
	tcNodeDevice    = 0
	tcNodeGateway   = 1
	tcNodeSubDevice = 2
)

// TencentMaxSubDevices: "Maximum number of subdevices that can be added under
// a single gateway: 1,500" (doc 1105/41464).
const TencentMaxSubDevices = 1500

// Gateway results (see the package comment above).
const (
	tcGwOK            = 0
	tcGwNotBound      = -1
	tcGwSystem        = -2
	tcGwBadParam      = 801
	tcGwNoDevice      = 802
	tcGwBadSignature  = 803
	tcGwBadMethod     = 804
	tcGwExpired       = 805
	tcGwBoundElse     = 806
	tcGwNotOrdinary   = 807
	tcGwNotAllowed    = 808
	tcGwAlreadyBound  = 809
	tcGwUnsupported   = 810
	tcGwSignatureSkew = 5 * time.Minute
	tcMaxBindPerCall  = 100
)

func tcNodeName(n int) string {
	switch n {
	case tcNodeGateway:
		return "gateway"
	case tcNodeSubDevice:
		return "sub-device"
	}
	return "ordinary"
}

// tcProductType is DescribeProducts' ProductType: 5 for a gateway product,
// 0 for the others.
func tcProductType(n int) uint64 {
	if n == tcNodeGateway {
		return 5
	}
	return 0
}

func (s *tencentState) applyTopo(op string, data json.RawMessage) error {
	var r topoRec
	if err := json.Unmarshal(data, &r); err != nil {
		return err
	}
	if !s.exists(r.Gateway) {
		return errUnknownTopo(r.Gateway)
	}
	if op == "unbind" {
		s.topo.remove(r.Gateway, r.Subs)
		return nil
	}
	for _, k := range r.Subs {
		if !s.exists(k) {
			return errUnknownTopo(k)
		}
	}
	s.topo.add(r.Gateway, r.Subs)
	return nil
}

func (s *tencentState) exists(k string) bool {
	pid, dn, _ := strings.Cut(k, "/")
	p := s.products[pid]
	return p != nil && p.devices[dn] != nil
}

type errUnknownTopo string

func (e errUnknownTopo) Error() string { return "binding of unknown device " + string(e) }

// TencentTopology lists a gateway's bound sub-devices as
// "ProductId/DeviceName", sorted: the emulator's own view, not an API.
func (e *Emulator) TencentTopology(gwProduct, gwName string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tc.topo.list(topoKey(gwProduct, gwName))
}

// tcDeletable refuses deleting a bound device or a gateway with bound
// devices. Called with e.mu held.
func (e *Emulator) tcDeletable(pid, name string) *apiError {
	k := topoKey(pid, name)
	if g, ok := e.tc.topo.gatewayOf(k); ok {
		return errf("UnauthorizedOperation.DeviceHasAlreadyBindGateway", "The device `%s` is bound to gateway `%s`: unbind it first.", name, g)
	}
	if n := e.tc.topo.count(k); n > 0 {
		return errf("UnauthorizedOperation.GatewayHasBindedDevices", "The gateway `%s` still has %d bound devices: unbind them first.", name, n)
	}
	return nil
}

// tcGwDevice is one device of a gateway message.
type tcGwDevice struct {
	ProductID  string          `json:"product_id"`
	DeviceName string          `json:"device_name"`
	Signature  string          `json:"signature,omitempty"`
	Random     json.RawMessage `json:"random,omitempty"`
	Timestamp  json.RawMessage `json:"timestamp,omitempty"`
	SignMethod string          `json:"signmethod,omitempty"`
	AuthType   string          `json:"authtype,omitempty"`
}

type tcGwMessage struct {
	Type    string `json:"type"`
	Payload struct {
		Devices []tcGwDevice `json:"devices"`
	} `json:"payload"`
}

type tcGwResult struct {
	ProductID  string `json:"product_id"`
	DeviceName string `json:"device_name"`
	Result     *int   `json:"result,omitempty"`
}

// tcGatewayPublish answers a Tencent device's PUBLISH on
// $gateway/operation/${productid}/${devicename}; ok false when the topic is
// another.
func (e *Emulator) tcGatewayPublish(s *mqttSession, topic string, payload []byte) (replyTopic string, reply []byte, ok bool) {
	rest, found := strings.CutPrefix(topic, "$gateway/operation/")
	if !found || strings.HasPrefix(rest, "result/") {
		return "", nil, false
	}
	if rest != s.product+"/"+s.device {
		return "", nil, true // another device's topic: dropped
	}
	replyTopic = "$gateway/operation/result/" + rest
	var m tcGwMessage
	if err := json.Unmarshal(payload, &m); err != nil || m.Type == "" {
		// Not a gateway message: the cloud cannot say which type it answers.
		return "", nil, true
	}
	var devices []tcGwResult
	switch m.Type {
	case "describe_sub_devices":
		devices = e.tcDescribeSubDevices(s)
	case "bind", "unbind", "online", "offline":
		devices = e.tcGatewayOperation(s, m.Type, m.Payload.Devices)
	default:
		return "", nil, true
	}
	e.log.Info("mqtt gateway", "platform", "tencent", "product", s.product, "device", s.device, "type", m.Type, "devices", len(devices))
	out := map[string]any{"type": m.Type, "payload": map[string]any{"devices": devices}}
	b, _ := json.Marshal(out)
	return replyTopic, b, true
}

func tcGwAnswer(d tcGwDevice, code int) tcGwResult {
	return tcGwResult{ProductID: d.ProductID, DeviceName: d.DeviceName, Result: &code}
}

func (e *Emulator) tcDescribeSubDevices(s *mqttSession) []tcGwResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []tcGwResult{}
	for _, k := range e.tc.topo.list(topoKey(s.product, s.device)) {
		pid, dn, _ := strings.Cut(k, "/")
		out = append(out, tcGwResult{ProductID: pid, DeviceName: dn})
	}
	return out
}

func (e *Emulator) tcGatewayOperation(s *mqttSession, op string, devices []tcGwDevice) []tcGwResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]tcGwResult, 0, len(devices))
	gw := e.tc.products[s.product]
	if e.closed || gw == nil || gw.devices[s.device] == nil {
		for _, d := range devices {
			out = append(out, tcGwAnswer(d, tcGwSystem))
		}
		return out
	}
	for _, d := range devices {
		var code int
		switch {
		case gw.Node != tcNodeGateway:
			code = tcGwNotAllowed
		case op == "bind":
			code = e.tcBindOne(s, d)
		case op == "unbind":
			code = e.tcUnbindOne(s, d)
		default:
			code = e.tcOnOffline(s, d, op == "online")
		}
		out = append(out, tcGwAnswer(d, code))
	}
	return out
}

// tcBindOne checks and binds one sub-device. Called with e.mu held.
func (e *Emulator) tcBindOne(s *mqttSession, d tcGwDevice) int {
	if d.ProductID == "" || d.DeviceName == "" || d.Signature == "" || len(d.Random) == 0 || len(d.Timestamp) == 0 {
		return tcGwBadParam
	}
	p := e.tc.products[d.ProductID]
	if p == nil || p.devices[d.DeviceName] == nil {
		return tcGwNoDevice
	}
	if p.Node == tcNodeGateway {
		return tcGwNotOrdinary
	}
	if p.Node != tcNodeSubDevice {
		return tcGwUnsupported
	}
	var newHash func() hash.Hash
	switch d.SignMethod {
	case "hmacsha1":
		newHash = sha1.New
	case "hmacsha256":
		newHash = sha256.New
	default:
		return tcGwBadMethod
	}
	if d.AuthType != "psk" || p.Cert {
		return tcGwBadMethod
	}
	random, ts := tcJSONNumber(d.Random), tcJSONNumber(d.Timestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || random == "" {
		return tcGwBadParam
	}
	if skew := e.now().Sub(time.Unix(sec, 0)); skew > tcGwSignatureSkew || skew < -tcGwSignatureSkew {
		return tcGwExpired
	}
	m := hmac.New(newHash, []byte(p.devices[d.DeviceName].PSK))
	m.Write([]byte(d.ProductID + d.DeviceName + ";" + random + ";" + ts))
	if !subtleEqual(d.Signature, base64.StdEncoding.EncodeToString(m.Sum(nil))) {
		return tcGwBadSignature
	}
	gk, k := topoKey(s.product, s.device), topoKey(d.ProductID, d.DeviceName)
	if g, ok := e.tc.topo.gatewayOf(k); ok {
		if g == gk {
			return tcGwAlreadyBound
		}
		return tcGwBoundElse
	}
	if e.tc.topo.count(gk) >= TencentMaxSubDevices {
		return tcGwNotAllowed
	}
	if err := e.commit(tcRecord("bind", topoRec{Gateway: gk, Subs: []string{k}})); err != nil {
		return tcGwSystem
	}
	return tcGwOK
}

// tcJSONNumber is a number or a string of digits as written.
func tcJSONNumber(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

func (e *Emulator) tcUnbindOne(s *mqttSession, d tcGwDevice) int {
	gk, k := topoKey(s.product, s.device), topoKey(d.ProductID, d.DeviceName)
	if !e.tc.topo.has(gk, k) {
		return tcGwNotBound
	}
	if err := e.commit(tcRecord("unbind", topoRec{Gateway: gk, Subs: []string{k}})); err != nil {
		return tcGwSystem
	}
	gs := s.gateway()
	gs.mu.Lock()
	was := gs.subs[k]
	delete(gs.subs, k)
	gs.mu.Unlock()
	if was {
		e.dropOnline(drKey("tencent", d.ProductID, d.DeviceName))
	}
	return tcGwOK
}

func (e *Emulator) tcOnOffline(s *mqttSession, d tcGwDevice, online bool) int {
	gk, k := topoKey(s.product, s.device), topoKey(d.ProductID, d.DeviceName)
	if !e.tc.topo.has(gk, k) {
		return tcGwNotBound
	}
	gs := s.gateway()
	gs.mu.Lock()
	was := gs.subs[k]
	if online {
		gs.subs[k] = true
	} else {
		delete(gs.subs, k)
	}
	gs.mu.Unlock()
	dk := drKey("tencent", d.ProductID, d.DeviceName)
	switch {
	case online && !was:
		e.dr.online[dk]++
		if sd := e.tc.products[d.ProductID].devices[d.DeviceName]; sd.Activated == 0 {
			if err := e.commit(drRecord("activate", drActivateRec{Platform: "tencent", Product: d.ProductID, DeviceName: d.DeviceName, At: e.now().UnixMilli()})); err != nil {
				return tcGwSystem
			}
		}
	case !online && was:
		e.dropOnline(dk)
	}
	return tcGwOK
}

// tcGatewayAndSubs reads BindDevices' and UnbindDevices' parameters.
// Called with e.mu held.
func (e *Emulator) tcGatewayAndSubs(p params) (gk string, sub *tcProduct, names []string, aerr *apiError) {
	gw, aerr := e.tcProduct(p, "GatewayProductId")
	if aerr != nil {
		return "", nil, nil, aerr
	}
	gname, aerr := p.str("GatewayDeviceName")
	if aerr != nil {
		return "", nil, nil, aerr
	}
	if gw.devices[gname] == nil {
		return "", nil, nil, errf("ResourceNotFound.DeviceNotExist", "The device `%s` does not exist in product `%s`.", gname, gw.ID)
	}
	if gw.Node != tcNodeGateway {
		return "", nil, nil, errf("InvalidParameterValue.DeviceIsNotGateway", "The device `%s` of product `%s` is not a gateway.", gname, gw.ID)
	}
	sub, aerr = e.tcProduct(p, "ProductId")
	if aerr != nil {
		return "", nil, nil, aerr
	}
	names, aerr = p.strs("DeviceNames")
	if aerr != nil {
		return "", nil, nil, aerr
	}
	if len(names) == 0 {
		return "", nil, nil, errf("InvalidParameterValue", "DeviceNames is empty.")
	}
	if len(names) > tcMaxBindPerCall {
		return "", nil, nil, errf("FailedOperation.BindDevicePerOnceOverLimit", "DeviceNames holds %d names; one call binds at most %d.", len(names), tcMaxBindPerCall)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if sub.devices[n] == nil {
			return "", nil, nil, errf("ResourceNotFound.DeviceNotExist", "The device `%s` does not exist in product `%s`.", n, sub.ID)
		}
		if seen[n] {
			return "", nil, nil, errf("InvalidParameterValue", "DeviceNames lists `%s` more than once.", n)
		}
		seen[n] = true
	}
	return topoKey(gw.ID, gname), sub, names, nil
}

func (e *Emulator) tcBindDevices(p params) (any, *apiError) {
	gk, sub, names, aerr := e.tcGatewayAndSubs(p)
	if aerr != nil {
		return nil, aerr
	}
	if sub.Node != tcNodeSubDevice {
		return nil, errf("FailedOperation.ProductNotBind", "The product `%s` is not bound to gateway products: its devices cannot be sub-devices.", sub.ID)
	}
	var subs []string
	for _, n := range names {
		k := topoKey(sub.ID, n)
		if g, ok := e.tc.topo.gatewayOf(k); ok {
			if g == gk {
				continue
			}
			return nil, errf("InvalidParameterValue", "The device `%s` is bound to gateway `%s`: unbind it there first.", n, g)
		}
		subs = append(subs, k)
	}
	if have := e.tc.topo.count(gk); have+len(subs) > TencentMaxSubDevices {
		return nil, errf("FailedOperation.BindDeviceOverLimit", "The gateway `%s` has %d of %d sub-devices; %d more asked.", gk, have, TencentMaxSubDevices, len(subs))
	}
	if len(subs) > 0 {
		if err := e.commit(tcRecord("bind", topoRec{Gateway: gk, Subs: subs})); err != nil {
			return nil, errf("InternalError", "Persisting the binding: %v.", err)
		}
	}
	return map[string]any{}, nil
}

func (e *Emulator) tcUnbindDevices(p params) (any, *apiError) {
	gk, sub, names, aerr := e.tcGatewayAndSubs(p)
	if aerr != nil {
		return nil, aerr
	}
	subs := make([]string, 0, len(names))
	for _, n := range names {
		k := topoKey(sub.ID, n)
		if !e.tc.topo.has(gk, k) {
			return nil, errf("InvalidParameterValue", "The device `%s` is not bound to gateway `%s`.", n, gk)
		}
		subs = append(subs, k)
	}
	if err := e.commit(tcRecord("unbind", topoRec{Gateway: gk, Subs: subs})); err != nil {
		return nil, errf("InternalError", "Persisting the unbinding: %v.", err)
	}
	return map[string]any{}, nil
}

// tcDescribeGatewayBindDevices pages a gateway's sub-devices of one product.
func (e *Emulator) tcDescribeGatewayBindDevices(p params) (any, *apiError) {
	gw, aerr := e.tcProduct(p, "GatewayProductId")
	if aerr != nil {
		return nil, aerr
	}
	gname, aerr := p.str("GatewayDeviceName")
	if aerr != nil {
		return nil, aerr
	}
	if gw.devices[gname] == nil {
		return nil, errf("ResourceNotFound.DeviceNotExist", "The device `%s` does not exist in product `%s`.", gname, gw.ID)
	}
	if gw.Node != tcNodeGateway {
		return nil, errf("InvalidParameterValue.DeviceIsNotGateway", "The device `%s` of product `%s` is not a gateway.", gname, gw.ID)
	}
	sub, aerr := e.tcProduct(p, "ProductId")
	if aerr != nil {
		return nil, aerr
	}
	offset, limit, aerr := page(p, 10, 1, 100)
	if aerr != nil {
		return nil, aerr
	}
	var names []string
	for _, k := range e.tc.topo.list(topoKey(gw.ID, gname)) {
		if pid, dn, _ := strings.Cut(k, "/"); pid == sub.ID {
			names = append(names, dn)
		}
	}
	devices := []map[string]any{}
	for _, n := range window(names, offset, limit) {
		devices = append(devices, map[string]any{"ProductId": sub.ID, "DeviceName": n})
	}
	return map[string]any{"TotalCount": len(names), "Devices": devices, "ProductName": sub.ID}, nil
}
