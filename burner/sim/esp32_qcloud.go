package sim

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/iotburn/iotburn/registry/devauth"
)

// runQCloudLight plays espressif/esp-qcloud's examples/led_light built with
// CONFIG_QCLOUD_MASS_MANUFACTURE (the credential in flash), as the kit's
// sources at the snapshot read (master 0f0fc26) do it:
//
//   - [DEV] src/iothub/esp_qcloud_device.c esp_qcloud_create_device:
//     ESP_ERROR_CHECK(nvs_flash_init_partition("fctry")) (line 104); the
//     namespace "qcloud-key" opened read-only, a failure logged as a warning
//     "<ESP_ERR_…> Factory partition information is not burned" (ESP_QCLOUD_ERROR_GOTO
//     is ESP_LOGW), 3 s, ESP_FAIL, which app_main's ESP_ERROR_CHECK turns into
//     an abort (examples/led_light/main/app_main.c line 283); product_id
//     (buffer PRODUCT_ID_SIZE+1 = 11), device_name (49), device_secret (25)
//     each read under ESP_ERROR_CHECK (lines 111, 115, 119): a key missing
//     or too long aborts and the board reboots, again and again.
//   - The kit has no dynamic registration (no product secret is read, none
//     of its sources registers): a product-level partition (no
//     device_secret) aborts at line 119, whatever the mode. That is the
//     kit's behaviour, and the harshest.
//   - [HUB] src/iothub/esp_qcloud_iothub.c esp_qcloud_iothub_config: client id
//     productId+deviceName, username "<clientId>;21010406;<%05u random>;<LONG_MAX>"
//     (LONG_MAX is 2147483647 on the 32-bit ESP32), password hex
//     HMAC-SHA256(base64decode(device_secret), username) + ";hmacsha256",
//     broker mqtt://<productId>.iotcloud.tencentdevices.com:1883 (here
//     Options.MQTT). A device_secret that is not base64 fails
//     mbedtls_base64_decode: the error logged, esp_qcloud_iothub_init fails
//     (app_main line 315) and the board aborts.
//   - [MQTT] src/mqtt/esp_qcloud_mqtt.c: "Initialising MQTT", "Connecting to
//     %s", "Waiting for MQTT connection. This may take time.", then on
//     MQTT_EVENT_CONNECTED "MQTT Connected", on MQTT_EVENT_ERROR
//     "MQTT_EVENT_ERROR", on MQTT_EVENT_DISCONNECTED "MQTT Disconnected. Will
//     try reconnecting in a while...". ESP-IDF's esp-mqtt logs a refused
//     CONNACK under MQTT_CLIENT ("Connection refused, bad username or
//     password", "…, not authorized", "…, server unavailable") and
//     reconnects after its default 10 s (MQTT_RECON_DEFAULT_MS); a failed TCP
//     connection is "Error transport connect".
//
// Wi-Fi is taken as joined (the kit's provisioning is not modelled: the
// line does not provision it). [NOT FROM A SOURCE] The board stays connected
// until it loses power or is reset.
func runQCloudLight(b *espBooted) string {
	l := b.l
	const dev, fn = "esp-qcloud/src/iothub/esp_qcloud_device.c", "esp_qcloud_create_device"
	const appMain = "esp-qcloud/examples/led_light/main/app_main.c"
	n, code := b.c.nvsInit(b.parts, "fctry")
	if code != 0 {
		return b.abort(code, dev, 104, fn, "nvs_flash_init_partition(CONFIG_QCLOUD_FACTRY_PARTITION_NAME)")
	}
	const ns = "qcloud-key"
	if !n.hasNamespace(ns) {
		l.W("esp_qcloud_device", "<%s> Factory partition information is not burned", espErrName(espErrNVSNotFound))
		if !pause(b.ctx, 3*time.Second) {
			return ""
		}
		return b.abort(espFail, appMain, 283, "app_main", "esp_qcloud_create_device()")
	}
	var vals [3]string
	for i, k := range []struct {
		key  string
		size int
		line int
		expr string
	}{
		{"product_id", 10 + 1, 111, `nvs_get_str(handle, "product_id", g_device_profile->product_id, &required_size)`},
		{"device_name", 48 + 1, 115, `nvs_get_str(handle, "device_name", g_device_profile->device_name, &required_size)`},
		{"device_secret", 24 + 1, 119, `nvs_get_str(handle, "device_secret", g_device_profile->device_secret, &required_size)`},
	} {
		v, code := n.getStr(ns, k.key, k.size)
		if code != 0 {
			return b.abort(code, dev, k.line, fn, k.expr)
		}
		vals[i] = v
	}
	pid, dn, psk := vals[0], vals[1], vals[2]
	key, err := base64.StdEncoding.DecodeString(psk)
	if err != nil || len(key) == 0 {
		// mbedtls_base64_decode's MBEDTLS_ERR_BASE64_INVALID_CHARACTER, -0x002C.
		l.W("esp_qcloud_iothub", "BASE64 - Invalid character in input")
		l.W("esp_qcloud_iothub", "<%s> esp_qcloud_mqtt_get_config", "ERROR")
		return b.abort(-0x2C, appMain, 315, "app_main", "esp_qcloud_iothub_init()")
	}
	l.I("esp_qcloud_mqtt", "Initialising MQTT")
	l.I("esp_qcloud_mqtt", "Connecting to mqtt://%s.iotcloud.tencentdevices.com:1883", pid)
	l.I("esp_qcloud_mqtt", "Waiting for MQTT connection. This may take time.")
	_, broker := b.c.h.cloud()
	connect := func(ctx context.Context) (*devauth.Session, error) {
		if broker == "" {
			return nil, fmt.Errorf("no broker")
		}
		cid, user, pass, err := devauth.TencentMQTTWith(pid, dn, psk, fmt.Sprintf("%05d", rand.IntN(100000)), 2147483647, devauth.TencentHMACSHA256)
		if err != nil {
			return nil, err
		}
		return devauth.MQTTSession(ctx, "tencent", broker, nil, cid, user, pass)
	}
	for {
		c, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		s, err := connect(c)
		cancel()
		if b.ctx.Err() != nil {
			return ""
		}
		if err == nil {
			l.I("esp_qcloud_mqtt", "MQTT Connected")
			if !b.stayConnected(s) {
				return ""
			}
		} else {
			if e, ok := devauth.Refused(err); ok {
				l.W("MQTT_CLIENT", "%s", espMQTTRefusal(e.Code))
			} else {
				l.E("MQTT_CLIENT", "Error transport connect")
			}
			l.E("esp_qcloud_mqtt", "MQTT_EVENT_ERROR")
		}
		l.W("esp_qcloud_mqtt", "MQTT Disconnected. Will try reconnecting in a while...")
		if !pause(b.ctx, 10*time.Second) { // esp-mqtt MQTT_RECON_DEFAULT_MS
			return ""
		}
	}
}

// espMQTTRefusal is esp-mqtt's warning for a refused CONNACK (mqtt_client.c
// esp_mqtt_connect / mqtt_msg.c), by the CONNACK code devauth reports.
func espMQTTRefusal(code string) string {
	switch code {
	case "mqtt:1":
		return "Connection refused, bad protocol"
	case "mqtt:3":
		return "Connection refused, server unavailable"
	case "mqtt:4":
		return "Connection refused, bad username or password"
	case "mqtt:5":
		return "Connection refused, not authorized"
	}
	return "Connection refused, Unknow reason"
}

// stayConnected keeps an MQTT session until the broker ends it (true) or
// the board loses power or is reset (false).
func (b *espBooted) stayConnected(s *devauth.Session) bool {
	defer s.Close()
	select {
	case <-s.Done():
		return b.ctx.Err() == nil
	case <-b.ctx.Done():
		return false
	}
}
