package devauth

// Tencent Cloud IoT Hub, device side (shared/reference/tencent.md §3, §4).

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// TencentDynRegHost is the cloud's dynamic-registration gateway. The host
	// is part of the string to sign, so a request signed for it only verifies
	// there (the doc's hmacsha1 vector reproduces with exactly this host).
	TencentDynRegHost = "ap-guangzhou.gateway.tencentdevices.com"
	// TencentDynRegPath is the current registration endpoint; TencentLegacyDynRegPath
	// the one the C SDKs up to 2021 call.
	TencentDynRegPath       = "/device/register"
	TencentLegacyDynRegPath = "/register/dev"
	// TencentSDKAppID is the sdkappid the C SDKs put in the MQTT username
	// (QCLOUD_IOT_DEVICE_SDK_APPID; the doc text shows 12010126, both work).
	TencentSDKAppID = "21010406"

	// Signature algorithms of /device/register (X-TC-Algorithm) and of the MQTT
	// password suffix.
	TencentHMACSHA256 = "hmacsha256"
	TencentHMACSHA1   = "hmacsha1"
)

// TencentDynRegRequest builds a /device/register request for the cloud's
// gateway (TencentDynRegHost) signed with HMAC-SHA256: the JSON body and the
// X-TC-* headers (Content-Type included). nonce is any random int.
func TencentDynRegRequest(productID, productSecret, deviceName string, now time.Time, nonce int) (body []byte, headers http.Header) {
	body, headers, _ = TencentDynRegRequestFor(TencentDynRegHost, TencentHMACSHA256, productID, productSecret, deviceName, now, nonce)
	return body, headers
}

