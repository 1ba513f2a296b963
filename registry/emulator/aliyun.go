package emulator

// Alibaba Cloud RPC front door for IoT Platform (product Iot, version
// 2018-01-20): parameters from the query and the form body, signature version
// 1.0 (HMAC-SHA1), the timestamp window, nonce reuse, version, action, rate
// limit and faults, then the action itself (aliyun_actions.go).
//
// Two kinds of answer, as the cloud gives them (shared/reference/aliyun.md §1):
//   - gateway errors (signature, keys, throttling, unknown action) carry an
//     HTTP 4xx/5xx status and {"RequestId","HostId","Code","Message","Recommend"};
//   - IoT business answers are HTTP 200 with {"RequestId","Success",...}, and a
//     refusal is Success:false with "Code" and "ErrorMessage" (not "Message").
//     Public client code that calls the real cloud checks exactly this: HTTP 200,
//     then Code == "iot.device.AlreadyExistedDeviceName".

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

const (
	aliyunVersion    = "2018-01-20"
	aliyunTimeLayout = "2006-01-02T15:04:05Z" // ISO 8601 UTC, as the SDK sends it
	// aliyunMaxSkew: the RPC docs give the timestamp a validity of 31 minutes;
	// read as 15 minutes either side of the server's clock (plus the current
	// minute), the same 15 minutes the V3 signature doc states. Requests
	// older or further in the future than that are InvalidTimeStamp.Expired.
	aliyunMaxSkew = 15 * time.Minute
	aliyunHostID  = "iot.emulator.iotburn"
)

// aliyunQPS are the per-account QPS limits documented for each action
// (shared/reference/aliyun.md §2 "Limits": BatchCheckDeviceNames 10,
// QueryBatchRegisterDeviceStatus 30, QueryPageByApplyId 50; BatchRegisterDevice
// 10 from the SDK's comment). The others are not in the reference; 50 is the
// figure the iot-20180120 comments give most read actions, and 10 for the
// other batch write.
var aliyunQPS = map[string]int{
	"BatchCheckDeviceNames":          10,
	"BatchRegisterDeviceWithApplyId": 10,
	"BatchRegisterDevice":            10,
	"QueryBatchRegisterDeviceStatus": 30,
	"QueryPageByApplyId":             50,
	"RegisterDevice":                 50,
	"QueryDeviceDetail":              50,
	"QueryDevice":                    50,
	"DeleteDevice":                   50,
	"QueryProduct":                   50,
	// "单个阿里云账号调用该接口的每秒请求数(QPS)最大限制为10" (docs api-omdh29, 140723).
	"QueryDeviceCert":       10,
	"QueryCertUrlByApplyId": 10,
	// "每个阿里云账号最多可发起500次/秒的查询" (GetThingTopo, doc 69770).
	"GetThingTopo": 500,
}

// AliyunQPS returns the documented per-account QPS limit of an Iot action
// (0 if the emulator does not serve it), so a client can pace itself.
func AliyunQPS(action string) int { return aliyunQPS[action] }

// gatewayError is an error the API gateway answers with an HTTP status.
type gatewayError struct {
	status int
	apiError
}

