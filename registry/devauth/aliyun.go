package devauth

// Alibaba Cloud IoT Platform, device side (shared/reference/aliyun.md §3, §4).

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// AliyunDynRegPath is the HTTPS pre-registration endpoint on
	// iot-auth.<region>.aliyuncs.com.
	AliyunDynRegPath = "/auth/register/device"

	// Signature methods (signmethod / signMethod).
	AliyunHMACSHA256 = "hmacsha256"
	AliyunHMACSHA1   = "hmacsha1"
	AliyunHMACMD5    = "hmacmd5"

	// Topics on which the broker pushes an MQTT registration's result before
	// it closes the connection.
	AliyunRegisterTopic = "/ext/register"
	AliyunRegnwlTopic   = "/ext/regnwl"
)

func aliyunHash(method string) (func() hash.Hash, error) {
	switch method {
	case AliyunHMACSHA256:
		return sha256.New, nil
	case AliyunHMACSHA1:
		return sha1.New, nil
	case AliyunHMACMD5:
		return md5.New, nil
	}
	return nil, fmt.Errorf("aliyun: unknown sign method %q (want hmacsha256, hmacsha1 or hmacmd5)", method)
}

func aliyunHMACHex(method, key, content string) (string, error) {
	newHash, err := aliyunHash(method)
	if err != nil {
		return "", err
	}
	m := hmac.New(newHash, []byte(key))
	m.Write([]byte(content))
	return hex.EncodeToString(m.Sum(nil)), nil
}

// AliyunRegisterSign is the dynamic-registration signature, HTTPS and MQTT
// alike: lower-case hex HMAC(ProductSecret, "deviceName"+dn+"productKey"+pk+"random"+random).
// (iotkit sends upper-case hex; the LinkSDK lower-case.)
func AliyunRegisterSign(method, productKey, productSecret, deviceName, random string) (string, error) {
	return aliyunHMACHex(method, productSecret, "deviceName"+deviceName+"productKey"+productKey+"random"+random)
}

// AliyunRegisterForm is the form body of an HTTPS pre-registration request,
// signed with HMAC-SHA256.
func AliyunRegisterForm(productKey, productSecret, deviceName, random string) string {
	sign, _ := AliyunRegisterSign(AliyunHMACSHA256, productKey, productSecret, deviceName, random)
	v := url.Values{}
	v.Set("productKey", productKey)
	v.Set("deviceName", deviceName)
	v.Set("random", random)
	v.Set("sign", sign)
	v.Set("signMethod", AliyunHMACSHA256)
	return v.Encode()
}

// AliyunRegister pre-registers deviceName over HTTPS: POST
// <baseURL>/auth/register/device (baseURL such as
// "https://iot-auth.cn-shanghai.aliyuncs.com" or an emulator's
// "http://127.0.0.1:8443"). The device must already exist on the platform and
// not be activated; the answer is its DeviceSecret (before activation the
// last one issued wins, so a retry supersedes an earlier answer).
func AliyunRegister(ctx context.Context, baseURL, productKey, productSecret, deviceName string) (deviceSecret string, err error) {
	body := AliyunRegisterForm(productKey, productSecret, deviceName, randomAlnum(15))
	hdr := map[string][]string{
		"Content-Type": {"application/x-www-form-urlencoded"},
		"Accept":       {"text/xml,text/javascript,text/html,application/json"},
	}
	raw, err := post(ctx, strings.TrimSuffix(baseURL, "/")+AliyunDynRegPath, []byte(body), hdr)
	if err != nil {
		return "", fmt.Errorf("aliyun: dynamic registration of %s: %w", deviceName, err)
	}
	var ans struct {
		Code    *int   `json:"code"`
		Message string `json:"message"`
		Data    struct {
			DeviceSecret string `json:"deviceSecret"`
		} `json:"data"`
	}
	if err := decodeJSON(raw, &ans); err != nil {
		return "", fmt.Errorf("aliyun: dynamic registration of %s: %w", deviceName, err)
	}
	switch {
	case ans.Code == nil:
		return "", fmt.Errorf("aliyun: dynamic registration of %s: answer has no code", deviceName)
	case *ans.Code != 200:
		return "", &Error{Platform: "aliyun", Op: "dynamic registration of " + deviceName, Code: strconv.Itoa(*ans.Code), Message: ans.Message}
	case ans.Data.DeviceSecret == "":
		return "", fmt.Errorf("aliyun: dynamic registration of %s: answer has no deviceSecret", deviceName)
	}
	return ans.Data.DeviceSecret, nil
}

// AliyunDynRegMQTT is the CONNECT of an MQTT-based registration (aliyun.md
// §3b, the LinkSDK's form): client id
// "<dn>.<pk>|random=<r>,authType=<register|regnwl>,securemode=2,signmethod=hmacsha256|",
// username "<dn>&<pk>", password the registration signature. noWhitelist picks
// regnwl (registration-free: the answer is a ClientID + DeviceToken) over
// register (pre-registration: the answer is the DeviceSecret).
func AliyunDynRegMQTT(productKey, productSecret, deviceName, random string, noWhitelist bool) (clientID, username, password string) {
	authType := "register"
	if noWhitelist {
		authType = "regnwl"
	}
	password, _ = AliyunRegisterSign(AliyunHMACSHA256, productKey, productSecret, deviceName, random)
	clientID = deviceName + "." + productKey + "|random=" + random + ",authType=" + authType + ",securemode=2,signmethod=" + AliyunHMACSHA256 + "|"
	return clientID, deviceName + "&" + productKey, password
}

