package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// FuzzTencentRequest throws malformed bodies and Authorization headers at the
// handler. Bodies are correctly signed (unless the fuzzer's header replaces the
// signature), so they reach the actions' parameter parsing. Whatever comes in,
// the answer is a 200 with the cloud's envelope, and nothing panics.
func FuzzTencentRequest(f *testing.F) {
	f.Add(uint8(0), []byte(`{"ProductId":"ABCDEFGHIJ","DeviceNames":["a","b"]}`), "")
	f.Add(uint8(1), []byte(`{"ProductId":"ABCDEFGHIJ","TaskId":null,"Offset":-1}`), "")
	f.Add(uint8(2), []byte(`{"ProductId":"ABCDEFGHIJ","Offset":18446744073709551615,"Limit":250}`), "")
	f.Add(uint8(3), []byte(`[1,2]`), "")
	f.Add(uint8(4), []byte(`{"ProductID":{"x":1},"DeviceName":3}`), "")
	f.Add(uint8(5), []byte(`{"ProductId":"ABCDEFGHIJ","DeviceName":"x","DefinedPsk":""}`), "")
	f.Add(uint8(6), []byte(`{`), "TC3-HMAC-SHA256 Credential=/, SignedHeaders=;, Signature=")
	f.Add(uint8(7), []byte(``), "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=host, Signature="+string(bytes.Repeat([]byte("0"), 64)))
	f.Add(uint8(8), []byte("\x00\xff"), ",,,=,=")

	actions := []string{"CreateMultiDevice", "DescribeMultiDevTask", "DescribeMultiDevices", "CreateDevice",
		"DescribeDevice", "DescribeDevices", "DeleteDevice", "DescribeProducts", "Nope", "BindDevices", "UnbindDevices", "DescribeGatewayBindDevices"}
	e, err := New(Config{SecretID: testID, SecretKey: testKey, Products: []string{testProduct}, TaskDelay: -1, RateLimit: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte, auth string) {
		action := actions[int(which)%len(actions)]
		req := httptest.NewRequest("POST", "http://127.0.0.1:8443/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-TC-Action", action)
		req.Header.Set("X-TC-Version", "2018-06-14")
		now := time.Now()
		ts := strconv.FormatInt(now.Unix(), 10)
		req.Header.Set("X-TC-Timestamp", ts)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		} else {
			date := now.UTC().Format("2006-01-02")
			signed := []string{"content-type", "host"}
			in := tc3Input{Method: "POST", Host: req.Host, Header: req.Header, Body: body}
			sig := tc3Signature(testKey, date, "iotcloud", tc3StringToSign(ts, date, "iotcloud", tc3CanonicalRequest(in, signed)))
			req.Header.Set("Authorization", tc3Authorization(testID, date, "iotcloud", signed, sig))
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("HTTP %d", w.Code)
		}
		var out struct {
			Response struct {
				RequestId string
				Error     *struct{ Code string }
			}
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Response.RequestId == "" {
			t.Fatalf("answer is not the envelope: %s", w.Body.Bytes())
		}
		if auth != "" && out.Response.Error == nil {
			t.Fatalf("a fuzzed Authorization header was accepted")
		}
	})
}
