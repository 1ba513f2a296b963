package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/iotburn/iotburn/registry/devauth"
	"github.com/iotburn/iotburn/templates/nvs"
)

// runAliyunSolo plays espressif/esp-aliyun's examples/solo/example_solo
// (iotkit-embedded 3.x with CONFIG_DYNAMIC_REGISTER, its Kconfig default),
// as the kit's sources at the snapshot read (master dffa319) do it:
//
//   - [PROD] wrappers/wrapper_product.c HAL_GetProductParam: the NVS
//     partition "fctry" (MFG_PARTITION_NAME), namespace "aliyun-key"
//     (NVS_PRODUCT), keys ProductKey, ProductSecret, DeviceName,
//     DeviceSecret; each failure logged ("NVS Flash init fctry failed, Please
//     check that you have flashed fctry partition!!!", "%s nvs_open failed
//     with %x", "%s nvs_get_str get %s failed with %x") and read as "".
//     HAL_SetProductParam writes a key back (NVS_READWRITE).
//   - [ENTRY] components/databases/app_entry.c app_check_config_pk: no
//     ProductKey, "Please first input four config", and the cloud is never
//     started.
//   - [SOLO] components/linkkit_handle/linkkit_solo.c linkkit_thread: the four
//     values read; no DeviceSecret, "Not found device secret, start to
//     dynamic register" and IOTX_IOCTL_SET_DYNAMIC_REGISTER 1;
//     IOT_Linkkit_Connect; a failure "IOT_Linkkit_Connect Failed", and
//     linkkit_main calls linkkit_thread again; once connected
//     user_connected_event_handler prints "Cloud Connected". EXAMPLE_TRACE
//     prints "\033[1;32;40m<func>.<line>: <text>\033[0m\r\n".
//   - [API] iotkit-embedded/mqtt/mqtt_api.c IOT_MQTT_Construct (product key ≤
//     20, device name ≤ 32, product and device secret ≤ 64 characters, else
//     "Invalid … , abort!" / "Product Secret doesn't exist") and
//     _iotx_dynamic_register: the DeviceSecret is first looked up in the KV
//     store under "DYNAMIC_REG_"+DeviceName, cut to 15 characters
//     ("Get DeviceSecret from KV succeed"); else "DeviceSecret KV not exist,
//     Now We Need Dynamic Register...", IOT_Dynamic_Register, the secret
//     saved in the KV ("Save Device Secret to KV Failed") and written to
//     fctry (HAL_SetDeviceSecret). A failure is "Dynamic Register Failed",
//     then "ret = _iotx_dynamic_register() = -1, abort".
//   - [DYN] iotkit-embedded/dynamic_register/dynreg.c: HTTPS pre-registration
//     only (POST /auth/register/device, the form
//     productKey&deviceName&random&sign&signMethod=hmacsha256), with the fixed
//     random "8Ygb7ULYh53B6OA" (_calc_dynreg_sign); "Http Download Failed"
//     when the request fails; the answer logged, "Dynamic Register Code: %s",
//     anything but 200 a failure ("Get Device Secret Failed"). This kit
//     cannot do registration-free: on a registration-free product the name
//     is unknown to the pre-registration endpoint and the board never
//     connects.
//   - [KV] wrappers/wrapper_kv.c: the KV store is the NVS partition "nvs",
//     namespace "iotkit-kv", blobs; an unusable partition "NVS Flash init nvs
//     failed!".
//   - [MQTT] iotkit-embedded/mqtt/iotx_mqtt_client.c _mqtt_connect: "connect
//     params: MQTTVersion=4, clientID=%s, keepAliveInterval=%d, username=%s",
//     "mqtt connect success!"; a refused CONNACK "recvConnackProc
//     error,result = %d" and "received reject ACK from MQTT server! rc = %d"
//     with infra_defs.h's codes (-35 bad user data for CONNACK 4, -34 not
//     authorized for 5, -36 server unavailable, -37 identifier rejected), then
//     "wrapper_mqtt_connect failed" (mqtt_api.c). The credentials are
//     dev_sign_mqtt.c's: the fixed timestamp 2524608000000, hmacsha256,
//     securemode 2. iotkit's log lines are "\033[<colour>m[<level>]
//     <func>(<line>): <text>\r\n\033[0m" (infra_log.c, LOG_PREFIX_FMT);
//     the line numbers are those of the snapshot's files.
//
// Choices where the sources are silent or not followed:
//   - Wi-Fi (conn_mgr) is taken as joined. [NOT FROM A SOURCE]
//   - linkkit_main retries at once; the simulator waits 1 s between two
//     attempts (the real attempt's own network time is not known).
//     [NOT FROM A SOURCE]
//   - The kit prints the registration's signature, the answer's
//     deviceSecret and the DeviceSecret itself; the simulator prints
//     espWithheld in their place. [DEVIATION]
//   - A dropped session: iotkit reconnects with a growing wait
//     (iotx_mc_handle_reconnect: 1 s, 2 s, 4 s … up to 60 s); the simulator
//     does the same and prints "Cloud Connected" again.
func runAliyunSolo(b *espBooted) string {
	l := b.l
	l.raw("[prt] log level set as: [ 4 ]\r\n") // IOT_SetLogLevel(IOT_LOG_INFO), infra_log.c
	if b.halGet("ProductKey") == "" {
		l.E("app_entry", "Please first input four config")
		return b.idle()
	}
	for b.ctx.Err() == nil {
		b.linkkitThread()
		if !pause(b.ctx, time.Second) {
			break
		}
	}
	return ""
}

