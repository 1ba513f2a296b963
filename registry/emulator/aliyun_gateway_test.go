package emulator

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	aliiot "github.com/aliyun/alibaba-cloud-sdk-go/services/iot"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/iotburn/iotburn/registry/devauth"
)

const (
	aliGwProduct  = "a1GwProdKey"
	aliSubProduct = "a1SubProdKey"
)

// gwWorld is an emulator with a gateway product, a sub-device product whose
// dynamic registration is on, and the plain test product.
type gwWorld struct {
	t    testing.TB
	e    *Emulator
	srv  *httptest.Server
	mqtt string
	sdk  *aliiot.Client
}

func gwStart(t testing.TB, state string) *gwWorld {
	return gwStartWith(t, Config{StateDir: state})
}

// gwStartAt runs the gateway world on a clock.
func gwStartAt(t testing.TB, state string, now func() time.Time) *gwWorld {
	return gwStartWith(t, Config{StateDir: state, Now: now})
}

// gwStartWith adds the gateway world's products to cfg.
func gwStartWith(t testing.TB, cfg Config) *gwWorld {
	t.Helper()
	cfg.AliyunGatewayProducts, cfg.AliyunSubDeviceProducts = []string{aliGwProduct}, []string{aliSubProduct}
	cfg.DynRegProducts = map[string]ProductSettings{"aliyun:" + aliSubProduct: {DynamicRegistration: true}}
	e, srv, addr := drStart(t, cfg)
	return &gwWorld{t: t, e: e, srv: srv, mqtt: addr, sdk: aliSDK(t, aliTestID, aliTestSecret)}
}

// create makes devices through the official SDK and returns their secrets.
func (w *gwWorld) create(product string, names ...string) []string {
	w.t.Helper()
	var secrets []string
	for _, n := range names {
		r := aliiot.CreateRegisterDeviceRequest()
		aliReq(w.srv, r.RpcRequest)
		r.ProductKey, r.DeviceName = product, n
		resp, err := w.sdk.RegisterDevice(r)
		if err != nil || !resp.Success {
			w.t.Fatalf("RegisterDevice %s/%s: %v %+v", product, n, err, resp)
		}
		secrets = append(secrets, resp.Data.DeviceSecret)
	}
	return secrets
}

// topo reads a gateway's topology through the official SDK's GetThingTopo.
func (w *gwWorld) topo(pk, dn string, page, size int) *aliiot.GetThingTopoResponse {
	w.t.Helper()
	r := aliiot.CreateGetThingTopoRequest()
	aliReq(w.srv, r.RpcRequest)
	r.ProductKey, r.DeviceName = pk, dn
	r.PageNo, r.PageSize = requests.NewInteger(page), requests.NewInteger(size)
	resp, err := w.sdk.GetThingTopo(r)
	if err != nil {
		w.t.Fatalf("GetThingTopo: %v", err)
	}
	return resp
}

// gwClient is a device logged in on the broker through paho, reading every
// answer on its own topics.
type gwClient struct {
	t       testing.TB
	c       paho.Client
	pk, dn  string
	mu      sync.Mutex
	waiting map[string]chan map[string]any
	seq     atomic.Int64
}

func (w *gwWorld) login(pk, dn, secret string) *gwClient {
	w.t.Helper()
	cid, user, pass := devauth.AliyunMQTT(pk, dn, secret, time.Now())
	g := &gwClient{t: w.t, pk: pk, dn: dn, waiting: map[string]chan map[string]any{}}
	opts := paho.NewClientOptions().AddBroker("tcp://" + w.mqtt).SetClientID(cid).SetUsername(user).SetPassword(pass).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
	g.c = paho.NewClient(opts)
	if tok := g.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		w.t.Fatalf("gateway %s/%s login: %v", pk, dn, tok.Error())
	}
	w.t.Cleanup(func() { g.c.Disconnect(50) })
	onReply := func(_ paho.Client, m paho.Message) {
		var r map[string]any
		if json.Unmarshal(m.Payload(), &r) != nil {
			return
		}
		id, _ := r["id"].(string)
		g.mu.Lock()
		ch := g.waiting[m.Topic()+"#"+id]
		g.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
	for _, f := range []string{"/sys/" + pk + "/" + dn + "/#", "/ext/session/" + pk + "/" + dn + "/#"} {
		if tok := g.c.Subscribe(f, 1, onReply); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			w.t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
	}
	return g
}