// TencentDynRegRequestFor is TencentDynRegRequest for another host (an
// emulator's "127.0.0.1:8443", port included as the Host header carries it) and
// either algorithm. In hmacsha1 mode the body hash is SHA-1 too, as Tencent's
// own signing tool does it.
func TencentDynRegRequestFor(host, algorithm, productID, productSecret, deviceName string, now time.Time, nonce int) (body []byte, headers http.Header, err error) {
	if _, err := tencentHash(algorithm); err != nil {
		return nil, nil, err
	}
	// Field order as the doc and the Python SDK send it; the signature covers
	// these exact bytes, so they are built by hand, not by a map's marshalling.
	pid, _ := json.Marshal(productID)
	dn, _ := json.Marshal(deviceName)
	body = []byte(`{"ProductId":` + string(pid) + `,"DeviceName":` + string(dn) + `}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := TencentDynRegSignature(productSecret, algorithm, host, ts, strconv.Itoa(nonce), body)
	headers = http.Header{}
	headers.Set("Content-Type", "application/json; charset=utf-8")
	headers.Set("X-TC-Algorithm", algorithm)
	headers.Set("X-TC-Timestamp", ts)
	headers.Set("X-TC-Nonce", strconv.Itoa(nonce))
	headers.Set("X-TC-Signature", sig)
	return body, headers, nil
}

// TencentDynRegSignature is Base64(HMAC(ProductSecret, StringToSign)) with
// StringToSign = POST\n<host>\n/device/register\n\n<algorithm>\n<ts>\n<nonce>\n<hex hash(body)>
// (tencent.md §3.2). An unknown algorithm gives "".
func TencentDynRegSignature(productSecret, algorithm, host, timestamp, nonce string, body []byte) string {
	newHash, err := tencentHash(algorithm)
	if err != nil {
		return ""
	}
	h := newHash()
	h.Write(body)
	sts := "POST\n" + host + "\n" + TencentDynRegPath + "\n\n" + algorithm + "\n" + timestamp + "\n" + nonce + "\n" + hex.EncodeToString(h.Sum(nil))
	m := hmac.New(newHash, []byte(productSecret))
	m.Write([]byte(sts))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func tencentHash(algorithm string) (func() hash.Hash, error) {
	switch algorithm {
	case TencentHMACSHA256:
		return sha256.New, nil
	case TencentHMACSHA1:
		return sha1.New, nil
	}
	return nil, fmt.Errorf("tencent: unknown signature algorithm %q (want %s or %s)", algorithm, TencentHMACSHA256, TencentHMACSHA1)
}

// TencentLegacyDynRegRequest builds the body of a legacy /register/dev request,
// byte for byte as the C SDK formats it:
// {"deviceName":..,"nonce":..,"productId":..,"timestamp":..,"signature":..}.
func TencentLegacyDynRegRequest(productID, productSecret, deviceName string, now time.Time, nonce int) []byte {
	ts := now.Unix()
	sig := TencentLegacySignature(productSecret, productID, deviceName, ts, nonce)
	dn, _ := json.Marshal(deviceName)
	pid, _ := json.Marshal(productID)
	return fmt.Appendf(nil, `{"deviceName":%s,"nonce":%d,"productId":%s,"timestamp":%d,"signature":"%s"}`, dn, nonce, pid, ts, sig)
}

// TencentLegacySignature is the legacy scheme: base64 of the lower-case hex
// HMAC-SHA1(ProductSecret, "deviceName=..&nonce=..&productId=..&timestamp=..")
// (the hex string is encoded, not the digest: tencent.md §3.1).
func TencentLegacySignature(productSecret, productID, deviceName string, timestamp int64, nonce int) string {
	m := hmac.New(sha1.New, []byte(productSecret))
	fmt.Fprintf(m, "deviceName=%s&nonce=%d&productId=%s&timestamp=%d", deviceName, nonce, productID, timestamp)
	return base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(m.Sum(nil))))
}

// TencentDecrypt decrypts a registration payload: base64, then AES-128-CBC
// with the first 16 characters of the ProductSecret as key and sixteen ASCII
// '0' as IV, zero padding. length is the answer's Len (the plaintext length);
// 0 strips trailing NULs instead.
func TencentDecrypt(productSecret, payloadB64 string, length int) ([]byte, error) {
	if len(productSecret) < aes.BlockSize {
		// The C SDK refuses these too: the key is the secret's first 16 bytes.
		return nil, errors.New("tencent: a ProductSecret has at least 16 characters")
	}
	ct, err := base64.StdEncoding.DecodeString(payloadB64)
	if err != nil {
		return nil, fmt.Errorf("tencent: registration payload is not base64: %w", err)
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("tencent: registration payload is %d bytes, not a whole number of AES blocks", len(ct))
	}
	block, _ := aes.NewCipher([]byte(productSecret[:aes.BlockSize]))
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, []byte(strings.Repeat("0", aes.BlockSize))).CryptBlocks(pt, ct)
	switch {
	case length > 0 && length <= len(pt):
		pt = pt[:length]
	case length == 0:
		pt = bytes.TrimRight(pt, "\x00")
	default:
		return nil, fmt.Errorf("tencent: registration answer's Len %d does not fit its %d-byte payload", length, len(pt))
	}
	return pt, nil
}

// TencentDecryptPayload decrypts a registration payload and returns the PSK
// (base64, as burned into a device). A wrong ProductSecret shows up here as
// garbage that is not JSON; certificate products (encryptionType 1) are refused.
func TencentDecryptPayload(productSecret, payloadB64 string, length int) (psk string, err error) {
	pt, err := TencentDecrypt(productSecret, payloadB64, length)
	if err != nil {
		return "", err
	}
	var v struct {
		EncryptionType int    `json:"encryptionType"`
		PSK            string `json:"psk"`
	}
	if err := json.Unmarshal(pt, &v); err != nil {
		// Never show the plaintext: it may be a PSK decrypted with the right key
		// and a wrong Len.
		return "", errors.New("tencent: registration payload does not decrypt to JSON (wrong ProductSecret?)")
	}
	switch {
	case v.EncryptionType == 1:
		return "", errors.New("tencent: the product uses certificates (encryptionType 1); only key (PSK) products are supported")
	case v.EncryptionType != 2 || v.PSK == "":
		return "", fmt.Errorf("tencent: registration payload has encryptionType %d and no psk", v.EncryptionType)
	}
	if _, err := base64.StdEncoding.DecodeString(v.PSK); err != nil {
		return "", errors.New("tencent: the psk in the registration payload is not base64")
	}
	return v.PSK, nil
}

// TencentRegister registers deviceName through POST <baseURL>/device/register
// (baseURL such as "https://ap-guangzhou.gateway.tencentdevices.com" or an
// emulator's "http://127.0.0.1:8443") and returns the device's PSK.
func TencentRegister(ctx context.Context, baseURL, productID, productSecret, deviceName string) (psk string, err error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/") + TencentDynRegPath)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("tencent: bad registration URL %q", baseURL)
	}
	body, hdr, err := TencentDynRegRequestFor(u.Host, TencentHMACSHA256, productID, productSecret, deviceName, time.Now(), randomNonce())
	if err != nil {
		return "", err
	}
	raw, err := post(ctx, u.String(), body, hdr)
	if err != nil {
		return "", fmt.Errorf("tencent: dynamic registration of %s: %w", deviceName, err)
	}
	var ans struct {
		Response struct {
			Len     int
			Payload string
			Error   *struct{ Code, Message string }
		}
	}
	if err := decodeJSON(raw, &ans); err != nil {
		return "", fmt.Errorf("tencent: dynamic registration of %s: %w", deviceName, err)
	}
	if e := ans.Response.Error; e != nil {
		return "", &Error{Platform: "tencent", Op: "dynamic registration of " + deviceName, Code: e.Code, Message: e.Message}
	}
	return TencentDecryptPayload(productSecret, ans.Response.Payload, ans.Response.Len)
}

// TencentLegacyRegister is TencentRegister through the legacy POST
// <baseURL>/register/dev, as the C SDK v3 and the AT firmware call it.
func TencentLegacyRegister(ctx context.Context, baseURL, productID, productSecret, deviceName string) (psk string, err error) {
	body := TencentLegacyDynRegRequest(productID, productSecret, deviceName, time.Now(), randomNonce())
	hdr := http.Header{}
	// Sic: the C SDK labels its JSON body as a form.
	hdr.Set("Content-Type", "application/x-www-form-urlencoded")
	hdr.Set("Accept", "text/xml,application/json;*/*")
	raw, err := post(ctx, strings.TrimSuffix(baseURL, "/")+TencentLegacyDynRegPath, body, hdr)
	if err != nil {
		return "", fmt.Errorf("tencent: dynamic registration of %s: %w", deviceName, err)
	}
	var ans struct {
		Code    *int   `json:"code"`
		Message string `json:"message"`
		Len     int    `json:"len"`
		Payload string `json:"payload"`
	}
	if err := decodeJSON(raw, &ans); err != nil {
		return "", fmt.Errorf("tencent: dynamic registration of %s: %w", deviceName, err)
	}
	if ans.Code == nil {
		return "", fmt.Errorf("tencent: dynamic registration of %s: answer has no code: %q", deviceName, snippet(raw))
	}
	if *ans.Code != 0 {
		return "", &Error{Platform: "tencent", Op: "dynamic registration of " + deviceName, Code: strconv.Itoa(*ans.Code), Message: ans.Message}
	}
	return TencentDecryptPayload(productSecret, ans.Payload, ans.Len)
}

// randomNonce is a positive 31-bit random nonce (the C SDK's is an int).
func randomNonce() int {
	var n int
	for _, c := range randomAlnum(6) {
		n = n*62 + int(c)
	}
	return n&0x7fffffff | 1
}

func post(ctx context.Context, u string, body []byte, hdr http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := readAnswer(resp)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 && !json.Valid(raw) {
		return nil, fmt.Errorf("HTTP %d: %q", resp.StatusCode, snippet(raw))
	}
	return raw, nil
}

// TencentMQTT is a PSK device's MQTT CONNECT credentials for a direct
// connection on port 1883 (tencent.md §4): client id ${productId}${deviceName},
// username ${clientId};21010406;${connid};${expiry} with a random 5-character
// connid and an expiry one hour from now, password
// hex(HMAC-SHA1(base64decode(psk), username)) + ";hmacsha1", as the C SDK does.
func TencentMQTT(productID, deviceName, psk string, now time.Time) (clientID, username, password string, err error) {
	return TencentMQTTWith(productID, deviceName, psk, randomAlnum(5), now.Add(time.Hour).Unix(), TencentHMACSHA1)
}

// TencentMQTTWith is TencentMQTT with the connid, expiry (unix seconds) and
// algorithm (hmacsha1 or hmacsha256) chosen by the caller.
func TencentMQTTWith(productID, deviceName, psk, connID string, expiry int64, algorithm string) (clientID, username, password string, err error) {
	newHash, err := tencentHash(algorithm)
	if err != nil {
		return "", "", "", err
	}
	key, err := base64.StdEncoding.DecodeString(psk)
	if err != nil || len(key) == 0 {
		return "", "", "", errors.New("tencent: the device PSK is not base64")
	}
	clientID = productID + deviceName
	username = clientID + ";" + TencentSDKAppID + ";" + connID + ";" + strconv.FormatInt(expiry, 10)
	m := hmac.New(newHash, key)
	m.Write([]byte(username))
	return clientID, username, hex.EncodeToString(m.Sum(nil)) + ";" + algorithm, nil
}
