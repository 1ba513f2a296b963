package sim

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/iotburn/iotburn/registry/devauth"
	"github.com/iotburn/iotburn/templates/nvs"
)

// runIotkitGateway plays iotkit-embedded 3.x's gateway example, built with
// DEVICE_MODEL_GATEWAY into esp-aliyun's framework (which reads the
// product's keys from fctry, as example_solo does: esp32_aliyun.go [PROD])
// and run with auto_add_subdev set (as "linkkit-example-gateway 0 auto"
// does on Linux). Sources, aliyun/iotkit-embedded at 3010153:
//
//   - [EX] src/dev_model/examples/linkkit_example_gateway.c: IOT_SetLogLevel
//     (IOT_LOG_DEBUG); IOT_Linkkit_Open of the master, dynamic_register = 0
//     (the gateway logs in with its own DeviceSecret);
//     IOT_Linkkit_Connect until it succeeds, "IOT_Linkkit_Connect failed,
//     retry after 5s..." (line 448) and 5 s between attempts;
//     user_connected_event_handler "Cloud Connected" (204), user_initialized
//     "Device Initialized, Devid: %d" (257); then, once a second, the next
//     sub-device: example_add_subdev "subdev open susseed, devid = %d\n"
//     (330), IOT_Linkkit_Connect, "subdev connect Failed\n" (334) or
//     "subdev connect success: devid = %d\n" (337), IOT_Linkkit_Report
//     ITM_MSG_LOGIN, "subdev login Failed\n" (341) or "subdev login success:
//     devid = %d\n" (344), and main's "subdev %s add succeed" (481) or
//     "subdev %s add failed" (483). EXAMPLE_TRACE prints
//     "\033[1;32;40m<func>.<line>: <text>\033[0m\r\n".
//   - [LK] src/dev_model/impl_linkkit.c _iotx_linkkit_slave_connect: a
//     sub-device without a DeviceSecret is registered first
//     (iotx_dm_subdev_register, dm_api.c: skipped when the secret is set;
//     thing/sub/register, its reply's data[].deviceSecret kept,
//     dm_message.c dm_msg_thing_sub_register_reply), then its topology
//     added (thing/topo/add), each waited for up to
//     IOTX_LINKKIT_SYNC_DEFAULT_TIMEOUT_MS 10 s and failed on any code but
//     200; _iotx_linkkit_subdev_login: combine/login, likewise.
//   - [MSG] src/dev_model/dm_message.c: the request "{"id":"%d",
//     "version":"1.0","params":%s,"method":"%s"}" (DM_MSG_REQUEST);
//     thing.sub.register params [{"productKey","deviceName"}]; thing.topo.add
//     [{"productKey","deviceName","signmethod":"hmacSha1","sign","timestamp",
//     "clientId"}] with clientId "<pk>.<dn>"; combine.login {"productKey",
//     "deviceName","clientId","timestamp","signMethod":"hmacSha1","sign",
//     "cleanSession":"true"} with clientId "<pk>.<dn>|_v=sdk-c-3.0.1|"
//     (IOTX_SDK_VERSION, infra_defs.h); the sign HMAC-SHA1 (hex) keyed
//     with the sub-device's DeviceSecret of "clientId%sdeviceName%s
//     productKey%stimestamp%s"; the timestamp HAL_UptimeMs.
//   - The topics: /sys/<gw pk>/<gw dn>/thing/sub/register, …/thing/topo/add
//     and /ext/session/<gw pk>/<gw dn>/combine/login, each answered on
//     <topic>_reply (the emulator's aliyun_gateway.go, from the Alink docs).
//
// Choices where the sources are silent or not followed:
//   - The example hard-codes its sub-devices (subdevArr, three added). This
//     app reads them from fctry: the sub-devices' product under
//     SubProductKey and their names under SubDevName1…N (nvs.AliyunKeys),
//     where the line burns a gateway's kit, and adds every one of them.
//     [NOT FROM A SOURCE]
//   - The example keeps a registered sub-device's DeviceSecret in RAM; this
//     app keeps it in the KV store (nvs partition, namespace iotkit-kv, blob
//     "subdev-ds-<n>"), so a gateway booted again logs its sub-devices in
//     without registering them again, as a product must. [NOT FROM A SOURCE]
//   - The example has no kit to lack: a gateway with none in fctry logs in
//     and adds nothing. The SDK's own debug lines (IOT_LOG_DEBUG) are not
//     printed beyond the connection's. [DEVIATION]
//   - Wi-Fi is taken as joined; a dropped session ends the example's work
//     (the SDK's reconnection is not modelled here). [NOT FROM A SOURCE]
func runIotkitGateway(b *espBooted) string {
	b.l.raw("[prt] log level set as: [ 5 ]\r\n") // IOT_SetLogLevel(IOT_LOG_DEBUG), infra_log.c
	pk, dn, ds := b.halGet("ProductKey"), b.halGet("DeviceName"), b.halGet("DeviceSecret")
	if pk == "" {
		b.l.E("app_entry", "Please first input four config")
		return b.idle()
	}
	var c paho.Client
	for b.ctx.Err() == nil {
		if c = b.gatewayConnect(pk, dn, ds); c != nil {
			break
		}
		b.trace("main", 448, "IOT_Linkkit_Connect failed, retry after 5s...\n")
		if !pause(b.ctx, 5*time.Second) {
			return ""
		}
	}
	if c == nil {
		return ""
	}
	defer c.Disconnect(50)
	b.trace("user_connected_event_handler", 204, "Cloud Connected")
	b.trace("user_initialized", 257, "Device Initialized, Devid: 0")
	gw := &iotkitGateway{b: b, c: c, pk: pk, dn: dn, waiting: map[string]chan iotkitReply{}}
	if !gw.subscribe() {
		return b.idle()
	}
	subPK, names := b.gatewayKit()
	for i, name := range names {
		if !pause(b.ctx, time.Second) { // the example's loop adds one a second
			return ""
		}
		devid := i + 1
		b.trace("example_add_subdev", 330, fmt.Sprintf("subdev open susseed, devid = %d\n", devid))
		if gw.addSubdev(devid, subPK, name) {
			b.trace("main", 481, fmt.Sprintf("subdev %s add succeed", name))
		} else {
			b.trace("main", 483, fmt.Sprintf("subdev %s add failed", name))
		}
	}
	return b.idle()
}