// call publishes an Alink request on the gateway's topic and waits for its
// answer on topic_reply.
func (g *gwClient) call(topic string, params any) (code int, reply map[string]any) {
	g.t.Helper()
	id := strconv.FormatInt(g.seq.Add(1), 10)
	ch := make(chan map[string]any, 1)
	g.mu.Lock()
	g.waiting[topic+"_reply#"+id] = ch
	g.mu.Unlock()
	body, _ := json.Marshal(map[string]any{"id": id, "version": "1.0", "params": params})
	if tok := g.c.Publish(topic, 1, false, body); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		g.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
	select {
	case r := <-ch:
		c, _ := r["code"].(float64)
		return int(c), r
	case <-time.After(20 * time.Second):
		g.t.Fatalf("no answer on %s_reply", topic)
	}
	return 0, nil
}

func (g *gwClient) sys(what string) string { return "/sys/" + g.pk + "/" + g.dn + "/" + what }
func (g *gwClient) session(what string) string {
	return "/ext/session/" + g.pk + "/" + g.dn + "/" + what
}

type subRef struct{ pk, dn string }

func (g *gwClient) register(subs ...subRef) (int, []map[string]any) {
	g.t.Helper()
	var params []map[string]string
	for _, s := range subs {
		params = append(params, map[string]string{"productKey": s.pk, "deviceName": s.dn})
	}
	code, r := g.call(g.sys("thing/sub/register"), params)
	var out []map[string]any
	if list, ok := r["data"].([]any); ok {
		for _, x := range list {
			out = append(out, x.(map[string]any))
		}
	}
	return code, out
}

// subSign is the sign of a sub-device's entry as the Alink docs give it:
// HMAC-SHA1 of the parameters sorted by name (sign and signmethod left out),
// hex, keyed with the sub-device's DeviceSecret.
func subSign(secret, clientID, dn, pk, ts string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte("clientId" + clientID + "deviceName" + dn + "productKey" + pk + "timestamp" + ts))
	return hex.EncodeToString(m.Sum(nil))
}

func signedEntry(pk, dn, secret string) map[string]string {
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	return map[string]string{"productKey": pk, "deviceName": dn, "clientId": pk + "&" + dn, "timestamp": ts,
		"signmethod": "hmacSha1", "sign": subSign(secret, pk+"&"+dn, dn, pk, ts)}
}

func (g *gwClient) topoAdd(entries ...map[string]string) (int, map[string]any) {
	g.t.Helper()
	return g.call(g.sys("thing/topo/add"), entries)
}

func (g *gwClient) combineLogin(pk, dn, secret string) (int, map[string]any) {
	g.t.Helper()
	e := signedEntry(pk, dn, secret)
	e["signMethod"], e["cleanSession"] = "hmacsha1", "true"
	delete(e, "signmethod")
	return g.call(g.session("combine/login"), e)
}

