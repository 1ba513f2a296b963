package emulator

// Tencent Cloud API 3.0 front door: signature, version, action, rate limit and
// faults, then the action itself (tencent_actions.go), answered in the cloud's
// envelope {"Response":{...,"RequestId":"..."}}. Errors are HTTP 200 with
// Response.Error, as the cloud sends them (the SDK reads a non-200 status as a
// transport failure and would never see the code).

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	tencentService = "iotcloud"
	tencentVersion = "2018-06-14"
)

// isTencentRequest recognises API 3.0 requests: any X-TC-* header or a TC3
// Authorization header.
func isTencentRequest(r *http.Request) bool {
	if strings.HasPrefix(r.Header.Get("Authorization"), "TC3-") {
		return true
	}
	for k := range r.Header {
		if strings.HasPrefix(k, "X-Tc-") {
			return true
		}
	}
	return false
}

type tencentHandler func(e *Emulator, p params) (any, *apiError)

// tencentActions are the iotcloud 2018-06-14 actions the emulator serves.
var tencentActions = map[string]tencentHandler{
	"CreateMultiDevice":    (*Emulator).tcCreateMultiDevice,
	"DescribeMultiDevTask": (*Emulator).tcDescribeMultiDevTask,
	"DescribeMultiDevices": (*Emulator).tcDescribeMultiDevices,
	"CreateDevice":         (*Emulator).tcCreateDevice,
	"DescribeDevice":       (*Emulator).tcDescribeDevice,
	"DescribeDevices":      (*Emulator).tcDescribeDevices,
	"DeleteDevice":         (*Emulator).tcDeleteDevice,
	"DescribeProducts":     (*Emulator).tcDescribeProducts,
	// DescribeDeviceClientKey: "获取证书认证类型设备的私钥，刚生成或者重置设备后
	// 仅可调用一次" (v20180614 client.go).
	"DescribeDeviceClientKey": (*Emulator).tcDescribeDeviceClientKey,
	// Gateways (tencent_gateway.go).
	"BindDevices":                (*Emulator).tcBindDevices,
	"UnbindDevices":              (*Emulator).tcUnbindDevices,
	"DescribeGatewayBindDevices": (*Emulator).tcDescribeGatewayBindDevices,
}

func (e *Emulator) serveTencent(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := newRequestID()
	action := r.Header.Get("X-TC-Action")
	resp, product, aerr := e.handleTencent(r, action)

	out, err := tencentEnvelope(resp, aerr, reqID)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)

	code := "OK"
	if aerr != nil {
		code = aerr.Code
	}
	// Never the body, the Authorization header or a PSK: only what identifies the call.
	e.log.Info("tencent", "action", action, "product", product, "code", code,
		"request_id", reqID, "ms", time.Since(start).Milliseconds())
}

// tencentEnvelope writes {"Response":{<fields of resp>,"RequestId":id}} or
// {"Response":{"Error":{"Code","Message"},"RequestId":id}}.
func tencentEnvelope(resp any, aerr *apiError, reqID string) ([]byte, error) {
	if aerr != nil {
		resp = map[string]any{"Error": map[string]string{"Code": aerr.Code, "Message": aerr.Message}}
	}
	fields := []byte("{}")
	if resp != nil {
		var err error
		if fields, err = json.Marshal(resp); err != nil {
			return nil, err
		}
	}
	id, _ := json.Marshal(reqID)
	out := []byte(`{"Response":`)
	out = append(out, fields[:len(fields)-1]...) // drop the closing brace
	if len(fields) > 2 {
		out = append(out, ',')
	}
	out = append(out, `"RequestId":`...)
	out = append(out, id...)
	return append(out, "}}"...), nil
}

// handleTencent runs one request; product is only for the log line.
func (e *Emulator) handleTencent(r *http.Request, action string) (resp any, product string, aerr *apiError) {
	if r.Method != http.MethodPost {
		return nil, "", errf("InvalidParameter", "This emulator accepts POST requests with a JSON body (got %s).", r.Method)
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, "", errf("RequestSizeLimitExceeded", "The request body exceeds %d bytes.", maxBody)
		}
		return nil, "", errf("InvalidParameter", "Reading the request body: %v.", err)
	}
	v := tc3Verifier{Service: tencentService, Now: e.now, MaxSkew: tc3MaxSkew, SecretKey: e.secretKey}
	if aerr := v.verify(tc3Input{Method: r.Method, Query: r.URL.RawQuery, Host: r.Host, Header: r.Header, Body: body}); aerr != nil {
		return nil, "", aerr
	}
	switch ver := r.Header.Get("X-TC-Version"); {
	case ver == "":
		return nil, "", errf("MissingParameter", "The request is missing a required parameter `Version` (header X-TC-Version).")
	case ver != tencentVersion:
		return nil, "", errf("NoSuchVersion", "The API version `%s` is not supported: this emulator serves iotcloud %s.", ver, tencentVersion)
	}
	if action == "" {
		return nil, "", errf("MissingParameter", "The request is missing a required parameter `Action` (header X-TC-Action).")
	}
	handler, ok := tencentActions[action]
	if !ok {
		return nil, "", errf("InvalidAction", "The action `%s` is not found in iotcloud %s.", action, tencentVersion)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return nil, "", errf("InvalidParameter", "Content-Type must be application/json (got %q).", ct)
	}
	p, aerr := parseParams(body)
	if aerr != nil {
		return nil, "", aerr
	}
	product = p.peek("ProductId")
	if product == "" {
		product = p.peek("ProductID")
	}
	if !e.limiter.allow(action) {
		return nil, product, errf("RequestLimitExceeded",
			"Your requests to %s exceed the frequency limit of %d a second. Please reduce the frequency of calls.", action, e.cfg.RateLimit)
	}
	if f, ok := e.faults.take(action); ok {
		if f.delay == 0 {
			return nil, product, errf(f.code, "Injected fault.")
		}
		time.Sleep(f.delay)
	}

	// A certificate device made by CreateDevice has its key generated
	// before the lock is taken: an RSA key is too slow to make while every
	// other request waits.
	var pre *issuedCert
	if action == "CreateDevice" && e.tcIsCertProduct(product) {
		c, err := e.issueOne("tencent", product, p.peek("DeviceName"))
		if err != nil {
			return nil, product, errf("InternalError", "Issuing the device certificate: %v.", err)
		}
		pre = &c
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, product, errf("InternalError", "The emulator is shut down.")
	}
	if err := e.tcAdvance(); err != nil {
		return nil, product, errf("InternalError", "Persisting state: %v.", err)
	}
	if action == "CreateDevice" {
		resp, aerr = e.tcCreateDeviceWith(p, pre)
	} else {
		resp, aerr = handler(e, p)
	}
	return resp, product, aerr
}