func gwErr(status int, code, format string, args ...any) *gatewayError {
	return &gatewayError{status: status, apiError: apiError{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// aliyunFront is the Aliyun front door's own state, outside e.mu: the
// per-action rate limiters and the nonces seen.
type aliyunFront struct {
	limiters map[string]*rateLimiter // one per action: each has its own QPS
	gwLogin  *rateLimiter            // combine/login, one bucket per gateway (aliyun_gateway.go)

	mu     sync.Mutex
	nonces map[string]time.Time // AccessKeyId + "\x00" + nonce → when it may be forgotten
	sweep  time.Time
}

// newAliyunFront builds the limiters. rate is Config.RateLimit as given:
// 0 = each action's documented QPS, < 0 = unlimited, > 0 = that for every action.
func newAliyunFront(rate int, now func() time.Time) *aliyunFront {
	f := &aliyunFront{limiters: map[string]*rateLimiter{}, nonces: map[string]time.Time{}, gwLogin: newRateLimiter(aliGwLoginQPS, now)}
	for action, qps := range aliyunQPS {
		r := qps
		if rate != 0 {
			r = rate
		}
		f.limiters[action] = newRateLimiter(r, now)
	}
	return f
}

// useNonce records a nonce and reports whether it was new. A nonce is kept as
// long as a request carrying it could still pass the timestamp check, which is
// what makes a replay detectable; older ones are swept.
func (f *aliyunFront) useNonce(keyID, nonce string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Sub(f.sweep) > time.Minute {
		for k, until := range f.nonces {
			if now.After(until) {
				delete(f.nonces, k)
			}
		}
		f.sweep = now
	}
	k := keyID + "\x00" + nonce
	if until, ok := f.nonces[k]; ok && !now.After(until) {
		return false
	}
	f.nonces[k] = now.Add(2*aliyunMaxSkew + time.Minute)
	return true
}

// NewAliyunKeyPair makes up an AccessKey pair shaped like Alibaba Cloud's (an
// "LTAI" id of 24 characters and a 30-character secret), for an emulator
// started without keys in the environment.
func NewAliyunKeyPair() (accessKeyID, accessKeySecret string) {
	return "LTAI" + randomAlnum(20), randomAlnum(30)
}

// isAliyunRequest recognises an RPC request: Action and SignatureMethod
// parameters, in the query or a form body. A form body is read to look and
// put back for serveAliyun.
func isAliyunRequest(r *http.Request) bool {
	qa, qs := hasParam(r.URL.RawQuery, "Action"), hasParam(r.URL.RawQuery, "SignatureMethod")
	if qa && qs {
		return true
	}
	if !isForm(r) || r.Body == nil {
		return false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
	if err != nil {
		return false
	}
	return (qa || hasParam(string(body), "Action")) && (qs || hasParam(string(body), "SignatureMethod"))
}

// hasParam reports whether a URL-encoded list has a parameter named key.
func hasParam(raw, key string) bool {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, _, _ := strings.Cut(pair, "=")
		if k == key {
			return true
		}
		if u, err := url.QueryUnescape(k); err == nil && u == key {
			return true
		}
	}
	return false
}

func isForm(r *http.Request) bool {
	return strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/x-www-form-urlencoded")
}

// rpcParams are a request's parameters, query and form merged, decoded.
type rpcParams map[string]string

// parseRPC reads the query and (for a form POST) the body. A name given twice,
// in one place or both, is refused: the signature covers one value per name,
// and the emulator will not guess which one a client meant.
func parseRPC(r *http.Request) (rpcParams, *gatewayError) {
	p := rpcParams{}
	// Not url.ParseQuery: it stops at 10,000 parameters (GODEBUG
	// urlmaxqueryparams), and one application alone sends 10,000 names.
	add := func(where, raw string) *gatewayError {
		for raw != "" {
			var pair string
			pair, raw, _ = strings.Cut(raw, "&")
			if pair == "" {
				continue
			}
			rk, rv, _ := strings.Cut(pair, "=")
			k, err1 := url.QueryUnescape(rk)
			v, err2 := url.QueryUnescape(rv)
			if err := errors.Join(err1, err2); err != nil {
				return gwErr(http.StatusBadRequest, "InvalidParameter", "The %s is not valid URL encoding: %v.", where, err)
			}
			if _, dup := p[k]; dup {
				return gwErr(http.StatusBadRequest, "InvalidParameter", "The parameter %q is given more than once.", k)
			}
			p[k] = v
		}
		return nil
	}
	if gerr := add("query string", r.URL.RawQuery); gerr != nil {
		return nil, gerr
	}
	if r.Method == http.MethodPost && isForm(r) && r.Body != nil {
		body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, gwErr(http.StatusRequestEntityTooLarge, "InvalidParameter", "The request body exceeds %d bytes.", maxBody)
			}
			return nil, gwErr(http.StatusBadRequest, "InvalidParameter", "Reading the request body: %v.", err)
		}
		if gerr := add("form body", string(body)); gerr != nil {
			return nil, gerr
		}
	}
	return p, nil
}

// aliyunPercentEncode is RFC 3986 percent-encoding over UTF-8 bytes: only
// A-Z a-z 0-9 - _ . ~ stay; a space is %20, '*' is %2A, hex is upper case.
func aliyunPercentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + len(s)/2)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// aliyunStringToSign is METHOD&%2F&enc(k1=v1&k2=v2...) over every parameter
// but Signature, sorted by name in byte order, names and values encoded.
func aliyunStringToSign(method string, p map[string]string) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var canon strings.Builder
	for i, k := range keys {
		if i > 0 {
			canon.WriteByte('&')
		}
		canon.WriteString(aliyunPercentEncode(k))
		canon.WriteByte('=')
		canon.WriteString(aliyunPercentEncode(p[k]))
	}
	return method + "&" + aliyunPercentEncode("/") + "&" + aliyunPercentEncode(canon.String())
}