// Aliyun's length limits (infra_defs.h IOTX_PRODUCT_KEY_LEN, …).
const (
	iotxProductKeyLen    = 20
	iotxDeviceNameLen    = 32
	iotxDeviceSecretLen  = 64
	iotxProductSecretLen = 64
	iotkitDynregRandom   = "8Ygb7ULYh53B6OA" // dynreg.c _calc_dynreg_sign
	iotkitSignTimestamp  = "2524608000000"   // dev_sign_mqtt.c TIMESTAMP_VALUE
	aliyunKitNamespace   = "aliyun-key"      // wrapper_product.c NVS_PRODUCT
	aliyunKitPartition   = "fctry"           // wrapper_product.c MFG_PARTITION_NAME
)

// iotkitLog is infra_log.c's line: level "err" in "\033[1;31m", "inf" in "\033[1;33m".
func (b *espBooted) iotkitLog(level, fn string, line int, format string, a ...any) {
	color := "[1;33m"
	if level == "err" {
		color = "[1;31m"
	}
	b.l.raw(fmt.Sprintf("\033%s[%s] %s(%d): %s\r\n\033[0m", color, level, fn, line, fmt.Sprintf(format, a...)))
}

// trace is linkkit_solo.c's EXAMPLE_TRACE.
func (b *espBooted) trace(fn string, line int, text string) {
	b.l.raw(fmt.Sprintf("\033[1;32;40m%s.%d: %s\033[0m\r\n", fn, line, text))
}

// halGet is HAL_GetProductParam [PROD].
func (b *espBooted) halGet(key string) string {
	n, code := b.c.nvsInit(b.parts, aliyunKitPartition)
	if code != 0 {
		b.l.E("wrapper_product", "NVS Flash init %s failed, Please check that you have flashed fctry partition!!!", aliyunKitPartition)
		return ""
	}
	if !n.hasNamespace(aliyunKitNamespace) {
		b.l.E("wrapper_product", "HAL_GetProductParam nvs_open failed with %s", espErrHex(espErrNVSNotFound))
		return ""
	}
	v, code := n.getStr(aliyunKitNamespace, key, 0)
	if code != 0 {
		b.l.E("wrapper_product", "HAL_GetProductParam nvs_get_str get %s failed with %s", key, espErrHex(code))
		return ""
	}
	return v
}

// halSet is HAL_SetProductParam [PROD]: 0 when written.
func (b *espBooted) halSet(key, v string) int {
	n, code := b.c.nvsInit(b.parts, aliyunKitPartition)
	if code != 0 {
		b.l.E("wrapper_product", "NVS Flash init %s failed, Please check that you have flashed fctry partition!!!", aliyunKitPartition)
		return code
	}
	if code := n.set(aliyunKitNamespace, key, nvs.String, v); code != 0 {
		b.l.E("wrapper_product", "HAL_SetProductParam nvs_set_str set %s failed with %s", key, espErrHex(code))
		return code
	}
	return 0
}

// kvKey is _iotx_dynamic_register's key, as wrapper_kv.c cuts it to 15 characters.
func kvKey(deviceName string) string {
	k := "DYNAMIC_REG_" + deviceName
	if len(k) > 15 {
		k = k[:15]
	}
	return k
}

// kvGet is HAL_Kv_Get [KV].
func (b *espBooted) kvGet(key string) (string, bool) {
	n, code := b.c.nvsInit(b.parts, "nvs")
	if code != 0 {
		b.l.E("wrapper_kv", "NVS Flash init nvs failed!")
		return "", false
	}
	if !n.hasNamespace("iotkit-kv") {
		b.l.W("wrapper_kv", "nvs open iotkit-kv failed with %s", espErrHex(espErrNVSNotFound))
		return "", false
	}
	v, code := n.getBlob("iotkit-kv", key, iotxDeviceSecretLen)
	if code != 0 {
		b.l.W("wrapper_kv", "nvs get blob %s failed with %s", key, espErrHex(code))
		return "", false
	}
	return string(v), true
}

