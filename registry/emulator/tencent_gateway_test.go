package emulator

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	iot "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/iotcloud/v20180614"

	"github.com/iotburn/iotburn/registry/devauth"
)

const (
	tcGwProduct  = "GWPRODUCT1"
	tcSubProduct = "SUBPRODUC1"
)

type tcGwWorld struct {
	t    testing.TB
	e    *Emulator
	srv  *httptest.Server
	mqtt string
	sdk  *iot.Client
}

func tcGwStart(t testing.TB, state string) *tcGwWorld {
	t.Helper()
	e, srv, addr := drStart(t, Config{StateDir: state, GatewayProducts: []string{tcGwProduct}, SubDeviceProducts: []string{tcSubProduct}})
	return &tcGwWorld{t: t, e: e, srv: srv, mqtt: addr, sdk: sdk(t, srv, testID, testKey)}
}

// create makes devices through the official SDK and returns their PSKs.
func (w *tcGwWorld) create(product string, names ...string) []string {
	w.t.Helper()
	var psks []string
	for _, n := range names {
		r := iot.NewCreateDeviceRequest()
		r.ProductId, r.DeviceName = ptr(product), ptr(n)
		resp, err := w.sdk.CreateDevice(r)
		if err != nil {
			w.t.Fatalf("CreateDevice %s/%s: %v", product, n, err)
		}
		psks = append(psks, *resp.Response.DevicePsk)
	}
	return psks
}

// bindAPI binds names through the official SDK's BindDevices.
func (w *tcGwWorld) bindAPI(gw, product string, names ...string) error {
	r := iot.NewBindDevicesRequest()
	r.GatewayProductId, r.GatewayDeviceName, r.ProductId, r.DeviceNames = ptr(tcGwProduct), ptr(gw), ptr(product), ptrs(names)
	_, err := w.sdk.BindDevices(r)
	return err
}

// bound reads DescribeGatewayBindDevices, signed as the SDKs sign (TC3).
func (w *tcGwWorld) bound(gw string, offset, limit int) map[string]any {
	w.t.Helper()
	body := fmt.Sprintf(`{"GatewayProductId":%q,"GatewayDeviceName":%q,"ProductId":%q,"Offset":%d,"Limit":%d}`,
		tcGwProduct, gw, tcSubProduct, offset, limit)
	return rawCall(w.t, w.srv, "DescribeGatewayBindDevices", "2018-06-14", body, time.Now(), testID, testKey, nil)
}

// tcGateway is a device logged in through paho, reading its
// $gateway/operation/result topic.
type tcGateway struct {
	t       testing.TB
	c       paho.Client
	pid, dn string
	answers chan map[string]any
}

