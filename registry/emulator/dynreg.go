package emulator

// Device-side dynamic registration over HTTP(S), the endpoints a device calls
// with its product-level secret (shared/reference/tencent.md §3,
// aliyun.md §3a):
//
//   - Tencent POST /device/register: JSON {"ProductId","DeviceName"}, signed in
//     X-TC-Signature = Base64(HMAC(ProductSecret, StringToSign)); the answer is
//     {"Response":{"Len","Payload","RequestId"}} with the PSK encrypted
//     AES-128-CBC (key: the ProductSecret's first 16 characters, IV: sixteen
//     ASCII '0', zero padding).
//   - Tencent POST /register/dev, the legacy form the C SDK v3 and the AT
//     firmware use: lowerCamel JSON signed with base64(hex(HMAC-SHA1)), answer
//     {"code":0,"message":"","len","payload"}.
//   - Aliyun POST /auth/register/device: a form signed with hex HMAC(ProductSecret,
//     "deviceName..productKey..random.."), pre-registration only (the reference:
//     "HTTPS supports pre-registration only"); the answer is
//     {"code":200,"data":{"productKey","deviceName","deviceSecret"},"message":"success"}.
//
// The algorithms are written here from the reference, independently of
// registry/devauth, so the tests of one against the other mean something.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	tcDynRegPath       = "/device/register"
	tcLegacyDynRegPath = "/register/dev"
	aliDynRegPath      = "/auth/register/device"

	// dynRegMaxSkew: how far a registration's timestamp may be from the
	// emulator's clock. The reference gives no figure for these endpoints;
	// the API 3.0 signature's 5 minutes is used.
	dynRegMaxSkew = 5 * time.Minute
	// dynRegMaxBody: registration requests are well under 1 KiB.
	dynRegMaxBody = 16 << 10
)

// Tencent refusal codes. AuthFailure.SignatureFailure, AuthFailure.SignatureExpire
// and ResourceNotFound.ProductNotExist are in tencent.md §1.4; the
// ResourceNotFound.DeviceNotExist, InvalidParameterValue and
// LimitExceeded.DeviceExceedLimit codes are the ones the emulator's iotcloud
// API already answers. The reference names no API 3.0 code for the four
// cases below (the /device/register answers): these strings are the
// emulator's own, in Tencent's style. [NOT FROM A SOURCE] Their legacy
// numbers below are sourced.
const (
	tcErrDynRegDisabled    = "UnauthorizedOperation.DynamicRegisterDisabled"
	tcErrAlreadyActivated  = "FailedOperation.DeviceAlreadyActivated"
	tcErrAutoCreateQuota   = "LimitExceeded.DynamicRegisterDeviceExceedLimit"
	tcErrRegisterTimes     = "LimitExceeded.DynamicRegisterTimesExceedLimit"
	tcLegacyInternalError  = 1000
	tcLegacyBadParam       = 1006
	tcLegacyBadSignature   = 1010
	tcLegacyRegisterTimes  = 1012
	tcLegacyNotPreCreated  = 1020
	tcLegacyAlreadyActive  = 1021
	tcLegacyAutoCreateFull = 1031
)

