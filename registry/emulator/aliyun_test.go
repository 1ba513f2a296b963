package emulator

import (
	"bytes"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	aliiot "github.com/aliyun/alibaba-cloud-sdk-go/services/iot"
)

// Alibaba Cloud's published worked example ("Request signature" doc, see
// shared/reference/aliyun.md §1): the string to sign and the GET signature
// are the doc's; the POST one is the widely pinned recomputation.
func TestAliyunSignatureWorkedExample(t *testing.T) {
	p := map[string]string{
		"AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML", "SignatureMethod": "HMAC-SHA1",
		"SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
		"Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26",
		"Signature": "ignored: never part of the string to sign",
	}
	const wantSTS = "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1" +
		"%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0" +
		"%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
	if got := aliyunStringToSign("GET", p); got != wantSTS {
		t.Fatalf("string to sign\n got %s\nwant %s", got, wantSTS)
	}
	for method, want := range map[string]string{"GET": "OLeaidS1JvxuMvnyHOwuJ+uX5qY=", "POST": "MxbnVAM4w6sft9xjVpe/GCKueuk="} {
		if got := aliyunSignature("testsecret", aliyunStringToSign(method, p)); got != want {
			t.Errorf("%s: signature %s, want %s", method, got, want)
		}
	}
	// The doc's older "TimeStamp" spelling signs differently (the reference's trap).
	p["TimeStamp"] = p["Timestamp"]
	delete(p, "Timestamp")
	if got := aliyunSignature("testsecret", aliyunStringToSign("GET", p)); got != "CT9X0VtwR86fNWSnsc6v8YGOjuE=" {
		t.Errorf("TimeStamp variant: %s", got)
	}
	// RFC 3986 rules: space %20 (not +), * %2A, ~ kept, UTF-8 bytes upper-case hex.
	if got := aliyunPercentEncode("a b*c~d/é+"); got != "a%20b%2Ac~d%2F%C3%A9%2B" {
		t.Errorf("percent-encoding: %s", got)
	}
	// The SDK's own vector (sdk/auth/rpc_signature_composer_test.go).
	if got := aliyunStringToSign("GET", map[string]string{"key": "value", "q": "http://domain/?q=value&q2=value2"}); got !=
		"GET&%2F&key%3Dvalue%26q%3Dhttp%253A%252F%252Fdomain%252F%253Fq%253Dvalue%2526q2%253Dvalue2" {
		t.Errorf("SDK vector: %s", got)
	}
}