// The whole gateway flow of the Alink docs over real MQTT: a gateway
// registers its pre-created sub-devices and gets each one's DeviceSecret,
// adds them to its topology with entries signed by those secrets, reads the
// topology back, logs each sub-device in; the official SDK sees the
// products' node types, the topology (GetThingTopo) and the sub-devices
// online; a restart on the same state keeps all of it.
func TestAliyunGatewayFlow(t *testing.T) {
	state := t.TempDir()
	w := gwStart(t, state)
	gwSecret := w.create(aliGwProduct, "gw-0001")[0]
	subs := []string{"sub-0001", "sub-0002", "sub-0003"}
	w.create(aliSubProduct, subs...)

	for _, tt := range []struct {
		pk       string
		node     int
		protocol string
	}{{aliGwProduct, 1, ""}, {aliSubProduct, 0, "customize"}, {aliTestProduct, 0, ""}} {
		r := aliiot.CreateQueryProductRequest()
		aliReq(w.srv, r.RpcRequest)
		r.ProductKey = tt.pk
		resp, err := w.sdk.QueryProduct(r)
		if err != nil || !resp.Success || resp.Data.NodeType != tt.node || resp.Data.ProtocolType != tt.protocol {
			t.Fatalf("QueryProduct %s: %v NodeType %d ProtocolType %q, want %d %q", tt.pk, err, resp.Data.NodeType, resp.Data.ProtocolType, tt.node, tt.protocol)
		}
	}

	g := w.login(aliGwProduct, "gw-0001", gwSecret)
	var refs []subRef
	for _, s := range subs {
		refs = append(refs, subRef{aliSubProduct, s})
	}
	code, got := g.register(refs...)
	if code != 200 || len(got) != len(subs) {
		t.Fatalf("thing/sub/register: code %d, %d answers", code, len(got))
	}
	secrets := map[string]string{}
	for _, d := range got {
		dn := d["deviceName"].(string)
		own, ok := w.e.AliyunDevice(aliSubProduct, dn)
		if !ok || d["deviceSecret"] != own || own == "" || d["productKey"] != aliSubProduct || d["iotId"] == "" {
			t.Fatalf("registered %v, the platform holds %q", d, own)
		}
		secrets[dn] = own
	}
	var entries []map[string]string
	for _, s := range subs {
		entries = append(entries, signedEntry(aliSubProduct, s, secrets[s]))
	}
	if code, r := g.topoAdd(entries...); code != 200 || len(r["data"].([]any)) != len(subs) {
		t.Fatalf("thing/topo/add: %d %v", code, r)
	}
	if code, r := g.call(g.sys("thing/topo/get"), map[string]any{}); code != 200 || len(r["data"].([]any)) != len(subs) {
		t.Fatalf("thing/topo/get: %d %v", code, r)
	}
	for _, s := range subs {
		if code, r := g.combineLogin(aliSubProduct, s, secrets[s]); code != 200 {
			t.Fatalf("combine/login %s: %d %v", s, code, r)
		}
	}
	detail := func(dn string) string {
		r := aliiot.CreateQueryDeviceDetailRequest()
		aliReq(w.srv, r.RpcRequest)
		r.ProductKey, r.DeviceName = aliSubProduct, dn
		resp, err := w.sdk.QueryDeviceDetail(r)
		if err != nil || !resp.Success {
			t.Fatalf("QueryDeviceDetail %s: %v", dn, err)
		}
		return resp.Data.Status
	}
	if st := detail("sub-0002"); st != "ONLINE" {
		t.Fatalf("a sub-device logged in through its gateway is %s, want ONLINE", st)
	}

	checkTopo := func(w *gwWorld) {
		t.Helper()
		resp := w.topo(aliGwProduct, "gw-0001", 1, 2)
		if !resp.Success || resp.Data.Total != 3 || resp.Data.PageCount != 2 || resp.Data.CurrentPage != 1 ||
			len(resp.Data.List.DeviceInfo) != 2 || resp.Data.List.DeviceInfo[0].DeviceName != "sub-0001" ||
			resp.Data.List.DeviceInfo[0].IotId == "" || resp.Data.List.DeviceInfo[0].ProductKey != aliSubProduct {
			t.Fatalf("GetThingTopo page 1: %+v", resp)
		}
		if resp := w.topo(aliGwProduct, "gw-0001", 2, 2); len(resp.Data.List.DeviceInfo) != 1 || resp.Data.List.DeviceInfo[0].DeviceName != "sub-0003" {
			t.Fatalf("GetThingTopo page 2: %+v", resp.Data)
		}
	}
	checkTopo(w)
	g.c.Disconnect(50)
	// The gateway's connection gone, its sub-devices are offline.
	deadline := time.Now().Add(10 * time.Second)
	for detail("sub-0002") != "OFFLINE" {
		if time.Now().After(deadline) {
			t.Fatalf("sub-device still %s after its gateway left", detail("sub-0002"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.srv.Close()
	if err := w.e.Close(); err != nil {
		t.Fatal(err)
	}
	w2 := gwStart(t, state)
	checkTopo(w2)
	if got := w2.e.AliyunTopology(aliGwProduct, "gw-0001"); len(got) != 3 {
		t.Fatalf("after a restart the topology is %v", got)
	}
	for s, secret := range secrets {
		if own, _ := w2.e.AliyunDevice(aliSubProduct, s); own != secret {
			t.Fatalf("after a restart %s's secret changed", s)
		}
	}
}

// What the docs refuse, with their codes, and what the emulator refuses where
// they are silent; a refused request changes nothing.
func TestAliyunGatewayRefusals(t *testing.T) {
	w := gwStart(t, "")
	gws := w.create(aliGwProduct, "gw-a", "gw-b")
	subSecret := w.create(aliSubProduct, "sub-x", "sub-y")
	plain := w.create(aliTestProduct, "plain-1")[0]
	ga := w.login(aliGwProduct, "gw-a", gws[0])
	gb := w.login(aliGwProduct, "gw-b", gws[1])

	wantCode := func(what string, got, want int, r map[string]any) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: code %d (%v), want %d", what, got, r["message"], want)
		}
	}
	if code, _ := ga.register(subRef{aliSubProduct, "no-such"}); code != 6100 {
		t.Fatalf("registering a name never created: %d, want 6100", code)
	}
	if code, _ := ga.register(subRef{aliGwProduct, "gw-a"}); code != 6402 {
		t.Fatalf("a gateway registering itself: %d, want 6402", code)
	}
	if code, _ := ga.register(subRef{aliTestProduct, "plain-1"}); code != aliRegDisabled {
		t.Fatalf("a sub-device of a product without dynamic registration: %d, want %d", code, aliRegDisabled)
	}
	p := w.login(aliTestProduct, "plain-1", plain)
	if code, _ := p.register(subRef{aliSubProduct, "sub-x"}); code != 460 {
		t.Fatalf("a directly connected device registering sub-devices: %d, want 460", code)
	}

	// A topology entry must be signed with the sub-device's own secret.
	bad := signedEntry(aliSubProduct, "sub-x", subSecret[1])
	code, r := ga.topoAdd(bad)
	wantCode("topo/add signed with another secret", code, 401, r)
	many := make([]map[string]string, 31)
	for i := range many {
		many[i] = signedEntry(aliSubProduct, "sub-x", subSecret[0])
	}
	code, r = ga.topoAdd(many...)
	wantCode("31 entries in one topo/add", code, 460, r)
	regs := make([]subRef, aliMaxSubRegister+1)
	for i := range regs {
		regs[i] = subRef{aliSubProduct, "sub-y"}
	}
	if code, _ := ga.register(regs...); code != 460 {
		t.Fatalf("31 sub-devices in one thing/sub/register: %d, want 460", code)
	}
	// One bad entry refuses the request: nothing is added.
	code, r = ga.topoAdd(signedEntry(aliSubProduct, "sub-x", subSecret[0]), bad)
	wantCode("topo/add with one bad entry", code, 401, r)
	if got := w.e.AliyunTopology(aliGwProduct, "gw-a"); len(got) != 0 {
		t.Fatalf("a refused topo/add left %v", got)
	}
	code, r = ga.combineLogin(aliSubProduct, "sub-x", subSecret[0])
	wantCode("combine/login before topo/add", code, 6401, r)

	code, r = ga.topoAdd(signedEntry(aliSubProduct, "sub-x", subSecret[0]))
	wantCode("topo/add", code, 200, r)
	code, r = gb.topoAdd(signedEntry(aliSubProduct, "sub-x", subSecret[0]))
	wantCode("topo/add of another gateway's sub-device", code, 460, r)
	code, r = ga.combineLogin(aliSubProduct, "sub-x", subSecret[1])
	wantCode("combine/login with a wrong sign", code, 6287, r)
	code, r = ga.call(ga.session("combine/logout"), map[string]string{"productKey": aliSubProduct, "deviceName": "sub-x"})
	wantCode("combine/logout of a sub-device not logged in", code, 520, r)
	code, r = ga.combineLogin(aliSubProduct, "sub-x", subSecret[0])
	wantCode("combine/login", code, 200, r)
	// Logged in once, the sub-device is active: registering it again is refused.
	if code, _ := ga.register(subRef{aliSubProduct, "sub-x"}); code != aliRegAlreadyActivated {
		t.Fatalf("registering an active sub-device: %d, want %d", code, aliRegAlreadyActivated)
	}
	if got := w.e.AliyunTopology(aliGwProduct, "gw-b"); len(got) != 0 {
		t.Fatalf("gw-b's topology is %v", got)
	}
	r2 := aliiot.CreateGetThingTopoRequest()
	aliReq(w.srv, r2.RpcRequest)
	r2.ProductKey, r2.DeviceName, r2.PageNo, r2.PageSize = aliGwProduct, "gw-a", requests.NewInteger(1), requests.NewInteger(51)
	if resp, err := w.sdk.GetThingTopo(r2); err != nil || resp.Success || resp.Code != "iot.common.InvalidPageParams" {
		t.Fatalf("GetThingTopo PageSize 51: %v %+v", err, resp)
	}
}

// "代理子设备上线的QPS限制为200": on a clock that does not move, the 201st
// combine/login of one gateway is refused with 429, another gateway's is not.
func TestAliyunGatewayLoginRate(t *testing.T) {
	clock := newClock()
	w := gwStartAt(t, "", clock.Now)
	gws := w.create(aliGwProduct, "gw-r", "gw-s")
	secret := w.create(aliSubProduct, "sub-r")[0]
	w.create(aliSubProduct, "sub-s")
	g := w.login(aliGwProduct, "gw-r", gws[0])
	if code, r := g.topoAdd(signedEntry(aliSubProduct, "sub-r", secret)); code != 200 {
		t.Fatalf("topo/add: %d %v", code, r)
	}
	for i := range aliGwLoginQPS {
		if code, r := g.combineLogin(aliSubProduct, "sub-r", secret); code != 200 {
			t.Fatalf("combine/login %d: %d %v", i+1, code, r["message"])
		}
	}
	if code, _ := g.combineLogin(aliSubProduct, "sub-r", secret); code != 429 {
		t.Fatalf("combine/login %d in the same second: %d, want 429", aliGwLoginQPS+1, code)
	}
	other := w.login(aliGwProduct, "gw-s", gws[1])
	if code, _ := other.combineLogin(aliSubProduct, "sub-r", secret); code != 6401 {
		t.Fatalf("another gateway's first login (not its sub-device): %d, want 6401, not 429", code)
	}
	clock.Add(time.Second)
	if code, _ := g.combineLogin(aliSubProduct, "sub-r", secret); code != 200 {
		t.Fatalf("combine/login a second later: %d", code)
	}
}

// A gateway holds 1,500 sub-devices: the 1,501st is refused with 6400
// "topo relation count exceed", and the topology stays at 1,500.
func TestAliyunGatewayLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 1,501 devices")
	}
	w := gwStart(t, "")
	gwSecret := w.create(aliGwProduct, "gw-big")[0]
	names := make([]string, AliyunMaxSubDevices+1)
	for i := range names {
		names[i] = fmt.Sprintf("sub-%05d", i)
	}
	w.createBatch(aliSubProduct, names)
	g := w.login(aliGwProduct, "gw-big", gwSecret)
	secrets := g.registerAll(names)
	if err := g.addAll(names[:AliyunMaxSubDevices], secrets); err != nil {
		t.Fatal(err)
	}
	last := names[AliyunMaxSubDevices]
	code, r := g.topoAdd(signedEntry(aliSubProduct, last, secrets[last]))
	if code != 6400 {
		t.Fatalf("the 1,501st sub-device: code %d (%v), want 6400", code, r["message"])
	}
	if resp := w.topo(aliGwProduct, "gw-big", 1, 50); resp.Data.Total != AliyunMaxSubDevices {
		t.Fatalf("GetThingTopo Total %d, want %d", resp.Data.Total, AliyunMaxSubDevices)
	}
}

