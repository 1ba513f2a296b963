package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/iotburn/iotburn/registry/devauth"
)

// runLinkSDKDynreg plays an ESP32 app built on Alibaba's LinkSDK 4.x (the C
// SDK Alibaba ports to the ESP32 itself: its "ESP32_Porting" guide, which
// larryli/esp-aliyun-iot-linksdk's README points to), running the SDK's
// MQTT dynamic-registration demo and then its MQTT demo, as their sources
// do it (the copies the public code index holds; iotali/c_link_sdk_demo
// carries the same component):
//
//   - [DYNMQ] components/dynreg-mqtt/aiot_dynregmq_api.c
//     aiot_dynregmq_send_request: an MQTT CONNECT with client id
//     "<dn>.<pk>|random=<r>,authType=<register|regnwl>,securemode=2,signmethod=hmacsha256|",
//     username "<dn>&<pk>", password hex HMAC-SHA256(ProductSecret,
//     "deviceName<dn>productKey<pk>random<r>"); authType regnwl when
//     AIOT_DYNREGMQOPT_NO_WHITELIST is 1 (registration-free: no name created
//     beforehand), register otherwise (the name must exist). The answer is one
//     PUBLISH on /ext/register (deviceSecret) or /ext/regnwl (clientId,
//     deviceToken); registration-free then logs in with client id
//     "<clientId>|authType=connwl,securemode=-2,_ss=1,ext=3,_v=<sdk>|" and the
//     DeviceToken as password (_dynregmq_recv_handler). devauth builds the
//     same CONNECTs (its random is letters and digits where LinkSDK's is a
//     decimal number, and its connwl client id leaves out _v: the platform
//     reads neither).
//   - [DEMO] demos/dynregmq_basic_demo.c demo_main: a failure prints
//     "aiot_dynregmq_send_request failed: -0x%04X" or "aiot_dynregmq_recv
//     failed: -0x%04X" and the demo gives up; success prints "device secret:
//     %s" or "clientid: %s", "username: %s", "password: %s".
//     demos/mqtt_basic_demo.c: "aiot_mqtt_connect failed: -0x%04X" and gives
//     up; connected, the event handler prints "AIOT_MQTTEVT_CONNECT", and after a
//     drop "AIOT_MQTTEVT_DISCONNECT: network disconnect", then
//     "AIOT_MQTTEVT_RECONNECT" once the SDK's own reconnection (aiot_mqtt_recv)
//     succeeds.
//   - [STATE] core/aiot_state_api.h: a refused CONNACK is
//     STATE_MQTT_CONNACK_RCODE_SERVER_UNAVAILABLE -0x0303,
//     …_BAD_USERNAME_PASSWORD -0x0304, …_NOT_AUTHORIZED -0x0305, …_UNKNOWN
//     -0x0306; a connection that cannot be made STATE_SYS_DEPEND_NWK_EST_FAILED
//     -0x0203; aiot_dynregmq_api.h: no answer in time STATE_DYNREGMQ_AUTH_TIMEOUT
//     -0x0503.
//
// Choices where the sources are silent or not followed:
//   - The demo hard-codes its product key, secret and name. The app modelled
//     here reads them as Espressif's Aliyun kit does, from the NVS partition
//     "fctry", namespace "aliyun-key", keys ProductKey, DeviceName,
//     ProductSecret, DeviceSecret (esp-aliyun wrappers/wrapper_product.c), so
//     the line burns it as it burns that kit; a key that cannot be read is
//     passed as NULL, which aiot_dynregmq_setopt refuses
//     (STATE_USER_INPUT_NULL_POINTER -0x0101, "aiot_dynregmq_setopt
//     AIOT_DYNREGMQOPT_… failed, res: -0x%04X"). [NOT FROM A SOURCE]
//   - With a DeviceSecret in the partition the app skips registration and logs
//     in with it (the MQTT demo's login). [NOT FROM A SOURCE]
//   - The demo tells its user to keep what registration returns
//     ("用户务必要对…进行持久化保存"); where is the product's choice. This app
//     keeps it in RAM only: every boot registers again, and the platform's
//     limit of clients per registration-free device counts each. [NOT FROM A
//     SOURCE: harsher]
//   - The SDK's own log lines ("[<time>][LK-<code>] …", aiot_state_set_logcb)
//     are not printed; the demo prints the DeviceSecret and the DeviceToken,
//     the simulator espWithheld in their place. [DEVIATION]
//   - The reconnection's wait is the SDK's default reconnect interval, taken
//     as 2 s. [NOT FROM A SOURCE]
//   - Wi-Fi is taken as joined. [NOT FROM A SOURCE]
func runLinkSDKDynreg(b *espBooted, noWhitelist bool) string {
	l := b.l
	var pk, dn, ps, ds string
	if n, code := b.c.nvsInit(b.parts, aliyunKitPartition); code == 0 {
		pk, _ = n.getStr(aliyunKitNamespace, "ProductKey", iotxProductKeyLen+1)
		dn, _ = n.getStr(aliyunKitNamespace, "DeviceName", iotxDeviceNameLen+1)
		ps, _ = n.getStr(aliyunKitNamespace, "ProductSecret", iotxProductSecretLen+1)
		ds, _ = n.getStr(aliyunKitNamespace, "DeviceSecret", iotxDeviceSecretLen+1)
	}
	for _, o := range []struct{ opt, v string }{{"AIOT_DYNREGMQOPT_PRODUCT_KEY", pk}, {"AIOT_DYNREGMQOPT_DEVICE_NAME", dn}} {
		if o.v == "" {
			l.raw(fmt.Sprintf("aiot_dynregmq_setopt %s failed, res: -0x%04X\r\n", o.opt, 0x0101))
			return b.idle()
		}
	}
	_, broker := b.c.h.cloud()
	// What the MQTT demo logs in with.
	var cid, user, pass string
	switch {
	case ds != "":
		cid, user, pass = devauth.AliyunMQTT(pk, dn, ds, time.Now())
	case ps == "":
		l.raw(fmt.Sprintf("aiot_dynregmq_setopt AIOT_DYNREGMQOPT_PRODUCT_SECRET failed, res: -0x%04X\r\n", 0x0101))
		return b.idle()
	default:
		c, cancel := context.WithTimeout(b.ctx, 5*time.Second) // DYNREGMQ_DEFAULT_TIMEOUT_MS is 5 s (aiot_dynregmq_api.h)
		var err error
		var clientID, token, secret string
		if broker == "" {
			err = &net.OpError{Op: "dial", Err: errors.New("no broker")}
		} else if noWhitelist {
			clientID, token, err = devauth.AliyunRegisterFree(c, broker, nil, pk, ps, dn)
		} else {
			secret, err = devauth.AliyunRegisterMQTT(c, broker, nil, pk, ps, dn)
		}
		cancel()
		if b.ctx.Err() != nil {
			return ""
		}
		if err != nil {
			if state, sent := linkSDKState(err); sent {
				l.raw(fmt.Sprintf("aiot_dynregmq_send_request failed: -0x%04X\r\n", state))
			} else {
				l.raw(fmt.Sprintf("aiot_dynregmq_recv failed: -0x%04X\r\n", state))
			}
			return b.idle()
		}
		if noWhitelist {
			cid, user, pass = devauth.AliyunMQTTToken(pk, dn, clientID, token)
			l.raw("clientid: " + cid + "\r\nusername: " + user + "\r\npassword: " + espWithheld + "\r\n")
		} else {
			l.raw("device secret: " + espWithheld + "\r\n")
			cid, user, pass = devauth.AliyunMQTT(pk, dn, secret, time.Now())
		}
	}
	for connected := false; ; {
		var s *devauth.Session
		var err error
		if broker == "" {
			err = &net.OpError{Op: "dial", Err: errors.New("no broker")}
		} else {
			s, err = b.aliyunSession(cid, user, pass)
		}
		if b.ctx.Err() != nil {
			return ""
		}
		if err != nil {
			if !connected {
				state, _ := linkSDKState(err)
				l.raw(fmt.Sprintf("aiot_mqtt_connect failed: -0x%04X\r\n", state))
				return b.idle()
			}
			if !pause(b.ctx, 2*time.Second) {
				return ""
			}
			continue
		}
		if connected {
			l.raw("AIOT_MQTTEVT_RECONNECT\r\n")
		} else {
			l.raw("AIOT_MQTTEVT_CONNECT\r\n")
		}
		connected = true
		if !b.stayConnected(s) {
			return ""
		}
		l.raw("AIOT_MQTTEVT_DISCONNECT: network disconnect\r\n")
		if !pause(b.ctx, 2*time.Second) {
			return ""
		}
	}
}

// linkSDKState is the SDK's state code for a failed exchange [STATE]; sent
// reports a failure of the CONNECT itself (send_request) rather than of the
// wait for the answer (recv).
func linkSDKState(err error) (state int, sent bool) {
	if e, ok := devauth.Refused(err); ok {
		switch e.Code {
		case "mqtt:3":
			return 0x0303, true
		case "mqtt:4":
			return 0x0304, true
		case "mqtt:5":
			return 0x0305, true
		}
		return 0x0306, true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return 0x0203, true
	}
	return 0x0503, false
}
