package emulator

// An independent client of the legacy POST /register/dev, written from the C
// SDK's algorithm (tencentyun/qcloud-iot-sdk-embedded-c @df06a4b6,
// sdk_src/services/dynreg/dynreg.c: _cal_dynreg_sign, IOT_DynReg_Device,
// _parse_devinfo) and checked against the worked example in the SDK's own
// docs (docs/IoT_Hub/dynreg_dev_sample_动态注册.md, lines 57-67), not against
// registry/devauth or the emulator. The refusal codes expected below are the
// ones Tencent's AT command set lists (V3.2.1 §8.3 "设备动态注册错误码",
// tencentyun/qcloud-iot-esp-wifi @2b68689e), typed here from the PDF.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// legacySign is dynreg.c's _cal_dynreg_sign: the source string
// "deviceName=%s&nonce=%d&productId=%s&timestamp=%d", utils_hmac_sha1 with the
// ProductSecret as key (which writes the digest as lower-case hex), then
// base64 of that 40-character hex string.
func legacySign(productSecret, pid, name string, nonce int, ts int64) string {
	m := hmac.New(sha1.New, []byte(productSecret))
	fmt.Fprintf(m, "deviceName=%s&nonce=%d&productId=%s&timestamp=%d", name, nonce, pid, ts)
	return base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(m.Sum(nil))))
}

// legacyBody is IOT_DynReg_Device's para_format, byte for byte.
func legacyBody(pid, name string, nonce int, ts int64, sig string) []byte {
	return fmt.Appendf(nil, `{"deviceName":"%s","nonce":%d,"productId":"%s","timestamp":%d,"signature":"%s"}`, name, nonce, pid, ts, sig)
}

type legacyAnswer struct {
	Code    *int   `json:"code"`
	Message string `json:"message"`
	Len     int    `json:"len"`
	Payload string `json:"payload"`
}

// legacyPost sends body as _post_reg_request_by_http does (a JSON body
// labelled application/x-www-form-urlencoded, Accept text/xml,application/json;*/*).
func legacyPost(t *testing.T, base string, body []byte) legacyAnswer {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/register/dev", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/xml,application/json;*/*")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a legacyAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || a.Code == nil {
		t.Fatalf("answer is not {\"code\":..}: %v", err)
	}
	return a
}

// legacyDecrypt is _parse_devinfo: base64, AES-128-CBC with the
// ProductSecret's first 16 bytes as key and sixteen ASCII '0' as IV, the
// plaintext's first len bytes, then "psk" of {"encryptionType":2,"psk":..}.
func legacyDecrypt(t *testing.T, productSecret string, a legacyAnswer) string {
	t.Helper()
	ct, err := base64.StdEncoding.DecodeString(a.Payload)
	if err != nil || len(ct) == 0 || len(ct)%16 != 0 || a.Len > len(ct) {
		t.Fatalf("payload %d bytes, len %d: %v", len(ct), a.Len, err)
	}
	block, _ := aes.NewCipher([]byte(productSecret[:16]))
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, []byte("0000000000000000")).CryptBlocks(pt, ct)
	var v struct {
		EncryptionType int    `json:"encryptionType"`
		PSK            string `json:"psk"`
	}
	if err := json.Unmarshal(pt[:a.Len], &v); err != nil || v.EncryptionType != 2 || v.PSK == "" {
		t.Fatalf("plaintext is not a PSK answer: %v", err)
	}
	return v.PSK
}

// legacyRegister is one registration now, with a fresh nonce.
func legacyRegister(t *testing.T, base, pid, secret, name string, nonce int) legacyAnswer {
	t.Helper()
	ts := time.Now().Unix()
	return legacyPost(t, base, legacyBody(pid, name, nonce, ts, legacySign(secret, pid, name, nonce, ts)))
}

// tcMQTTPassword is the key-auth login of tencent.md §4, written out here:
// username ${productId}${deviceName};21010406;${connid};${expiry}, password
// hex(HMAC-SHA1(base64decode(psk), username));hmacsha1.
func tcMQTTPassword(t *testing.T, pid, name, psk string) (cid, user, pass string) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(psk)
	if err != nil {
		t.Fatal(err)
	}
	cid = pid + name
	user = fmt.Sprintf("%s;21010406;aB3dE;%d", cid, time.Now().Add(time.Hour).Unix())
	m := hmac.New(sha1.New, key)
	m.Write([]byte(user))
	return cid, user, hex.EncodeToString(m.Sum(nil)) + ";hmacsha1"
}

// The client reproduces the SDK doc's worked example: its signature and
// request body byte for byte, and the decrypted PSK of the doc's answer.
func TestLegacyClientMatchesTheSDKDocExample(t *testing.T) {
	const (
		pid, name, secret = "S3EUVBRJLB", "device_1234", "8XzjN8rfgFVGDTNTUGau4snA"
		nonce             = 1439928322
		ts                = 1568692235
		wantSig           = "ZWM4YTEyMWE2ODUxYzk1M2Q0MDc2OWNmN2FhMTg1ZWM1ODgxMWNkNQ=="
	)
	sig := legacySign(secret, pid, name, nonce, ts)
	if sig != wantSig {
		t.Fatalf("signature %s, the doc's %s", sig, wantSig)
	}
	body := string(legacyBody(pid, name, nonce, ts, sig))
	if want := `{"deviceName":"device_1234","nonce":1439928322,"productId":"S3EUVBRJLB","timestamp":1568692235,"signature":"` + wantSig + `"}`; body != want {
		t.Fatalf("body %s\nthe doc's %s", body, want)
	}
	zero := 0
	psk := legacyDecrypt(t, secret, legacyAnswer{Code: &zero, Len: 53,
		Payload: "eHGRUBar9LBPI+mcaHnVEZsj05mSdoZLPhd54hDJXv/2va2rXSpfddgRy5XE/FIS835NjUr5Mhw1AJSg4yGC/w=="})
	// The doc's log prints the PSK redacted (7WmFArtyFGH5632QwJWtYwio); the
	// payload decrypts to this one (tencent.md §3.1, verified there).
	if psk != "7WmFA/MEs+Fy+32QwJWtYw==" {
		t.Fatalf("decrypted %q", psk)
	}
}