// createBatch creates names through the official SDK's batch registration
// (BatchCheckDeviceNames, BatchRegisterDeviceWithApplyId), as iotburn create does.
func (w *gwWorld) createBatch(product string, names []string) {
	w.t.Helper()
	for len(names) > 0 {
		n := min(len(names), 1000)
		chunk := names[:n]
		names = names[n:]
		cr := aliiot.CreateBatchCheckDeviceNamesRequest()
		aliReq(w.srv, cr.RpcRequest)
		cr.ProductKey, cr.DeviceName = product, &chunk
		resp, err := w.sdk.BatchCheckDeviceNames(cr)
		if err != nil || !resp.Success {
			w.t.Fatalf("BatchCheckDeviceNames: %v %+v", err, resp)
		}
		id := resp.Data.ApplyId
		w.waitApply(product, id, "CHECK_SUCCESS")
		rr := aliiot.CreateBatchRegisterDeviceWithApplyIdRequest()
		aliReq(w.srv, rr.RpcRequest)
		rr.ProductKey, rr.ApplyId = product, requests.NewInteger64(id)
		if resp, err := w.sdk.BatchRegisterDeviceWithApplyId(rr); err != nil || !resp.Success {
			w.t.Fatalf("BatchRegisterDeviceWithApplyId: %v %+v", err, resp)
		}
		w.waitApply(product, id, "CREATE_SUCCESS")
	}
}