// gatewayConnect is IOT_Linkkit_Connect of the master [EX]: its MQTT login
// with the DeviceSecret (the example's dynamic_register = 0), logged as
// iotkit logs it (esp32_aliyun.go [MQTT]); nil when it failed.
func (b *espBooted) gatewayConnect(pk, dn, ds string) paho.Client {
	switch {
	case len(pk) > iotxProductKeyLen:
		b.iotkitLog("err", "IOT_MQTT_Construct", 396, "Invalid product key, abort!")
		return nil
	case dn == "" || len(dn) > iotxDeviceNameLen:
		b.iotkitLog("err", "IOT_MQTT_Construct", 400, "Invalid device name, abort!")
		return nil
	case ds == "" || len(ds) > iotxDeviceSecretLen:
		b.iotkitLog("err", "IOT_MQTT_Construct", 420, "Invalid device secret, abort!")
		return nil
	}
	cid, user, pass, err := devauth.AliyunMQTTWith(pk+"."+dn, pk, dn, ds, iotkitSignTimestamp, devauth.AliyunHMACSHA256, 2)
	if err != nil {
		return nil
	}
	b.iotkitLog("inf", "_mqtt_connect", 774, "connect params: MQTTVersion=4, clientID=%s, keepAliveInterval=60, username=%s", cid, user)
	_, broker := b.c.h.cloud()
	if broker == "" {
		b.iotkitLog("err", "IOT_MQTT_Construct", 579, "wrapper_mqtt_connect failed")
		return nil
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + broker).SetClientID(cid).SetUsername(user).SetPassword(pass).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(10 * time.Second))
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		if ct, ok := tok.(*paho.ConnectToken); ok && ct.ReturnCode() != 0 {
			rc := iotkitConnackRC("mqtt:" + strconv.Itoa(int(ct.ReturnCode())))
			b.iotkitLog("err", "iotx_mc_wait_CONNACK", 756, "recvConnackProc error,result = %d", rc)
			b.iotkitLog("err", "_mqtt_connect", 793, "received reject ACK from MQTT server! rc = %d", rc)
		}
		b.iotkitLog("err", "IOT_MQTT_Construct", 579, "wrapper_mqtt_connect failed")
		return nil
	}
	b.iotkitLog("inf", "_mqtt_connect", 821, "mqtt connect success!")
	return c
}

// gatewayKit reads the kit the line burned into fctry (SubProductKey,
// SubDevName1…): none, or an unreadable partition, is an empty kit.
func (b *espBooted) gatewayKit() (string, []string) {
	n, code := b.c.nvsInit(b.parts, aliyunKitPartition)
	if code != 0 {
		return "", nil
	}
	keys := nvs.AliyunKeys
	pk, code := n.getStr(keys.Namespace, keys.SubProduct, iotxProductKeyLen+1)
	if code != 0 {
		return "", nil
	}
	var names []string
	for i := 1; ; i++ {
		name, code := n.getStr(keys.Namespace, keys.SubDevice+strconv.Itoa(i), iotxDeviceNameLen+1)
		if code != 0 {
			return pk, names
		}
		names = append(names, name)
	}
}

// iotkitGateway is the master's session and the replies waited for.
type iotkitGateway struct {
	b      *espBooted
	c      paho.Client
	pk, dn string
	seq    int

	mu      sync.Mutex
	waiting map[string]chan iotkitReply // reply topic + "#" + id
}

