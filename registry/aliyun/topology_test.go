package aliyun

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	iot "github.com/aliyun/alibaba-cloud-sdk-go/services/iot"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/devauth"
	"github.com/iotburn/iotburn/registry/emulator"
)

// SubDevices reads a gateway's topology through GetThingTopo, across pages
// (50 a page), after a gateway added it over the emulator's broker with
// entries signed by each sub-device's secret.
func TestSubDevices(t *testing.T) {
	e, c, _ := setup(t, emulator.Config{AliyunGatewayProducts: []string{"a1GwProdKey"}, AliyunSubDeviceProducts: []string{"a1SubProdKey"}, TaskDelay: -1, RateLimit: -1})
	addr, err := e.StartMQTT("")
	if err != nil {
		t.Fatal(err)
	}
	register := func(product, name string) string {
		var secret string
		err := c.do(context.Background(), "RegisterDevice", func(api *iot.Client) (answer, error) {
			req := iot.CreateRegisterDeviceRequest()
			c.prepare(req.RpcRequest)
			req.ProductKey, req.DeviceName = product, name
			resp, err := api.RegisterDevice(req)
			if err != nil {
				return answer{}, err
			}
			secret = resp.Data.DeviceSecret
			return answerOf(resp.Success, resp.Code, resp.ErrorMessage, resp.RequestId), nil
		})
		if err != nil {
			t.Fatalf("RegisterDevice %s: %v", name, err)
		}
		return secret
	}
	gwSecret := register("a1GwProdKey", "gw-0001")
	subs := names("sub-", topoPage+7)
	secrets := map[string]string{}
	for _, n := range subs {
		secrets[n] = register("a1SubProdKey", n)
	}
	cid, user, pass := devauth.AliyunMQTT("a1GwProdKey", "gw-0001", gwSecret, time.Now())
	gw := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(cid).SetUsername(user).SetPassword(pass).SetProtocolVersion(4))
	if tok := gw.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer gw.Disconnect(50)
	replies := make(chan map[string]any, 4)
	if tok := gw.Subscribe("/sys/a1GwProdKey/gw-0001/thing/topo/add_reply", 0, func(_ paho.Client, m paho.Message) {
		var r map[string]any
		json.Unmarshal(m.Payload(), &r)
		replies <- r
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	for i := 0; i < len(subs); i += 30 {
		var params []map[string]string
		for _, n := range subs[i:min(i+30, len(subs))] {
			ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
			m := hmac.New(sha1.New, []byte(secrets[n]))
			m.Write([]byte("clientId" + n + "deviceName" + n + "productKeya1SubProdKeytimestamp" + ts))
			params = append(params, map[string]string{"productKey": "a1SubProdKey", "deviceName": n, "clientId": n, "timestamp": ts,
				"signmethod": "hmacSha1", "sign": hex.EncodeToString(m.Sum(nil))})
		}
		body, _ := json.Marshal(map[string]any{"id": strconv.Itoa(i), "version": "1.0", "params": params, "method": "thing.topo.add"})
		gw.Publish("/sys/a1GwProdKey/gw-0001/thing/topo/add", 0, false, body)
		select {
		case r := <-replies:
			if r["code"] != 200.0 {
				t.Fatalf("thing/topo/add: %v", r)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no topo/add_reply")
		}
	}
	got, err := c.SubDevices(context.Background(), "a1GwProdKey", "gw-0001", "")
	if err != nil || len(got) != len(subs) || got[0] != (registry.SubDevice{Product: "a1SubProdKey", DeviceName: subs[0]}) {
		t.Fatalf("SubDevices: %d %v", len(got), err)
	}
	if got, _ := c.SubDevices(context.Background(), "a1GwProdKey", "gw-0001", "a1Other"); len(got) != 0 {
		t.Fatalf("another product's sub-devices: %v", got)
	}
	if _, err := c.SubDevices(context.Background(), "a1GwProdKey", "nosuch", ""); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("an unknown gateway: %v", err)
	}
}
