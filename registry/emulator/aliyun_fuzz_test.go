package emulator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzAliyunRequest throws parameters at the RPC front door. In "signed"
// mode the fuzzer's parameters are added to a correct set of common ones and
// signed, so they reach the actions' parameter parsing; otherwise the raw
// query and body are sent as they are. Whatever comes in, nothing panics, the
// answer has the cloud's shape, and an unsigned request is never served.
func FuzzAliyunRequest(f *testing.F) {
	f.Add(uint8(0), true, "ProductKey=a1TestProdKey&DeviceName.1=abcd&DeviceName.2=abcd", "")
	f.Add(uint8(0), true, "ProductKey=a1TestProdKey&DeviceNameList.1.DeviceName=x&DeviceNameList.0.DeviceName=y&DeviceName.-1=z", "")
	f.Add(uint8(1), true, "ProductKey=a1TestProdKey&ApplyId=1000001", "")
	f.Add(uint8(2), true, "ProductKey=a1TestProdKey&Count=-5", "")
	f.Add(uint8(3), true, "ApplyId=9223372036854775807&PageSize=50&CurrentPage=9223372036854775807", "")
	f.Add(uint8(4), true, "ApplyId=abc&PageSize=0", "")
	f.Add(uint8(5), true, "ProductKey=a1TestProdKey&Nickname=%E4%B8%AD%E6%96%87ab", "")
	f.Add(uint8(6), true, "IotId=%00%FF&DeviceName=", "")
	f.Add(uint8(7), true, "ProductKey=a1TestProdKey&PageSize=50&CurrentPage=3", "")
	f.Add(uint8(8), true, "Format=XML&Version=1", "")
	f.Add(uint8(9), false, "Action=QueryProduct&SignatureMethod=HMAC-SHA1&Signature=%zz", "a=b&a=c")
	f.Add(uint8(10), false, "Action=&SignatureMethod=", "Format=JSON&Timestamp=2016-02-23T12:46:24Z&AccessKeyId=x")
	f.Add(uint8(11), false, "", "Action=QueryDevice&SignatureMethod=HMAC-SHA1&&=&%")
	f.Add(uint8(2), false, " ", "")

	actions := []string{"BatchCheckDeviceNames", "QueryBatchRegisterDeviceStatus", "BatchRegisterDevice", "QueryPageByApplyId",
		"BatchRegisterDeviceWithApplyId", "RegisterDevice", "QueryDeviceDetail", "QueryDevice", "DeleteDevice", "QueryProduct",
		"Nope", "BatchCheckDeviceNames", "GetThingTopo"}
	e, err := New(Config{SecretID: testID, SecretKey: testKey, AliyunAccessKeyID: aliTestID, AliyunAccessKeySecret: aliTestSecret,
		AliyunProducts: []string{aliTestProduct}, TaskDelay: -1, RateLimit: -1, Quota: 1000})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, which uint8, signed bool, query, body string) {
		method := http.MethodPost
		if which&0x80 != 0 {
			method = http.MethodGet
		}
		var req *http.Request
		if signed {
			p := aliParams(actions[int(which)%len(actions)], time.Now(), nil)
			for query != "" {
				var pair string
				pair, query, _ = strings.Cut(query, "&")
				k, v, _ := strings.Cut(pair, "=")
				k, _ = url.QueryUnescape(k)
				v, _ = url.QueryUnescape(v)
				if k != "" && k != "Signature" {
					p[k] = v
				}
			}
			aliSignParams(method, p, aliTestSecret)
			v := url.Values{}
			for k, x := range p {
				v.Set(k, x)
			}
			if method == http.MethodGet {
				req = httptest.NewRequest(method, "http://127.0.0.1:8443/?"+v.Encode(), nil)
			} else {
				req = httptest.NewRequest(method, "http://127.0.0.1:8443/", strings.NewReader(v.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
		} else {
			req = httptest.NewRequest(method, "http://127.0.0.1:8443/", strings.NewReader(body))
			req.URL.RawQuery = query // as it came off the wire, however odd
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		switch w.Code {
		case 200, 400, 404, 405, 413, 429, 503:
		default:
			t.Fatalf("HTTP %d: %s", w.Code, w.Body.Bytes())
		}
		if !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			if w.Code == 200 {
				t.Fatalf("a 200 that is not JSON: %s", w.Body.Bytes())
			}
			return
		}
		var out struct {
			RequestId string
			Success   *bool
			Code      string
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.RequestId == "" {
			t.Fatalf("answer is not the cloud's shape: %s", w.Body.Bytes())
		}
		if w.Code == 200 && out.Success == nil {
			t.Fatalf("business answer without Success: %s", w.Body.Bytes())
		}
		if !signed && w.Code == 200 {
			t.Fatalf("an unsigned request was served: %s", w.Body.Bytes())
		}
	})
}