func (w *gwWorld) waitApply(product string, id int64, want string) {
	w.t.Helper()
	for i := 0; ; i++ {
		r := aliiot.CreateQueryBatchRegisterDeviceStatusRequest()
		aliReq(w.srv, r.RpcRequest)
		r.ProductKey, r.ApplyId = product, requests.NewInteger64(id)
		resp, err := w.sdk.QueryBatchRegisterDeviceStatus(r)
		if err != nil || !resp.Success {
			w.t.Fatalf("QueryBatchRegisterDeviceStatus: %v %+v", err, resp)
		}
		if resp.Data.Status == want {
			return
		}
		if i > 2000 {
			w.t.Fatalf("application %d is %s, want %s", id, resp.Data.Status, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// registerAll registers names through the gateway, 30 a request (the most
// the limits allow), and returns their secrets.
func (g *gwClient) registerAll(names []string) map[string]string {
	g.t.Helper()
	secrets := map[string]string{}
	for i := 0; i < len(names); i += aliMaxSubRegister {
		var refs []subRef
		for _, n := range names[i:min(i+aliMaxSubRegister, len(names))] {
			refs = append(refs, subRef{aliSubProduct, n})
		}
		code, got := g.register(refs...)
		if code != 200 || len(got) != len(refs) {
			g.t.Fatalf("thing/sub/register: code %d, %d answers", code, len(got))
		}
		for _, d := range got {
			secrets[d["deviceName"].(string)] = d["deviceSecret"].(string)
		}
	}
	return secrets
}

// addAll adds names to the gateway's topology, 30 a request (the most the
// docs allow).
func (g *gwClient) addAll(names []string, secrets map[string]string) error {
	for i := 0; i < len(names); i += aliMaxTopoAdd {
		var entries []map[string]string
		for _, n := range names[i:min(i+aliMaxTopoAdd, len(names))] {
			entries = append(entries, signedEntry(aliSubProduct, n, secrets[n]))
		}
		if code, r := g.topoAdd(entries...); code != 200 {
			return fmt.Errorf("thing/topo/add of %s…: code %d (%v)", names[i], code, r["message"])
		}
	}
	return nil
}