// tcLegacyCodes number the refusals for /register/dev, whose answers carry
// an integer code, as Tencent's AT command set lists them: "腾讯云 IoT AT 指令集
// WiFi 模组（ESP8266）" V3.2.1 §8.3 "设备动态注册错误码" (tencentyun/qcloud-iot-esp-wifi
// @2b68689e, qcloud-iot-at-esp8266/腾讯云IoT-AT指令集-WiFi-ESP8266-V3.2.1.pdf):
//
//	1000 ErrorCode_SDK_InternalError           内部错误
//	1004 ErrorCode_SDK_ProductNotExists        产品不存在
//	1006 ErrorCode_SDK_InvalidParam            参数错误
//	1010 ErrorCode_SDK_CheckSecretError        验签失败
//	1011 ErrorCode_SDK_NotSupportRegister      产品不支持动态注册
//	1012 ErrorCode_SDK_ExceedRegisterTimes     超过设备最大注册次数
//	1020 ErrorCode_SDK_NoSuchDevice            预创建注册模式未定义设备
//	1021 ErrorCode_SDK_DeviceHasRegisted       设备已注册
//	1031 ErrorCode_SDK_ExceedRegisterLimits    设备超过设定最大自动创建注册数量
//
// The C SDK hands the code back unchanged (qcloud-iot-sdk-embedded-c @df06a4b6
// sdk_src/services/dynreg/dynreg.c: _get_json_resault_code, _parse_devinfo
// "if (QCLOUD_RET_SUCCESS != ret) goto exit"), and the AT firmware built on it
// reports it as +TCDEVREG:FAIL,<code>. Where the list has no entry for a
// reason the emulator refuses, the nearest one is used [NOT FROM A SOURCE]:
// a stale timestamp is 1010 (the request cannot be verified), a product over
// its device quota is 1031, a name still being created by a batch task 1006.
// The message text is the emulator's own [NOT FROM A SOURCE]: the reference
// records none; it starts with the API 3.0 code so a human can tell them apart.
var tcLegacyCodes = map[string]int{
	"InvalidParameter":                         tcLegacyBadParam,
	"InvalidParameterValue":                    tcLegacyBadParam,
	"MissingParameter":                         tcLegacyBadParam,
	"InvalidParameterValue.DeviceAlreadyExist": tcLegacyBadParam,
	"AuthFailure.SignatureFailure":             tcLegacyBadSignature,
	"AuthFailure.SignatureExpire":              tcLegacyBadSignature,
	"ResourceNotFound.ProductNotExist":         1004,
	"ResourceNotFound.DeviceNotExist":          tcLegacyNotPreCreated,
	tcErrDynRegDisabled:                        1011,
	tcErrRegisterTimes:                         tcLegacyRegisterTimes,
	tcErrAlreadyActivated:                      tcLegacyAlreadyActive,
	tcErrAutoCreateQuota:                       tcLegacyAutoCreateFull,
	"LimitExceeded.DeviceExceedLimit":          tcLegacyAutoCreateFull,
	"InternalError":                            tcLegacyInternalError,
}

// Aliyun /auth/register/device refusal codes. The reference confirms only
// code 200 for success. 6289 for a device already activated is the one
// sourced number: iotkit's 一型一密 docs show the cloud's answer to a second
// registration, `_fetch_dynreg_http_resp(110): Http Response Payload:
// {"code":6289,"message":"device is already active"}` (copies in the public
// code index; no repository named). The other numbers are the emulator's
// own [NOT FROM A SOURCE]. The same reasons refuse an MQTT registration's CONNECT.
const (
	aliRegBadParam         = 460
	aliRegDeviceNotFound   = 6100
	aliRegProductNotFound  = 6250
	aliRegAlreadyActivated = 6289
	aliRegDisabled         = 6288
	aliRegFreeDisabled     = 6290
	aliRegTooManyClients   = 6291
	aliRegSignFailed       = 6292
	aliRegInternal         = 500
)

// aliRegError is a refusal of an Aliyun registration.
type aliRegError struct {
	code int
	msg  string
}

func (e *aliRegError) Error() string { return fmt.Sprintf("%d: %s", e.code, e.msg) }

func aliRegErr(code int, format string, args ...any) *aliRegError {
	return &aliRegError{code: code, msg: fmt.Sprintf(format, args...)}
}

func isDynRegRequest(r *http.Request) bool {
	switch r.URL.Path {
	case tcDynRegPath, tcLegacyDynRegPath, aliDynRegPath:
		return true
	}
	return false
}

func (e *Emulator) serveDynReg(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var platform, product, code string
	switch r.URL.Path {
	case tcDynRegPath:
		platform = "tencent"
		product, code = e.serveTencentDynReg(w, r)
	case tcLegacyDynRegPath:
		platform = "tencent"
		product, code = e.serveTencentLegacyDynReg(w, r)
	default:
		platform = "aliyun"
		product, code = e.serveAliyunDynReg(w, r)
	}
	// Never the body or a signature: the answer holds a secret.
	e.log.Info("dynreg", "platform", platform, "path", r.URL.Path, "product", clip(product), "code", code,
		"ms", time.Since(start).Milliseconds())
}