func (w *tcGwWorld) login(pid, dn, psk string) *tcGateway {
	w.t.Helper()
	cid, user, pass, err := devauth.TencentMQTT(pid, dn, psk, time.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	g := &tcGateway{t: w.t, pid: pid, dn: dn, answers: make(chan map[string]any, 16)}
	opts := paho.NewClientOptions().AddBroker("tcp://" + w.mqtt).SetClientID(cid).SetUsername(user).SetPassword(pass).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
	g.c = paho.NewClient(opts)
	if tok := g.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		w.t.Fatalf("%s/%s login: %v", pid, dn, tok.Error())
	}
	w.t.Cleanup(func() { g.c.Disconnect(50) })
	topic := "$gateway/operation/result/" + pid + "/" + dn
	if tok := g.c.Subscribe(topic, 0, func(_ paho.Client, m paho.Message) {
		var r map[string]any
		if json.Unmarshal(m.Payload(), &r) == nil {
			g.answers <- r
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		w.t.Fatalf("subscribe: %v", tok.Error())
	}
	return g
}

// send publishes one gateway message and returns the answer's devices.
func (g *tcGateway) send(typ string, devices ...map[string]any) []map[string]any {
	g.t.Helper()
	msg := map[string]any{"type": typ}
	if devices != nil {
		msg["payload"] = map[string]any{"devices": devices}
	}
	body, _ := json.Marshal(msg)
	if tok := g.c.Publish("$gateway/operation/"+g.pid+"/"+g.dn, 0, false, body); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		g.t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case r := <-g.answers:
		if r["type"] != typ {
			g.t.Fatalf("answer of type %v to %s", r["type"], typ)
		}
		p, _ := r["payload"].(map[string]any)
		list, _ := p["devices"].([]any)
		out := []map[string]any{}
		for _, d := range list {
			out = append(out, d.(map[string]any))
		}
		return out
	case <-time.After(20 * time.Second):
		g.t.Fatalf("no answer to %s", typ)
	}
	return nil
}

// result sends one device and returns its result.
func (g *tcGateway) result(typ string, d map[string]any) int {
	g.t.Helper()
	out := g.send(typ, d)
	if len(out) != 1 {
		g.t.Fatalf("%s: %d devices answered", typ, len(out))
	}
	r, _ := out[0]["result"].(float64)
	return int(r)
}

// bindEntry is a bind entry signed as the C SDK signs it: base64 of
// HMAC-SHA1 keyed with the PSK as written, over "${pid}${dn};${random};${ts}".
func bindEntry(pid, dn, psk string, ts time.Time) map[string]any {
	random := 12345
	text := pid + dn + ";" + strconv.Itoa(random) + ";" + strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha1.New, []byte(psk))
	m.Write([]byte(text))
	return map[string]any{"product_id": pid, "device_name": dn, "signature": base64.StdEncoding.EncodeToString(m.Sum(nil)),
		"random": random, "timestamp": ts.Unix(), "signmethod": "hmacsha1", "authtype": "psk"}
}

func sub(pid, dn string) map[string]any { return map[string]any{"product_id": pid, "device_name": dn} }

// The gateway flow of the C SDK's gateway sample over real MQTT: bind
// signed sub-devices, list them, bring one online; the official SDK sees the
// gateway product (ProductType 5) and the sub-device online; the binding is
// read through DescribeGatewayBindDevices and kept across a restart.
func TestTencentGatewayFlow(t *testing.T) {
	state := t.TempDir()
	w := tcGwStart(t, state)
	gwPSK := w.create(tcGwProduct, "gw1")[0]
	psks := w.create(tcSubProduct, "sub1", "sub2")

	resp, err := w.sdk.DescribeProducts(func() *iot.DescribeProductsRequest {
		r := iot.NewDescribeProductsRequest()
		r.Offset, r.Limit = ptr(uint64(0)), ptr(uint64(10))
		return r
	}())
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]uint64{}
	for _, p := range resp.Response.Products {
		types[*p.ProductId] = *p.ProductProperties.ProductType
	}
	if types[tcGwProduct] != 5 || types[tcSubProduct] != 0 || types[testProduct] != 0 {
		t.Fatalf("ProductTypes %v: want 5 for the gateway product, 0 for the others", types)
	}

	g := w.login(tcGwProduct, "gw1", gwPSK)
	for i, n := range []string{"sub1", "sub2"} {
		if r := g.result("bind", bindEntry(tcSubProduct, n, psks[i], time.Now())); r != 0 {
			t.Fatalf("bind %s: result %d", n, r)
		}
	}
	if got := g.send("describe_sub_devices"); len(got) != 2 || got[0]["device_name"] != "sub1" || got[0]["product_id"] != tcSubProduct {
		t.Fatalf("describe_sub_devices: %v", got)
	}
	if r := g.result("online", sub(tcSubProduct, "sub1")); r != 0 {
		t.Fatalf("online: %d", r)
	}
	online := func(name string) uint64 {
		r := iot.NewDescribeDeviceRequest()
		r.ProductID, r.DeviceName = ptr(tcSubProduct), ptr(name)
		resp, err := w.sdk.DescribeDevice(r)
		if err != nil {
			t.Fatal(err)
		}
		return *resp.Response.Online
	}
	if online("sub1") != 1 || online("sub2") != 0 {
		t.Fatalf("Online: sub1 %d sub2 %d, want 1 and 0", online("sub1"), online("sub2"))
	}
	if r := g.result("offline", sub(tcSubProduct, "sub1")); r != 0 || online("sub1") != 0 {
		t.Fatalf("offline: %d, Online %d", r, online("sub1"))
	}
	check := func(w *tcGwWorld) {
		t.Helper()
		r := w.bound("gw1", 1, 10)
		if n, _ := r["TotalCount"].(json.Number).Int64(); n != 2 {
			t.Fatalf("DescribeGatewayBindDevices TotalCount %v", r["TotalCount"])
		}
		if d := r["Devices"].([]any); len(d) != 1 || d[0].(map[string]any)["DeviceName"] != "sub2" {
			t.Fatalf("DescribeGatewayBindDevices Offset 1: %v", r["Devices"])
		}
	}
	check(w)
	w.srv.Close()
	if err := w.e.Close(); err != nil {
		t.Fatal(err)
	}
	w2 := tcGwStart(t, state)
	check(w2)
	if got := w2.e.TencentTopology(tcGwProduct, "gw1"); len(got) != 2 {
		t.Fatalf("after a restart: %v", got)
	}
}