// Real HTTP, hand-signed requests: each broken one is refused with the
// cloud's code and status, GET and POST alike.
func TestAliyunAuthRejected(t *testing.T) {
	clk := newClock()
	_, srv := aliStart(t, Config{Now: clk.Now})
	now := clk.Now()
	q := map[string]string{"ProductKey": aliTestProduct}

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		p := aliParams("QueryProduct", now, q)
		aliSignParams(method, p, aliTestSecret)
		if st, out := aliRaw(t, srv, method, p); st != 200 || out["Success"] != true {
			t.Fatalf("%s good request: %d %v", method, st, out)
		}
		// The same request again: the nonce is spent.
		if st, out := aliRaw(t, srv, method, p); st != 400 || aliCode(out) != "SignatureNonceUsed" {
			t.Errorf("%s reused nonce: %d %v", method, st, out)
		}
	}

	tests := []struct {
		name   string
		method string
		build  func() map[string]string
		status int
		code   string
	}{
		{"wrong secret", "POST", func() map[string]string {
			p := aliParams("QueryProduct", now, q)
			aliSignParams("POST", p, "not-the-secret")
			return p
		}, 400, "SignatureDoesNotMatch"},
		{"signed as GET, sent as POST", "POST", func() map[string]string {
			p := aliParams("QueryProduct", now, q)
			aliSignParams("GET", p, aliTestSecret)
			return p
		}, 400, "SignatureDoesNotMatch"},
		{"parameter changed after signing", "GET", func() map[string]string {
			p := aliParams("QueryProduct", now, q)
			aliSignParams("GET", p, aliTestSecret)
			p["ProductKey"] = "a1Other"
			return p
		}, 400, "SignatureDoesNotMatch"},
		{"unknown key", "GET", func() map[string]string {
			p := aliParams("QueryProduct", now, q)
			p["AccessKeyId"] = "LTAIunknown"
			aliSignParams("GET", p, aliTestSecret)
			return p
		}, 404, "InvalidAccessKeyId.NotFound"},
		{"stale timestamp", "GET", func() map[string]string {
			p := aliParams("QueryProduct", now.Add(-16*time.Minute), q)
			aliSignParams("GET", p, aliTestSecret)
			return p
		}, 400, "InvalidTimeStamp.Expired"},
		{"far-future timestamp", "POST", func() map[string]string {
			p := aliParams("QueryProduct", now.Add(16*time.Minute), q)
			aliSignParams("POST", p, aliTestSecret)
			return p
		}, 400, "InvalidTimeStamp.Expired"},
		{"timestamp within the window", "GET", func() map[string]string {
			p := aliParams("QueryProduct", now.Add(-14*time.Minute), q)
			aliSignParams("GET", p, aliTestSecret)
			return p
		}, 200, ""},
		{"timestamp not ISO 8601", "GET", func() map[string]string {
			p := aliParams("QueryProduct", now, q)
			p["Timestamp"] = strconv.FormatInt(now.Unix(), 10)
			aliSignParams("GET", p, aliTestSecret)
			return p
		}, 400, "InvalidTimeStamp.Format"},
		{"no nonce", "GET", func() map[string]string {
			p := aliParams("QueryProduct", now, q)
			delete(p, "SignatureNonce")
			aliSignParams("GET", p, aliTestSecret)
			return p
		}, 400, "MissingParameter"},
		{"no signature", "GET", func() map[string]string { return aliParams("QueryProduct", now, q) }, 400, "MissingParameter"},
		{"HMAC-SHA256", "GET", func() map[string]string {
			p := aliParams("QueryProduct", now, q)
			p["SignatureMethod"] = "HMAC-SHA256"
			aliSignParams("GET", p, aliTestSecret)
			return p
		}, 400, "InvalidSignatureMethod"},
		{"unknown action", "GET", func() map[string]string {
			p := aliParams("DescribeWidgets", now, nil)
			aliSignParams("GET", p, aliTestSecret)
			return p
		}, 404, "InvalidAction.NotFound"},
		{"wrong version", "GET", func() map[string]string {
			p := aliParams("QueryProduct", now, q)
			p["Version"] = "2017-04-20"
			aliSignParams("GET", p, aliTestSecret)
			return p
		}, 400, "InvalidVersion"},
		{"business refusal is HTTP 200", "POST", func() map[string]string {
			p := aliParams("QueryProduct", now, map[string]string{"ProductKey": "a1Missing"})
			aliSignParams("POST", p, aliTestSecret)
			return p
		}, 200, "iot.prod.NotExistedProduct"},
	}
	for _, tt := range tests {
		st, out := aliRaw(t, srv, tt.method, tt.build())
		if st != tt.status || aliCode(out) != tt.code {
			t.Errorf("%s: HTTP %d %q, want %d %q (%v)", tt.name, st, aliCode(out), tt.status, tt.code, out)
		}
		if st != 200 && (out["HostId"] == nil || out["Message"] == nil) {
			t.Errorf("%s: gateway error without HostId/Message: %v", tt.name, out)
		}
	}

	// No Format: the cloud's default is XML, and so is the error.
	p := aliParams("QueryProduct", now, q)
	delete(p, "Format")
	aliSignParams("GET", p, aliTestSecret)
	if st, out := aliRaw(t, srv, "GET", p); st != 400 || !strings.Contains(out["raw"].(string), "<Code>InvalidParameter</Code>") {
		t.Errorf("no Format: %d %v", st, out)
	}
}