// The emulator's /register/dev refuses with the documented codes, and a
// second registration of a pre-created, never-connected device gets a fresh
// key that logs in while the first one is refused by the broker; once it
// has logged in, registering again is refused.
func TestLegacyRegisterDevCodes(t *testing.T) {
	e, srv, addr := drStart(t, Config{DynRegProducts: map[string]ProductSettings{
		"tencent:" + testProduct: {DynamicRegistration: true, MaxRegistrations: 3}}})
	secret := mustSecret(t, e, "tencent", testProduct)
	tcCreate(t, srv, "dev-a", "dev-b", "dev-c")

	// Two registrations of dev-a: both answered, two different keys.
	first := legacyDecrypt(t, secret, legacyRegister(t, srv.URL, testProduct, secret, "dev-a", 11))
	a := legacyRegister(t, srv.URL, testProduct, secret, "dev-a", 12)
	if *a.Code != 0 {
		t.Fatalf("second registration: code %d %s", *a.Code, a.Message)
	}
	second := legacyDecrypt(t, secret, a)
	if first == second {
		t.Fatal("the second registration answered the same key")
	}
	cid, user, pass := tcMQTTPassword(t, testProduct, "dev-a", first)
	if code := mqttConnect(t, addr, cid, user, pass); code != 4 {
		t.Fatalf("the first key: CONNACK %d, want 4 (bad user name or password)", code)
	}
	cid, user, pass = tcMQTTPassword(t, testProduct, "dev-a", second)
	if code := mqttConnect(t, addr, cid, user, pass); code != 0 {
		t.Fatalf("the second key: CONNACK %d, want 0", code)
	}

	ts := time.Now().Unix()
	good := legacySign(secret, testProduct, "dev-b", 7, ts)
	cases := []struct {
		name string
		body []byte
		code int
	}{
		{"bad signature", legacyBody(testProduct, "dev-b", 7, ts, legacySign("WRONGwrongWRONGwrong1234", testProduct, "dev-b", 7, ts)), 1010},
		{"signature of other fields", legacyBody(testProduct, "dev-b", 8, ts, good), 1010},
		{"name not pre-created", legacyBody(testProduct, "nobody", 7, ts, legacySign(secret, testProduct, "nobody", 7, ts)), 1020},
		{"missing signature", []byte(fmt.Sprintf(`{"deviceName":"dev-b","nonce":7,"productId":"%s","timestamp":%d}`, testProduct, ts)), 1006},
		{"missing deviceName", []byte(fmt.Sprintf(`{"nonce":7,"productId":"%s","timestamp":%d,"signature":"%s"}`, testProduct, ts, good)), 1006},
		{"not JSON", []byte("deviceName=dev-b"), 1006},
		{"product missing", legacyBody("NOPRODUCT1", "dev-b", 7, ts, legacySign(secret, "NOPRODUCT1", "dev-b", 7, ts)), 1004},
		{"connected already", legacyBody(testProduct, "dev-a", 9, ts, legacySign(secret, testProduct, "dev-a", 9, ts)), 1021},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := legacyPost(t, srv.URL, c.body)
			if *a.Code != c.code || a.Payload != "" {
				t.Fatalf("code %d (%s), want %d and no payload", *a.Code, a.Message, c.code)
			}
			if strings.Contains(a.Message, secret) {
				t.Fatal("the message holds the ProductSecret")
			}
		})
	}

	// Too many registrations of one device (the limit set to 3 here; the
	// cloud's is not published): 1012.
	for i := 0; i < 3; i++ {
		if a := legacyRegister(t, srv.URL, testProduct, secret, "dev-c", 20+i); *a.Code != 0 {
			t.Fatalf("registration %d: code %d", i+1, *a.Code)
		}
	}
	if a := legacyRegister(t, srv.URL, testProduct, secret, "dev-c", 30); *a.Code != 1012 {
		t.Fatalf("fourth registration: code %d, want 1012", *a.Code)
	}

	// Dynamic registration switched off for the product: 1011.
	if err := e.SetProductSettings("tencent", testProduct, ProductSettings{}); err != nil {
		t.Fatal(err)
	}
	if a := legacyRegister(t, srv.URL, testProduct, secret, "dev-b", 40); *a.Code != 1011 {
		t.Fatalf("switched off: code %d, want 1011", *a.Code)
	}

	// Auto-create with its quota spent: 1031.
	if err := e.SetProductSettings("tencent", testProduct, ProductSettings{DynamicRegistration: true, AutoCreate: true, AutoCreateQuota: 1}); err != nil {
		t.Fatal(err)
	}
	if a := legacyRegister(t, srv.URL, testProduct, secret, "auto-1", 50); *a.Code != 0 {
		t.Fatalf("auto-create: code %d", *a.Code)
	}
	if a := legacyRegister(t, srv.URL, testProduct, secret, "auto-2", 51); *a.Code != 1031 {
		t.Fatalf("over the auto-create quota: code %d, want 1031", *a.Code)
	}
}