// AliyunRegisterMQTT pre-registers over MQTT (authType=register) through the
// broker at addr ("host:port"; tlsConfig nil = plain TCP, for an emulator; the
// cloud takes TLS only) and returns the DeviceSecret pushed on /ext/register.
func AliyunRegisterMQTT(ctx context.Context, addr string, tlsConfig *tls.Config, productKey, productSecret, deviceName string) (deviceSecret string, err error) {
	cid, user, pass := AliyunDynRegMQTT(productKey, productSecret, deviceName, randomAlnum(15), false)
	var v struct {
		DeviceSecret string `json:"deviceSecret"`
	}
	if err := aliyunMQTTRegistration(ctx, addr, tlsConfig, cid, user, pass, deviceName, AliyunRegisterTopic, &v); err != nil {
		return "", err
	}
	if v.DeviceSecret == "" {
		return "", fmt.Errorf("aliyun: MQTT registration of %s: the answer has no deviceSecret", deviceName)
	}
	return v.DeviceSecret, nil
}

// AliyunRegisterFree does the registration-free flow (authType=regnwl) over
// MQTT and returns the ClientID and DeviceToken pushed on /ext/regnwl; the
// device then connects with AliyunMQTTToken. The reference documents this
// flow over MQTT only (HTTPS does pre-registration only).
func AliyunRegisterFree(ctx context.Context, addr string, tlsConfig *tls.Config, productKey, productSecret, deviceName string) (clientID, deviceToken string, err error) {
	cid, user, pass := AliyunDynRegMQTT(productKey, productSecret, deviceName, randomAlnum(15), true)
	var v struct {
		ClientID    string `json:"clientId"`
		DeviceToken string `json:"deviceToken"`
	}
	if err := aliyunMQTTRegistration(ctx, addr, tlsConfig, cid, user, pass, deviceName, AliyunRegnwlTopic, &v); err != nil {
		return "", "", err
	}
	if v.ClientID == "" || v.DeviceToken == "" {
		return "", "", fmt.Errorf("aliyun: MQTT registration of %s: the answer lacks clientId or deviceToken", deviceName)
	}
	return v.ClientID, v.DeviceToken, nil
}

func aliyunMQTTRegistration(ctx context.Context, addr string, tlsConfig *tls.Config, cid, user, pass, deviceName, topic string, v any) error {
	op := "MQTT registration of " + deviceName
	gotTopic, payload, err := mqttRegister(ctx, addr, tlsConfig, cid, user, pass)
	if err != nil {
		if ce, ok := err.(*connackError); ok {
			return &Error{Platform: "aliyun", Op: op, Code: "mqtt:" + strconv.Itoa(int(ce.code)), Message: ce.Error()}
		}
		return fmt.Errorf("aliyun: %s: %w", op, err)
	}
	if gotTopic != topic {
		return fmt.Errorf("aliyun: %s: the broker answered on %q, not %q", op, gotTopic, topic)
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("aliyun: %s: the answer is not JSON", op)
	}
	return nil
}

// AliyunMQTT is a device-secret device's MQTT CONNECT credentials (aliyun.md
// §4): client id "<pk>.<dn>|securemode=2,signmethod=hmacsha256,timestamp=<ms>|",
// username "<dn>&<pk>", password hex HMAC-SHA256(DeviceSecret,
// "clientId<pk>.<dn>deviceName<dn>productKey<pk>timestamp<ms>").
// securemode=2 is TLS: new devices may not use plain TCP (securemode=3).
func AliyunMQTT(productKey, deviceName, deviceSecret string, now time.Time) (clientID, username, password string) {
	clientID, username, password, _ = AliyunMQTTWith(productKey+"."+deviceName, productKey, deviceName, deviceSecret,
		strconv.FormatInt(now.UnixMilli(), 10), AliyunHMACSHA256, 2)
	return clientID, username, password
}

// AliyunMQTTWith is AliyunMQTT with every choice made by the caller; an empty
// timestamp leaves it out of the client id and of the signed content, which
// the doc allows.
func AliyunMQTTWith(baseClientID, productKey, deviceName, deviceSecret, timestamp, signMethod string, secureMode int) (clientID, username, password string, err error) {
	password, err = AliyunMQTTPassword(signMethod, deviceSecret, baseClientID, productKey, deviceName, timestamp)
	if err != nil {
		return "", "", "", err
	}
	clientID = baseClientID + "|securemode=" + strconv.Itoa(secureMode) + ",signmethod=" + signMethod
	if timestamp != "" {
		clientID += ",timestamp=" + timestamp
	}
	return clientID + "|", deviceName + "&" + productKey, password, nil
}

// AliyunMQTTPassword is hex HMAC(DeviceSecret, content) over the parameters
// sorted by name, each name then its value: clientId, deviceName, productKey,
// timestamp (clientId and timestamp left out when empty).
func AliyunMQTTPassword(signMethod, deviceSecret, clientID, productKey, deviceName, timestamp string) (string, error) {
	var content strings.Builder
	if clientID != "" {
		content.WriteString("clientId" + clientID)
	}
	content.WriteString("deviceName" + deviceName + "productKey" + productKey)
	if timestamp != "" {
		content.WriteString("timestamp" + timestamp)
	}
	return aliyunHMACHex(signMethod, deviceSecret, content.String())
}

// AliyunMQTTToken is the CONNECT of a device that registered without
// pre-registration (aliyun.md §3b, LinkSDK): client id
// "<ClientID>|authType=connwl,securemode=-2,_ss=1,ext=3|", username
// "<dn>&<pk>", password the DeviceToken itself.
func AliyunMQTTToken(productKey, deviceName, clientID, deviceToken string) (mqttClientID, username, password string) {
	return clientID + "|authType=connwl,securemode=-2,_ss=1,ext=3|", deviceName + "&" + productKey, deviceToken
}