// Each refusal with the firmware table's code; the API's with its error codes.
func TestTencentGatewayRefusals(t *testing.T) {
	w := tcGwStart(t, "")
	gws := w.create(tcGwProduct, "gw1", "gw2")
	psks := w.create(tcSubProduct, "sub1", "sub2")
	plain := w.create(testProduct, "plain1")[0]
	g1, g2 := w.login(tcGwProduct, "gw1", gws[0]), w.login(tcGwProduct, "gw2", gws[1])
	now := time.Now()

	for _, tt := range []struct {
		what  string
		entry map[string]any
		want  int
	}{
		{"signed with another PSK", bindEntry(tcSubProduct, "sub1", psks[1], now), tcGwBadSignature},
		{"an hour old", bindEntry(tcSubProduct, "sub1", psks[0], now.Add(-time.Hour)), tcGwExpired},
		{"a name never created", bindEntry(tcSubProduct, "nosuch", psks[0], now), tcGwNoDevice},
		{"a gateway", bindEntry(tcGwProduct, "gw2", gws[1], now), tcGwNotOrdinary},
		{"a product not bound to gateways", bindEntry(testProduct, "plain1", plain, now), tcGwUnsupported},
		{"no signature", sub(tcSubProduct, "sub1"), tcGwBadParam},
	} {
		if r := g1.result("bind", tt.entry); r != tt.want {
			t.Errorf("bind %s: %d, want %d", tt.what, r, tt.want)
		}
	}
	md5 := bindEntry(tcSubProduct, "sub1", psks[0], now)
	md5["signmethod"] = "hmacmd5"
	if r := g1.result("bind", md5); r != tcGwBadMethod {
		t.Errorf("bind hmacmd5: %d", r)
	}
	if got := w.e.TencentTopology(tcGwProduct, "gw1"); len(got) != 0 {
		t.Fatalf("refused bindings left %v", got)
	}
	if r := g1.result("online", sub(tcSubProduct, "sub1")); r != tcGwNotBound {
		t.Errorf("online before bind: %d", r)
	}
	if r := g1.result("bind", bindEntry(tcSubProduct, "sub1", psks[0], now)); r != 0 {
		t.Fatalf("bind: %d", r)
	}
	if r := g1.result("bind", bindEntry(tcSubProduct, "sub1", psks[0], now)); r != tcGwAlreadyBound {
		t.Errorf("bind again: %d", r)
	}
	if r := g2.result("bind", bindEntry(tcSubProduct, "sub1", psks[0], now)); r != tcGwBoundElse {
		t.Errorf("bind by another gateway: %d", r)
	}
	if r := g2.result("unbind", sub(tcSubProduct, "sub1")); r != tcGwNotBound {
		t.Errorf("unbind by another gateway: %d", r)
	}
	p := w.login(testProduct, "plain1", plain)
	if r := p.result("bind", bindEntry(tcSubProduct, "sub2", psks[1], now)); r != tcGwNotAllowed {
		t.Errorf("an ordinary device binding: %d", r)
	}

	// The API.
	del := iot.NewDeleteDeviceRequest()
	del.ProductId, del.DeviceName = ptr(tcSubProduct), ptr("sub1")
	if _, err := w.sdk.DeleteDevice(del); errCode(err) != "UnauthorizedOperation.DeviceHasAlreadyBindGateway" {
		t.Errorf("DeleteDevice of a bound device: %v", err)
	}
	del.ProductId, del.DeviceName = ptr(tcGwProduct), ptr("gw1")
	if _, err := w.sdk.DeleteDevice(del); errCode(err) != "UnauthorizedOperation.GatewayHasBindedDevices" {
		t.Errorf("DeleteDevice of a gateway with devices: %v", err)
	}
	if err := w.bindAPI("gw2", testProduct, "plain1"); errCode(err) != "FailedOperation.ProductNotBind" {
		t.Errorf("BindDevices of an ordinary product: %v", err)
	}
	if err := w.bindAPI("gw2", tcSubProduct, "sub1"); errCode(err) != "InvalidParameterValue" {
		t.Errorf("BindDevices of another gateway's device: %v", err)
	}
	r := iot.NewBindDevicesRequest()
	r.GatewayProductId, r.GatewayDeviceName, r.ProductId, r.DeviceNames = ptr(testProduct), ptr("plain1"), ptr(tcSubProduct), ptrs([]string{"sub2"})
	if _, err := w.sdk.BindDevices(r); errCode(err) != "InvalidParameterValue.DeviceIsNotGateway" {
		t.Errorf("BindDevices to an ordinary device: %v", err)
	}
	if err := w.bindAPI("gw2", tcSubProduct, "sub2"); err != nil {
		t.Fatalf("BindDevices: %v", err)
	}
	u := iot.NewUnbindDevicesRequest()
	u.GatewayProductId, u.GatewayDeviceName, u.ProductId, u.DeviceNames = ptr(tcGwProduct), ptr("gw2"), ptr(tcSubProduct), ptrs([]string{"sub2"})
	if _, err := w.sdk.UnbindDevices(u); err != nil {
		t.Fatalf("UnbindDevices: %v", err)
	}
	if got := w.e.TencentTopology(tcGwProduct, "gw2"); len(got) != 0 {
		t.Fatalf("after UnbindDevices: %v", got)
	}
}

