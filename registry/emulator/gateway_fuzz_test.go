package emulator

import (
	"encoding/json"
	"testing"
)

// FuzzGatewayPublish: whatever a gateway publishes on its topics, the
// emulator answers without failing, and an answer is JSON.
func FuzzGatewayPublish(f *testing.F) {
	f.Add("/sys/a1GwProdKey/gw/thing/topo/add", []byte(`{"id":"1","params":[{"productKey":"a1SubProdKey","deviceName":"sub","sign":"x","signmethod":"hmacSha1"}]}`))
	f.Add("/sys/a1GwProdKey/gw/thing/sub/register", []byte(`{"id":"2","params":[{"productKey":"a1SubProdKey","deviceName":"sub"}]}`))
	f.Add("/ext/session/a1GwProdKey/gw/combine/login", []byte(`{"id":"3","params":{"productKey":"a1SubProdKey","deviceName":"sub","signMethod":"hmacsha1"}}`))
	f.Add("$gateway/operation/GWPRODUCT1/gw", []byte(`{"type":"bind","payload":{"devices":[{"product_id":"SUBPRODUC1","device_name":"sub","random":1,"timestamp":"x"}]}}`))
	f.Add("$gateway/operation/GWPRODUCT1/gw", []byte(`{"type":"describe_sub_devices"}`))
	f.Add("/sys/a1GwProdKey/gw/thing/topo/get", []byte(`null`))
	e, err := New(Config{SecretID: testID, SecretKey: testKey, AliyunAccessKeyID: aliTestID, AliyunAccessKeySecret: aliTestSecret,
		GatewayProducts: []string{"GWPRODUCT1"}, SubDeviceProducts: []string{"SUBPRODUC1"},
		AliyunGatewayProducts: []string{"a1GwProdKey"}, AliyunSubDeviceProducts: []string{"a1SubProdKey"},
		DynRegProducts: map[string]ProductSettings{"aliyun:a1SubProdKey": {DynamicRegistration: true}}, TaskDelay: -1, RateLimit: -1})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	e.mu.Lock()
	for _, r := range []record{
		aliRecord("device", aliDeviceRec{Product: "a1GwProdKey", aliDevice: aliDevice{Name: "gw", Secret: "s", IotID: "i1"}}),
		aliRecord("device", aliDeviceRec{Product: "a1SubProdKey", aliDevice: aliDevice{Name: "sub", Secret: "s", IotID: "i2"}}),
		tcRecord("device", tcDeviceRec{Product: "GWPRODUCT1", tcDevice: tcDevice{Name: "gw", PSK: "cHNr"}}),
		tcRecord("device", tcDeviceRec{Product: "SUBPRODUC1", tcDevice: tcDevice{Name: "sub", PSK: "cHNr"}}),
	} {
		if err := e.commit(r); err != nil {
			f.Fatal(err)
		}
	}
	e.mu.Unlock()
	ali := &mqttSession{platform: "aliyun", product: "a1GwProdKey", device: "gw"}
	tc := &mqttSession{platform: "tencent", product: "GWPRODUCT1", device: "gw"}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		for _, s := range []*mqttSession{ali, tc} {
			var reply []byte
			if s.platform == "aliyun" {
				_, reply, _ = e.aliGatewayPublish(s, topic, payload)
			} else {
				_, reply, _ = e.tcGatewayPublish(s, topic, payload)
			}
			if reply != nil && !json.Valid(reply) {
				t.Fatalf("answer %q is not JSON", reply)
			}
		}
	})
}