// iotkitReply is an Alink answer.
type iotkitReply struct {
	ID   string          `json:"id"`
	Code int             `json:"code"`
	Data json.RawMessage `json:"data"`
}

func (g *iotkitGateway) subscribe() bool {
	on := func(_ paho.Client, m paho.Message) {
		var r iotkitReply
		if json.Unmarshal(m.Payload(), &r) != nil {
			return
		}
		g.mu.Lock()
		ch := g.waiting[m.Topic()+"#"+r.ID]
		delete(g.waiting, m.Topic()+"#"+r.ID)
		g.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
	for _, f := range []string{"/sys/" + g.pk + "/" + g.dn + "/#", "/ext/session/" + g.pk + "/" + g.dn + "/#"} {
		if tok := g.c.Subscribe(f, 1, on); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return false
		}
	}
	return true
}

// call publishes one request [MSG] and waits up to 10 s for its reply
// [LK]; ok is false with no reply.
func (g *iotkitGateway) call(topic, method string, params any) (iotkitReply, bool) {
	g.seq++
	id := strconv.Itoa(g.seq)
	p, _ := json.Marshal(params)
	body := fmt.Sprintf(`{"id":"%s","version":"1.0","params":%s,"method":"%s"}`, id, p, method)
	ch := make(chan iotkitReply, 1)
	g.mu.Lock()
	g.waiting[topic+"_reply#"+id] = ch
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.waiting, topic+"_reply#"+id)
		g.mu.Unlock()
	}()
	if tok := g.c.Publish(topic, 0, false, body); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return iotkitReply{}, false
	}
	select {
	case r := <-ch:
		return r, true
	case <-time.After(10 * time.Second): // IOTX_LINKKIT_SYNC_DEFAULT_TIMEOUT_MS
	case <-g.b.ctx.Done():
	}
	return iotkitReply{}, false
}

// subdevSign is dm_message.c's sign of a sub-device's entry [MSG].
func subdevSign(secret, clientID, dn, pk, ts string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte("clientId" + clientID + "deviceName" + dn + "productKey" + pk + "timestamp" + ts))
	return hex.EncodeToString(m.Sum(nil))
}

// addSubdev is example_add_subdev after its open [EX]: connect (register
// where no secret is kept, topology), then login [LK].
func (g *iotkitGateway) addSubdev(devid int, pk, dn string) bool {
	b := g.b
	key := "subdev-ds-" + strconv.Itoa(devid)
	ds, kept := b.kvGet(key)
	connectFailed := func() bool {
		b.trace("example_add_subdev", 334, "subdev connect Failed\n")
		return false
	}
	if !kept || ds == "" {
		r, ok := g.call("/sys/"+g.pk+"/"+g.dn+"/thing/sub/register", "thing.sub.register", []map[string]string{{"productKey": pk, "deviceName": dn}})
		if !ok || r.Code != 200 {
			return connectFailed()
		}
		var got []struct {
			ProductKey   string `json:"productKey"`
			DeviceName   string `json:"deviceName"`
			DeviceSecret string `json:"deviceSecret"`
		}
		_ = json.Unmarshal(r.Data, &got)
		for _, d := range got {
			if d.ProductKey == pk && d.DeviceName == dn && d.DeviceSecret != "" && len(d.DeviceSecret) <= iotxDeviceSecretLen {
				ds = d.DeviceSecret
			}
		}
		if ds == "" {
			return connectFailed()
		}
		b.kvSet(key, ds)
	}
	ts := strconv.FormatInt(b.l.ms(), 10)
	cid := pk + "." + dn
	r, ok := g.call("/sys/"+g.pk+"/"+g.dn+"/thing/topo/add", "thing.topo.add", []map[string]string{{
		"productKey": pk, "deviceName": dn, "signmethod": "hmacSha1", "sign": subdevSign(ds, cid, dn, pk, ts), "timestamp": ts, "clientId": cid}})
	if !ok || r.Code != 200 {
		return connectFailed()
	}
	b.trace("example_add_subdev", 337, fmt.Sprintf("subdev connect success: devid = %d\n", devid))
	ts = strconv.FormatInt(b.l.ms(), 10)
	cid = pk + "." + dn + "|_v=sdk-c-3.0.1|"
	r, ok = g.call("/ext/session/"+g.pk+"/"+g.dn+"/combine/login", "combine.login", map[string]string{
		"productKey": pk, "deviceName": dn, "clientId": cid, "timestamp": ts, "signMethod": "hmacSha1", "sign": subdevSign(ds, cid, dn, pk, ts), "cleanSession": "true"})
	if !ok || r.Code != 200 {
		b.trace("example_add_subdev", 341, "subdev login Failed\n")
		return false
	}
	b.trace("example_add_subdev", 344, fmt.Sprintf("subdev login success: devid = %d\n", devid))
	return true
}