// kvSet is HAL_Kv_Set [KV]: 0 when written.
func (b *espBooted) kvSet(key, v string) int {
	n, code := b.c.nvsInit(b.parts, "nvs")
	if code != 0 {
		b.l.E("wrapper_kv", "NVS Flash init nvs failed!")
		return code
	}
	if code := n.set("iotkit-kv", key, nvs.Blob, []byte(v)); code != 0 {
		b.l.E("wrapper_kv", "nvs set blob %s failed with %s", key, espErrHex(code))
		return code
	}
	return 0
}

// linkkitThread is one run of linkkit_thread [SOLO]: it returns when the
// connection failed or ended for good.
func (b *espBooted) linkkitThread() {
	pk, ps := b.halGet("ProductKey"), b.halGet("ProductSecret")
	dn, ds := b.halGet("DeviceName"), b.halGet("DeviceSecret")
	dynamic := ds == ""
	if dynamic {
		b.trace("linkkit_thread", 454, "Not found device secret, start to dynamic register")
	}
	failed := func() { b.trace("linkkit_thread", 474, "IOT_Linkkit_Connect Failed\n") }
	switch {
	case pk == "" || len(pk) > iotxProductKeyLen:
		b.iotkitLog("err", "IOT_MQTT_Construct", 396, "Invalid product key, abort!")
		failed()
		return
	case dn == "" || len(dn) > iotxDeviceNameLen:
		b.iotkitLog("err", "IOT_MQTT_Construct", 400, "Invalid device name, abort!")
		failed()
		return
	}
	if dynamic {
		if ps == "" || len(ps) > iotxProductSecretLen {
			b.iotkitLog("err", "IOT_MQTT_Construct", 408, "Product Secret doesn't exist")
			failed()
			return
		}
		var ok bool
		if ds, ok = b.iotxDynamicRegister(pk, ps, dn); !ok {
			b.iotkitLog("err", "IOT_MQTT_Construct", 414, "ret = _iotx_dynamic_register() = -1, abort")
			failed()
			return
		}
	} else if len(ds) > iotxDeviceSecretLen {
		b.iotkitLog("err", "IOT_MQTT_Construct", 420, "Invalid device secret, abort!")
		failed()
		return
	}
	cid, user, pass, err := devauth.AliyunMQTTWith(pk+"."+dn, pk, dn, ds, iotkitSignTimestamp, devauth.AliyunHMACSHA256, 2)
	if err != nil {
		failed()
		return
	}
	wait := time.Second
	for first := true; ; first = false {
		b.iotkitLog("inf", "_mqtt_connect", 774, "connect params: MQTTVersion=4, clientID=%s, keepAliveInterval=60, username=%s", cid, user)
		s, err := b.aliyunSession(cid, user, pass)
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			if e, ok := devauth.Refused(err); ok {
				rc := iotkitConnackRC(e.Code)
				b.iotkitLog("err", "iotx_mc_wait_CONNACK", 756, "recvConnackProc error,result = %d", rc)
				b.iotkitLog("err", "_mqtt_connect", 793, "received reject ACK from MQTT server! rc = %d", rc)
			}
			if first {
				b.iotkitLog("err", "IOT_MQTT_Construct", 579, "wrapper_mqtt_connect failed")
				failed()
				return
			}
			// A reconnection that fails waits longer and tries again.
			if !pause(b.ctx, wait) {
				return
			}
			wait = min(2*wait, 60*time.Second)
			continue
		}
		wait = time.Second
		b.iotkitLog("inf", "_mqtt_connect", 821, "mqtt connect success!")
		b.trace("user_connected_event_handler", 70, "Cloud Connected")
		if !b.stayConnected(s) {
			return
		}
		b.trace("user_disconnected_event_handler", 80, "Cloud Disconnected")
		if !pause(b.ctx, wait) {
			return
		}
	}
}

// iotkitConnackRC is iotx_mc_handle_recv_CONNACK's code for a refused
// CONNACK (infra_defs.h).
func iotkitConnackRC(code string) int {
	switch code {
	case "mqtt:1":
		return -38 // MQTT_CONANCK_UNACCEPTABLE_PROTOCOL_VERSION_ERROR
	case "mqtt:2":
		return -37
	case "mqtt:3":
		return -36
	case "mqtt:4":
		return -35
	case "mqtt:5":
		return -34
	}
	return -39
}