func readDynRegBody(r *http.Request) ([]byte, error) {
	if r.Method != http.MethodPost {
		return nil, fmt.Errorf("registration is a POST (got %s)", r.Method)
	}
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, dynRegMaxBody))
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %v", err)
	}
	return b, nil
}

// ---- Tencent ----

func (e *Emulator) serveTencentDynReg(w http.ResponseWriter, r *http.Request) (product, code string) {
	resp, product, aerr := e.tcDynRegCurrent(r)
	out, err := tencentEnvelope(resp, aerr, newRequestID())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return product, "InternalError"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
	if aerr != nil {
		return product, aerr.Code
	}
	return product, "OK"
}

func (e *Emulator) tcDynRegCurrent(r *http.Request) (resp any, product string, aerr *apiError) {
	body, err := readDynRegBody(r)
	if err != nil {
		return nil, "", errf("InvalidParameter", "%v.", err)
	}
	alg := r.Header.Get("X-TC-Algorithm")
	newHash := tcDynRegHash(alg)
	if newHash == nil {
		return nil, "", errf("InvalidParameterValue", "X-TC-Algorithm must be hmacsha256 or hmacsha1 (got %q).", alg)
	}
	tsStr, nonce, sig := r.Header.Get("X-TC-Timestamp"), r.Header.Get("X-TC-Nonce"), r.Header.Get("X-TC-Signature")
	for k, v := range map[string]string{"X-TC-Timestamp": tsStr, "X-TC-Nonce": nonce, "X-TC-Signature": sig} {
		if v == "" {
			return nil, "", errf("MissingParameter", "The request is missing the header %s.", k)
		}
	}
	ts, err1 := strconv.ParseInt(tsStr, 10, 64)
	_, err2 := strconv.ParseInt(nonce, 10, 64)
	if err1 != nil || err2 != nil {
		return nil, "", errf("InvalidParameterValue", "X-TC-Timestamp and X-TC-Nonce are integers.")
	}
	p, aerr := parseParams(body)
	if aerr != nil {
		return nil, "", aerr
	}
	pid, aerr := p.str("ProductId")
	if aerr != nil {
		return nil, "", aerr
	}
	name, aerr := p.str("DeviceName")
	if aerr != nil {
		return nil, pid, aerr
	}
	verify := func(secret string) bool {
		h := newHash()
		h.Write(body)
		sts := "POST\n" + r.Host + "\n" + tcDynRegPath + "\n\n" + alg + "\n" + tsStr + "\n" + nonce + "\n" + hex.EncodeToString(h.Sum(nil))
		m := hmac.New(newHash, []byte(secret))
		m.Write([]byte(sts))
		return subtleEqual(sig, base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	psk, secret, aerr := e.tcDynRegister(pid, name, ts, verify, "https "+tcDynRegPath)
	if aerr != nil {
		return nil, pid, aerr
	}
	payload, n := tcEncryptPSK(secret, psk)
	return map[string]any{"Len": n, "Payload": payload}, pid, nil
}

func tcDynRegHash(alg string) func() hash.Hash {
	switch alg {
	case "hmacsha256":
		return sha256.New
	case "hmacsha1":
		// Tencent's signing tool hashes the body with SHA-1 in this mode.
		return sha1.New
	}
	return nil
}

func (e *Emulator) serveTencentLegacyDynReg(w http.ResponseWriter, r *http.Request) (product, code string) {
	var out []byte
	psk, secret, product, aerr := e.tcDynRegLegacy(r)
	if aerr != nil {
		n, ok := tcLegacyCodes[aerr.Code]
		if !ok {
			n = tcLegacyInternalError
		}
		out, _ = json.Marshal(map[string]any{"code": n, "message": aerr.Code + ": " + aerr.Message})
		code = aerr.Code
	} else {
		payload, n := tcEncryptPSK(secret, psk)
		out, _ = json.Marshal(map[string]any{"code": 0, "message": "", "len": n, "payload": payload})
		code = "OK"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
	return product, code
}

func (e *Emulator) tcDynRegLegacy(r *http.Request) (psk, secret, product string, aerr *apiError) {
	body, err := readDynRegBody(r)
	if err != nil {
		return "", "", "", errf("InvalidParameter", "%v.", err)
	}
	// The C SDK labels this JSON body application/x-www-form-urlencoded, so
	// the Content-Type is not checked.
	var req struct {
		DeviceName *string `json:"deviceName"`
		Nonce      *int64  `json:"nonce"`
		ProductID  *string `json:"productId"`
		Timestamp  *int64  `json:"timestamp"`
		Signature  *string `json:"signature"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return "", "", "", errf("InvalidParameter", "The request body is not the registration JSON: %v.", err)
	}
	if req.DeviceName == nil || req.Nonce == nil || req.ProductID == nil || req.Timestamp == nil || req.Signature == nil {
		return "", "", "", errf("MissingParameter", "deviceName, nonce, productId, timestamp and signature are all required.")
	}
	verify := func(secret string) bool {
		m := hmac.New(sha1.New, []byte(secret))
		fmt.Fprintf(m, "deviceName=%s&nonce=%d&productId=%s&timestamp=%d", *req.DeviceName, *req.Nonce, *req.ProductID, *req.Timestamp)
		// Sic: base64 of the hex string, not of the digest (tencent.md §3.1).
		return subtleEqual(*req.Signature, base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(m.Sum(nil)))))
	}
	psk, secret, aerr = e.tcDynRegister(*req.ProductID, *req.DeviceName, *req.Timestamp, verify, "https "+tcLegacyDynRegPath)
	return psk, secret, *req.ProductID, aerr
}

// tcDynRegister is the decision both Tencent endpoints share, recorded as a
// Registration: the timestamp, the product, the signature (verify, given the
// ProductSecret), the product's switches, then the device: a pre-registered
// one that has not logged in yet gets a fresh PSK; an unknown name is created
// when the product auto-creates and has quota left.
func (e *Emulator) tcDynRegister(pid, name string, ts int64, verify func(secret string) bool, transport string) (psk, secret string, aerr *apiError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return "", "", errf("InternalError", "The emulator is shut down.")
	}
	if err := e.tcAdvance(); err != nil {
		return "", "", errf("InternalError", "Persisting state: %v.", err)
	}
	reg := Registration{Platform: "tencent", Product: pid, DeviceName: name, Transport: transport, Time: e.now()}
	refuse := func(a *apiError) (string, string, *apiError) {
		reg.Result = a.Code
		if err := e.recordRegistration(reg); err != nil {
			e.log.Warn("dynreg: recording a refusal", "err", err)
		}
		return "", "", a
	}
	if d := e.now().Sub(time.Unix(ts, 0)); d > dynRegMaxSkew || d < -dynRegMaxSkew {
		return refuse(errf("AuthFailure.SignatureExpire",
			"The timestamp %d is more than %v from the server's time %d: check the device clock.", ts, dynRegMaxSkew, e.now().Unix()))
	}
	prod := e.tc.products[pid]
	st := e.dr.products[drKey("tencent", pid)]
	if prod == nil || st == nil || st.secret == "" {
		return refuse(errf("ResourceNotFound.ProductNotExist", "The product `%s` does not exist.", pid))
	}
	if !verify(st.secret) {
		return refuse(errf("AuthFailure.SignatureFailure", "The signature does not match: check the ProductSecret."))
	}
	d := prod.devices[name]
	reg.Mode = ModePreRegistered
	if d == nil {
		reg.Mode = ModeAutoCreate
	}
	if !st.DynamicRegistration || prod.Cert {
		return refuse(errf(tcErrDynRegDisabled, "Dynamic registration is not enabled for product `%s`.", pid))
	}
	if d != nil {
		// Once the device has logged in with a key, registering it again is
		// refused; before that every registration issues a fresh key and the
		// one issued before stops working (Tencent doc 1081/138031 "密钥认证
		// 动态注册", 设备状态与重复注册: "已注册获得密钥,但从未使用该密钥接入
		// MQTT: 允许, 重新生成 DeviceSecret,旧密钥失效; 曾使用设备密钥成功接入
		// MQTT: 不允许"; AT command set V3.2.1 §2.3 note 2 "云端会重新分配 PSK
		// 或证书", note 3 "已注册已激活 ... 则会注册失败"). The doc's first
		// row, a device created and never registered, also "生成并返回": the
		// create-time key is replaced too, the harsher reading.
		if d.Activated != 0 {
			return refuse(errf(tcErrAlreadyActivated, "The device `%s` has already been activated: a second dynamic registration is refused.", name))
		}
		// How many registrations a device may make is not published; the
		// limit is the product setting's (0 = none). [NOT FROM A SOURCE]
		if max := st.MaxRegistrations; max > 0 && e.tcRegistrationsOf(pid, name, d.Created) >= max {
			return refuse(errf(tcErrRegisterTimes, "The device `%s` has registered %d times, the most allowed.", name, max))
		}
		nd := *d
		nd.PSK = newPSK()
		reg.Result = "OK"
		if err := e.recordRegistration(reg, tcRecord("device", tcDeviceRec{Product: pid, tcDevice: nd})); err != nil {
			return "", "", errf("InternalError", "Persisting the registration: %v.", err)
		}
		return nd.PSK, st.secret, nil
	}
	if aerr := tcCheckName(name); aerr != nil {
		return refuse(aerr)
	}
	if !st.AutoCreate {
		return refuse(errf("ResourceNotFound.DeviceNotExist",
			"The device `%s` does not exist in product `%s`, and the product does not auto-create devices.", name, pid))
	}
	if aerr := tcNameTaken(prod, name); aerr != nil {
		return refuse(aerr)
	}
	if st.AutoCreateQuota > 0 && st.autoCreated >= st.AutoCreateQuota {
		return refuse(errf(tcErrAutoCreateQuota,
			"Product `%s` has auto-created %d devices, its quota.", pid, st.autoCreated))
	}
	if aerr := e.tcQuota(prod, 1); aerr != nil {
		return refuse(aerr)
	}
	dev := tcDevice{Name: name, PSK: newPSK(), Created: e.now().Unix()}
	reg.Result = "OK"
	if err := e.recordRegistration(reg, tcRecord("device", tcDeviceRec{Product: pid, tcDevice: dev})); err != nil {
		return "", "", errf("InternalError", "Persisting the device: %v.", err)
	}
	return dev.PSK, st.secret, nil
}

// tcRegistrationsOf counts the successful registrations of a device since it
// was created (unix seconds). Called with e.mu held.
func (e *Emulator) tcRegistrationsOf(pid, name string, created int64) int {
	n := 0
	for _, r := range e.dr.regs {
		if r.Platform == "tencent" && r.Product == pid && r.DeviceName == name && r.Result == "OK" && r.Time.Unix() >= created {
			n++
		}
	}
	return n
}

// tcEncryptPSK is the platform's answer payload: {"encryptionType":2,"psk":..}
// zero-padded to whole AES blocks, AES-128-CBC, base64; n is the plaintext's
// length (the answer's Len).
func tcEncryptPSK(productSecret, psk string) (payload string, n int) {
	pt, _ := json.Marshal(struct {
		EncryptionType int    `json:"encryptionType"`
		PSK            string `json:"psk"`
	}{2, psk})
	n = len(pt)
	if pad := len(pt) % aes.BlockSize; pad != 0 {
		pt = append(pt, make([]byte, aes.BlockSize-pad)...)
	}
	block, err := aes.NewCipher([]byte(productSecret[:aes.BlockSize]))
	if err != nil {
		panic(err) // a 16-byte key always makes a cipher
	}
	cipher.NewCBCEncrypter(block, []byte(strings.Repeat("0", aes.BlockSize))).CryptBlocks(pt, pt)
	return base64.StdEncoding.EncodeToString(pt), n
}

// ---- Aliyun ----

func (e *Emulator) serveAliyunDynReg(w http.ResponseWriter, r *http.Request) (product, code string) {
	secret, pk, dn, rerr := e.aliDynRegHTTP(r)
	var out []byte
	if rerr != nil {
		out, _ = json.Marshal(map[string]any{"code": rerr.code, "message": rerr.msg})
		code = strconv.Itoa(rerr.code)
	} else {
		out, _ = json.Marshal(map[string]any{"code": 200, "message": "success",
			"data": map[string]string{"productKey": pk, "deviceName": dn, "deviceSecret": secret}})
		code = "OK"
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Write(out)
	return pk, code
}

func (e *Emulator) aliDynRegHTTP(r *http.Request) (secret, pk, dn string, rerr *aliRegError) {
	body, err := readDynRegBody(r)
	if err != nil {
		return "", "", "", aliRegErr(aliRegBadParam, "%v", err)
	}
	// Not url.ParseQuery into a loose map: each parameter once, as signed.
	f, err := url.ParseQuery(string(body))
	if err != nil {
		return "", "", "", aliRegErr(aliRegBadParam, "The body is not a URL-encoded form: %v.", err)
	}
	for _, k := range []string{"productKey", "deviceName", "random", "sign"} {
		if len(f[k]) != 1 || f[k][0] == "" {
			return "", f.Get("productKey"), f.Get("deviceName"), aliRegErr(aliRegBadParam, "The parameter %s is required, once.", k)
		}
	}
	pk, dn = f.Get("productKey"), f.Get("deviceName")
	method := f.Get("signMethod")
	if method == "" {
		method = "hmacsha256"
	}
	secret, rerr = e.aliDynRegister(pk, dn, f.Get("random"), method, f.Get("sign"), "https "+aliDynRegPath)
	return secret, pk, dn, rerr
}

func aliSignHash(method string) func() hash.Hash {
	switch method {
	case "hmacsha256":
		return sha256.New
	case "hmacsha1":
		return sha1.New
	case "hmacmd5":
		return md5.New
	}
	return nil
}

// aliHexHMACEqual compares a hex HMAC a client sent with the expected one,
// in either case (iotkit sends upper-case hex, the LinkSDK lower-case).
func aliHexHMACEqual(method, key, content, got string) bool {
	newHash := aliSignHash(method)
	if newHash == nil {
		return false
	}
	m := hmac.New(newHash, []byte(key))
	m.Write([]byte(content))
	return subtleEqual(strings.ToLower(got), hex.EncodeToString(m.Sum(nil)))
}

// aliDynRegister is pre-registration (HTTPS and MQTT authType=register):
// the device must exist and not be activated; it is issued a fresh
// DeviceSecret, persisted before the answer ("before activation, the last
// DeviceSecret wins", aliyun.md §3a). Recorded as a Registration.
func (e *Emulator) aliDynRegister(pk, dn, random, method, sign, transport string) (string, *aliRegError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return "", aliRegErr(aliRegInternal, "The emulator is shut down.")
	}
	if err := e.aliAdvance(); err != nil {
		return "", aliRegErr(aliRegInternal, "Persisting state: %v.", err)
	}
	reg := Registration{Platform: "aliyun", Product: pk, DeviceName: dn, Transport: transport, Time: e.now()}
	prod, rerr := e.aliDynRegCheck(pk, dn, random, method, sign)
	if rerr == nil {
		reg.Mode = ModePreRegistered
		if st := e.dr.products[drKey("aliyun", pk)]; st == nil || !st.DynamicRegistration || prod.X509 {
			rerr = aliRegErr(aliRegDisabled, "Dynamic registration is not enabled for product %s.", pk)
		}
	}
	var d *aliDevice
	if rerr == nil {
		if d = prod.devices[dn]; d == nil {
			rerr = aliRegErr(aliRegDeviceNotFound, "The device %s does not exist in product %s: pre-registration needs the name created first.", dn, pk)
		} else if d.Activated != 0 {
			rerr = aliRegErr(aliRegAlreadyActivated, "device is already active")
		}
	}
	if rerr != nil {
		reg.Result = strconv.Itoa(rerr.code)
		if err := e.recordRegistration(reg); err != nil {
			e.log.Warn("dynreg: recording a refusal", "err", err)
		}
		return "", rerr
	}
	nd := *d
	nd.Secret = newDeviceSecret()
	reg.Result = "OK"
	if err := e.recordRegistration(reg, aliRecord("device", aliDeviceRec{Product: pk, aliDevice: nd})); err != nil {
		return "", aliRegErr(aliRegInternal, "Persisting the registration: %v.", err)
	}
	return nd.Secret, nil
}

// aliDynRegCheck checks the product and the registration signature. Called
// with e.mu held.
func (e *Emulator) aliDynRegCheck(pk, dn, random, method, sign string) (*aliProduct, *aliRegError) {
	prod := e.ali.products[pk]
	if prod == nil {
		return nil, aliRegErr(aliRegProductNotFound, "The product %s does not exist.", pk)
	}
	if aliSignHash(method) == nil {
		return nil, aliRegErr(aliRegBadParam, "signMethod must be hmacsha256, hmacsha1 or hmacmd5 (got %q).", method)
	}
	if random == "" {
		return nil, aliRegErr(aliRegBadParam, "random is required.")
	}
	if !aliHexHMACEqual(method, prod.Secret, "deviceName"+dn+"productKey"+pk+"random"+random, sign) {
		return nil, aliRegErr(aliRegSignFailed, "The sign does not match: check the ProductSecret.")
	}
	return prod, nil
}

// aliRegisterFree is the registration-free flow (MQTT authType=regnwl): the
// product must allow it; the device is created if the name is new; a new
// ClientID + DeviceToken is issued, at most maxTokensPerDevice per device.
func (e *Emulator) aliRegisterFree(pk, dn, random, method, sign, transport string) (clientID, token string, rerr *aliRegError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return "", "", aliRegErr(aliRegInternal, "The emulator is shut down.")
	}
	if err := e.aliAdvance(); err != nil {
		return "", "", aliRegErr(aliRegInternal, "Persisting state: %v.", err)
	}
	reg := Registration{Platform: "aliyun", Product: pk, DeviceName: dn, Transport: transport, Time: e.now()}
	prod, rerr := e.aliDynRegCheck(pk, dn, random, method, sign)
	if rerr == nil {
		reg.Mode = ModeRegistrationFree
		if st := e.dr.products[drKey("aliyun", pk)]; st == nil || !st.DynamicRegistration || !st.RegistrationFree || prod.X509 {
			rerr = aliRegErr(aliRegFreeDisabled, "Registration-free dynamic registration is not enabled for product %s.", pk)
		}
	}
	var recs []record
	if rerr == nil {
		if prod.devices[dn] == nil {
			if aerr := aliCheckName(dn); aerr != nil {
				rerr = aliRegErr(aliRegBadParam, "%s", aerr.Message)
			} else if why := prod.taken(dn, 0); why != "" {
				rerr = aliRegErr(aliRegBadParam, "%s", why)
			} else if aerr := e.aliQuota(prod, 1); aerr != nil {
				rerr = aliRegErr(aliRegBadParam, "%s", aerr.Message)
			} else {
				recs = append(recs, aliRecord("device", aliDeviceRec{Product: pk, aliDevice: aliDevice{
					Name: dn, Secret: newDeviceSecret(), IotID: newIotID(), Created: e.now().UnixMilli()}}))
			}
		} else if n := len(e.dr.tokens[drKey(pk, dn)]); n >= maxTokensPerDevice {
			rerr = aliRegErr(aliRegTooManyClients, "The device %s already has %d registration-free clients, the most allowed.", dn, n)
		}
	}
	if rerr != nil {
		reg.Result = strconv.Itoa(rerr.code)
		if err := e.recordRegistration(reg); err != nil {
			e.log.Warn("dynreg: recording a refusal", "err", err)
		}
		return "", "", rerr
	}
	t := aliToken{ClientID: pk + "." + dn + "." + randomAlnum(8), Token: randomAlnum(32), Created: e.now().UnixMilli()}
	recs = append(recs, drRecord("token", drTokenRec{Product: pk, DeviceName: dn, aliToken: t}))
	reg.Result = "OK"
	if err := e.recordRegistration(reg, recs...); err != nil {
		return "", "", aliRegErr(aliRegInternal, "Persisting the registration: %v.", err)
	}
	return t.ClientID, t.Token, nil
}