// Going over an action's QPS is Throttling.User (HTTP 429); another action
// has its own budget.
func TestAliyunThrottling(t *testing.T) {
	clk := newClock()
	_, srv := aliStart(t, Config{Now: clk.Now, RateLimit: 2})
	call := func(action string) (int, string) {
		p := aliParams(action, clk.Now(), map[string]string{"ProductKey": aliTestProduct})
		aliSignParams("GET", p, aliTestSecret)
		st, out := aliRaw(t, srv, "GET", p)
		return st, aliCode(out)
	}
	for i := 0; i < 2; i++ {
		if st, c := call("QueryProduct"); st != 200 {
			t.Fatalf("call %d: %d %s", i, st, c)
		}
	}
	if st, c := call("QueryProduct"); st != http.StatusTooManyRequests || c != "Throttling.User" {
		t.Fatalf("over the limit: %d %s", st, c)
	}
	if st, c := call("QueryDevice"); st != 200 {
		t.Fatalf("other action: %d %s", st, c)
	}
	clk.Add(time.Second)
	if st, c := call("QueryProduct"); st != 200 {
		t.Fatalf("after a second: %d %s", st, c)
	}
	if AliyunQPS("BatchCheckDeviceNames") != 10 || AliyunQPS("QueryPageByApplyId") != 50 || AliyunQPS("QueryBatchRegisterDeviceStatus") != 30 {
		t.Fatal("documented QPS table")
	}
}