// aliyunSession logs in to the board's broker (Options.MQTT), securemode 2
// declared, plain TCP to the emulator.
func (b *espBooted) aliyunSession(cid, user, pass string) (*devauth.Session, error) {
	_, broker := b.c.h.cloud()
	if broker == "" {
		return nil, fmt.Errorf("no broker")
	}
	c, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	return devauth.MQTTSession(c, "aliyun", broker, nil, cid, user, pass)
}

// iotxDynamicRegister is _iotx_dynamic_register [API]: the DeviceSecret
// from the KV store, or from the platform's pre-registration.
func (b *espBooted) iotxDynamicRegister(pk, ps, dn string) (string, bool) {
	key := kvKey(dn)
	if ds, ok := b.kvGet(key); ok {
		b.iotkitLog("inf", "_iotx_dynamic_register", 301, "Get DeviceSecret from KV succeed")
		b.halSet("DeviceSecret", ds)
		return ds, true
	}
	b.iotkitLog("inf", "_iotx_dynamic_register", 311, "DeviceSecret KV not exist, Now We Need Dynamic Register...")
	ds, ok := b.iotDynamicRegister(pk, ps, dn)
	if !ok {
		b.iotkitLog("err", "_iotx_dynamic_register", 315, "Dynamic Register Failed")
		return "", false
	}
	if b.kvSet(key, ds) != 0 {
		b.iotkitLog("err", "_iotx_dynamic_register", 321, "Save Device Secret to KV Failed")
		return "", false
	}
	b.halSet("DeviceSecret", ds)
	return ds, true
}

// iotDynamicRegister is IOT_Dynamic_Register and _fetch_dynreg_http_resp
// [DYN], to the board's Options.Cloud for the region's iot-auth host.
func (b *espBooted) iotDynamicRegister(pk, ps, dn string) (string, bool) {
	if len(pk) > iotxProductKeyLen || len(ps) > iotxProductSecretLen || len(dn) > iotxDeviceNameLen {
		return "", false
	}
	b.iotkitLog("inf", "_calc_dynreg_sign", 127, "Random Key: %s", iotkitDynregRandom)
	b.iotkitLog("inf", "_calc_dynreg_sign", 143, "Sign: %s", espWithheld)
	fail := func() (string, bool) {
		b.iotkitLog("err", "IOT_Dynamic_Register", 276, "Get Device Secret Failed")
		return "", false
	}
	base, _ := b.c.h.cloud()
	raw, err := b.postForm(base, devauth.AliyunRegisterForm(pk, ps, dn, iotkitDynregRandom))
	if err != nil {
		b.iotkitLog("err", "_fetch_dynreg_http_resp", 195, "Http Download Failed")
		return fail()
	}
	var ans struct {
		Code json.Number `json:"code"`
		Data struct {
			DeviceSecret string `json:"deviceSecret"`
		} `json:"data"`
	}
	_ = json.Unmarshal(raw, &ans)
	shown := string(raw)
	if ans.Data.DeviceSecret != "" {
		shown = strings.ReplaceAll(shown, ans.Data.DeviceSecret, espWithheld)
	}
	b.iotkitLog("inf", "_fetch_dynreg_http_resp", 200, "Http Response Payload: %s", shown)
	b.iotkitLog("inf", "_fetch_dynreg_http_resp", 203, "Dynamic Register Code: %s", ans.Code.String())
	if ans.Code.String() != strconv.Itoa(200) || ans.Data.DeviceSecret == "" || len(ans.Data.DeviceSecret) > iotxDeviceSecretLen {
		return fail()
	}
	b.iotkitLog("inf", "_fetch_dynreg_http_resp", 213, "Dynamic Register Device Secret: %s", espWithheld)
	return ans.Data.DeviceSecret, true
}

// postForm is the kit's httpclient_common POST, 10 s (dynreg.c).
func (b *espBooted) postForm(base, form string) ([]byte, error) {
	if base == "" {
		return nil, fmt.Errorf("no cloud")
	}
	c, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(c, http.MethodPost, strings.TrimSuffix(base, "/")+devauth.AliyunDynRegPath, strings.NewReader(form))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/xml,text/javascript,text/html,application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	buf := make([]byte, 0, 1024)
	tmp := make([]byte, 1024)
	for len(buf) < 4096 { // HTTP_RESPONSE_PAYLOAD_LEN is small; 4 KB is plenty
		n, err := resp.Body.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			break
		}
	}
	return buf, nil
}