func (e *Emulator) tcIsCertProduct(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.tc.products[id]
	return p != nil && p.Cert
}

func (e *Emulator) secretKey(id string) (string, bool) {
	// Constant-time on the id as well, though ids are not secret, to keep the
	// answer time independent of how much of a guessed id was right.
	if subtleEqual(id, e.cfg.SecretID) {
		return e.cfg.SecretKey, true
	}
	return "", false
}

// newRequestID makes a random (version 4) UUID, the cloud's RequestId format.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newPSK is a device key: 16 random bytes, base64, as the cloud issues them.
func newPSK() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

func newTaskID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// tcAdvance completes every task whose time has come: its devices are created
// and persisted before any answer can reveal them. Called with e.mu held.
func (e *Emulator) tcAdvance() error {
	now := e.now()
	var recs []record
	var done []string
	for _, t := range e.tc.pending {
		if t.Due > now.UnixNano() {
			continue
		}
		p := e.tc.products[t.Product]
		var certs []issuedCert
		if p.Cert {
			// A certificate task finishes once its certificates are made
			// (certjobs.go); until then it stays TaskStatus 1.
			job := e.certJobFor("tencent:"+t.ID, "tencent", p.ID, t.Names)
			if !job.ready() || job.failed() != nil {
				continue
			}
			certs = job.certs
		}
		results := make([]tcResult, len(t.Names))
		for i, n := range t.Names {
			if _, exists := p.devices[n]; exists {
				// Reservations prevent this; kept so a replayed odd state
				// reports per device instead of overwriting a secret.
				results[i] = tcResult{Name: n, Result: 1, ErrMsg: "InvalidParameterValue.DeviceAlreadyExist"}
				continue
			}
			if p.Cert {
				results[i] = tcResult{Name: n, Cert: certs[i].Cert, Key: certs[i].Key}
				continue
			}
			results[i] = tcResult{Name: n, PSK: newPSK()}
		}
		recs = append(recs, tcRecord("taskdone", tcTaskDoneRec{ID: t.ID, At: time.Unix(0, t.Due).Unix(), Results: results}))
		done = append(done, "tencent:"+t.ID)
	}
	if len(recs) == 0 {
		return nil
	}
	if err := e.commit(recs...); err != nil {
		return err
	}
	for _, k := range done {
		e.dropCertJob(k)
	}
	return nil
}

// tcEnsureProduct creates a product unless it exists. A product keeps the
// authentication type it was created with: asking for the other one is an
// error. (Tencent sets EncryptionType at CreateProduct and has no call to
// change it in 2018-06-14; Aliyun says of its own "设备身份认证方式设置后，不可
// 更改", doc 140588.) Called with e.mu held.
func (e *Emulator) tcEnsureProduct(id string, cert bool, node int) error {
	if !productIDRe.MatchString(id) {
		return fmt.Errorf("a ProductId is 1 to 32 letters and digits")
	}
	if p := e.tc.products[id]; p != nil {
		if p.Cert != cert {
			return fmt.Errorf("the product exists in the state as a %s product; its authentication type cannot change "+
				"(use another ProductId, or another state directory)", tcAuthName(p.Cert))
		}
		if p.Node != node {
			return fmt.Errorf("the product exists in the state as a %s product; its kind cannot change "+
				"(use another ProductId, or another state directory)", tcNodeName(p.Node))
		}
		return nil
	}
	return e.commit(tcRecord("product", tcProductRec{ID: id, Created: e.now().Unix(), Cert: cert, Node: node}))
}

func tcAuthName(cert bool) string {
	if cert {
		return "certificate"
	}
	return "key"
}

// TencentDevice is the emulator's own view of a device's PSK (for the demo's
// cross-check and tests; not an API).
func (e *Emulator) TencentDevice(product, name string) (psk string, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.tcAdvance()
	}
	p := e.tc.products[product]
	if p == nil {
		return "", false
	}
	d := p.devices[name]
	if d == nil {
		return "", false
	}
	return d.PSK, true
}

// TencentDeviceCert is the emulator's own view of a certificate device's
// certificate (PEM), for tests and the demo's cross-check; not an API.
func (e *Emulator) TencentDeviceCert(product, name string) (certPEM string, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.tcAdvance()
	}
	p := e.tc.products[product]
	if p == nil || p.devices[name] == nil || p.devices[name].Cert == "" {
		return "", false
	}
	return p.devices[name].Cert, true
}

// TencentDeviceNames lists a product's devices, sorted.
func (e *Emulator) TencentDeviceNames(product string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.tcAdvance()
	}
	p := e.tc.products[product]
	if p == nil {
		return nil
	}
	return p.sortedNames()
}