// aliyunSignature is Base64(HMAC-SHA1(secret + "&", stringToSign)).
func aliyunSignature(secret, stringToSign string) string {
	m := hmac.New(sha1.New, []byte(secret+"&"))
	m.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

var aliyunRequired = []string{"Action", "Version", "AccessKeyId", "SignatureMethod", "SignatureVersion",
	"SignatureNonce", "Timestamp", "Signature"}

// verifyAliyun checks the common parameters and the signature, in the order
// the gateway reports problems: missing parameters, method and version of the
// signature, the timestamp, the key, the signature, and last the nonce (so a
// request with a bad signature cannot burn a good client's nonce).
func (e *Emulator) verifyAliyun(method string, p rpcParams) *gatewayError {
	for _, k := range aliyunRequired {
		if _, ok := p[k]; !ok {
			return gwErr(http.StatusBadRequest, "MissingParameter",
				"The input parameter %q that is mandatory for processing this request is not supplied.", k)
		}
	}
	if p["SignatureMethod"] != "HMAC-SHA1" {
		return gwErr(http.StatusBadRequest, "InvalidSignatureMethod", "Specified signature method %q is not valid: use HMAC-SHA1.", p["SignatureMethod"])
	}
	if p["SignatureVersion"] != "1.0" {
		return gwErr(http.StatusBadRequest, "InvalidParameter", "Specified SignatureVersion %q is not valid: use 1.0.", p["SignatureVersion"])
	}
	ts, err := time.Parse(aliyunTimeLayout, p["Timestamp"])
	if err != nil {
		return gwErr(http.StatusBadRequest, "InvalidTimeStamp.Format",
			"Specified time stamp or date value is not well formatted: use yyyy-MM-ddTHH:mm:ssZ in UTC.")
	}
	now := e.now()
	if d := now.Sub(ts); d > aliyunMaxSkew || d < -aliyunMaxSkew {
		return gwErr(http.StatusBadRequest, "InvalidTimeStamp.Expired",
			"Specified time stamp or date value is expired: %s is more than %v from the server's %s (check the clock).",
			p["Timestamp"], aliyunMaxSkew, now.UTC().Format(aliyunTimeLayout))
	}
	keyID := p["AccessKeyId"]
	// An emulator started without an Aliyun key pair accepts no key at all
	// (an empty id must not match an empty configured one).
	if e.cfg.AliyunAccessKeyID == "" || !subtleEqual(keyID, e.cfg.AliyunAccessKeyID) {
		return gwErr(http.StatusNotFound, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
	}
	sts := aliyunStringToSign(method, p)
	want := aliyunSignature(e.cfg.AliyunAccessKeySecret, sts)
	if !subtleEqual(p["Signature"], want) {
		// The cloud puts its string to sign in the message; the SDK compares it
		// with its own to tell a wrong secret from a wrong canonicalisation.
		return gwErr(http.StatusBadRequest, "SignatureDoesNotMatch",
			"Specified signature is not matched with our calculation. server string to sign is:%s", sts)
	}
	if !e.ali.front.useNonce(keyID, p["SignatureNonce"], now) {
		return gwErr(http.StatusBadRequest, "SignatureNonceUsed", "Specified signature nonce was used already.")
	}
	return nil
}

type aliyunHandler func(e *Emulator, p rpcParams) (map[string]any, *apiError)

// aliyunActions are the Iot 2018-01-20 actions the emulator serves.
var aliyunActions = map[string]aliyunHandler{
	"BatchCheckDeviceNames":          (*Emulator).aliBatchCheckDeviceNames,
	"BatchRegisterDeviceWithApplyId": (*Emulator).aliBatchRegisterDeviceWithApplyID,
	"BatchRegisterDevice":            (*Emulator).aliBatchRegisterDevice,
	"QueryBatchRegisterDeviceStatus": (*Emulator).aliQueryBatchRegisterDeviceStatus,
	"QueryPageByApplyId":             (*Emulator).aliQueryPageByApplyID,
	"RegisterDevice":                 (*Emulator).aliRegisterDevice,
	"QueryDeviceDetail":              (*Emulator).aliQueryDeviceDetail,
	"QueryDevice":                    (*Emulator).aliQueryDevice,
	"DeleteDevice":                   (*Emulator).aliDeleteDevice,
	"QueryProduct":                   (*Emulator).aliQueryProduct,
	"GetThingTopo":                   (*Emulator).aliGetThingTopo,
	"QueryDeviceCert":                (*Emulator).aliQueryDeviceCert,
	"QueryCertUrlByApplyId":          (*Emulator).aliQueryCertUrlByApplyID,
}

func (e *Emulator) serveAliyun(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := strings.ToUpper(newRequestID()) // the cloud's RequestIds are upper-case UUIDs
	p, gerr := parseRPC(r)
	action, product := p["Action"], p["ProductKey"]
	var (
		resp map[string]any
		aerr *apiError
	)
	if gerr == nil {
		resp, aerr, gerr = e.handleAliyun(r.Method, p)
	}

	code := "OK"
	switch {
	case gerr != nil:
		code = gerr.Code
		if !strings.EqualFold(p["Format"], "JSON") {
			writeAliyunXMLError(w, gerr, reqID)
			break
		}
		out, _ := json.Marshal(map[string]string{"RequestId": reqID, "HostId": aliyunHostID, "Code": gerr.Code,
			"Message": gerr.Message, "Recommend": "https://api.aliyun.com/troubleshoot?q=" + url.QueryEscape(gerr.Code)})
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.WriteHeader(gerr.status)
		w.Write(out)
	default:
		if resp == nil {
			resp = map[string]any{}
		}
		resp["RequestId"] = reqID
		resp["Success"] = aerr == nil
		if aerr != nil {
			code = aerr.Code
			resp["Code"], resp["ErrorMessage"] = aerr.Code, aerr.Message
		}
		out, err := json.Marshal(resp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.Write(out)
	}
	// Never a parameter value beyond the action and product: no secrets, no signatures.
	e.log.Info("aliyun", "action", action, "product", product, "code", code,
		"request_id", reqID, "ms", time.Since(start).Milliseconds())
}

// writeAliyunXMLError answers a gateway error to a client that did not ask for
// JSON: the cloud's default format is XML (a client that forgets Format=JSON
// gets XML back and should fail loudly, here as there).
func writeAliyunXMLError(w http.ResponseWriter, gerr *gatewayError, reqID string) {
	w.Header().Set("Content-Type", "text/xml;charset=utf-8")
	w.WriteHeader(gerr.status)
	fmt.Fprintf(w, "<?xml version='1.0' encoding='UTF-8'?><Error><RequestId>%s</RequestId><HostId>%s</HostId>"+
		"<Code>%s</Code><Message>%s</Message></Error>", reqID, aliyunHostID, html.EscapeString(gerr.Code), html.EscapeString(gerr.Message))
}

// handleAliyun runs one request after parsing.
func (e *Emulator) handleAliyun(method string, p rpcParams) (map[string]any, *apiError, *gatewayError) {
	if method != http.MethodGet && method != http.MethodPost {
		return nil, nil, gwErr(http.StatusMethodNotAllowed, "UnsupportedHTTPMethod", "RPC requests are GET or POST (got %s).", method)
	}
	if f := p["Format"]; !strings.EqualFold(f, "JSON") {
		return nil, nil, gwErr(http.StatusBadRequest, "InvalidParameter",
			"This emulator answers Format=JSON only (got %q; the cloud's default is XML, so always send Format=JSON).", f)
	}
	if gerr := e.verifyAliyun(method, p); gerr != nil {
		return nil, nil, gerr
	}
	if v := p["Version"]; v != aliyunVersion {
		return nil, nil, gwErr(http.StatusBadRequest, "InvalidVersion", "Specified parameter Version %q is not valid: this emulator serves Iot %s.", v, aliyunVersion)
	}
	action := p["Action"]
	handler, ok := aliyunActions[action]
	if !ok {
		return nil, nil, gwErr(http.StatusNotFound, "InvalidAction.NotFound", "Specified api %q is not found, please check your url and method.", action)
	}
	if !e.ali.front.limiters[action].allow(action) {
		return nil, nil, gwErr(http.StatusTooManyRequests, "Throttling.User", "Request was denied due to user flow control.")
	}
	if f, ok := e.faults.take(action); ok {
		if f.delay == 0 {
			return aliyunFault(f.code)
		}
		time.Sleep(f.delay)
	}

	// An X.509 device made by RegisterDevice has its key generated before
	// the lock is taken (see handleTencent).
	var pre *issuedCert
	if action == "RegisterDevice" && e.aliIsX509Product(p["ProductKey"]) {
		c, err := e.issueOne("aliyun", p["ProductKey"], p["DeviceName"])
		if err != nil {
			return nil, errf("iot.system.SystemException", "Issuing the device certificate: %v.", err), nil
		}
		pre = &c
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, nil, gwErr(http.StatusServiceUnavailable, "ServiceUnavailable", "The emulator is shut down.")
	}
	if err := e.aliAdvance(); err != nil {
		return nil, errf("iot.system.SystemException", "Persisting state: %v.", err), nil
	}
	var resp map[string]any
	var aerr *apiError
	if action == "RegisterDevice" {
		resp, aerr = e.aliRegisterDeviceWith(p, pre)
	} else {
		resp, aerr = handler(e, p)
	}
	return resp, aerr, nil
}

func (e *Emulator) aliIsX509Product(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.ali.products[key]
	return p != nil && p.X509
}

// aliyunFault turns an injected code into the answer the cloud would give:
// iot.* codes are business refusals (HTTP 200), the rest gateway errors.
func aliyunFault(code string) (map[string]any, *apiError, *gatewayError) {
	if strings.HasPrefix(strings.ToLower(code), "iot.") {
		return nil, errf(code, "Injected fault."), nil
	}
	status := http.StatusBadRequest
	switch {
	case strings.HasPrefix(code, "Throttling"):
		status = http.StatusTooManyRequests
	case code == "ServiceUnavailable":
		status = http.StatusServiceUnavailable
	case code == "InternalError":
		status = http.StatusInternalServerError
	}
	return nil, nil, gwErr(status, code, "Injected fault.")
}