// A gateway holds 1,500 sub-devices: the 1,501st is refused over MQTT and by
// the API, and the binding stays at 1,500.
func TestTencentGatewayLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 1,501 devices")
	}
	w := tcGwStart(t, "")
	gwPSK := w.create(tcGwProduct, "gw1")[0]
	names := make([]string, TencentMaxSubDevices+1)
	for i := range names {
		names[i] = fmt.Sprintf("sub%05d", i)
	}
	psks := w.create(tcSubProduct, names...)
	for i := 0; i < TencentMaxSubDevices; i += tcMaxBindPerCall {
		if err := w.bindAPI("gw1", tcSubProduct, names[i:min(i+tcMaxBindPerCall, TencentMaxSubDevices)]...); err != nil {
			t.Fatalf("BindDevices from %d: %v", i, err)
		}
	}
	last := TencentMaxSubDevices
	if err := w.bindAPI("gw1", tcSubProduct, names[last]); errCode(err) != "FailedOperation.BindDeviceOverLimit" {
		t.Fatalf("BindDevices of the 1,501st: %v", err)
	}
	g := w.login(tcGwProduct, "gw1", gwPSK)
	if r := g.result("bind", bindEntry(tcSubProduct, names[last], psks[last], time.Now())); r != tcGwNotAllowed {
		t.Fatalf("bind of the 1,501st: %d, want %d", r, tcGwNotAllowed)
	}
	if n, _ := w.bound("gw1", 0, 100)["TotalCount"].(json.Number).Int64(); n != TencentMaxSubDevices {
		t.Fatalf("TotalCount %d", n)
	}
}