// The official SDK, directly, for every action: the whole flow of an
// application through its states, paging, single devices, and the refusals.
func TestAliyunSDKActions(t *testing.T) {
	clk := newClock()
	e, srv := aliStart(t, Config{Now: clk.Now, TaskDelay: 10 * time.Second, Quota: 20000})
	c := aliSDK(t, aliTestID, aliTestSecret)

	check := func(names []string) *aliiot.BatchCheckDeviceNamesResponse {
		t.Helper()
		r := aliiot.CreateBatchCheckDeviceNamesRequest()
		aliReq(srv, r.RpcRequest)
		r.ProductKey, r.DeviceName = aliTestProduct, &names
		resp, err := c.BatchCheckDeviceNames(r)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	status := func(id int64) *aliiot.QueryBatchRegisterDeviceStatusResponse {
		t.Helper()
		r := aliiot.CreateQueryBatchRegisterDeviceStatusRequest()
		aliReq(srv, r.RpcRequest)
		r.ProductKey, r.ApplyId = aliTestProduct, requests.NewInteger64(id)
		resp, err := c.QueryBatchRegisterDeviceStatus(r)
		if err != nil || !resp.Success {
			t.Fatalf("status: %v %+v", err, resp)
		}
		return resp
	}
	register := func(id int64) *aliiot.BatchRegisterDeviceWithApplyIdResponse {
		t.Helper()
		r := aliiot.CreateBatchRegisterDeviceWithApplyIdRequest()
		aliReq(srv, r.RpcRequest)
		r.ProductKey, r.ApplyId = aliTestProduct, requests.NewInteger64(id)
		resp, err := c.BatchRegisterDeviceWithApplyId(r)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	page := func(id int64, size, n int) *aliiot.QueryPageByApplyIdResponse {
		t.Helper()
		r := aliiot.CreateQueryPageByApplyIdRequest()
		aliReq(srv, r.RpcRequest)
		r.ApplyId, r.PageSize, r.CurrentPage = requests.NewInteger64(id), requests.NewInteger(size), requests.NewInteger(n)
		resp, err := c.QueryPageByApplyId(r)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	// A check with a bad and a repeated name reports them, and fails.
	bad := check([]string{"good-0001", "no", "good-0001", "bad/name"})
	if !bad.Success || bad.Data.ApplyId == 0 ||
		strings.Join(bad.Data.InvalidDeviceNameList.InvalidDeviceName, ",") != "no,bad/name" ||
		strings.Join(bad.Data.RepeatedDeviceNameList.RepeatDevieNameList, ",") != "good-0001" ||
		len(bad.Data.InvalidDetailList) != 2 {
		t.Fatalf("bad check: %+v", bad)
	}
	if s := status(bad.Data.ApplyId).Data.Status; s != "CHECK" {
		t.Fatalf("status at once %s", s)
	}
	clk.Add(10 * time.Second)
	if st := status(bad.Data.ApplyId).Data; st.Status != "CHECK_FAILED" || len(st.InvalidList.Name) != 3 ||
		len(st.InvalidDetailList.InvalidDetailList) != 3 || len(st.ValidList.Name) != 0 {
		t.Fatalf("bad check verdict %+v", st)
	}
	if r := register(bad.Data.ApplyId); r.Success || r.Code != "iot.device.IncorrentDeviceApplyInfo" {
		t.Fatalf("register failed check: %+v", r)
	}

	// 120 good names: CHECK → CHECK_SUCCESS → CREATE → CREATE_SUCCESS, 3 pages of 50.
	var names []string
	for i := range 120 {
		names = append(names, "dev:"+strconv.Itoa(1000+i)+"@line.1")
	}
	ok := check(names)
	id := ok.Data.ApplyId
	if !ok.Success || id <= bad.Data.ApplyId || len(ok.Data.InvalidDeviceNameList.InvalidDeviceName) != 0 {
		t.Fatalf("good check: %+v", ok)
	}
	if r := register(id); r.Success || r.Code != "iot.device.IncorrentDeviceApplyInfo" {
		t.Fatalf("register during CHECK: %+v", r)
	}
	clk.Add(10 * time.Second)
	if s := status(id).Data.Status; s != "CHECK_SUCCESS" {
		t.Fatalf("status %s", s)
	}
	if r := register(id); !r.Success || r.Data.ApplyId != id {
		t.Fatalf("register: %+v", r)
	}
	if s := status(id).Data.Status; s != "CREATE" {
		t.Fatalf("status %s", s)
	}
	if p := page(id, 50, 1); p.Success || p.Code != "iot.device.CreateDeviceTaskIsRunning" {
		t.Fatalf("page while creating: %+v", p)
	}
	if r := register(id); r.Success || r.Code != "iot.device.IncorrentDeviceApplyInfo" {
		t.Fatalf("second register: %+v", r)
	}
	// A name being created cannot be checked in or registered elsewhere.
	clash := check(names[:1]).Data.ApplyId
	clk.Add(10 * time.Second)
	if st := status(id).Data; st.Status != "CREATE_SUCCESS" || len(st.InvalidList.Name) != 0 {
		t.Fatalf("status %+v", st)
	}
	if st := status(clash).Data; st.Status != "CHECK_FAILED" {
		t.Fatalf("clashing check: %+v", st)
	}
	seen := map[string]string{}
	for n := 1; n <= 4; n++ {
		p := page(id, 50, n)
		if !p.Success || p.Total != 120 || p.PageCount != 3 || p.Page != n || p.PageSize != 50 {
			t.Fatalf("page %d: %+v", n, p)
		}
		want := map[int]int{1: 50, 2: 50, 3: 20, 4: 0}[n]
		if len(p.ApplyDeviceList.ApplyDeviceInfo) != want {
			t.Fatalf("page %d has %d", n, len(p.ApplyDeviceList.ApplyDeviceInfo))
		}
		for _, d := range p.ApplyDeviceList.ApplyDeviceInfo {
			if len(d.DeviceSecret) != 32 || d.IotId == "" {
				t.Fatalf("device %+v", d.DeviceName)
			}
			if s, ok := e.AliyunDevice(aliTestProduct, d.DeviceName); !ok || s != d.DeviceSecret {
				t.Fatalf("%s disagrees with the emulator", d.DeviceName)
			}
			seen[d.DeviceName] = d.DeviceSecret
		}
	}
	if len(seen) != 120 {
		t.Fatalf("%d distinct devices", len(seen))
	}
	if p := page(id, 51, 1); p.Success || p.Code != "iot.common.InvalidPageParams" {
		t.Fatalf("page of 51: %+v", p)
	}
	if p := page(99, 10, 1); p.Success || p.Code != "iot.device.DeviceApplyIsNotFound" {
		t.Fatalf("unknown ApplyId: %+v", p)
	}

	// More than 10,000 names in one application.
	many := make([]string, 10001)
	for i := range many {
		many[i] = "many-" + strconv.Itoa(i)
	}
	if r := check(many); r.Success || r.Code != "iot.device.DeviceCountExceeded" {
		t.Fatalf("10,001 names: %+v", r.Code)
	}
	if r := check(nil); r.Success || r.Code != "iot.device.NoneDeviceNameElement" {
		t.Fatalf("no names: %+v", r.Code)
	}

	// DeviceNameList.N.DeviceName wins over DeviceName.N.
	{
		r := aliiot.CreateBatchCheckDeviceNamesRequest()
		aliReq(srv, r.RpcRequest)
		other := []string{"ignored-1"}
		r.ProductKey, r.DeviceName = aliTestProduct, &other
		r.DeviceNameList = &[]aliiot.BatchCheckDeviceNamesDeviceNameList{{DeviceName: "listed-1", DeviceNickname: "Line_1"}}
		resp, err := c.BatchCheckDeviceNames(r)
		if err != nil || !resp.Success {
			t.Fatalf("DeviceNameList: %v %+v", err, resp)
		}
		clk.Add(10 * time.Second)
		if st := status(resp.Data.ApplyId).Data.Status; st != "CHECK_SUCCESS" {
			t.Fatal(st)
		}
		register(resp.Data.ApplyId)
		clk.Add(10 * time.Second)
		if _, ok := e.AliyunDevice(aliTestProduct, "listed-1"); !ok {
			t.Fatal("DeviceNameList name not created")
		}
		if _, ok := e.AliyunDevice(aliTestProduct, "ignored-1"); ok {
			t.Fatal("DeviceName.N used although DeviceNameList was sent")
		}
	}

	// BatchRegisterDevice: random names.
	{
		r := aliiot.CreateBatchRegisterDeviceRequest()
		aliReq(srv, r.RpcRequest)
		r.ProductKey, r.Count = aliTestProduct, requests.NewInteger(7)
		resp, err := c.BatchRegisterDevice(r)
		if err != nil || !resp.Success {
			t.Fatalf("BatchRegisterDevice: %v %+v", err, resp)
		}
		if st := status(resp.Data.ApplyId).Data.Status; st != "CREATE" {
			t.Fatal(st)
		}
		clk.Add(10 * time.Second)
		if p := page(resp.Data.ApplyId, 50, 1); p.Total != 7 || len(p.ApplyDeviceList.ApplyDeviceInfo) != 7 {
			t.Fatalf("random names: %+v", p)
		}
	}

	// RegisterDevice, QueryDeviceDetail, QueryDevice, DeleteDevice, QueryProduct.
	reg := aliiot.CreateRegisterDeviceRequest()
	aliReq(srv, reg.RpcRequest)
	reg.ProductKey, reg.DeviceName = aliTestProduct, "single_01"
	rr, err := c.RegisterDevice(reg)
	if err != nil || !rr.Success || rr.Data.DeviceName != "single_01" || len(rr.Data.DeviceSecret) != 32 || rr.Data.IotId == "" {
		t.Fatalf("RegisterDevice: %v %+v", err, rr)
	}
	reg2 := aliiot.CreateRegisterDeviceRequest()
	aliReq(srv, reg2.RpcRequest)
	reg2.ProductKey, reg2.DeviceName = aliTestProduct, "single_01"
	if rr2, err := c.RegisterDevice(reg2); err != nil || rr2.Success || rr2.Code != "iot.device.AlreadyExistedDeviceName" {
		t.Fatalf("RegisterDevice twice: %v %+v", err, rr2)
	}
	reg3 := aliiot.CreateRegisterDeviceRequest()
	aliReq(srv, reg3.RpcRequest)
	reg3.ProductKey, reg3.DeviceName = aliTestProduct, "has space"
	if rr3, err := c.RegisterDevice(reg3); err != nil || rr3.Code != "iot.device.InvalidFormattedDeviceName" {
		t.Fatalf("bad name: %v %+v", err, rr3)
	}

	det := aliiot.CreateQueryDeviceDetailRequest()
	aliReq(srv, det.RpcRequest)
	det.ProductKey, det.DeviceName = aliTestProduct, names[7]
	dr, err := c.QueryDeviceDetail(det)
	if err != nil || !dr.Success || dr.Data.DeviceSecret != seen[names[7]] || dr.Data.ProductKey != aliTestProduct || dr.Data.UtcCreate == "" {
		t.Fatalf("QueryDeviceDetail: %v %+v", err, dr)
	}
	byIot := aliiot.CreateQueryDeviceDetailRequest()
	aliReq(srv, byIot.RpcRequest)
	byIot.IotId = rr.Data.IotId
	if d2, err := c.QueryDeviceDetail(byIot); err != nil || d2.Data.DeviceName != "single_01" {
		t.Fatalf("QueryDeviceDetail by IotId: %v %+v", err, d2)
	}

	total := len(e.AliyunDeviceNames(aliTestProduct)) // 120 + 1 + 7 + 1
	if total != 129 {
		t.Fatalf("%d devices", total)
	}
	listed := map[string]bool{}
	for n := 1; ; n++ {
		q := aliiot.CreateQueryDeviceRequest()
		aliReq(srv, q.RpcRequest)
		q.ProductKey, q.PageSize, q.CurrentPage = aliTestProduct, requests.NewInteger(50), requests.NewInteger(n)
		qr, err := c.QueryDevice(q)
		if err != nil || !qr.Success || qr.Total != total {
			t.Fatalf("QueryDevice: %v %+v", err, qr)
		}
		if len(qr.Data.DeviceInfo) == 0 {
			break
		}
		for _, d := range qr.Data.DeviceInfo {
			listed[d.DeviceName] = true
		}
	}
	if len(listed) != total {
		t.Fatalf("QueryDevice listed %d of %d", len(listed), total)
	}

	del := aliiot.CreateDeleteDeviceRequest()
	aliReq(srv, del.RpcRequest)
	del.ProductKey, del.DeviceName = aliTestProduct, names[7]
	if r, err := c.DeleteDevice(del); err != nil || !r.Success {
		t.Fatalf("DeleteDevice: %v %+v", err, r)
	}
	del2 := aliiot.CreateDeleteDeviceRequest()
	aliReq(srv, del2.RpcRequest)
	del2.ProductKey, del2.DeviceName = aliTestProduct, names[7]
	if r, err := c.DeleteDevice(del2); err != nil || r.Code != "iot.device.NotExistedDevice" {
		t.Fatalf("DeleteDevice twice: %v %+v", err, r)
	}
	det2 := aliiot.CreateQueryDeviceDetailRequest()
	aliReq(srv, det2.RpcRequest)
	det2.ProductKey, det2.DeviceName = aliTestProduct, names[7]
	if r, err := c.QueryDeviceDetail(det2); err != nil || r.Code != "iot.device.NotExistedDevice" {
		t.Fatalf("deleted device: %v %+v", err, r)
	}
	// The finished application still lists it (the cloud keeps an application's answer).
	if p := page(id, 50, 1); p.Total != 120 {
		t.Fatalf("application after a delete: %d", p.Total)
	}

	prod := aliiot.CreateQueryProductRequest()
	aliReq(srv, prod.RpcRequest)
	prod.ProductKey = aliTestProduct
	if r, err := c.QueryProduct(prod); err != nil || !r.Success || r.Data.ProductKey != aliTestProduct || r.Data.DeviceCount != total-1 {
		t.Fatalf("QueryProduct: %v %+v", err, r)
	}

	// The SDK with a wrong secret gets the gateway's error.
	wrong := aliSDK(t, aliTestID, "wrong")
	pr := aliiot.CreateQueryProductRequest()
	aliReq(srv, pr.RpcRequest)
	pr.ProductKey = aliTestProduct
	if _, err := wrong.QueryProduct(pr); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("wrong secret: %v", err)
	}
}

// The product quota: devices plus names being created.
func TestAliyunQuota(t *testing.T) {
	clk := newClock()
	_, srv := aliStart(t, Config{Now: clk.Now, TaskDelay: time.Second, Quota: 5})
	c := aliSDK(t, aliTestID, aliTestSecret)
	r := aliiot.CreateBatchRegisterDeviceRequest()
	aliReq(srv, r.RpcRequest)
	r.ProductKey, r.Count = aliTestProduct, requests.NewInteger(4)
	if resp, err := c.BatchRegisterDevice(r); err != nil || !resp.Success {
		t.Fatalf("%v %+v", err, resp)
	}
	r2 := aliiot.CreateBatchRegisterDeviceRequest()
	aliReq(srv, r2.RpcRequest)
	r2.ProductKey, r2.Count = aliTestProduct, requests.NewInteger(2)
	if resp, err := c.BatchRegisterDevice(r2); err != nil || resp.Code != "iot.device.DeviceCountExceeded" {
		t.Fatalf("over quota while creating: %v %+v", err, resp)
	}
}

// Close, New on the same StateDir: devices, deletions, finished applications
// and one still creating at shutdown all survive, in the journal Tencent uses.
func TestAliyunRestartKeepsState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	clk := newClock()
	var logs bytes.Buffer
	cfg := Config{StateDir: dir, TaskDelay: 10 * time.Second, Now: clk.Now, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	e1, srv1 := aliStart(t, cfg)
	c := aliSDK(t, aliTestID, aliTestSecret)
	apply := func(names ...string) int64 {
		r := aliiot.CreateBatchCheckDeviceNamesRequest()
		aliReq(srv1, r.RpcRequest)
		r.ProductKey, r.DeviceName = aliTestProduct, &names
		resp, err := c.BatchCheckDeviceNames(r)
		if err != nil || !resp.Success {
			t.Fatal(err, resp)
		}
		clk.Add(10 * time.Second)
		g := aliiot.CreateBatchRegisterDeviceWithApplyIdRequest()
		aliReq(srv1, g.RpcRequest)
		g.ProductKey, g.ApplyId = aliTestProduct, requests.NewInteger64(resp.Data.ApplyId)
		if gr, err := c.BatchRegisterDeviceWithApplyId(g); err != nil || !gr.Success {
			t.Fatal(err, gr)
		}
		return resp.Data.ApplyId
	}
	done := apply("dev-1", "dev-2", "dev-3")
	clk.Add(10 * time.Second)
	before := map[string]string{}
	for _, n := range []string{"dev-1", "dev-2", "dev-3"} {
		before[n], _ = e1.AliyunDevice(aliTestProduct, n)
	}
	del := aliiot.CreateDeleteDeviceRequest()
	aliReq(srv1, del.RpcRequest)
	del.ProductKey, del.DeviceName = aliTestProduct, "dev-3"
	if r, err := c.DeleteDevice(del); err != nil || !r.Success {
		t.Fatal(err, r)
	}
	running := apply("run-1", "run-2")
	clk.Add(3 * time.Second)
	srv1.Close()
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}

	e2, srv2 := aliStart(t, cfg)
	for _, n := range []string{"dev-1", "dev-2"} {
		if s, ok := e2.AliyunDevice(aliTestProduct, n); !ok || s != before[n] {
			t.Fatalf("%s lost or changed across restart", n)
		}
	}
	if _, ok := e2.AliyunDevice(aliTestProduct, "dev-3"); ok {
		t.Fatal("deleted device came back")
	}
	pg := aliiot.CreateQueryPageByApplyIdRequest()
	aliReq(srv2, pg.RpcRequest)
	pg.ApplyId, pg.PageSize = requests.NewInteger64(done), requests.NewInteger(50)
	if r, err := c.QueryPageByApplyId(pg); err != nil || r.Total != 3 {
		t.Fatalf("finished application after restart: %v %+v", err, r)
	}
	st := aliiot.CreateQueryBatchRegisterDeviceStatusRequest()
	aliReq(srv2, st.RpcRequest)
	st.ProductKey, st.ApplyId = aliTestProduct, requests.NewInteger64(running)
	if r, err := c.QueryBatchRegisterDeviceStatus(st); err != nil || r.Data.Status != "CREATE" {
		t.Fatalf("running application after restart: %v %+v", err, r)
	}
	clk.Add(7 * time.Second)
	if got := strings.Join(e2.AliyunDeviceNames(aliTestProduct), ","); got != "dev-1,dev-2,run-1,run-2" {
		t.Fatalf("devices %s", got)
	}
	// A new application gets a new ApplyId, not one a restart forgot.
	r := aliiot.CreateBatchCheckDeviceNamesRequest()
	aliReq(srv2, r.RpcRequest)
	more := []string{"more-1"}
	r.ProductKey, r.DeviceName = aliTestProduct, &more
	if resp, err := c.BatchCheckDeviceNames(r); err != nil || resp.Data.ApplyId <= running {
		t.Fatalf("ApplyId after restart: %v %+v", err, resp)
	}
	r1, _ := e2.AliyunDevice(aliTestProduct, "run-1")
	srv2.Close()
	e2.Close()
	e3, _ := aliStart(t, cfg)
	if s, ok := e3.AliyunDevice(aliTestProduct, "run-1"); !ok || s != r1 {
		t.Fatal("completed application's device lost")
	}
	journal, _ := os.ReadFile(filepath.Join(dir, journalName))
	if !bytes.Contains(journal, []byte(`"v":"aliyun"`)) {
		t.Fatal("no aliyun records in the journal")
	}
	if strings.Contains(logs.String(), before["dev-1"]) || strings.Contains(logs.String(), aliTestSecret) ||
		!strings.Contains(logs.String(), "action=BatchCheckDeviceNames") {
		t.Fatalf("log leaks a secret or lacks the action:\n%s", logs.String())
	}
}
